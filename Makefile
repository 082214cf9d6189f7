# mmviad — the two commands a new user runs: `make render` and `make test`.
# Both create .venv (Python 3.11) and install the pinned dependencies on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

# trainer (separate venv: torch CPU wheel first, never torchvision; see trainer/README.md)
TRAIN_VENV   := .venv-train
TRAIN_BIN    := $(TRAIN_VENV)/bin
TRAIN_STAMP  := $(TRAIN_VENV)/.installed-$(shell cat trainer/pyproject.toml pipeline/grammar.py | cksum | cut -d' ' -f1)
TORCH_PIN    := torch==2.13.0
TRAIN_CONFIG ?= trainer/configs/cpu-smoke.yaml
DATA         ?= out/default
RUN_DIR      ?=
RUN_DIR_ARG  := $(if $(RUN_DIR),--run-dir $(RUN_DIR))

# Label Studio for the live review test (its own venv: Django and its pins stay out of .venv)
LS_VENV  := .venv-ls
LS_PIN   := label-studio==1.23.2
LS_STAMP := $(LS_VENV)/.installed-$(shell echo $(LS_PIN) | cksum | cut -d' ' -f1)

# lmms-eval for the benchmark's lmms-eval task (its own venv; lmms-eval --no-deps, never torchvision)
LMMS_VENV  := .venv-lmms
LMMS_PIN   := lmms-eval==0.7.3
LMMS_REQ   := integrations/lmms_eval/requirements.txt
LMMS_STAMP := $(LMMS_VENV)/.installed-$(shell cat $(LMMS_REQ) | cksum | cut -d' ' -f1)-$(shell echo $(LMMS_PIN) | cksum | cut -d' ' -f1)

CONFIG ?= manifests/default.yaml
OUT    ?=
SHARD  ?=
NUM_SHARDS ?=
OUT_ARG := $(if $(OUT),--out $(OUT))
SHARDS_ARG := $(if $(NUM_SHARDS),--num-shards $(NUM_SHARDS))

.PHONY: help install install-train install-labelstudio install-lmms render train test bench bench-learn clean

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

# torch first (the CPU wheel via find-links), else pip resolves CUDA wheels for peft/accelerate.
# The repo root is installed --no-deps: the trainer imports the pipeline's host-side modules (grammar, records,
# intervals, seeds, io, eval; trainer/tests/test_reuse.py) without Blender deps.
$(TRAIN_STAMP): trainer/pyproject.toml pipeline/grammar.py
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "the trainer needs Python 3.11"'
	test -x $(TRAIN_BIN)/python || $(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_BIN)/python -m pip install -q --upgrade pip
	$(TRAIN_BIN)/python -m pip install -q $(TORCH_PIN)
	$(TRAIN_BIN)/python -m pip install -q -e './trainer[dev]'
	$(TRAIN_BIN)/python -m pip install -q --no-deps -e .
	rm -f $(TRAIN_VENV)/.installed-* && touch $@

install-train: $(TRAIN_STAMP)  ## create .venv-train (torch, transformers, trl, peft, accelerate)

$(LS_STAMP):
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "needs Python 3.11"'
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install -q --upgrade pip
	$(LS_VENV)/bin/python -m pip install -q $(LS_PIN)
	rm -f $(LS_VENV)/.installed-* && touch $@

install-labelstudio: $(LS_STAMP)  ## create .venv-ls with Label Studio (the live review test starts it)

# torch's CPU wheel first; lmms-eval without its declared dependencies (they pull torchvision and a
# CUDA-linked torch); then what the task and lmms-eval's CLI import; the repo root --no-deps.
$(LMMS_STAMP): $(LMMS_REQ)
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "needs Python 3.11"'
	test -x $(LMMS_VENV)/bin/python || $(PYTHON) -m venv $(LMMS_VENV)
	$(LMMS_VENV)/bin/python -m pip install -q --upgrade pip
	$(LMMS_VENV)/bin/python -m pip install -q $(TORCH_PIN)
	$(LMMS_VENV)/bin/python -m pip install -q --no-deps $(LMMS_PIN)
	$(LMMS_VENV)/bin/python -m pip install -q -r $(LMMS_REQ)
	$(LMMS_VENV)/bin/python -m pip install -q --no-deps -e .
	rm -f $(LMMS_VENV)/.installed-* && touch $@

install-lmms: $(LMMS_STAMP)  ## create .venv-lmms with lmms-eval (the lmms-eval task test runs its CLI)

render: $(STAMP)  ## render the dataset (SHARD=k: one shard's jobs + per-job stages; NUM_SHARDS=n, CONFIG=, OUT= override)
ifeq ($(SHARD),)
	$(BIN)/mmviad build --config $(CONFIG) $(OUT_ARG) $(SHARDS_ARG)
else
	$(BIN)/mmviad plan --config $(CONFIG) $(OUT_ARG) $(SHARDS_ARG)
	$(BIN)/mmviad render --config $(CONFIG) $(OUT_ARG) --shard $(SHARD) $(SHARDS_ARG)
	$(BIN)/mmviad annotate --config $(CONFIG) $(OUT_ARG) --shard $(SHARD) $(SHARDS_ARG)
	$(BIN)/mmviad clips --config $(CONFIG) $(OUT_ARG) --shard $(SHARD) $(SHARDS_ARG)
endif

train: $(TRAIN_STAMP)  ## PS-SFT then VISTA-GRPO then eval (TRAIN_CONFIG=, DATA=, RUN_DIR= override)
	HF_HUB_OFFLINE=$(if $(findstring cpu-smoke,$(TRAIN_CONFIG)),1,0) $(TRAIN_BIN)/python -m mmviad_trainer train --config $(TRAIN_CONFIG) --data $(DATA) $(RUN_DIR_ARG)

test: $(STAMP) $(TRAIN_STAMP) $(LS_STAMP) $(LMMS_STAMP)  ## run the test suites (pipeline with .venv, a live Label Studio from .venv-ls, lmms-eval's CLI from .venv-lmms, trainer with .venv-train)
	MMVIAD_LABEL_STUDIO=$(CURDIR)/$(LS_VENV)/bin/label-studio MMVIAD_LMMS_EVAL=$(CURDIR)/$(LMMS_VENV)/bin/lmms-eval $(BIN)/python -m pytest -q
	cd trainer && ../$(TRAIN_BIN)/python -m pytest -q

bench: $(STAMP)  ## render-pipeline benchmark: medians and ratios against the bare Blender render
	$(BIN)/python bench/render_bench.py $(BENCH_ARGS)

bench-learn: $(STAMP) $(TRAIN_STAMP)  ## trainer learning check: tiny model on 36 rendered clips, video vs blank frames (long)
	test -f out/learn/qa/standard/train.jsonl || $(BIN)/mmviad build --config trainer/bench/learn_data.yaml --out out/learn
	$(TRAIN_BIN)/python trainer/bench/learn_from_video.py --data out/learn --out out/learn-bench

clean:  ## remove outputs (keeps .venv)
	rm -rf out
