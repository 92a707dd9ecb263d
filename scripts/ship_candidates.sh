#!/usr/bin/env bash
# Export and measure the serving candidates of a run: size x precision -> val metrics and end-to-end latency.
#   bash scripts/ship_candidates.sh RUN_DIR OUT_DIR "320 384" [extra export args]
# Writes OUT_DIR/<size>-<precision>.onnx, OUT_DIR/<size>-<precision>/evaluation.json (+ pictures),
# OUT_DIR/<size>-<precision>.latency.json. Pick the winner from the table it prints. PRECISIONS="int8" limits the
# precisions; extra arguments go to `training export` (e.g. --flip-tta, into another OUT_DIR).
set -euo pipefail
run="$1"; out="$2"; sizes="${3:-320 384}"; shift 3 || true
root="$(cd "$(dirname "$0")/.." && pwd)"
py="$root/.venv/bin/python"
data="${CUTOUT_DATA:-$root/../shared/data/people_segmentation}"
mkdir -p "$out"
for size in $sizes; do
  for precision in ${PRECISIONS:-fp32 int8}; do
    name="$size-$precision"
    [ -f "$out/$name.onnx" ] || "$py" -m training export "$run" --out "$out/$name.onnx" --size "$size" --precision "$precision" --force "$@" \
      > "$out/$name.export.log" 2>&1
    "$py" -m training evaluate "$out/$name.onnx" --data "$data" --out "$out/$name" > "$out/$name.eval.log" 2>&1
    (cd "$root" && "$py" -m scripts.benchmark_service --model "$out/$name.onnx" --requests 20) > "$out/$name.latency.json" 2>/dev/null
    "$py" - "$out" "$name" <<'PY'
import json, sys
out, name = sys.argv[1], sys.argv[2]
m = json.load(open(f"{out}/{name}/evaluation.json"))["metrics"]
lat = json.load(open(f"{out}/{name}.latency.json"))
print(f"{name:10s} mean_iou {m['mean_iou']:.4f} pooled {m['pooled_iou']:.4f} boundary_f {m['boundary_f']:.4f} "
      f"e2e_p50 {lat['sequential_p50_ms']} ms p95 {lat['sequential_p95_ms']} ms", flush=True)
PY
  done
done
