#!/usr/bin/env bash
# Fine-tune the shipped model on a lent GPU machine (no TensorFlow there) and bring the weights back.
#
#   bash scripts/gpu_finetune.sh prepare            # here: gpu/train.npz and gpu/wheels (git-ignored);
#                                                   #   HARD_NEGATIVES=F.json (mine-negatives) packs the hard squares
#   bash scripts/gpu_finetune.sh light              # here: the ONNX files stay behind (the tree that travels is <= 64 MiB)
#   run tool, carry ["gpu"], command:  OUT=$OUT bash scripts/gpu_finetune.sh run   # there: ~8 minutes, weights in $OUT
#     (MINUTES, SIZE, BATCH_SIZE, LR, HARD_NEGATIVE_FRACTION, SAVE_EVERY_MINUTES; it starts from the weights in models/)
#   bash scripts/gpu_finetune.sh restore            # here: the ONNX files tracked again
#   python -m training release-run models/cutout-person.weights.h5 --out RUN       # here: the config to import into
#   python -m training import-weights FETCHED/weights --config-from RUN --out NEW_RUN   # here, then export as usual
#
# The GPU machine reaches no network and has Python 3.12 with PyTorch, JAX, numpy, Pillow, h5py, rich and absl:
# Keras and the two packages it needs beside those come as wheels built for it.
set -euo pipefail
cd "$(dirname "$0")/.."
LEFT_BEHIND=(models/cutout-person.onnx models/cutout-person-fp16.onnx)

case "${1:-}" in
prepare)
  PY=${PYTHON:-.venv/bin/python}
  DATA=${DATA:-../shared/data/people_segmentation}
  rm -rf gpu/wheels && mkdir -p gpu/wheels
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d gpu/wheels keras namex optree
  # What travels: the tracked files (less the ONNX files, see `light`), the wheels and the pack, 64 MiB in all.
  tracked=$(git ls-files -z | grep -zv -e '\.onnx$' | xargs -0 du -cb | tail -1 | cut -f1)
  wheels=$(du -cb gpu/wheels/* | tail -1 | cut -f1)
  budget_mb=$(( (64 * 2**20 - tracked - wheels) / 2**20 - 1 ))
  "$PY" -m training pack --data "$DATA" --out gpu/train.npz --side "${SIDE:-320}" --quality "${QUALITY:-60}" --max-mb "$budget_mb" \
    ${HARD_NEGATIVES:+--hard-negatives "$HARD_NEGATIVES"}
  du -sh gpu
  ;;
light)
  # Kept on disk, untracked and ignored until `restore`: the device tool sends tracked and unignored files only.
  git rm -q --cached "${LEFT_BEHIND[@]}"
  printf '%s\n' "${LEFT_BEHIND[@]/#//}" >>.git/info/exclude
  ;;
restore)
  for path in "${LEFT_BEHIND[@]}"; do sed -i "\#^/$path\$#d" .git/info/exclude; done
  git reset -q HEAD -- "${LEFT_BEHIND[@]}"
  git status --short
  ;;
run)
  : "${OUT:?OUT must name the folder whose files come back}"
  export PYTHONUNBUFFERED=1
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site gpu/wheels/*.whl
  export PYTHONPATH=/tmp/site
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
  start=$(date +%s)
  minutes=${MINUTES:-8}
  options=(gpu/train.npz --init-from models/cutout-person.weights.h5 --out "$OUT/weights" --size "${SIZE:-320}"
    --batch-size "${BATCH_SIZE:-32}" --lr "${LR:-5e-5}" --negative-fraction 0.1 --zoom-out-fraction 0.08 --precision bfloat16
    --hard-negative-fraction "${HARD_NEGATIVE_FRACTION:-0}" --save-every-minutes "${SAVE_EVERY_MINUTES:-2}")
  # JAX compiles the whole step once (fastest after that); PyTorch runs eagerly and is the fallback, with what
  # time is left, if JAX sees no GPU or fails.
  if python3 -c "import jax, sys; sys.exit(jax.devices()[0].platform != 'gpu')" &&
    KERAS_BACKEND=jax python3 -m training.portable "${options[@]}" --minutes "$minutes"; then
    exit 0
  fi
  left=$(python3 -c "print(max(1.0, $minutes - ($(date +%s) - $start) / 60 - 0.5))")
  echo "JAX run failed or found no GPU: PyTorch for $left minutes" >&2
  KERAS_BACKEND=torch python3 -m training.portable "${options[@]}" --minutes "$left"
  ;;
*)
  echo "usage: $0 prepare|light|run|restore" >&2
  exit 2
  ;;
esac
