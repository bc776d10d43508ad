# seqlab: make demo | test | bench | lint   (each creates .venv on first use)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# CPU machines get the CPU wheel of torch (pinned); CUDA machines a current CUDA build.
HAS_CUDA := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
ifeq ($(HAS_CUDA),1)
TORCH_SPEC := torch
else
TORCH_SPEC := torch==2.13.0
endif

.PHONY: demo test test-browser bench lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/seqlab demo

test: $(VENV)/.installed
	$(PY) -m pytest -q -x --durations=10

# The playground page in a real headless Chromium (Debian's chromium + chromium-driver,
# installed here when missing); `make test` runs these too when the browser is there.
test-browser: $(VENV)/.installed
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  echo "installing chromium + chromium-driver (apt-get)"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi
	SEQLAB_REQUIRE_BROWSER=1 $(PY) -m pytest -q -m browser tests/deploy/test_playground.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Speed/quality benchmarks (minutes to tens of minutes; never part of `make test`).
bench: $(VENV)/.installed
	for b in recurrent lm word2vec tagger gradient-flow long-range; do \
	  $(VENV)/bin/seqlab bench $$b --json || exit 1; done
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
