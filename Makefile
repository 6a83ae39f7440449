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
VAE ?= stabilityai/sd-vae-ft-ema
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
RUN_NAME := $(notdir $(patsubst %/,%,$(VAE)))
RUN_DIR := $(BUILD)/runs/$(RUN_NAME)
DATA_DIR := $(BUILD)/data
FIGURE_NAMES := examples confusion_best confusion_all pca kde reconstructions
FIGURES := $(patsubst %,$(RUN_DIR)/figures/%.png,$(FIGURE_NAMES)) $(RUN_DIR)/figures/figures.json
COMMON := analysis/__init__.py analysis/common.py analysis/config.py

.PHONY: help setup report demo test clean distclean FORCE

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "Variables: VAE REVISION DATASET LIMIT SEED DEVICE PRECISION BATCH BUILD DATA_ROOT METADATA (see README.md)"

report: $(BUILD)/report.html $(BUILD)/report.pdf ## build the report (build/report.html and build/report.pdf)

setup: $(SETUP) ## create the virtualenv and install vaelab with its dependencies

demo: $(DEMO_BUILD)/models/tiny-vae/config.json $(DEMO_BUILD)/images/classes.txt ## offline report from a tiny untrained VAE and synthetic images
	$(MAKE) --no-print-directory report BUILD=$(DEMO_BUILD) CACHE=$(DEMO_BUILD)/cache \
	  VAE=$(abspath $(DEMO_BUILD))/models/tiny-vae DATASET=imagefolder:$(abspath $(DEMO_BUILD))/images \
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

$(RUN_DIR)/config.json: FORCE | $(SETUP)
	@$(PY) -m analysis.config run --vae $(call q,$(VAE)) --revision $(call q,$(REVISION)) \
	  --seed $(call q,$(SEED)) --device $(call q,$(DEVICE)) --precision $(call q,$(PRECISION)) \
	  --batch-size $(call q,$(BATCH)) --out $@

$(BUILD)/report-inputs.json: FORCE | $(SETUP)
	@$(PY) -m analysis.config report --run $(RUN_DIR) --data $(DATA_DIR) \
	  --metadata $(call q,$(METADATA)) --out $@

# ---- pipeline -----------------------------------------------------------------------
$(DATA_DIR)/dataset.npz: $(DATA_DIR)/config.json analysis/data.py $(COMMON)
	$(PY) -m analysis.data $< $@

$(RUN_DIR)/latents.npz: $(RUN_DIR)/config.json $(DATA_DIR)/dataset.npz analysis/encode.py analysis/vae.py $(COMMON)
	$(PY) -m analysis.encode $< $(DATA_DIR)/dataset.npz $@ --cache $(CACHE)

$(RUN_DIR)/metrics.json: $(RUN_DIR)/latents.npz analysis/classify.py $(COMMON)
	$(PY) -m analysis.classify $< $@

$(FIGURES) &: $(RUN_DIR)/metrics.json $(DATA_DIR)/dataset.npz analysis/figures.py $(COMMON)
	$(PY) -m analysis.figures $(RUN_DIR) $(DATA_DIR)/dataset.npz $(RUN_DIR)/figures

$(BUILD)/report.html: $(BUILD)/report-inputs.json $(RUN_DIR)/metrics.json $(FIGURES) \
                      report/context.py report/render.py templates/report.html.j2 templates/report.css \
                      $(wildcard $(METADATA))
	$(PY) -m report.render html $(RUN_DIR) $@ --data $(DATA_DIR) --metadata $(call q,$(METADATA))

$(BUILD)/report.pdf: $(BUILD)/report.html report/render.py
	$(PY) -m report.render pdf $< $@

# ---- offline stand-ins for the demo -------------------------------------------------
$(BUILD)/%/models/tiny-vae/config.json: analysis/demo.py | $(SETUP)
	$(PY) -m analysis.demo vae $(@D)

$(BUILD)/%/images/classes.txt: analysis/demo.py | $(SETUP)
	$(PY) -m analysis.demo images $(@D) --per-class $(DEMO_LIMIT)
