#!/usr/bin/env bash
# v2's CPU recipe (the previous default; v5's three 112 px stages are in MODEL_CARD.md), resumable: rerun the same command
# after an interruption and each run continues from its last epoch (finished runs are skipped).
#   1. main: fine-tune INIT (v1 for v2: runs/v1.safetensors, see MODEL_CARD.md) on tv_faces + UTKFace + clips/real crops (train
#      split), self- and cross-blended fakes, real and fake degraded alike with H.264.
#   2. leave-one-source-out: the same recipe, shorter, from the same start, without one source.
# Crops: see MODEL_CARD.md ("Reproduce"). Then calibrate and report with benchmarks/bench_quality.py.
set -euo pipefail
cd "${REPO:-$(dirname "$0")/..}"
RUNS=${RUNS:-runs}
MAIN_MIN=${MAIN_MIN:-65}
LOSO_MIN=${LOSO_MIN:-10}
LOSO_SOURCES=${LOSO_SOURCES:-"tv_faces utkface voxceleb2"}
INIT=${INIT:?set INIT to the start, e.g. runs/v1.safetensors for v2 (MODEL_CARD.md)}
SIZE=${SIZE:-224}  # v2's size; v5 (the default) is 112 px, trained in the stages of MODEL_CARD.md
DATA="--data work_data/tv --data work_data/utk --data work_data/clips"
COMMON="--sbi --init $INIT --xray 0.25 --codec 0.7 --batch-size 16 --lr 2e-4 --workers 1 --threads 2 --val-max 400 --epochs 100 --steps 150 --size $SIZE"

run() {  # run NAME MINUTES [extra train args...]
  local name=$1 minutes=$2
  shift 2
  if [ -f "$RUNS/$name/done" ]; then echo "$name: done already"; return; fi
  mkdir -p "$RUNS/$name"
  local resume=""
  [ -f "$RUNS/$name/state.pt" ] && resume="--resume"
  fakeprobe train $DATA $COMMON --out "$RUNS/$name" --time-limit "$minutes" --name "$name" $resume "$@" 2>&1 | tee -a "$RUNS/$name/train.log"
  touch "$RUNS/$name/done"
}

run main "$MAIN_MIN" --name fakeprobe-sbi-lite0-v2
for s in $LOSO_SOURCES; do
  run "loso_$s" "$LOSO_MIN" --exclude-source "$s"
done
