"""Learning curves: test accuracy against training-set size, on nested, seeded subsets.

Not run on its own; it fits with analysis.models. ``analysis.classify`` draws the curves of a run's VAE feature sets and
``analysis.baselines`` those of the equal-width pixel PCA baselines (once per dataset, like
the baselines themselves); both land in ``metrics.json`` under ``learning_curves`` and
``analysis.figures`` draws them. They answer two questions the single full-size fit cannot:
would more training images help (does the curve still rise at the full size?), and do the
VAE features beat pixels at every training-set size or only at some (do the curves cross?).

* Sizes: 1,000, 2,000, 5,000, 10,000 and 20,000 training images where the training set is
  larger, then all of it; a smaller training set (the demo, LIMIT) is halved instead, so a
  curve has up to four points.
* Subsets are nested (each one holds every image of the smaller ones) and stratified (class
  shares as in the whole training set), from one ``seed``: prefixes of one ordering.
* Models: ``CURVE_MODELS``, the fast ones (logistic regression and LightGBM, hyper-parameters
  as in the main table). SVC is left out: its fits grow faster than linearly with the
  training set and would cost more than the whole classifier stage allows (see
  docs/benchmarks.md).
* Each point is scored on the full test set with a seeded 95% percentile-bootstrap band over
  test images (``analysis.stats.accuracy_ci``), as every accuracy in the report. The
  full-size point is the main table's fit itself, not fitted again.
"""

from __future__ import annotations

import numpy as np

from analysis import stats
from analysis.models import fit_predict

CURVE_MODELS = ("logreg", "lightgbm")
STANDARD_SIZES = (1000, 2000, 5000, 10000, 20000)
MAX_HALVINGS = 3  # a small training set: n/8, n/4, n/2 and n
ROUND = 4


def sizes(n_train: int, n_classes: int) -> list[int]:
    """Training-set sizes of a curve, ascending, the last one ``n_train``.

    The standard sizes below ``n_train`` when at least two of them fit; otherwise halvings of
    ``n_train`` down to two images per class (a subset must be able to hold every class).
    """
    standard = [n for n in STANDARD_SIZES if n < n_train]
    if len(standard) >= 2:
        return standard + [n_train]
    smallest = 2 * n_classes
    halvings = [n_train >> k for k in range(MAX_HALVINGS, 0, -1) if n_train >> k >= smallest]
    return halvings + [n_train]


def nested_order(y: np.ndarray, seed: int) -> np.ndarray:
    """A seeded ordering of the training images whose every prefix is a stratified subset.

    Within each class the images are shuffled; image i of a class with m images gets the
    rank (i + 0.5) / m, and the images are sorted by rank (a stable sort over the shuffled
    order breaks ties at random). Any prefix then holds each class in proportion to its share.
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(y))  # (N,) indices in random order
    rank = np.empty(len(y), dtype=np.float64)
    for label in np.unique(y):
        members = shuffled[y[shuffled] == label]  # this class, in shuffled order
        rank[members] = (np.arange(len(members)) + 0.5) / len(members)
    return shuffled[np.argsort(rank[shuffled], kind="stable")]


def subsets(y: np.ndarray, sizes_: list[int], seed: int) -> dict[int, np.ndarray]:
    """size -> sorted indices of the training images in that subset; nested, stratified, seeded."""
    order = nested_order(y, seed)
    return {n: np.sort(order[:n]) for n in sizes_}


def point(n: int, correct: np.ndarray, seed: int) -> dict:
    """One curve point: training images, test accuracy and its bootstrap band."""
    low, high = stats.accuracy_ci(correct, seed)
    return {"n_train": int(n), "accuracy": round(float(np.mean(correct)), ROUND),
            "ci": [round(low, ROUND), round(high, ROUND)]}


def learning_curves(train: dict[str, np.ndarray], test: dict[str, np.ndarray], y_train: np.ndarray,
                    y_test: np.ndarray, n_classes: int, seed: int, full: dict) -> tuple[dict, dict]:
    """Curves of every ``CURVE_MODELS`` model on every feature set: (curves, timings).

    ``train``/``test``: feature set -> (N, D) as the main fits saw them; ``full``: the main
    results (model -> feature set -> result with ``accuracy`` and ``accuracy_ci``), the curves'
    last point. curves: feature set -> model -> [point, ...] by ascending size; timings:
    feature set -> model -> {"fit_predict_seconds": seconds of its subset fits}.
    """
    plan = sizes(len(y_train), n_classes)
    chosen = subsets(y_train, plan[:-1], seed)
    curves: dict = {}
    timings: dict = {}
    for fs in train:
        for model in CURVE_MODELS:
            points, seconds = [], 0.0
            for n, rows in chosen.items():
                y_pred, fit_s, predict_s = fit_predict(model, seed, train[fs][rows], y_train[rows], test[fs])
                points.append(point(n, y_pred == y_test, seed))
                seconds += fit_s + predict_s
            result = full[model][fs]
            points.append({"n_train": int(len(y_train)), "accuracy": result["accuracy"],
                           "ci": result["accuracy_ci"]})
            curves.setdefault(fs, {})[model] = points
            timings.setdefault(fs, {})[model] = {"fit_predict_seconds": round(seconds, 3)}
    return curves, timings
