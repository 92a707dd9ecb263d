# Two commands on a fresh machine:  `make serve` (the service on the shipped model)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: serve test lint install-service install-dev browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The service alone: no TensorFlow.
$(VENV)/.service: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Service + trainer + test tools.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[train,test]"
	touch $@ $(VENV)/.service

install-service: $(VENV)/.service
install-dev: $(VENV)/.dev

serve: $(VENV)/.service
	$(BIN)/python -m service

# Headless Chromium for the web-page test (Debian packages); the test skips with a reason without it.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) ; } || \
	  echo "note: chromium not installed; the browser test will be skipped"

lint: $(VENV)/.dev
	$(BIN)/ruff check service training tests scripts
	$(BIN)/ruff format --check service training tests scripts

# Two workers, each given whole test files: most of a TensorFlow test is single-threaded tracing, so the
# second uses the idle core; the tiny training run both need is built once (tests/conftest.py, built_once).
# One compute thread per worker (TensorFlow, OpenMP/BLAS): two workers with a pool as large as the machine
# each would spin on the other's core (timings: README, "Quick start").
test: $(VENV)/.dev browser lint
	TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile
