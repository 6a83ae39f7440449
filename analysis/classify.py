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

Results are cached under ``--cache`` as ``results-KEY/``, keyed by the latents' checksum,
the pixel baselines used, the seed and the classifier code (``code_checksum``): a variant
whose encoder another variant shares (identical latents) trains nothing.

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

Scale-sensitive models (logistic regression, KNN, SVC) get a StandardScaler fitted on
the training features; tree ensembles see the raw features. Every model gets ``seed``.

SVC (``SVC`` in the run config, ``svc_implementation``): oneDAL's through scikit-learn-intelex
where it imports (``auto``, the default, or ``onedal``), else scikit-learn's libsvm
(``libsvm``, or ``auto`` where sklearnex is missing). Same hyper-parameters either way (RBF,
C=1, gamma='scale', one-vs-one). oneDAL fits one model at a time on the stage's threads
(analysis.threads); libsvm is single-threaded, so on 5,000+ training rows its fits run side
by side, one worker process per core (same results, about half the wall time). The rest
run in-process. metrics.json (``svc``, and the SVC row of Table 2) names the implementation
and its version, and the results key includes it: libsvm and oneDAL results never mix.

Every accuracy gets a seeded 95% percentile-bootstrap interval over test images, and
``comparisons`` holds paired tests on the same test images (analysis.stats): mean & std
vs .sample(), and each VAE feature set vs its equal-size pixel baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis import stats, threads
from analysis.autoencoders import FEATURE_SETS, feature_set_keys, feature_sets, load_latents
from analysis.baselines import BASELINES
from analysis.common import (VaelabError, copy_file, file_lock, load_npz, progress, read_json,
                             run_main, sha256_file, sha256_json, write_json, write_text)
from analysis.config import SVC_CHOICES

ROUND = 4  # decimals kept in metrics.json / metrics.csv
P_DIGITS = 4  # significant digits kept for p-values (they can be tiny)
# Paired comparisons written to metrics.json: name -> (a, b); delta = acc(a) - acc(b). Each
# is made where a run has both sides: every VAE feature set against its equal-width pixel
# PCA, the primary one (.sample() or a deterministic latent) against pooled pixels, and a
# KL autoencoder's mean & std against its .sample().
COMPARISONS = {
    "mean_std_vs_sample": ("mean_std", "sample"),
    **{f"{fs}_vs_pixels_pca_{fs}": (fs, f"pixels_pca_{fs}") for fs in FEATURE_SETS},
    "sample_vs_pixels_pooled": ("sample", "pixels_pooled"),
    "latent_vs_pixels_pooled": ("latent", "pixels_pooled"),
}


@dataclass(frozen=True)
class ModelSpec:
    key: str
    label: str
    scaled: bool  # StandardScaler in front
    description: str  # hyper-parameters as the report prints them


MODELS = (
    ModelSpec("logreg", "Logistic Regression", True, "lbfgs, max_iter=2000"),
    ModelSpec("rf", "Random Forest", False, "100 trees"),
    ModelSpec("knn", "KNN (k=25)", True, "k=25, Euclidean"),
    ModelSpec("svc", "SVC", True, "RBF kernel, C=1, gamma='scale', one-vs-one"),
    ModelSpec("histgb", "HistGradientBoosting", False, "scikit-learn defaults"),
    ModelSpec("lightgbm", "LightGBM", False, "100 trees, deterministic"),
    ModelSpec("xgboost", "XGBoost", False, "100 trees, hist"),
    ModelSpec("random", "Random predictor", False, "stratified: draws labels at the training class rates"),
)


def svc_implementation(requested: str = "auto") -> dict:
    """The SVC library behind ``requested`` (one of SVC_CHOICES) on this machine:
    {"implementation": "onedal" | "libsvm", "package", "version", "label"}, and for oneDAL
    the ``threads`` it fits with (its results can change with them; libsvm's cannot).

    ``auto``: oneDAL where scikit-learn-intelex imports (x86-64 wheels), else libsvm.
    """
    from importlib import metadata

    if requested not in SVC_CHOICES:
        raise VaelabError(f"SVC={requested!r} is not known; use one of {', '.join(SVC_CHOICES)}")
    if requested != "libsvm":
        try:
            import sklearnex.svm  # noqa: F401  (any failure: no usable oneDAL here)
        except Exception as err:
            if requested == "onedal":
                raise VaelabError(f"SVC=onedal needs scikit-learn-intelex, which does not import "
                                  f"here ({type(err).__name__}: {err}); install it "
                                  "(pip install scikit-learn-intelex, x86-64 only) or use "
                                  "SVC=libsvm") from None
        else:
            version = metadata.version("scikit-learn-intelex")
            n = threads.budget()
            return {"implementation": "onedal", "package": "scikit-learn-intelex", "version": version,
                    "threads": n, "label": f"oneDAL (scikit-learn-intelex {version})"}
    version = metadata.version("scikit-learn")
    return {"implementation": "libsvm", "package": "scikit-learn", "version": version,
            "label": f"libsvm (scikit-learn {version})"}


def make_model(key: str, seed: int, n_train: int, svc: str = "libsvm"):
    """A fresh, seeded estimator. Tree libraries and oneDAL use the stage's threads
    (analysis.threads.n_jobs: their default, every core, outside make -j); the others are
    single-threaded.
    ``svc``: "libsvm" (scikit-learn) or "onedal" (scikit-learn-intelex), for key "svc"."""
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if key == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    if key == "rf":
        return RandomForestClassifier(n_estimators=100, n_jobs=threads.n_jobs() or -1, random_state=seed)
    if key == "knn":
        # k=25 as in the original; a subset smaller than that keeps every neighbour.
        return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=min(25, n_train)))
    if key == "svc" and svc == "onedal":
        from sklearnex.svm import SVC as OneDalSVC

        # n_jobs: oneDAL's thread count, which its results depend on (in the results key).
        return make_pipeline(StandardScaler(), OneDalSVC(kernel="rbf", C=1.0, gamma="scale",
                                                         random_state=seed, n_jobs=threads.n_jobs()))
    if key == "svc":
        from sklearn.svm import SVC

        return make_pipeline(StandardScaler(), SVC(kernel="rbf", C=1.0, gamma="scale",
                                                   random_state=seed))
    if key == "histgb":
        return HistGradientBoostingClassifier(random_state=seed)
    if key == "lightgbm":
        from lightgbm import LGBMClassifier

        # deterministic=True: the same model whatever the thread count (LightGBM's docs).
        return LGBMClassifier(random_state=seed, deterministic=True, force_row_wise=True, verbose=-1,
                              n_jobs=threads.n_jobs())
    if key == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(random_state=seed, tree_method="hist", n_estimators=100,
                             n_jobs=threads.n_jobs())
    if key == "random":
        return DummyClassifier(strategy="stratified", random_state=seed)
    raise ValueError(key)


def check_latents(latents: dict[str, np.ndarray]) -> None:
    for name, arr in latents.items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).sum())
            raise VaelabError(f"latents contain {bad} NaN/Inf values in {name}; re-encode with "
                              "PRECISION=fp32 (delete the run directory and rerun make report)")


def run_svc(latents_file: Path) -> dict:
    """svc_implementation of the SVC the run's config.json asks for (``auto`` if unset)."""
    config = read_json(latents_file.parent / "config.json", "run configuration")
    return svc_implementation(config.get("svc", "auto"))


def read_run(latents_file: Path) -> tuple[int, list[str], dict[str, np.ndarray]]:
    """A run's seed (config.json), class names (encode.json) and latents; the training set
    must hold two classes or more."""
    run_dir = latents_file.parent
    seed = read_json(run_dir / "config.json", "run configuration")["seed"]
    classes = read_json(run_dir / "encode.json", "encoder description")["classes"]
    latents = load_latents(latents_file)
    if len(np.unique(latents["y_train"])) < 2:
        raise VaelabError("the training set has fewer than two classes; use more images (LIMIT)")
    return seed, classes, latents


def score(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = np.arange(len(classes))
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro",
                                                    zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), ROUND),
        "precision_macro": round(float(mp), ROUND),
        "recall_macro": round(float(mr), ROUND),
        "f1_macro": round(float(mf), ROUND),
        "per_class": {name: {"precision": round(float(p[i]), ROUND), "recall": round(float(r[i]), ROUND),
                             "f1": round(float(f[i]), ROUND), "support": int(support[i])}
                      for i, name in enumerate(classes)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


# libsvm's SVC uses one core and was 71% of the classifier time on 50,000 rows, so on a
# large training set its fits run side by side in worker processes, one per core. libsvm
# is plain C without BLAS, so a worker gives bit-identical results. Everything else runs
# in-process: tree libraries and oneDAL use the stage's threads already, and logistic
# regression and KNN go through BLAS, whose thread count changes their last bits (seen:
# accuracy 0.2860 vs 0.2861).
PARALLEL_MIN_ROWS = 5000  # below this, starting worker processes costs more than it saves


def fit_predict(key: str, seed: int, x_train: np.ndarray, y_train: np.ndarray,
                x_test: np.ndarray, svc: str = "libsvm") -> tuple[np.ndarray, float, float]:
    """Fit a fresh model; (test predictions (M,), fit seconds, predict seconds)."""
    model = make_model(key, seed, len(y_train), svc)
    t0 = time.perf_counter()
    model.fit(x_train, y_train)
    t1 = time.perf_counter()
    y_pred = np.asarray(model.predict(x_test)).astype(np.int64)
    return y_pred, t1 - t0, time.perf_counter() - t1


# What decides the scores besides the data and the seed: this code and these libraries.
CODE_FILES = ("classify.py", "baselines.py", "stats.py", "curves.py")
CODE_PACKAGES = ("scikit-learn", "lightgbm", "xgboost", "numpy", "scipy", "statsmodels")


def code_checksum(files: tuple[str, ...] = CODE_FILES) -> str:
    """sha256 of the classifier code (``files`` under analysis/) and library versions: part of
    every results key, so that cached results, baselines and probes are refitted when either
    changes."""
    from importlib import metadata

    here = Path(__file__).resolve().parent
    return sha256_json({"files": {name: sha256_file(here / name) for name in files},
                        "packages": {name: metadata.version(name) for name in CODE_PACKAGES}})


def train_and_score(latents: dict[str, np.ndarray], classes: list[str], seed: int,
                    models: tuple[ModelSpec, ...] = MODELS, n_jobs: int | None = None,
                    svc: str = "libsvm"):
    """fit_all on the VAE feature sets of ``latents``: (results, predictions, timings)."""
    return fit_all(feature_sets(latents, "train"), feature_sets(latents, "test"),
                   latents["y_train"], latents["y_test"], classes, seed, models, n_jobs, svc)


def fit_all(train: dict[str, np.ndarray], test: dict[str, np.ndarray], y_train: np.ndarray,
            y_test: np.ndarray, classes: list[str], seed: int,
            models: tuple[ModelSpec, ...] = MODELS, n_jobs: int | None = None,
            svc: str = "libsvm"):
    """Fit every model on every feature set; return (results, predictions, timings).

    ``train``/``test``: feature set -> (N, D). Each result carries a seeded bootstrap
    ``accuracy_ci`` over the test images. ``svc``: "libsvm" or "onedal" (svc_implementation).
    ``n_jobs``: worker processes for libsvm's SVC fits; None = the stage's share of the
    physical cores (analysis.threads.workers) when the training set has at least
    PARALLEL_MIN_ROWS rows, else 1 (in-process). The results do not depend on it.
    """
    from joblib import Parallel, delayed

    if n_jobs is None:
        n_jobs = threads.workers() if len(y_train) >= PARALLEL_MIN_ROWS else 1
    jobs = [(spec, fs) for spec in models for fs in train]
    # Widest features first (the longest fits), so that the workers finish together; the
    # in-process jobs start only after the workers are done, so no core is oversubscribed.
    # oneDAL is threaded itself: its fits run in-process, one at a time.
    in_workers = ("svc",) if svc == "libsvm" else ()
    side_by_side = sorted([job for job in jobs if job[0].key in in_workers],
                          key=lambda job: -train[job[1]].shape[1])
    in_process = [job for job in jobs if job[0].key not in in_workers]
    outputs = Parallel(n_jobs=min(n_jobs, max(len(side_by_side), 1)), return_as="generator")(
        delayed(fit_predict)(spec.key, seed, train[fs], y_train, test[fs]) for spec, fs in side_by_side)
    done: dict[tuple[str, str], tuple[np.ndarray, float, float]] = {}
    bar = progress(len(jobs), "classifiers", "fit")

    def record(spec: ModelSpec, fs: str, output: tuple[np.ndarray, float, float]) -> None:
        done[spec.key, fs] = output
        y_pred, fit_s, predict_s = output
        bar.set_postfix_str(f"{spec.label}, {fs}")
        bar.write(f"  {spec.label:22s} {fs:19s} accuracy {np.mean(y_pred == y_test):.4f}  "
                  f"fit {fit_s:6.1f}s  predict {predict_s:5.1f}s", file=sys.stderr)
        bar.update(1)

    for (spec, fs), output in zip(side_by_side, outputs):  # waits for each worker result
        record(spec, fs, output)
    for spec, fs in in_process:
        record(spec, fs, fit_predict(spec.key, seed, train[fs], y_train, test[fs], svc))
    bar.close()

    results: dict = {}
    predictions: dict[str, np.ndarray] = {}
    timings: dict = {}
    for spec, fs in jobs:  # in model order, whatever order they finished in
        y_pred, fit_s, predict_s = done[spec.key, fs]
        result = score(y_test, y_pred, classes)
        low, high = stats.accuracy_ci(y_pred == y_test, seed)
        result["accuracy_ci"] = [round(low, ROUND), round(high, ROUND)]
        results.setdefault(spec.key, {})[fs] = result
        predictions[f"{spec.key}__{fs}"] = y_pred
        timings.setdefault(spec.key, {})[fs] = {"fit_seconds": round(fit_s, 3),
                                                "predict_seconds": round(predict_s, 3)}
    return results, predictions, timings


def best_of(results: dict, feature_sets: tuple[str, ...] = tuple(FEATURE_SETS)) -> dict:
    """Highest test accuracy over real models on the VAE feature sets (the study's subject);
    ties go to the earlier model and feature set."""
    best = None
    for model, per_fs in results.items():
        if model == "random":
            continue
        for fs, res in per_fs.items():
            if fs not in feature_sets:
                continue
            if best is None or res["accuracy"] > best["accuracy"]:
                best = {"model": model, "feature_set": fs, "accuracy": res["accuracy"]}
    return best


def compare(y_test: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, seed: int) -> dict:
    """Paired comparison of two prediction vectors (M,) on the same test images.

    delta = acc(a) - acc(b) with a paired bootstrap interval, and McNemar's exact test on the
    images where exactly one of the two is right.
    """
    correct_a, correct_b = pred_a == y_test, pred_b == y_test
    low, high = stats.delta_ci(correct_b, correct_a, seed)  # acc(second) - acc(first) = a - b
    test = stats.mcnemar_exact(correct_a, correct_b)
    return {"delta": round(float(correct_a.mean() - correct_b.mean()), ROUND),
            "ci": [round(low, ROUND), round(high, ROUND)],
            "p_value": float(f"{test['p_value']:.{P_DIGITS}g}"),
            "only_a_correct": test["only_a_correct"], "only_b_correct": test["only_b_correct"]}


def comparisons(y_test: np.ndarray, predictions: dict[str, np.ndarray], seed: int,
                models: tuple[ModelSpec, ...] = MODELS) -> dict:
    """model -> comparison name -> compare(); real models only, pairs present in predictions."""
    out: dict = {}
    for spec in models:
        if spec.key == "random":
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
                  baselines: dict[str, dict], svc: dict) -> tuple[dict, dict[str, np.ndarray], dict]:
    """Fit the VAE feature sets, merge in the pixel baselines' scores and predictions, and
    compare them, and draw the VAE sets' learning curves (analysis.curves): (metrics,
    predictions by "model__feature_set", timings: "classify" and "curves" -> seconds).
    ``svc``: svc_implementation(), named in metrics.json (``svc`` and the SVC description)."""
    from analysis import curves

    train, test = feature_sets(latents, "train"), feature_sets(latents, "test")
    y_train, y_test = latents["y_train"], latents["y_test"]
    results, vae_predictions, timings = fit_all(train, test, y_train, y_test, classes, seed,
                                                svc=svc["implementation"])
    vae_curves, curve_timings = curves.learning_curves(train, test, y_train, y_test, len(classes),
                                                       seed, results)
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
        if base.get("curves"):  # the PCA baselines: their curves, fitted once per dataset
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
        "best": best_of(results),
        "comparisons": comparisons(y_test, predictions, seed),
        "learning_curves": {"models": list(curves.CURVE_MODELS),
                            "sizes": curves.sizes(len(y_train), len(classes)),
                            "curves": vae_curves},
        "bootstrap": {"method": "percentile", "n_resamples": stats.N_RESAMPLES,
                      "confidence_level": stats.LEVEL, "seed": seed},
    }
    return metrics, predictions, {"classify": timings, "curves": curve_timings}


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


def results_key(latents_file: Path, seed: int, classes: list[str], baselines: dict[str, dict],
                svc: dict) -> tuple[str, dict]:
    """The results cache key and what it is made of: the latents, seed, classes, the pixel
    baselines, the SVC implementation (libsvm and oneDAL results never mix) and the code."""
    key_fields = {"latents_sha256": sha256_file(latents_file), "seed": seed, "classes": classes,
                  "baselines": {k: b["folder"] for k, b in baselines.items()},
                  "svc": svc, "code": code_checksum()}
    return sha256_json(key_fields)[:24], key_fields


def main(argv: list[str] | None = None) -> None:
    from analysis import baselines as pixel_baselines

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
    entry = args.cache / f"results-{key}" if args.cache is not None else None
    # Parallel runs with identical latents (make -j) take turns: the second one reuses.
    with file_lock(args.cache / f"results-{key}.lock") if entry else contextlib.nullcontext():
        reused = entry is not None and (entry / "metrics.json").is_file()
        timings: dict = {"classify": {}, "curves": {}}  # seconds of what this run fitted
        if reused:
            print(f"classifiers: latents, baselines, seed and code as in {entry.name}; reusing "
                  "its results (nothing to train)", file=sys.stderr)
        else:
            metrics, predictions, timings = build_metrics(latents, classes, seed, baselines, svc)
            target = entry or run_dir
            write_text(target / "predictions.csv", predictions_csv(latents["y_test"], predictions))
            write_text(target / "metrics.csv", metrics_csv(metrics["results"]))
            # Last: a cache entry with metrics.json is complete.
            write_json(target / "metrics.json" if entry else args.out, metrics)
    write_json(run_dir / "classify.json", {"results_key": key, "key_fields": key_fields,
                                           "from_cache": reused})
    for stage, record in timings.items():  # timings-classify.json, timings-curves.json
        write_json(run_dir / f"timings-{stage}.json", record)
    if entry is not None:
        copy_file(entry / "predictions.csv", run_dir / "predictions.csv")
        copy_file(entry / "metrics.csv", run_dir / "metrics.csv")
        copy_file(entry / "metrics.json", args.out)  # last: the file make tracks

if __name__ == "__main__":
    run_main(main)
