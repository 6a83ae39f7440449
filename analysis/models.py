"""The classifiers: which models there are, how each is made, fitted and scored, and what
decides their results.

Not run on its own. The fitting stages sit on top of it: ``analysis.classify`` (the VAE
feature sets), ``analysis.baselines`` (the pixel baselines), ``analysis.curves`` (learning
curves) and ``analysis.probes`` (parts of the latent). It also reads what those stages need
from a run folder (``read_run``, ``run_svc``, ``check_latents``).

* ``MODELS``: the specs, in display order (key, label, scaled or not, hyper-parameters);
* ``make_model``, ``fit_predict``, ``fit_all``: a fresh seeded estimator, one fit, and every
  model on every feature set with bootstrap intervals (``score`` gives the per-class
  metrics);
* ``svc_implementation``: the SVC library (oneDAL or libsvm) behind the run's SVC setting;
* ``code_checksum``: what decides the scores besides the data and the seed, the code a stage
  runs (analysis.deps) and the fitting libraries' versions, part of every results key.

Scale-sensitive models (logistic regression, KNN, SVC) get a StandardScaler fitted on
the training features; tree ensembles see the raw features. Every model gets ``seed``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis import deps, runs, stats, threads
from analysis.autoencoders import RANDOM, load_latents
from analysis.common import VaelabError, progress, read_json
from analysis.config import SVC_CHOICES

ROUND = 4  # decimals kept in metrics.json / metrics.csv


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
    ModelSpec(RANDOM, "Random predictor", False, "stratified: draws labels at the training class rates"),
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
    if key == RANDOM:
        return DummyClassifier(strategy="stratified", random_state=seed)
    raise ValueError(key)


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


def code_checksum(script: str | Path) -> str:
    """The "code" of a results key: analysis.deps.checksum of the modules ``script`` (a
    stage's own file) runs and the versions of the fitting libraries, so that cached results,
    baselines and probes are refitted when either changes."""
    return deps.checksum(script)


# ---- a fitting stage's inputs ----------------------------------------------------------

def check_latents(latents: dict[str, np.ndarray]) -> None:
    for name, arr in latents.items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).sum())
            raise VaelabError(f"latents contain {bad} NaN/Inf values in {name}; re-encode with "
                              "PRECISION=fp32 (delete the run directory and rerun make report)")


def run_svc(latents_file: Path) -> dict:
    """svc_implementation of the SVC the run's config.json asks for (``auto`` if unset)."""
    config = read_json(latents_file.parent / runs.CONFIG, "run configuration")
    return svc_implementation(config.get("svc", "auto"))


def read_run(latents_file: Path) -> tuple[int, list[str], dict[str, np.ndarray]]:
    """A run's seed (config.json), class names (encode.json) and latents; the training set
    must hold two classes or more."""
    run_dir = latents_file.parent
    seed = read_json(run_dir / runs.CONFIG, "run configuration")["seed"]
    classes = read_json(run_dir / runs.ENCODE, "encoder description")["classes"]
    latents = load_latents(latents_file)
    if len(np.unique(latents["y_train"])) < 2:
        raise VaelabError("the training set has fewer than two classes; use more images (LIMIT)")
    return seed, classes, latents
