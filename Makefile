# mmviad — the two commands a new user runs: `make render` and `make test`.
# Both create .venv (Python 3.11) and install the pinned dependencies on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

CONFIG ?= manifests/default.yaml
OUT    ?=
SHARD  ?=
OUT_ARG := $(if $(OUT),--out $(OUT))

.PHONY: help install render test clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "mmviad needs Python 3.11 (the bpy 5.0.1 wheel)"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@# the review page test drives the system Chromium; install it when we can (root, apt)
	if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then (apt-get update -qq && apt-get install -y -qq chromium) || echo "chromium not installed: the browser test will skip"; fi
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)  ## create .venv with the mmviad command

render: $(STAMP)  ## render the dataset (SHARD=k: one shard's jobs + per-job stages; CONFIG=, OUT= override)
ifeq ($(SHARD),)
	$(BIN)/mmviad build --config $(CONFIG) $(OUT_ARG)
else
	$(BIN)/mmviad plan --config $(CONFIG) $(OUT_ARG)
	$(BIN)/mmviad render --config $(CONFIG) $(OUT_ARG) --shard $(SHARD)
	$(BIN)/mmviad annotate --config $(CONFIG) $(OUT_ARG) --shard $(SHARD)
	$(BIN)/mmviad clips --config $(CONFIG) $(OUT_ARG) --shard $(SHARD)
endif

test: $(STAMP)  ## run the test suite
	$(BIN)/python -m pytest -q

clean:  ## remove outputs (keeps .venv)
	rm -rf out
