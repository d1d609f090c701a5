#!/usr/bin/env bash
# The accelerator run of the default model's recipe: same `fakeprobe train`, bigger batches, a
# pack made by scripts/make_train_pack.py. Writes the checkpoint and log under $OUT.
set -o pipefail
OUT=${OUT:-runs/gpu}
MINUTES=${MINUTES:-5.5}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c "import torch, timm, cv2; print('torch', torch.__version__, 'timm', timm.__version__, 'cv2', cv2.__version__, 'cuda', torch.cuda.is_available())"
PYTHONPATH=src PYTHONUNBUFFERED=1 python3 -m fakeprobe.cli train --data .pack/data --init .pack/lite0_imagenet.safetensors \
  --out "$OUT/run" --sbi --epochs 100 --steps 400 --batch-size 128 --lr 1e-3 --workers 15 --device cuda \
  --time-limit "$MINUTES" --name fakeprobe-sbi-lite0 --val-max 600 2>&1 | tee "$OUT/train.log"
status=$?
rm -f "$OUT/run/state.pt"
exit $status
