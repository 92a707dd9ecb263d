#!/usr/bin/env bash
# Fine-tune the shipped model on a lent GPU machine (PyTorch, no TensorFlow) and bring the weights back.
#
#   bash scripts/gpu_finetune.sh prepare            # here: gpu/train.npz and gpu/wheels (git-ignored)
#   run tool, carry ["gpu"], command:  bash scripts/gpu_finetune.sh run   # there: ~8 minutes, weights in $OUT
#   python -m training release-run models/cutout-person.weights.h5 --out RUN       # here: the config to import into
#   python -m training import-weights FETCHED_DIR --config-from RUN --out NEW_RUN   # here, then export as usual
#
# The GPU machine reaches no network: Keras comes as wheels; PyTorch, numpy and Pillow are there already.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
prepare)
  PY=${PYTHON:-.venv/bin/python}
  DATA=${DATA:-../shared/data/people_segmentation}
  mkdir -p gpu/wheels
  "$PY" -m pip download -q --only-binary=:all: -d gpu/wheels keras absl-py namex optree rich h5py
  # numpy is on the GPU machine with PyTorch (16 MB that the carry budget is better spent on)
  rm -f gpu/wheels/numpy-*
  "$PY" -m training pack --data "$DATA" --out gpu/train.npz
  du -sh gpu
  ;;
run)
  : "${OUT:?OUT must name the folder whose files come back}"
  python -m pip install -q --no-index --find-links gpu/wheels keras h5py 2>&1 | tail -3 || true
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
  KERAS_BACKEND=${KERAS_BACKEND:-torch} python -m training.portable gpu/train.npz \
    --init-from models/cutout-person.weights.h5 --out "$OUT/weights" \
    --minutes "${MINUTES:-8}" --batch-size "${BATCH_SIZE:-32}" --size 384 --precision bfloat16 2>&1 | tail -40
  ;;
*)
  echo "usage: $0 prepare|run" >&2
  exit 2
  ;;
esac
