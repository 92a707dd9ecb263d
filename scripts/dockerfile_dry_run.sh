#!/usr/bin/env bash
# No Docker engine here: run the Dockerfile's build and runtime steps by hand in a fresh venv and a copy
# of exactly what the Dockerfile COPYs, then start the server and probe /healthz and /readyz.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/app"
cp "$root/pyproject.toml" "$root/README.md" "$work/src/"
cp -r "$root/service" "$work/src/service"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --no-cache-dir "$work/src"
cp -r "$root/models" "$work/app/models"
if "$work/venv/bin/python" -c "import tensorflow" 2>/dev/null; then echo "FAIL: tensorflow in the image"; exit 1; fi
cd "$work/app"
CUTOUT_MODEL_PATH="$work/app/models/cutout-person.onnx" PORT=8765 HOST=127.0.0.1 "$work/venv/bin/python" -m service &
server=$!
for _ in $(seq 60); do curl -fs http://127.0.0.1:8765/readyz >/dev/null && break; sleep 1; done
curl -fs http://127.0.0.1:8765/healthz && echo
curl -fs http://127.0.0.1:8765/readyz && echo
du -sh "$work/venv" | sed 's/^/venv size: /'
echo "OK: Dockerfile steps install and serve without TensorFlow"
