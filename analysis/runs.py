"""The one reader of a build's files: every file name, every read and every default.

Not run on its own. ``report/`` (context, compare, diff, provenance) and
``analysis.variants`` read a run's files only through these functions:

    run = Path("build/runs/sd-vae-ft-ema")
    encode = read_encode(run)          # encode.json, with the defaults below filled in
    metrics = read_metrics(run)

A missing or corrupt file is one line (``VaelabError``, from ``analysis.common.read_json``
and ``load_npz``) naming the file and saying to rebuild it. Files from older vaelab versions
lack some fields; ``DEFAULTS`` gives each its value, here and nowhere else, and every read
fills them in (``filled`` does the same for a record that comes from elsewhere, such as a
test's made-up one). Current files hold every field, so the defaults change nothing for them.

This module imports only ``analysis.common`` and the standard library, so that any stage
and the report can use it without importing each other.
"""

from __future__ import annotations

import copy
import csv
from pathlib import Path

from analysis.common import VaelabError, load_npz, read_json

# ---- file names --------------------------------------------------------------------------
# Every stage that writes or reads one of these names it through this block (tests/test_runs.py
# checks that no other module spells them). The Makefile names the files make tracks too.
# A run folder (build/runs/NAME):
CONFIG = "config.json"  # the run's settings (analysis.config)
ENCODE = "encode.json"  # the encoder and how it ran (analysis.encode)
LATENTS = "latents.npz"  # the latents of both splits (analysis.encode; the file make tracks)
RECONSTRUCTIONS = "reconstructions.npz"  # decoded test images; absent for an encoder-only run
BASELINES = "baselines.json"  # the pixel baselines the run is compared with (analysis.baselines)
METRICS = "metrics.json"  # classifier results (analysis.classify)
METRICS_CSV = "metrics.csv"  # metrics.json's accuracies as a table (analysis.classify)
PREDICTIONS = "predictions.csv"  # one column of test predictions per model and feature set
CLASSIFY = "classify.json"  # the classify stage's record (its SVC library)
PROBES = "probes.json"  # where the class information sits (analysis.probes)
WEIGHTS = "weights.json"  # whether the weights behave as trained (analysis.weights)
FIGURES_DIR = "figures"  # the run's figures (analysis.figures)
FIGURES_INFO = "figures.json"  # in FIGURES_DIR: the numbers the report quotes from the figures
PROVENANCE = "provenance.json"  # report.provenance
# SEEDS (analysis.seeds): the seeds stamp, the summary over seeds the report reads, and one
# folder per further seed (SEEDS_DIR/seed-S/) holding that seed's METRICS, PREDICTIONS,
# METRICS_CSV, CLASSIFY and BASELINES, as the run folder holds its own seed's.
SEEDS_CONFIG = "seeds-config.json"
SEEDS = "seeds.json"
SEEDS_DIR = "seeds"
# TUNE (analysis.tune): the stamp naming the models, and the tuned results the report reads.
TUNE_CONFIG = "tune-config.json"
TUNED = "tuned.json"
# The figures analysis.figures draws into FIGURES_DIR, in the report's order (figure_png).
FIGURES = ("examples.png", "confusion_best.png", "confusion_all.png", "pca.png", "lda.png",
           "kde.png", "reconstructions.png", "learning_curves.png", "probes.png")
# Each stage's wall-clock seconds, beside its products (timings_file("encode"):
# timings-encode.json; analysis.data, .encode, .classify, .probes, .seeds, .tune, and
# .baselines in a baseline's folder); report.timings gathers them (TIMINGS_GLOB).
TIMINGS = "timings-{stage}.json"
TIMINGS_GLOB = "timings-*.json"
BASELINE_TIMINGS_GLOB = "timings*.json"  # a baseline's folder: an older one's timings.json too
# The data folder (build/data):
DATASET = "dataset.json"  # what analysis.data read
DATASET_ARRAYS = "dataset.npz"  # the decoded images (analysis.data; the file make tracks)
# A pixel baseline's folder (build/baselines/NAME-KEY), written by analysis.baselines; a run's
# BASELINES names its folders:
BASELINE = "baseline.json"  # every model's scores on that baseline
PREDICTIONS_NPZ = "predictions.npz"  # test predictions, one array per model (also in a tuning
                                     # search's cache entry, analysis.tune)
CURVES = "curves.json"  # a PCA baseline's learning curves (analysis.curves)
# A tuning search's cache entry (analysis.tune): the search's result, beside PREDICTIONS_NPZ.
SEARCH = "search.json"
# The compare folder (build/compare), written by analysis.variants:
VARIANTS = "variants.json"
VARIANT_TESTS = "variant-tests.json"  # the tests behind every ranking of the variants (analysis.variants)
VARIANTS_PANEL = "reconstructions.png"


def timings_file(stage: str) -> str:
    """The name of a stage's timings file: "encode" -> "timings-encode.json" (TIMINGS)."""
    return TIMINGS.format(stage=stage)


def figure_png(name: str) -> str:
    """The file name of figure ``name`` ("pca" -> "pca.png"), one of FIGURES."""
    png = f"{name}.png"
    if png not in FIGURES:
        raise ValueError(f"{name!r} is not one of the figures ({', '.join(FIGURES)})")
    return png


# ---- defaults for fields older files lack -------------------------------------------------
DEFAULTS = {
    # config.json from before RESOLUTION encoded at the images' own 32 px.
    "config": {"resolution": 32, "seed": 0},
    # encode.json from before each encoder class, RESOLUTION, encoder-only models and the
    # latents checksums: a stochastic AutoencoderKL (8x downsampling) at 32 px; no checksum
    # (None: two such runs are never taken to share an encoder).
    "encode": {"resolution": 32, "downsampling": 8, "stochastic": True,
               "autoencoder_class": "AutoencoderKL", "compile_requested": "auto",
               "precision_reason": "", "batch_reason": "", "encoder_sha256": None,
               "latents_sha256": None},
    # encode.json's "model": a trained hub or folder model with its decoder.
    "model": {"autoencoder_class": "AutoencoderKL", "revision": "local", "untrained": False,
              "weights_sha256": "", "has_decoder": True, "layout": "", "decoder_file": "",
              "decoder_sha256": ""},
    # encode.json's "vae_config": the keys analysis.encode copies from the model's config.
    "vae_config": {"latent_channels": 4, "scaling_factor": None, "shift_factor": None,
                   "force_upcast": None, "sample_size": None},
    # A metrics.json feature set without "kind" is a VAE feature set (before the baselines).
    "feature_set": {"kind": "vae"},
    # A variants.json row from before encoder classes, RESOLUTION and encoder-only models
    # (and its "label": the run's name).
    "variant": {"autoencoder_class": "AutoencoderKL", "revision": "local", "resolution": 32,
                "has_decoder": True, "encoder_sha256": None, "latents_sha256": None},
}


def filled(kind: str, record: dict) -> dict:
    """A copy of ``record`` (one of DEFAULTS' kinds) with every missing field set to its
    default; an encode record's "model" and "vae_config" are filled too."""
    out = dict(record)
    for key, value in DEFAULTS[kind].items():
        out.setdefault(key, copy.deepcopy(value))
    if kind == "encode":
        out["model"] = filled("model", out.get("model", {}))
        out["vae_config"] = filled("vae_config", out.get("vae_config") or {})
    if kind == "variant":
        out.setdefault("label", out["name"])
    return out


def has_decoder(encode: dict) -> bool:
    """Whether the run an ``encode.json`` describes had a decoder (older files: yes)."""
    return bool(filled("model", encode.get("model", {}))["has_decoder"])


def feature_set_kind(info: dict) -> str:
    """A metrics.json feature set's kind: "vae" or "baseline"."""
    return filled("feature_set", info)["kind"]


def sets_of_kind(metrics: dict, kind: str) -> list[str]:
    """Feature sets of one kind ("vae" or "baseline") in display order."""
    return [fs for fs in metrics["feature_set_order"]
            if feature_set_kind(metrics["feature_sets"][fs]) == kind]


# ---- a run folder ------------------------------------------------------------------------

def read_config(run: Path) -> dict:
    return filled("config", read_json(Path(run) / CONFIG, "run configuration"))


def read_encode(run: Path) -> dict:
    return filled("encode", read_json(Path(run) / ENCODE, "encoder description"))


def read_metrics(run: Path) -> dict:
    return read_json(Path(run) / METRICS, "metrics")


def read_classify(run: Path) -> dict:
    return read_json(Path(run) / CLASSIFY, "classifier record")


def read_probes(run: Path) -> dict:
    return read_json(Path(run) / PROBES, "latent probes")


def read_weights(run: Path) -> dict:
    return read_json(Path(run) / WEIGHTS, "weights check")


def seed_dir(run: Path, seed: int) -> Path:
    """Where a further seed of SEEDS keeps its results: ``RUN/seeds/seed-S``."""
    return Path(run) / SEEDS_DIR / f"seed-{seed}"


def read_seeds(run: Path) -> dict:
    return read_json(Path(run) / SEEDS, "summary over seeds")


def current_seeds(run: Path) -> dict | None:
    """seeds.json when it was made from the run's current results (its ``primary_results_key``
    is classify.json's), else None: none, or one left by an earlier build with other results."""
    if not (Path(run) / SEEDS).is_file() or not (Path(run) / CLASSIFY).is_file():
        return None
    summary = read_seeds(run)
    return summary if summary.get("primary_results_key") == read_classify(run)["results_key"] else None


def read_tuned(run: Path) -> dict:
    return read_json(Path(run) / TUNED, "tuned results")


def current_tuned(run: Path) -> dict | None:
    """tuned.json when it was made from the run's current results (as ``current_seeds``)."""
    if not (Path(run) / TUNED).is_file() or not (Path(run) / CLASSIFY).is_file():
        return None
    tuned = read_tuned(run)
    return tuned if tuned.get("primary_results_key") == read_classify(run)["results_key"] else None


def read_figures_info(run: Path) -> dict:
    return read_json(Path(run) / FIGURES_DIR / FIGURES_INFO, "figure description")


def read_provenance(run: Path) -> dict:
    return read_json(Path(run) / PROVENANCE, "provenance record")


def read_reconstructions(run: Path, keys: tuple[str, ...]) -> dict:
    """The arrays ``keys`` of reconstructions.npz (only a run with a decoder has one)."""
    return load_npz(Path(run) / RECONSTRUCTIONS, "reconstructions", keys)


def read_predictions(run: Path) -> dict[str, list[int]]:
    """predictions.csv as columns of integers ("y_true", then "<model>__<feature set>")."""
    path = Path(run) / PREDICTIONS
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        raise VaelabError(f"{path} not found; is {run} a finished run directory?") from None
    except UnicodeDecodeError as err:
        raise VaelabError(f"predictions at {path} are corrupt ({err}); delete them and rerun") from None
    try:
        header, body = rows[0], [[int(v) for v in row] for row in rows[1:]]
        if any(len(row) != len(header) for row in body):
            raise ValueError("rows of unequal length")
    except (IndexError, ValueError) as err:
        raise VaelabError(f"predictions at {path} are corrupt ({err or 'empty file'}); delete "
                          "them and rerun") from None
    return {name: [row[i] for row in body] for i, name in enumerate(header)}


def figure_file(run: Path, name: str) -> Path:
    """Where figure ``name`` ("pca", one of FIGURES without .png) of a run lies."""
    return Path(run) / FIGURES_DIR / figure_png(name)


# ---- the data and compare folders ----------------------------------------------------------

def read_dataset(data_dir: Path) -> dict:
    return read_json(Path(data_dir) / DATASET, "dataset description")


def read_variants(compare_dir: Path) -> list[dict]:
    return [filled("variant", v) for v in read_json(Path(compare_dir) / VARIANTS, "variant summary")]


def read_variant_tests(compare_dir: Path) -> dict:
    return read_json(Path(compare_dir) / VARIANT_TESTS, "variant tests")
