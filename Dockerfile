# Cutout service image: slim Python, no TensorFlow, the shipped model baked in, non-root.
# CPU:  docker build -t cutout .
# GPU:  docker build -t cutout:gpu --build-arg ORT_PACKAGE="onnxruntime-gpu[cuda,cudnn]==1.32.0" .
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG ORT_PACKAGE=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install . \
 && if [ -n "$ORT_PACKAGE" ]; then /opt/venv/bin/pip uninstall -y onnxruntime && /opt/venv/bin/pip install "$ORT_PACKAGE"; fi

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --create-home --uid 10001 cutout
COPY --from=build /opt/venv /opt/venv
COPY models /app/models
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CUTOUT_MODEL_PATH=/app/models/cutout-person.onnx \
    CUTOUT_GPU_MODEL_PATH=/app/models/cutout-person-fp16.onnx \
    HOST=0.0.0.0 \
    PORT=8000
USER cutout
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
CMD ["python", "-m", "service"]
