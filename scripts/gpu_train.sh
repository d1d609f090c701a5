#!/usr/bin/env bash
# Training runs of the "A" recipe (ImageNet start, tv_faces + talking heads, no UTKFace; MODEL_CARD.md
# "How v6 was chosen") side by side on one GPU. By default v6's two members, seeds 0 and 1, for
# MINUTES each with WORKERS data workers: the same recipe and batch as the CPU runs, more steps.
# RUNS names a file of runs instead, one per line: NAME SEED [more train options], e.g.
#   b3 3 --epochs 17                                 # the CPU runs' ~2,500 steps, no time limit
#   t2 2 --epochs 17 --exclude-source tv_faces       # a leave-one-source-out member
# Needs the pack of scripts/make_train_pack.py in .pack (its data/ folder as .pack/data.tgz) and PyAV (libx264, for the codec
# augmentation) as .whl/av18.tar.xz: an installed tree of the av wheel. fp16 checkpoints and logs
# go under $OUT (files there must stay under 16 MiB each, and the device tool brings back at most 8
# files a call: four runs).
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 -d /tmp/whl av==18.1.0
#   mkdir -p /tmp/avx .whl && unzip -q /tmp/whl/av-18.1.0-*.whl -d /tmp/avx && tar cJf .whl/av18.tar.xz -C /tmp/avx .
# With the device tool (64 MiB of working tree, counted in disk blocks), empty the bundled weights file for
# the call (it is not needed: the runs start from .pack's ImageNet init) and restore it after.
set -o pipefail
OUT=${OUT:-runs/gpu}
MINUTES=${MINUTES:-6.5}
WORKERS=${WORKERS:-7}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT" /tmp/site
tar xJf .whl/av18.tar.xz -C /tmp/site || exit 1
mkdir -p /tmp/pack && tar xzf .pack/data.tgz -C /tmp/pack || exit 1  # one file: the tree limit counts blocks
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c "import torch, timm, cv2, av; print('torch', torch.__version__, 'timm', timm.__version__, 'cv2', cv2.__version__, 'av', av.__version__, 'cuda', torch.cuda.is_available())" || exit 1
python3 -c "from fakeprobe.train.augment import h264; import numpy as np; print('h264', h264([np.zeros((16, 16, 3), np.uint8)], 23).shape)" || exit 1
COMMON="--data /tmp/pack/data --init .pack/lite0_imagenet.safetensors --sbi --xray 0.25 --codec 0.7 --batch-size 16
  --workers $WORKERS --threads 1 --val-max 400 --size 112 --colour 0.5 --softening 0.3 --lr 1e-3 --device $DEVICE"
if [ -z "$RUNS" ]; then
  RUNS=/tmp/runs.txt
  printf 'g0 0 --epochs 100 --steps 600 --time-limit %s\ng1 1 --epochs 100 --steps 600 --time-limit %s\n' "$MINUTES" "$MINUTES" > $RUNS
fi
names=()
while read -r name seed extra; do
  [ -z "$name" ] && continue
  names+=("$name")
  # later options win: a run's own --epochs / --steps replace the defaults
  python3 -m fakeprobe.cli train $COMMON --epochs 100 --steps 150 --seed "$seed" $extra --out "$OUT/$name" \
    --name "gpu-$name" > "$OUT/$name.log" 2>&1 &
done < "$RUNS"
wait
status=0
for name in "${names[@]}"; do
  tail -n 3 "$OUT/$name.log"
  python3 - "$OUT/$name/best.safetensors" "$OUT/$name.safetensors" <<'PY' || status=1
import sys
from fakeprobe.model.checkpoint import load_checkpoint, save_checkpoint
c = load_checkpoint(sys.argv[1])
save_checkpoint(sys.argv[2], c.build(), c.meta, half=True)
print("wrote", sys.argv[2])
PY
  rm -rf "${OUT:?}/$name"
done
exit $status
