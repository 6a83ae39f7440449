"""Stage 3: train every classifier on the latent feature sets and on pixel baselines of the
same size, score it on the test set, and say how sure each number is.

Run:
    python -m analysis.classify build/runs/NAME/latents.npz build/data/dataset.npz \
        build/runs/NAME/metrics.json --baselines build/runs/NAME/baselines.json \
        --cache build/cache

Writes next to ``metrics.json``: ``metrics.csv`` (one row per model and feature set),
``predictions.csv`` (test labels and every model's predictions, for paired comparisons
between runs), ``classify.json`` (what the results were keyed by, and whether they were
reused), ``timings-classify.json`` and ``timings-curves.json`` (fit/predict seconds of what
this run fitted; the only non-deterministic outputs).

``metrics.json`` also holds ``learning_curves`` (analysis.curves): accuracy of the fast models
against training-set size for each VAE feature set, and for each PCA baseline (fitted with
the baselines, once per dataset).

Results are cached under ``--cache`` as ``results-KEY/`` (analysis.cache: sealed with a
checksum, refitted when damaged), keyed by the latents' checksum, the pixel baselines used,
the seed, the SVC library and the code this stage runs (analysis.models.code_checksum): a
variant whose encoder another variant shares (identical latents) trains nothing. Beside
``metrics.json`` goes ``metrics.json.d``, the modules this stage runs, for make
(analysis.deps).

VAE feature sets (flattened in C order, channel first), as wide as the latents are; each
run has those its encoder class yields (analysis.autoencoders):
* ``sample`` (KL): one seeded ``latent_dist.sample()`` per image, (N, C*h*w): (N, 4*4*4) =
  (N, 64) at 32 px, (N, 4*8*8) = (N, 256) at RESOLUTION=64, (N, 256) for a 16-channel VAE;
* ``mean_std`` (KL): latent mean and std side by side, (N, 2*C*h*w): (N, 128) at 32 px;
* ``latent`` (AutoencoderTiny, AutoencoderDC): the deterministic latent, (N, C*h*w).

Pixel baselines of equal width (``pixels_pooled`` and ``pixels_pca_<feature set>``; see
analysis.baselines) are fitted once per dataset, seed and width
by ``analysis.baselines``; their scores and predictions are merged in here, so that
metrics.json answers "does the VAE help?" at equal feature count.

The models, how they are made and fitted: analysis.models. SVC (``SVC`` in the run config,
``analysis.models.svc_implementation``): oneDAL's through scikit-learn-intelex
where it imports (``auto``, the default, or ``onedal``), else scikit-learn's libsvm
(``libsvm``, or ``auto`` where sklearnex is missing). Same hyper-parameters either way (RBF,
C=1, gamma='scale', one-vs-one). oneDAL fits one model at a time on the stage's threads
(analysis.threads); libsvm is single-threaded, so on 5,000+ training rows its fits run side
by side, one worker process per core (same results, about half the wall time). The rest
run in-process. metrics.json (``svc``, and the SVC row of Table 2) names the implementation
and its version, and the results key includes it: libsvm and oneDAL results never mix.

Every accuracy gets a seeded 95% percentile-bootstrap interval over test images, and
``comparisons`` holds paired tests on the same test images (analysis.stats): mean & std
vs .sample(), and each VAE feature set vs its equal-size pixel baseline; analysis.verdicts
adds each family's Holm-adjusted p-values and verdicts, the best result with its ties, the
weak pixel rivals and the most-confused class pairs, which the report reads as stored.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import sys
from pathlib import Path

import numpy as np

from analysis import baselines as pixel_baselines
from analysis import cache, curves, deps, runs, stats, threads, verdicts
from analysis.autoencoders import (BASELINES, COMPARISONS, FEATURE_SETS, feature_set_keys,
                                   feature_sets, is_real_model)
from analysis.common import (VaelabError, copy_file, file_lock, load_npz, run_main, sha256_file,
                             write_json, write_text)
from analysis.models import (MODELS, ROUND, ModelSpec, check_latents, code_checksum, fit_all,
                             read_run, run_svc)


def train_and_score(latents: dict[str, np.ndarray], classes: list[str], seed: int,
                    models: tuple[ModelSpec, ...] = MODELS, n_jobs: int | None = None,
                    svc: str = "libsvm"):
    """fit_all on the VAE feature sets of ``latents``: (results, predictions, timings)."""
    return fit_all(feature_sets(latents, "train"), feature_sets(latents, "test"),
                   latents["y_train"], latents["y_test"], classes, seed, models, n_jobs, svc)


def compare(y_test: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, seed: int) -> dict:
    """Paired comparison of two prediction vectors (M,) on the same test images
    (analysis.stats.paired): delta = acc(a) - acc(b), its interval and McNemar's p-value."""
    return stats.paired(pred_a == y_test, pred_b == y_test, seed)


def comparisons(y_test: np.ndarray, predictions: dict[str, np.ndarray], seed: int,
                models: tuple[ModelSpec, ...] = MODELS) -> dict:
    """model -> comparison name -> compare(); real models only, pairs present in predictions."""
    out: dict = {}
    for spec in models:
        if not is_real_model(spec.key):
            continue
        for name, (a, b) in COMPARISONS.items():
            pa, pb = predictions.get(f"{spec.key}__{a}"), predictions.get(f"{spec.key}__{b}")
            if pa is not None and pb is not None:
                out.setdefault(spec.key, {})[name] = {"a": a, "b": b} | compare(y_test, pa, pb, seed)
    return out


def metrics_csv(results: dict) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["model", "feature_set", "accuracy", "precision_macro", "recall_macro", "f1_macro"])
    for model, per_fs in results.items():
        for fs, res in per_fs.items():
            writer.writerow([model, fs] + [f"{res[k]:.{ROUND}f}" for k in
                                           ("accuracy", "precision_macro", "recall_macro", "f1_macro")])
    return buf.getvalue()


def predictions_csv(y_test: np.ndarray, predictions: dict[str, np.ndarray]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = list(predictions)
    writer.writerow(["index", "y_true"] + columns)
    for i, y in enumerate(y_test):
        writer.writerow([i, int(y)] + [int(predictions[c][i]) for c in columns])
    return buf.getvalue()


def build_metrics(latents: dict[str, np.ndarray], classes: list[str], seed: int,
                  baselines: dict[str, dict], svc: dict,
                  with_curves: bool = True) -> tuple[dict, dict[str, np.ndarray], dict]:
    """Fit the VAE feature sets, merge in the pixel baselines' scores and predictions, and
    compare them, judge the comparisons (analysis.verdicts), and draw the VAE sets' learning
    curves (analysis.curves): (metrics,
    predictions by "model__feature_set", timings: "classify" and "curves" -> seconds).
    ``svc``: svc_implementation(), named in metrics.json (``svc`` and the SVC description).
    Without ``with_curves`` (a further seed of SEEDS, analysis.seeds) metrics.json has none."""
    train, test = feature_sets(latents, "train"), feature_sets(latents, "test")
    y_train, y_test = latents["y_train"], latents["y_test"]
    results, vae_predictions, timings = fit_all(train, test, y_train, y_test, classes, seed,
                                                svc=svc["implementation"])
    vae_curves, curve_timings = (curves.learning_curves(train, test, y_train, y_test, len(classes),
                                                        seed, results)
                                 if with_curves else ({}, {}))
    n_features = {fs: feats.shape[1] for fs, feats in test.items()}
    vae_sets = feature_set_keys(latents)
    labels = {fs: FEATURE_SETS[fs].label for fs in vae_sets}
    predictions: dict[str, np.ndarray] = {}
    for spec in MODELS:  # columns in display order: each model's VAE sets, then its baselines
        for fs in vae_sets:
            predictions[f"{spec.key}__{fs}"] = vae_predictions[f"{spec.key}__{fs}"]
        for key, base in baselines.items():
            results[spec.key][key] = base["results"][spec.key]
            predictions[f"{spec.key}__{key}"] = base["predictions"][spec.key]
    for key, base in baselines.items():
        n_features[key], labels[key] = base["n_features"], base["label"]
        if base.get("curves") and with_curves:  # the PCA baselines' curves, fitted once per dataset
            vae_curves[key] = base["curves"]
    metrics = {
        "classes": classes,
        "n_train": int(len(latents["y_train"])),
        "n_test": int(len(y_test)),
        "seed": seed,
        "feature_sets": {fs: {"label": labels[fs], "n_features": n_features[fs],
                              "kind": "vae" if fs in vae_sets else "baseline"}
                         | ({"matches": BASELINES[fs]} if fs in BASELINES else {})
                         for fs in labels},
        # JSON keys are sorted on disk; these lists keep the display order (VAE first).
        "model_order": [m.key for m in MODELS],
        "feature_set_order": list(labels),
        "models": {m.key: {"label": m.label, "scaled": m.scaled,
                           "description": m.description + (f"; {svc['label']}" if m.key == "svc" else "")}
                   for m in MODELS},
        "svc": svc,
        "results": results,
        "comparisons": comparisons(y_test, predictions, seed),
        "bootstrap": {"method": "percentile", "n_resamples": stats.N_RESAMPLES,
                      "confidence_level": stats.LEVEL, "seed": seed},
    }
    if with_curves:
        metrics["learning_curves"] = {"models": list(curves.CURVE_MODELS),
                                      "sizes": curves.sizes(len(y_train), len(classes)),
                                      "curves": vae_curves}
    # The verdicts (Holm-adjusted p-values, significance, the best result and its ties, ...)
    # are decided here, once: the report and the diff only read them (analysis.verdicts).
    return verdicts.judge(metrics), predictions, {"classify": timings, "curves": curve_timings}


def check_baselines(baselines: dict[str, dict], n_test: int, seed: int, svc: dict,
                    latents_file: Path) -> None:
    """The pixel baselines must have this run's test set, seed and SVC library and version; their
    thread count may differ (make -j fits them on every core, analysis.threads)."""
    library = {k: svc[k] for k in ("implementation", "version")}
    for base in baselines.values():
        base_library = {k: base.get("svc", {}).get(k) for k in library}
        if base["n_test"] != n_test or base["seed"] != seed or base_library != library:
            raise VaelabError(f"pixel baseline {base['folder']} was fitted on other data, another "
                              f"seed or another SVC than {latents_file}; rerun `make report`")


# What metrics.json holds, as a number: raised when its fields change, so that cached results
# written without them (2: the verdicts of analysis.verdicts) are refitted, not reused.
METRICS_SCHEMA = 2


def results_key(latents_file: Path, seed: int, classes: list[str], baselines: dict[str, dict],
                svc: dict) -> tuple[str, dict]:
    """The results cache key and what it is made of: the latents, seed, classes, the pixel
    baselines, the SVC implementation (libsvm and oneDAL results never mix), the schema of
    metrics.json (METRICS_SCHEMA) and the code this stage runs (analysis.deps)."""
    key_fields = {"latents_sha256": sha256_file(latents_file), "seed": seed, "classes": classes,
                  "baselines": {k: b["folder"] for k, b in baselines.items()},
                  "svc": svc, "schema": METRICS_SCHEMA, "code": code_checksum(__file__)}
    return cache.key(key_fields), key_fields


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train and score the classifiers")
    parser.add_argument("latents", type=Path, help="latents.npz from analysis.encode")
    parser.add_argument("data", type=Path, help="dataset.npz from analysis.data")
    parser.add_argument("out", type=Path, help="metrics.json to write")
    parser.add_argument("--baselines", type=Path, required=True,
                        help="the run's baselines.json from analysis.baselines")
    parser.add_argument("--cache", type=Path, default=None,
                        help="results cache directory (none: always fit)")
    args = parser.parse_args(argv)
    threads.apply()
    run_dir = args.latents.parent
    seed, classes, latents = read_run(args.latents)
    svc = run_svc(args.latents)
    check_latents(latents)
    data = load_npz(args.data, "dataset", ("y_train", "y_test"))
    for split in ("train", "test"):
        # The baselines must see the very images the latents came from, in the same order.
        if not np.array_equal(data[f"y_{split}"], latents[f"y_{split}"]):
            raise VaelabError(f"dataset at {args.data} does not match the latents at "
                              f"{args.latents} ({split} labels differ); rerun `make report`")
    baselines = pixel_baselines.load(args.baselines)
    check_baselines(baselines, len(latents["y_test"]), seed, svc, args.latents)

    key, key_fields = results_key(args.latents, seed, classes, baselines, svc)
    fit_cached(latents, classes, seed, baselines, svc, key, key_fields, args.cache, run_dir, args.out)
    deps.write(args.out, __file__)


def fit_cached(latents: dict[str, np.ndarray], classes: list[str], seed: int, baselines: dict[str, dict],
               svc: dict, key: str, key_fields: dict, cache_dir: Path | None, out_dir: Path, out: Path,
               with_curves: bool = True) -> tuple[bool, dict]:
    """build_metrics, or its results from the cache entry ``results-KEY`` under ``cache_dir``
    (None: no cache): writes ``predictions.csv``, ``metrics.csv`` and ``classify.json`` into
    ``out_dir``, with the timings of what was fitted (``timings-classify.json``,
    ``timings-curves.json``), and metrics.json to ``out`` (last: the file make tracks). (Whether
    the results were reused, those timings: "classify" and "curves" -> seconds.)"""
    entry = cache_dir / f"results-{key}" if cache_dir is not None else None
    # Parallel runs with identical latents (make -j) take turns: the second one reuses.
    with file_lock(cache_dir / f"results-{key}.lock") if entry else contextlib.nullcontext():
        reused = cache.reusable(entry)
        timings: dict = {"classify": {}, "curves": {}}  # seconds of what this run fitted
        if reused:
            print(f"classifiers: latents, baselines, seed and code as in {entry.name}; reusing "
                  "its results (nothing to train)", file=sys.stderr)
        else:
            metrics, predictions, timings = build_metrics(latents, classes, seed, baselines, svc,
                                                          with_curves)
            target = entry or out_dir
            write_text(target / runs.PREDICTIONS, predictions_csv(latents["y_test"], predictions))
            write_text(target / runs.METRICS_CSV, metrics_csv(metrics["results"]))
            write_json(target / runs.METRICS if entry else out, metrics)
            if entry is not None:
                cache.seal(entry)  # last: the entry is complete
    write_json(out_dir / runs.CLASSIFY, {"results_key": key, "key_fields": key_fields,
                                           "from_cache": reused})
    for stage, record in timings.items():  # timings-classify.json, timings-curves.json
        write_json(out_dir / runs.timings_file(stage), record)
    if entry is not None:
        copy_file(entry / runs.PREDICTIONS, out_dir / runs.PREDICTIONS)
        copy_file(entry / runs.METRICS_CSV, out_dir / runs.METRICS_CSV)
        copy_file(entry / runs.METRICS, out)  # the file make tracks
    return reused, timings


if __name__ == "__main__":
    run_main(main)
