#!/usr/bin/env bash
# The accelerator run of the default model's recipe (MODEL_CARD.md), from the ImageNet start, on a
# pack made by scripts/make_train_pack.py: the main run on every source, then leave-one-source-out
# runs of the same recipe from the same ImageNet start (a start that never saw the left-out source,
# unlike the CPU runs that start from v1). Checkpoints and logs go under $OUT.
set -o pipefail
OUT=${OUT:-runs/gpu}
MAIN_MIN=${MAIN_MIN:-3}
LOSO_MIN=${LOSO_MIN:-1.2}
LOSO_SOURCES=${LOSO_SOURCES:-"tv_faces utkface mead"}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c "import torch, timm, cv2; print('torch', torch.__version__, 'timm', timm.__version__, 'cv2', cv2.__version__, 'cuda', torch.cuda.is_available())"
COMMON="--data .pack/data --init .pack/lite0_imagenet.safetensors --sbi --xray 0.25 --codec 0.7 --epochs 100 --steps 300
  --batch-size 128 --lr 1e-3 --workers 15 --device cuda --val-max 600"
status=0
train() {  # train NAME MINUTES [extra args]
  local name=$1 minutes=$2
  shift 2
  PYTHONPATH=src PYTHONUNBUFFERED=1 python3 -m fakeprobe.cli train $COMMON --out "$OUT/$name" --time-limit "$minutes" \
    --name "$name" "$@" 2>&1 | tee "$OUT/$name.log" || status=1
  rm -f "$OUT/$name/state.pt"
}
train main "$MAIN_MIN"
for s in $LOSO_SOURCES; do
  train "loso_$s" "$LOSO_MIN" --exclude-source "$s"
done
exit $status
