# vaelab: rebuild the lab report "Predicting CIFAR-10 using VAEs" from scratch.
# Every product is a file under $(BUILD); `make report` reruns only the stale steps.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.SUFFIXES:
MAKEFLAGS += --no-builtin-rules
.DEFAULT_GOAL := help

# ---- folders ------------------------------------------------------------------------
BUILD ?= build
VENV ?= .venv
CACHE ?= $(BUILD)/cache
DATA_ROOT ?= $(HOME)/.cache/vaelab/data
DEMO_BUILD := $(BUILD)/demo

# ---- what to run (see README.md) ----------------------------------------------------
# VAES: the variants compared in one report; the first drives the main sections.
# Setting only VAE=X runs that one model.
ORIGINAL_VAES := stabilityai/sd-vae-ft-ema stabilityai/sd-vae-ft-mse stabilityai/sdxl-vae
ifeq ($(origin VAES),undefined)
  ifneq ($(filter command line environment,$(origin VAE)),)
    VAES := $(VAE)
  else
    VAES := $(ORIGINAL_VAES)
  endif
endif
VAE ?= $(firstword $(VAES))
REVISION ?=
DATASET ?= cifar10
LIMIT ?=
SEED ?= 0
DEVICE ?= auto
PRECISION ?= auto
BATCH ?= 64
METADATA ?= report.toml
DEMO_LIMIT ?= 30

# ---- derived ------------------------------------------------------------------------
PY := $(VENV)/bin/python
SETUP := $(VENV)/.installed
# Values reach the shell single-quoted, so metacharacters in them are never executed.
q = '$(subst ','\'',$(1))'
ifneq ($(words $(VAE)),1)
  $(error VAE='$(VAE)' must be one hub id or one directory without spaces)
endif
ifneq ($(words $(BUILD)),1)
  $(error BUILD='$(BUILD)' must be one directory without spaces)
endif
# A run is named after its VAE's last path component: build/runs/sd-vae-ft-ema/.
run_name = $(notdir $(patsubst %/,%,$(1)))
RUN_NAMES := $(foreach v,$(VAES),$(call run_name,$(v)))
ifneq ($(words $(RUN_NAMES)),$(words $(sort $(RUN_NAMES))))
  $(error VAES='$(VAES)' has two models with the same name; rename one directory)
endif
vae_of = $(firstword $(foreach v,$(VAES),$(if $(filter $(1),$(call run_name,$(v))),$(v))))
RUN_DIRS := $(addprefix $(BUILD)/runs/,$(RUN_NAMES))
DATA_DIR := $(BUILD)/data
FIGURE_NAMES := examples confusion_best confusion_all pca lda kde reconstructions
FIGURE_FILES := $(patsubst %,figures/%.png,$(FIGURE_NAMES)) figures/figures.json
figures_of = $(addprefix $(1)/,$(FIGURE_FILES))
# Named here so that make treats them as real products, never as intermediates to delete.
RUN_PRODUCTS := $(foreach r,$(RUN_DIRS),$(r)/config.json $(r)/latents.npz $(r)/metrics.json \
                  $(call figures_of,$(r)))
COMMON := analysis/__init__.py analysis/common.py analysis/config.py

.PHONY: help setup report demo test bench diff clean distclean FORCE

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "Variables: VAE REVISION DATASET LIMIT SEED DEVICE PRECISION BATCH BUILD DATA_ROOT METADATA (see README.md)"

report: $(BUILD)/report.html $(BUILD)/report.pdf ## build the report (build/report.html and build/report.pdf)

setup: $(SETUP) ## create the virtualenv and install vaelab with its dependencies

demo: $(DEMO_BUILD)/models/tiny-vae/config.json $(DEMO_BUILD)/images/classes.txt ## offline report from a tiny untrained VAE and synthetic images
	$(MAKE) --no-print-directory report BUILD=$(DEMO_BUILD) CACHE=$(DEMO_BUILD)/cache \
	  VAES=$(abspath $(DEMO_BUILD))/models/tiny-vae DATASET=imagefolder:$(abspath $(DEMO_BUILD))/images \
	  LIMIT= REVISION= METADATA=$(METADATA)
	@echo "demo report: $(DEMO_BUILD)/report.html $(DEMO_BUILD)/report.pdf"

test: $(SETUP) ## run the test suite
	$(PY) -m pytest

clean: ## delete build outputs but keep the latent cache
	@if [[ -d $(BUILD) ]]; then find $(BUILD) -mindepth 1 -maxdepth 1 ! -name cache -exec rm -rf {} +; fi

distclean: ## delete build/ (latent cache included) and the virtualenv
	rm -rf $(BUILD) $(VENV)

# ---- setup --------------------------------------------------------------------------
$(SETUP): pyproject.toml
	@if ! ldconfig -p 2>/dev/null | grep -q libpango-1.0; then \
	  if [[ $$(id -u) == 0 ]] && command -v apt-get >/dev/null; then \
	    echo "installing Pango and fonts for WeasyPrint (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core >/dev/null; \
	  else \
	    echo "vaelab: WeasyPrint needs Pango; install it (Debian/Ubuntu: apt-get install libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core)" >&2; exit 1; \
	  fi; \
	fi
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# ---- stamps: rewritten only when their content changes ------------------------------
$(DATA_DIR)/config.json: FORCE | $(SETUP)
	@$(PY) -m analysis.config data --dataset $(call q,$(DATASET)) --limit $(call q,$(LIMIT)) \
	  --data-root $(call q,$(DATA_ROOT)) --out $@

$(BUILD)/runs/%/config.json: FORCE | $(SETUP)
	@$(PY) -m analysis.config run --vae $(call q,$(call vae_of,$*)) --revision $(call q,$(REVISION)) \
	  --seed $(call q,$(SEED)) --device $(call q,$(DEVICE)) --precision $(call q,$(PRECISION)) \
	  --batch-size $(call q,$(BATCH)) --out $@

$(BUILD)/report-inputs.json: FORCE | $(SETUP)
	@$(PY) -m analysis.config report $(addprefix --run ,$(RUN_DIRS)) --data $(DATA_DIR) \
	  --metadata $(call q,$(METADATA)) --out $@

# ---- pipeline -----------------------------------------------------------------------
$(DATA_DIR)/dataset.npz: $(DATA_DIR)/config.json analysis/data.py $(COMMON)
	$(PY) -m analysis.data $< $@

$(BUILD)/runs/%/latents.npz: $(BUILD)/runs/%/config.json $(DATA_DIR)/dataset.npz analysis/encode.py analysis/vae.py $(COMMON)
	$(PY) -m analysis.encode $< $(DATA_DIR)/dataset.npz $@ --cache $(CACHE)

$(BUILD)/runs/%/metrics.json: $(BUILD)/runs/%/latents.npz $(DATA_DIR)/dataset.npz analysis/classify.py analysis/stats.py $(COMMON)
	$(PY) -m analysis.classify $< $(DATA_DIR)/dataset.npz $@

# A pattern rule with several targets makes them all in one run of its recipe.
$(call figures_of,$(BUILD)/runs/%): $(BUILD)/runs/%/metrics.json $(DATA_DIR)/dataset.npz analysis/figures.py $(COMMON)
	$(PY) -m analysis.figures $(BUILD)/runs/$* $(DATA_DIR)/dataset.npz $(BUILD)/runs/$*/figures \
	  --seed $(call q,$(SEED))

# Several variants: a reconstruction panel over all of them (one run needs none).
COMPARE := $(if $(word 2,$(RUN_DIRS)),$(BUILD)/compare/reconstructions.png)
$(BUILD)/compare/reconstructions.png: $(BUILD)/report-inputs.json $(foreach r,$(RUN_DIRS),$(r)/latents.npz) analysis/variants.py $(COMMON)
	$(PY) -m analysis.variants $@ $(RUN_DIRS)

$(BUILD)/report.html: $(BUILD)/report-inputs.json $(RUN_PRODUCTS) $(COMPARE) report/context.py \
                      report/compare.py report/render.py templates/report.html.j2 templates/compare.html.j2 \
                      templates/report.css $(wildcard $(METADATA))
	$(PY) -m report.render html $(RUN_DIRS) $@ --data $(DATA_DIR) --metadata $(call q,$(METADATA))

$(BUILD)/report.pdf: $(BUILD)/report.html report/render.py
	$(PY) -m report.render pdf $< $@

# ---- diffs between runs -------------------------------------------------------------
# A and B: a run name under $(BUILD)/runs/ or a run directory.
run_dir_of = $(if $(wildcard $(1)/metrics.json),$(1),$(BUILD)/runs/$(1))
DIFF_DIR = $(BUILD)/diff-$(call run_name,$(A))-vs-$(call run_name,$(B))

diff: ## compare two runs: make diff A=<run> B=<run> (build/diff-A-vs-B/diff.html and .pdf)
	@if [[ -z $(call q,$(A)) || -z $(call q,$(B)) ]]; then \
	  echo "vaelab: error: name two runs, e.g. make diff A=sd-vae-ft-ema B=sd-vae-ft-mse" >&2; exit 2; fi
	$(PY) -m report.diff $(call q,$(call run_dir_of,$(A))) $(call q,$(call run_dir_of,$(B))) \
	  $(DIFF_DIR)/diff.html --table
	$(PY) -m report.render pdf $(DIFF_DIR)/diff.html $(DIFF_DIR)/diff.pdf

# ---- offline stand-ins for the demo -------------------------------------------------
$(BUILD)/%/models/tiny-vae/config.json: analysis/demo.py | $(SETUP)
	$(PY) -m analysis.demo vae $(@D)

$(BUILD)/%/images/classes.txt: analysis/demo.py | $(SETUP)
	$(PY) -m analysis.demo images $(@D) --per-class $(DEMO_LIMIT)

# ---- benchmark ----------------------------------------------------------------------
BENCH_MODEL ?= $(BUILD)/bench/models/sd-vae-arch
BENCH_IMAGES ?= 512
BENCH_ROWS ?= 50000

$(BUILD)/bench/models/sd-vae-arch/config.json: analysis/demo.py | $(SETUP)
	$(PY) -m analysis.demo vae $(@D) --full

bench: $(BENCH_MODEL)/config.json | $(SETUP) ## measure encoder throughput and classifier cost (build/bench.json)
	$(PY) -m analysis.bench $(BUILD)/bench.json --model $(BENCH_MODEL) \
	  --images $(BENCH_IMAGES) --rows $(BENCH_ROWS)
