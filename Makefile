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
# SEEDS: several seeds ("0 1 2"); each reruns only what a seed changes (analysis/seeds.py) and
# the report gives each accuracy's spread over them. Unset: SEED alone. Its first seed is the
# run's SEED (set SEED too only to the same value).
ifneq ($(origin SEEDS),undefined)
  ifeq ($(filter command line environment override,$(origin SEED)),)
    SEED := $(firstword $(SEEDS))
  endif
endif
# TUNE: 1 tunes every classifier by successive-halving cross-validation on the training images
# (analysis/tune.py), or a list of models ("svc lightgbm"); unset, empty or 0: none.
TUNE ?=
DEVICE ?= auto
PRECISION ?= auto
BATCH ?= auto
# COMPILE: torch.compile the encoder. auto = on the CPU for runs of 10,000+ images, where
# its one-off ~40 s compile pays back; on | off to force.
COMPILE ?= auto
# RESOLUTION: image side in pixels fed to the encoder (images are upsampled to it); a list
# such as "32 64" runs every VAE at each. Off (32) by default: encoding costs ~4x per doubling.
RESOLUTION ?= 32
# SVC: auto = oneDAL (scikit-learn-intelex, x86-64) where it imports, else scikit-learn's
# libsvm; libsvm = the original library, bit for bit; onedal = fail if it is missing.
SVC ?= auto
METADATA ?= report.toml
DEMO_LIMIT ?= 30

# ---- derived ------------------------------------------------------------------------
PY := $(VENV)/bin/python
SETUP := $(VENV)/.installed
# Values reach the shell single-quoted, so metacharacters in them are never executed.
q = '$(subst ','\'',$(1))'
ifneq ($(words $(BUILD)),1)
  $(error BUILD='$(BUILD)' must be one directory without spaces)
endif
# The run plan, written by analysis/config.py (it checks VAE, VAES and RESOLUTION and names
# the runs): RUN_NAMES, each run's RUN_VAE.<name> and RUN_RESOLUTION.<name>, VAELAB_RUNS,
# FIGURE_FILES. A run is one VAE at one resolution, named after the VAE's last
# path component: build/runs/sd-vae-ft-ema/ at 32 px, build/runs/sd-vae-ft-ema-r64/ at 64 px;
# a TAESD checkpoint file without its _encoder and suffix (taef2_encoder.pth -> build/runs/taef2/).
# Goals that build nothing from the runs skip it (they need no virtualenv).
PLAN := $(BUILD)/plan.mk
NO_PLAN_GOALS := help setup clean distclean test notes demo bench check diff
ifneq ($(filter-out $(NO_PLAN_GOALS),$(or $(MAKECMDGOALS),$(.DEFAULT_GOAL))),)
  include $(PLAN)
endif
RUN_DIRS := $(addprefix $(BUILD)/runs/,$(RUN_NAMES))
# Under make -jN each stage takes its share of the cores (analysis/threads.py): at most one
# heavy stage per run runs at a time, so the share is cores / min(N, runs).
export VAELAB_RUNS
DATA_DIR := $(BUILD)/data
figures_of = $(addprefix $(1)/,$(FIGURE_FILES))
# Named here so that make treats them as real products, never as intermediates to delete.
# SEEDS and TUNE (the plan's EXTRA_SEEDS and TUNE_MODELS, checked there) add a stage each.
REPEAT_PRODUCTS := $(foreach r,$(RUN_DIRS),$(if $(EXTRA_SEEDS),$(r)/seeds-config.json $(r)/seeds.json) \
                     $(if $(TUNE_MODELS),$(r)/tune-config.json $(r)/tuned.json))
RUN_PRODUCTS := $(foreach r,$(RUN_DIRS),$(r)/config.json $(r)/latents.npz $(r)/baselines.json $(r)/metrics.json $(r)/probes.json \
                  $(r)/weights.json $(r)/provenance.json $(call figures_of,$(r))) $(REPEAT_PRODUCTS)
COMMON := analysis/__init__.py analysis/common.py analysis/config.py

.PHONY: help setup report demo notes test check bench diff clean distclean FORCE

# NOTE_FILES: the author's Markdown files that report.toml names (report.notes writes this
# fragment with report-inputs.json, on every make; a new METADATA re-renders anyway).
-include $(BUILD)/report-notes.mk

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "Variables: VAES VAE REVISION DATASET LIMIT SEED SEEDS TUNE DEVICE PRECISION BATCH COMPILE RESOLUTION SVC BUILD DATA_ROOT METADATA (see README.md)"
	@echo "make -jN report: up to N runs (VAES x RESOLUTION) side by side, each stage on cores/min(N, runs) threads;"
	@echo "  with one run it changes nothing (same bytes); with several, latents and oneDAL's SVC may differ in the last bits"

report: $(BUILD)/report.html $(BUILD)/report.pdf $(BUILD)/timings.json ## build the report (build/report.html and build/report.pdf)
	@$(PY) -m report.timings summary $(BUILD)/timings.json

setup: $(SETUP) ## create the virtualenv and install vaelab with its dependencies

# The demo's report.toml is METADATA's title block plus an example note (analysis/demo.py).
demo: $(DEMO_BUILD)/models/tiny-vae/config.json $(DEMO_BUILD)/images/classes.txt $(DEMO_BUILD)/notes/report.toml ## offline report from a tiny untrained VAE and synthetic images
	$(MAKE) --no-print-directory report BUILD=$(DEMO_BUILD) CACHE=$(DEMO_BUILD)/cache \
	  VAES=$(abspath $(DEMO_BUILD))/models/tiny-vae DATASET=imagefolder:$(abspath $(DEMO_BUILD))/images \
	  LIMIT= REVISION= METADATA=$(DEMO_BUILD)/notes/report.toml
	@echo "demo report: $(DEMO_BUILD)/report.html $(DEMO_BUILD)/report.pdf"

notes: | $(SETUP) ## write notes/: a starter Markdown file per section, named in report.toml (keeps existing files)
	@$(PY) -m report.notes init notes --metadata $(call q,$(METADATA))

test: $(SETUP) | $(VENV)/.check-tools ## run the test suite
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
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-compile -e '.[test]'
	@# pip compiles the ~15,000 .py files on one core (~85 s of a ~190 s setup); compileall
	@# does it on every core, leaving out the packages' own test folders, which nothing
	@# imports (~3,800 files). A few files it cannot compile (test data, Python 2 sources)
	@# make it exit 1, as pip skips them silently: that is not a failure.
	$(VENV)/bin/python -m compileall -q -j 0 -x 'site-packages/(.+/)?tests?/' $(VENV)/lib >/dev/null || true
	touch $@

# ---- stamps: rewritten only when their content changes ------------------------------
# make remakes an included makefile first and restarts once when it changed; after that
# restart (MAKE_RESTARTS set) the plan is current and is not made again.
ifndef MAKE_RESTARTS
$(PLAN): FORCE | $(SETUP)
	@$(PY) -m analysis.config plan --vaes $(call q,$(VAES)) --vae $(call q,$(VAE)) \
	  --resolution $(call q,$(RESOLUTION)) --seed $(call q,$(SEED)) --tune $(call q,$(TUNE)) \
	  $(if $(filter undefined,$(origin SEEDS)),,--seeds $(call q,$(SEEDS))) \
	  --commit $(call q,$(shell git -C $(CURDIR) rev-parse HEAD 2>/dev/null)) --out $@
endif

$(DATA_DIR)/config.json: FORCE | $(SETUP)
	@$(PY) -m analysis.config data --dataset $(call q,$(DATASET)) --limit $(call q,$(LIMIT)) \
	  --data-root $(call q,$(DATA_ROOT)) --out $@

$(BUILD)/runs/%/config.json: FORCE | $(SETUP)
	@$(PY) -m analysis.config run --vae $(call q,$(RUN_VAE.$*)) --revision $(call q,$(REVISION)) \
	  --seed $(call q,$(SEED)) --device $(call q,$(DEVICE)) --precision $(call q,$(PRECISION)) \
	  --batch-size $(call q,$(BATCH)) --resolution $(call q,$(or $(RUN_RESOLUTION.$*),32)) \
	  --compile $(call q,$(COMPILE)) --svc $(call q,$(SVC)) --out $@

$(BUILD)/runs/%/seeds-config.json: FORCE | $(SETUP)
	@$(PY) -m analysis.config seeds --seeds $(call q,$(SEEDS_LIST)) --out $@

$(BUILD)/runs/%/tune-config.json: FORCE | $(SETUP)
	@$(PY) -m analysis.config tune --models $(call q,$(TUNE_MODELS)) --out $@

$(BUILD)/report-inputs.json: FORCE | $(SETUP)
	@$(PY) -m analysis.config report $(addprefix --run ,$(RUN_DIRS)) --data $(DATA_DIR) \
	  --metadata $(call q,$(METADATA)) --seeds $(call q,$(if $(EXTRA_SEEDS),$(SEEDS_LIST))) \
	  --tune $(call q,$(TUNE_MODELS)) --out $@
	@$(PY) -m report.notes deps --metadata $(call q,$(METADATA)) --out $(BUILD)/report-notes.mk

# ---- pipeline -----------------------------------------------------------------------
# Each stage writes PRODUCT.d beside its product: the project modules it runs, in make's
# syntax (analysis/deps.py). So a product depends on the code its stage imports, not on a
# list kept by hand; before the first build there are none, and nothing to be stale.
# Each rule names its own script as well.
-include $(wildcard $(BUILD)/runs/*/*.d $(BUILD)/*.d)

$(DATA_DIR)/dataset.npz: $(DATA_DIR)/config.json analysis/data.py $(COMMON)
	$(PY) -m analysis.data $< $@

$(BUILD)/runs/%/latents.npz: $(BUILD)/runs/%/config.json $(DATA_DIR)/dataset.npz analysis/encode.py
	$(PY) -m analysis.encode $< $(DATA_DIR)/dataset.npz $@ --cache $(CACHE)

# Pixel baselines depend on the images, SEED and the VAE feature widths only: each is fitted
# once under $(BUILD)/baselines/ and shared by every run (the run's baselines.json names them).
# Under make -j they are fitted once every run is encoded (order-only: no rebuild when another
# run's latents change), when nothing else heavy runs: so on every core (VAELAB_RUNS=1), as a
# serial build fits them, while the other runs' baselines steps wait on its lock.
ALL_LATENTS := $(foreach r,$(RUN_DIRS),$(r)/latents.npz)
$(BUILD)/runs/%/baselines.json: $(BUILD)/runs/%/latents.npz $(DATA_DIR)/dataset.npz analysis/baselines.py | $(ALL_LATENTS)
	VAELAB_RUNS=1 $(PY) -m analysis.baselines $(DATA_DIR)/dataset.npz $(BUILD)/baselines $@ --latents $<

# Results are cached by latents checksum, baselines, seed and code: runs that share an
# encoder train once.
$(BUILD)/runs/%/metrics.json: $(BUILD)/runs/%/latents.npz $(BUILD)/runs/%/baselines.json $(DATA_DIR)/dataset.npz analysis/classify.py
	$(PY) -m analysis.classify $< $(DATA_DIR)/dataset.npz $@ --baselines $(BUILD)/runs/$*/baselines.json \
	  --cache $(CACHE)

# Where the class information sits in the latent: one fast model on its channels and
# positions (cached like the results).
$(BUILD)/runs/%/probes.json: $(BUILD)/runs/%/latents.npz analysis/probes.py
	$(PY) -m analysis.probes $< $@ --cache $(CACHE)

# SEEDS: each further seed's pixel baselines (shared, under $(BUILD)/baselines) and classifiers on
# the run's own latents (a KL autoencoder's .sample() drawn anew), then the spread over the seeds
# and whether each verdict holds for every seed (cached like the results).
$(BUILD)/runs/%/seeds.json: $(BUILD)/runs/%/seeds-config.json $(BUILD)/runs/%/metrics.json $(DATA_DIR)/dataset.npz \
                            analysis/seeds.py
	$(PY) -m analysis.seeds $(BUILD)/runs/$* $(DATA_DIR)/dataset.npz $@ --config $< \
	  --baselines $(BUILD)/baselines --cache $(CACHE)

# TUNE: hyperparameters by successive-halving cross-validation on the training images, for the
# VAE feature sets and their equal-width pixel PCAs alike (each search cached).
# After the seeds stage when both run (order only): one heavy stage per run at a time under make -j.
$(BUILD)/runs/%/tuned.json: $(BUILD)/runs/%/tune-config.json $(BUILD)/runs/%/metrics.json $(DATA_DIR)/dataset.npz \
                            analysis/tune.py | $(if $(EXTRA_SEEDS),$(BUILD)/runs/%/seeds.json)
	$(PY) -m analysis.tune $(BUILD)/runs/$* $(DATA_DIR)/dataset.npz $@ --config $< --cache $(CACHE)

# Whether the weights behave as trained: reconstructions against a flat image, latents against
# chance and pooled pixels (analysis/weights.py; the report's first page names a failure).
$(BUILD)/runs/%/weights.json: $(BUILD)/runs/%/metrics.json $(DATA_DIR)/dataset.npz analysis/weights.py
	$(PY) -m analysis.weights $(BUILD)/runs/$* $(DATA_DIR)/dataset.npz $@

# A pattern rule with several targets makes them all in one run of its recipe.
$(call figures_of,$(BUILD)/runs/%): $(BUILD)/runs/%/metrics.json $(BUILD)/runs/%/probes.json $(DATA_DIR)/dataset.npz \
                                    analysis/figures.py
	$(PY) -m analysis.figures $(BUILD)/runs/$* $(DATA_DIR)/dataset.npz $(BUILD)/runs/$*/figures \
	  --seed $(call q,$(SEED))

# Make variables as typed (BUILD left out: where outputs go does not change them); SEEDS and
# TUNE only when set, so that a build without them names the variables it always did.
PROVENANCE_VARS := $(foreach v,VAES REVISION DATASET LIMIT SEED $(if $(SEEDS_LIST),SEEDS) $(if $(TUNE_MODELS),TUNE) \
                     DEVICE PRECISION BATCH COMPILE RESOLUTION SVC DATA_ROOT METADATA,\
                     --variable $(call q,$(v)=$($(v))))
# The plan changes with SEEDS and TUNE (it names them only when set): the variables recorded follow.
$(BUILD)/runs/%/provenance.json: $(BUILD)/runs/%/metrics.json $(PLAN) report/provenance.py
	$(PY) -m report.provenance $(BUILD)/runs/$* $(DATA_DIR) $@ $(PROVENANCE_VARS)

# Several variants: a reconstruction panel over all of them (one run needs none).
COMPARE := $(if $(word 2,$(RUN_DIRS)),$(BUILD)/compare/reconstructions.png)
$(BUILD)/compare/reconstructions.png: $(BUILD)/report-inputs.json $(foreach r,$(RUN_DIRS),$(r)/latents.npz $(r)/metrics.json) \
                                      analysis/variants.py analysis/stats.py $(COMMON)
	$(PY) -m analysis.variants $@ $(RUN_DIRS)

$(BUILD)/report.html: $(BUILD)/report-inputs.json $(RUN_PRODUCTS) $(COMPARE) report/render.py \
                      templates/report.html.j2 templates/compare.html.j2 templates/notes.html.j2 \
                      $(wildcard templates/sections/*.html.j2 templates/parts/*.html.j2 templates/sentences/*.txt.j2) templates/report.css $(wildcard $(METADATA)) $(NOTE_FILES)
	$(PY) -m report.render html $(RUN_DIRS) $@ --data $(DATA_DIR) --metadata $(call q,$(METADATA)) \
	  $(if $(EXTRA_SEEDS),--seeds) $(if $(TUNE_MODELS),--tuned)

$(BUILD)/report.pdf: $(BUILD)/report.html report/render.py
	$(PY) -m report.render pdf $< $@

# Wall-clock times stay out of the documents (they would differ between identical builds):
# every stage's timings-*.json, gathered per run and stage into one file.
$(BUILD)/timings.json: $(DATA_DIR)/dataset.npz $(foreach r,$(RUN_DIRS),$(r)/latents.npz $(r)/metrics.json $(r)/probes.json) \
                       $(REPEAT_PRODUCTS) report/timings.py $(COMMON)
	$(PY) -m report.timings collect $@ --data $(DATA_DIR) $(addprefix --run ,$(RUN_DIRS)) \
	  --baselines $(BUILD)/baselines

# ---- diffs between runs -------------------------------------------------------------
# A and B: a run name under $(BUILD)/runs/ or a run directory.
run_dir_of = $(if $(wildcard $(1)/metrics.json),$(1),$(BUILD)/runs/$(1))
# Named like the runs (analysis.config name): build/diff-taef2-vs-sd-vae-ft-mse.
ifneq ($(filter diff,$(MAKECMDGOALS)),)
  DIFF_DIR := $(BUILD)/diff-$(shell $(PY) -m analysis.config name $(call q,$(A)))-vs-$(shell $(PY) -m analysis.config name $(call q,$(B)))
endif

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

$(BUILD)/%/notes/report.toml: analysis/demo.py $(wildcard $(METADATA)) | $(SETUP)
	$(PY) -m analysis.demo notes $(@D) --metadata $(call q,$(METADATA))

# ---- benchmark ----------------------------------------------------------------------
BENCH_MODEL ?= $(BUILD)/bench/models/sd-vae-arch
BENCH_IMAGES ?= 256
BENCH_ROWS ?= 50000
# BENCH_PARTS: what to time (analysis/bench.py), e.g. BENCH_PARTS=tune for TUNE's search alone;
# BENCH_TUNE: the models it times; BENCH_JSON: where the figures go.
BENCH_PARTS ?= encoder classes classifiers tune
BENCH_TUNE ?= svc lightgbm
BENCH_JSON ?= $(BUILD)/bench.json

$(BUILD)/bench/models/sd-vae-arch/config.json: analysis/demo.py | $(SETUP)
	$(PY) -m analysis.demo vae $(@D) --full

bench: $(if $(filter encoder,$(BENCH_PARTS)),$(BENCH_MODEL)/config.json) | $(SETUP) ## measure encoder throughput, classifier cost, the learning curves' and probes' share of it and TUNE's search (build/bench.json)
	$(PY) -m analysis.bench $(BENCH_JSON) --model $(BENCH_MODEL) \
	  --images $(BENCH_IMAGES) --rows $(BENCH_ROWS) --parts $(call q,$(BENCH_PARTS)) --tune-models $(call q,$(BENCH_TUNE))

# ---- validation ---------------------------------------------------------------------
# The validators behind `make check` (and the tests that use them). Every step may fail
# (no root, no network, no npm): the stamp is written anyway and report.check skips what is
# missing with a notice. Delete $(VENV)/.check-tools to try the installation again.
VNU_VERSION ?= 26.9.27
AXE_VERSION ?= 4.14.1
VNU_DIR := $(VENV)/node

$(VENV)/.check-tools: $(SETUP)
	@missing=""; \
	command -v java >/dev/null || missing+=" default-jre-headless"; \
	command -v qpdf >/dev/null || missing+=" qpdf"; \
	command -v pdfinfo >/dev/null || missing+=" poppler-utils"; \
	command -v chromium >/dev/null || missing+=" chromium"; \
	command -v chromedriver >/dev/null || missing+=" chromium-driver"; \
	if [[ -z $$missing ]]; then :; \
	elif [[ $$(id -u) == 0 ]] && command -v apt-get >/dev/null; then \
	  echo "installing validators:$$missing (apt-get)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $$missing >/dev/null; } \
	    || echo "vaelab: notice: apt-get install$$missing failed; make check will skip what is missing" >&2; \
	else \
	  echo "vaelab: notice: cannot install$$missing (needs root and apt-get); make check will skip what is missing" >&2; \
	fi
	@# vnu-jar (the W3C HTML checker) and axe-core (the WCAG 2.1 A/AA rules report.check runs
	@# inside headless Chromium). --ignore-scripts: vnu-jar's postinstall downloads a Java
	@# runtime; the machine's Java runs it. Short retries: offline, npm's defaults spend over a
	@# minute before giving up.
	@if command -v npm >/dev/null; then \
	  echo "installing vnu-jar $(VNU_VERSION) and axe-core $(AXE_VERSION) (npm)"; \
	  npm install --prefix $(VNU_DIR) --no-audit --no-fund --ignore-scripts --silent \
	    --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=5000 --fetch-timeout=60000 \
	    vnu-jar@$(VNU_VERSION) axe-core@$(AXE_VERSION) \
	    || echo "vaelab: notice: npm install failed; make check will skip the HTML and accessibility checks" >&2; \
	else \
	  echo "vaelab: notice: npm not found; make check will skip the HTML and accessibility checks" >&2; \
	fi
	@$(PY) -c 'import selenium' 2>/dev/null || $(VENV)/bin/pip install --quiet --disable-pip-version-check selenium \
	  || echo "vaelab: notice: pip install selenium failed; make check will skip the Chromium check" >&2
	@touch $@

# Checks what is built, without rebuilding it: `make report check`, or after `make demo`,
# `make check BUILD=build/demo`. Diffs made with `make diff` are checked too. Named together
# with `report`, it waits for the report even under make -j.
CHECK_HTML = $(BUILD)/report.html $(wildcard $(BUILD)/diff-*/diff.html)

check: $(filter report,$(MAKECMDGOALS)) | $(VENV)/.check-tools ## validate the built report: W3C HTML checker, qpdf/pdfinfo, images on disk and in headless Chromium
	$(PY) -m report.check $(foreach h,$(CHECK_HTML),--html $(h) --pdf $(h:.html=.pdf))
