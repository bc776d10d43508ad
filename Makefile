# seqlab: make demo | test | bench | lint | docs   (each creates .venv on first use)
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

.PHONY: demo test test-browser bench lint clean docs docs-serve

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

# The playground page and a documentation chapter (one-chapter build: equations typeset by
# the site's own MathJax, the figure loaded; saves docs/img/docs_chapter.png) in a real
# headless Chromium (Debian's chromium + chromium-driver, installed here when missing);
# `make test` runs these too when the browser is there.
test-browser: $(VENV)/.docs-installed
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  echo "installing chromium + chromium-driver (apt-get)"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi
	SEQLAB_REQUIRE_BROWSER=1 $(PY) -m pytest -q -m browser tests/deploy/test_playground.py \
	  tests/docs/test_site_browser.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests tools
	$(VENV)/bin/ruff format --check src tests tools
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Speed/quality benchmarks (minutes to tens of minutes; never part of `make test`).
bench: $(VENV)/.installed
	for b in recurrent lm word2vec tagger gradient-flow long-range; do \
	  $(VENV)/bin/seqlab bench $$b --json || exit 1; done
	$(PY) -m pytest -q -m slow

# The documentation site (mkdocs.yml): every `exec` block of docs/ runs while it builds
# (tools/docs_exec.py; under 15 minutes on 2 cores), strict: a failing block, a broken
# link or an unresolved API reference fails it. Output: site/.
$(VENV)/.docs-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e ".[dev,docs]"
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/mkdocs build --strict

# Serves on http://127.0.0.1:8000 and rebuilds on edits; chapters whose blocks did not
# change reuse their last outputs (build/docs/).
docs-serve: $(VENV)/.docs-installed
	SEQLAB_DOCS_CACHE=1 NO_MKDOCS_2_WARNING=1 PATH="$(CURDIR)/$(VENV)/bin:$$PATH" \
	  $(VENV)/bin/mkdocs serve

clean:
	rm -rf $(VENV) runs site build/docs build/docs-steps* .pytest_cache .mypy_cache .ruff_cache
