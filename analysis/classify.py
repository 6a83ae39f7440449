"""Stage 3: train every classifier on both latent feature sets and score it on the test set.

Run:
    python -m analysis.classify build/runs/NAME/latents.npz build/runs/NAME/metrics.json

Writes next to ``metrics.json``: ``metrics.csv`` (one row per model and feature set),
``predictions.csv`` (test labels and every model's predictions, for paired comparisons
between runs) and ``timings-classify.json`` (fit/predict seconds; the only non-deterministic output).

Feature sets (flattened in C order, channel first):
* ``sample``: one seeded ``latent_dist.sample()`` per image, (N, 4*4*4) = (N, 64);
* ``mean_std``: latent mean and std side by side, (N, 128).

Scale-sensitive models (logistic regression, KNN, SVC) get a StandardScaler fitted on
the training features; tree ensembles see the raw features. Every model gets ``seed``.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.common import VaelabError, load_npz, read_json, run_main, write_json, write_text

ROUND = 4  # decimals kept in metrics.json / metrics.csv
FEATURE_SETS = {
    "sample": ".sample()",
    "mean_std": "mean & std",
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
    ModelSpec("svc", "SVC", True, "RBF kernel, C=1, gamma='scale'"),
    ModelSpec("histgb", "HistGradientBoosting", False, "scikit-learn defaults"),
    ModelSpec("lightgbm", "LightGBM", False, "100 trees, deterministic"),
    ModelSpec("xgboost", "XGBoost", False, "100 trees, hist"),
    ModelSpec("random", "Random predictor", False, "stratified: draws labels at the training class rates"),
)


def make_model(key: str, seed: int, n_train: int):
    """A fresh, seeded estimator; tree libraries use every core, the others are single-threaded."""
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if key == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    if key == "rf":
        return RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=seed)
    if key == "knn":
        # k=25 as in the original; a subset smaller than that keeps every neighbour.
        return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=min(25, n_train)))
    if key == "svc":
        return make_pipeline(StandardScaler(), SVC(kernel="rbf", random_state=seed))
    if key == "histgb":
        return HistGradientBoostingClassifier(random_state=seed)
    if key == "lightgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(random_state=seed, deterministic=True, force_row_wise=True, verbose=-1)
    if key == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(random_state=seed, tree_method="hist", n_estimators=100)
    if key == "random":
        return DummyClassifier(strategy="stratified", random_state=seed)
    raise ValueError(key)


def feature_sets(latents: dict[str, np.ndarray], split: str) -> dict[str, np.ndarray]:
    n = len(latents[f"y_{split}"])
    mean = latents[f"{split}_mean"].reshape(n, -1)  # (N, 64)
    std = latents[f"{split}_std"].reshape(n, -1)  # (N, 64)
    return {
        "sample": latents[f"{split}_sample"].reshape(n, -1),  # (N, 64)
        "mean_std": np.concatenate([mean, std], axis=1),  # (N, 128)
    }


def check_latents(latents: dict[str, np.ndarray]) -> None:
    for name, arr in latents.items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).sum())
            raise VaelabError(f"latents contain {bad} NaN/Inf values in {name}; re-encode with "
                              "PRECISION=fp32 (delete the run directory and rerun make report)")


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


def train_and_score(latents: dict[str, np.ndarray], classes: list[str], seed: int,
                    models: tuple[ModelSpec, ...] = MODELS):
    """Fit every model on every feature set; return (results, predictions, timings)."""
    train, test = feature_sets(latents, "train"), feature_sets(latents, "test")
    y_train, y_test = latents["y_train"], latents["y_test"]
    results: dict = {}
    predictions: dict[str, np.ndarray] = {}
    timings: dict = {}
    for spec in models:
        results[spec.key], timings[spec.key] = {}, {}
        for fs in FEATURE_SETS:
            model = make_model(spec.key, seed, len(y_train))
            t0 = time.perf_counter()
            model.fit(train[fs], y_train)
            t1 = time.perf_counter()
            y_pred = np.asarray(model.predict(test[fs])).astype(np.int64)
            t2 = time.perf_counter()
            results[spec.key][fs] = score(y_test, y_pred, classes)
            predictions[f"{spec.key}__{fs}"] = y_pred
            timings[spec.key][fs] = {"fit_seconds": round(t1 - t0, 3), "predict_seconds": round(t2 - t1, 3)}
            print(f"  {spec.label:22s} {FEATURE_SETS[fs]:11s} accuracy "
                  f"{results[spec.key][fs]['accuracy']:.4f}  fit {t1 - t0:6.1f}s  "
                  f"predict {t2 - t1:5.1f}s", file=sys.stderr)
    return results, predictions, timings


def best_of(results: dict) -> dict:
    """Highest test accuracy over real models; ties go to the earlier model and feature set."""
    best = None
    for model, per_fs in results.items():
        if model == "random":
            continue
        for fs, res in per_fs.items():
            if best is None or res["accuracy"] > best["accuracy"]:
                best = {"model": model, "feature_set": fs, "accuracy": res["accuracy"]}
    return best


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train and score the classifiers")
    parser.add_argument("latents", type=Path, help="latents.npz from analysis.encode")
    parser.add_argument("out", type=Path, help="metrics.json to write")
    args = parser.parse_args(argv)
    run_dir = args.latents.parent
    seed = read_json(run_dir / "config.json", "run configuration")["seed"]
    classes = read_json(run_dir / "encode.json", "encoder description")["classes"]
    latents = load_npz(args.latents, "latents", ("train_sample", "train_mean", "train_std",
                                                 "test_sample", "test_mean", "test_std",
                                                 "y_train", "y_test"))
    check_latents(latents)
    if len(np.unique(latents["y_train"])) < 2:
        raise VaelabError("the training set has fewer than two classes; use more images (LIMIT)")

    results, predictions, timings = train_and_score(latents, classes, seed)
    n_features = {fs: feats.shape[1] for fs, feats in feature_sets(latents, "test").items()}
    metrics = {
        "classes": classes,
        "n_train": int(len(latents["y_train"])),
        "n_test": int(len(latents["y_test"])),
        "seed": seed,
        "feature_sets": {fs: {"label": label, "n_features": n_features[fs]}
                         for fs, label in FEATURE_SETS.items()},
        # JSON keys are sorted on disk; these lists keep the display order.
        "model_order": [m.key for m in MODELS],
        "feature_set_order": list(FEATURE_SETS),
        "models": {m.key: {"label": m.label, "scaled": m.scaled, "description": m.description}
                   for m in MODELS},
        "results": results,
        "best": best_of(results),
    }
    write_text(run_dir / "predictions.csv", predictions_csv(latents["y_test"], predictions))
    write_text(run_dir / "metrics.csv", metrics_csv(results))
    write_json(run_dir / "timings-classify.json", timings)
    write_json(args.out, metrics)  # last: the file make tracks


if __name__ == "__main__":
    run_main(main)
