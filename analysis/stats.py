"""Uncertainty of test-set accuracies: chance, bootstrap intervals, McNemar's exact test, and
Holm's correction for families of tests at the one significance level, ``ALPHA``.

Not run on its own. ``paired`` is the one paired comparison of two prediction vectors
(analysis.classify, analysis.diffstats), ``judge_family`` the one verdict on a family of
such tests (analysis.verdicts for metrics.json, analysis.diffstats for ``make diff``): the
report only reads what they return; ``chance`` is the one chance level (the figures' dotted
lines, the report's "above chance").
All rest on maintained implementations: ``scipy.stats.bootstrap``, statsmodels' ``mcnemar``
and ``multipletests``, ``scipy.stats.binomtest``; nothing here re-derives a formula.
"""

from __future__ import annotations

import numpy as np

N_RESAMPLES = 2000
LEVEL = 0.95
ROUND = 4  # decimals kept for accuracies and their differences
P_DIGITS = 4  # significant digits kept for p-values (they can be tiny)
# Resamples drawn at a time: the statistics are vectorised over resamples, and 250 x 10,000
# test images keeps each batch near 20 MB. Batching does not change the interval (the same
# random stream is drawn in the same order).
BATCH = 250
# The one significance level: a paired test is called significant when its Holm-adjusted p
# is below it (judge_family). metrics.json and every diff record it beside their verdicts.
ALPHA = 0.05


def chance(classes: list[str] | int) -> float:
    """The accuracy of guessing uniformly among the classes (their names, or how many): the
    line that the figures draw and that every "above chance" in the report is judged against."""
    return 1 / (classes if isinstance(classes, int) else len(classes))


def accuracy_ci(correct: np.ndarray, seed: int, level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of a 0/1 "prediction correct" vector."""
    from scipy.stats import bootstrap

    correct = np.asarray(correct, dtype=np.float64)
    if correct.min() == correct.max():  # all right or all wrong: no spread to resample
        return float(correct[0]), float(correct[0])
    res = bootstrap((correct,), np.mean, n_resamples=N_RESAMPLES, confidence_level=level,
                    method="percentile", batch=BATCH, random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def proportion_ci(accuracy: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of an accuracy over ``n`` test images, for accuracies
    kept without their per-image results (the figures' nearest-centroid scores)."""
    from scipy.stats import binomtest

    ci = binomtest(round(accuracy * n), n).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


def delta_ci(correct_a: np.ndarray, correct_b: np.ndarray, seed: int,
             level: float = LEVEL) -> tuple[float, float]:
    """Paired bootstrap interval of mean(B) - mean(A) over the same test images: of accuracy
    for 0/1 "prediction correct" vectors, of mean PSNR or SSIM for per-image scores."""
    from scipy.stats import bootstrap

    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if np.array_equal(a, b):
        return 0.0, 0.0
    diff = b - a
    if diff.min() == diff.max():
        return float(diff[0]), float(diff[0])
    # Vectorised over resamples (axis): a Python call per resample was most of classify's
    # statistics time; the interval is the same.
    res = bootstrap((a, b), lambda x, y, axis: np.mean(y, axis=axis) - np.mean(x, axis=axis),
                    paired=True, vectorized=True, n_resamples=N_RESAMPLES, confidence_level=level,
                    method="percentile", batch=BATCH, random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """McNemar's exact test on paired correctness; p = 1 when the models never disagree."""
    from statsmodels.stats.contingency_tables import mcnemar

    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(~a & b))
    table = [[int(np.sum(a & b)), only_a], [only_b, int(np.sum(~a & ~b))]]
    p = 1.0 if only_a + only_b == 0 else float(mcnemar(table, exact=True).pvalue)
    return {"only_a_correct": only_a, "only_b_correct": only_b, "p_value": p}


def paired(correct_a: np.ndarray, correct_b: np.ndarray, seed: int) -> dict:
    """The paired comparison of A against B on the same test images, from their 0/1
    "prediction correct" vectors (M,): ``delta`` = acc(A) - acc(B) with its paired bootstrap
    interval ``ci``, and McNemar's exact ``p_value`` on the images where exactly one is right
    (``only_a_correct``, ``only_b_correct``). Rounded as metrics.json and diffs keep them."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    low, high = delta_ci(b, a, seed)  # acc(second) - acc(first) = acc(A) - acc(B)
    test = mcnemar_exact(a, b)
    return {"delta": round(float(a.mean() - b.mean()), ROUND),
            "ci": [round(low, ROUND), round(high, ROUND)],
            "p_value": float(f"{test['p_value']:.{P_DIGITS}g}"),
            "only_a_correct": test["only_a_correct"], "only_b_correct": test["only_b_correct"]}


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values of one family of tests, in the same order (statsmodels'
    ``multipletests(method="holm")``). Calling a test significant when its adjusted p is
    below alpha keeps the chance of any false positive in the family at alpha or less, under
    any dependence between the tests (they share test images here)."""
    if not p_values:
        return []
    import gc

    from statsmodels.stats.multitest import multipletests

    # statsmodels' Holm branch calls gc.collect() (statsmodels PR #8671, closed unmerged), a
    # full collection per family: seconds per report, and far more in a process holding many
    # objects. Frozen objects are skipped by that collection; nothing else changes.
    gc.freeze()
    try:
        adjusted = multipletests(np.asarray(p_values, dtype=np.float64), method="holm")[1]
    finally:
        gc.unfreeze()
    return [float(p) for p in adjusted]


def judge_family(tests: list[dict], alpha: float = ALPHA) -> list[dict]:
    """Copies of one family's tests (dicts with a raw ``p_value``), in the same order, each
    given ``family_size``, ``p_adjusted`` (Holm over the family, P_DIGITS significant digits
    kept), ``significant`` (the adjusted p below ``alpha``: the only verdict the report and
    the diff state) and ``raw_significant`` (the raw p below ``alpha``, which they only count,
    to say how many a family-wise correction turned)."""
    adjusted = holm([t["p_value"] for t in tests])
    return [t | {"family_size": len(tests), "p_adjusted": float(f"{p:.{P_DIGITS}g}"),
                 "significant": bool(p < alpha), "raw_significant": bool(t["p_value"] < alpha)}
            for t, p in zip(tests, adjusted)]


def spread(values: list[float]) -> dict:
    """The mean and spread of one accuracy (or difference) over seeds: ``n`` seeds, ``mean``,
    ``sd`` (the sample standard deviation, ddof=1; 0 for a single seed), ``min`` and ``max``,
    rounded as metrics.json keeps accuracies."""
    x = np.asarray(values, dtype=np.float64)
    if not len(x):
        raise ValueError("spread of no values")
    sd = float(x.std(ddof=1)) if len(x) > 1 else 0.0
    return {"n": int(len(x)), "mean": round(float(x.mean()), ROUND), "sd": round(sd, ROUND),
            "min": round(float(x.min()), ROUND), "max": round(float(x.max()), ROUND)}
