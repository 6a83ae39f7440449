"""Learning curves: sizes, nested seeded subsets, and the curve points."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis import curves


def test_sizes_standard_below_the_training_set_then_all():
    assert curves.sizes(50000, 10) == [1000, 2000, 5000, 10000, 20000, 50000]
    assert curves.sizes(6000, 10) == [1000, 2000, 5000, 6000]


def test_sizes_small_training_set_halved_down_to_two_per_class():
    assert curves.sizes(300, 10) == [37, 75, 150, 300]
    assert curves.sizes(50, 10) == [25, 50]  # 12 < 2 images per class
    assert curves.sizes(16, 10) == [16]


def test_subsets_nested_and_stratified():
    y = np.repeat(np.arange(4), [40, 30, 20, 10])  # unequal classes, 100 images
    chosen = curves.subsets(y, [10, 20, 50, 100], seed=0)
    for small, large in ((10, 20), (20, 50), (50, 100)):
        assert set(chosen[small]) <= set(chosen[large])
    assert [len(chosen[n]) for n in (10, 20, 50, 100)] == [10, 20, 50, 100]
    # Each prefix keeps the class shares: 20 images -> 8, 6, 4, 2.
    assert np.bincount(y[chosen[20]], minlength=4).tolist() == [8, 6, 4, 2]
    assert np.bincount(y[chosen[50]], minlength=4).tolist() == [20, 15, 10, 5]


def test_subsets_seeded():
    y = np.tile(np.arange(5), 40)
    first = curves.subsets(y, [20, 50], seed=3)
    again = curves.subsets(y, [20, 50], seed=3)
    other = curves.subsets(y, [20, 50], seed=4)
    assert all(np.array_equal(first[n], again[n]) for n in first)
    assert not np.array_equal(first[20], other[20])


@pytest.mark.usefixtures("one_thread")
def test_learning_curves_points_end_at_the_main_fit():
    from analysis.models import MODELS, fit_all

    rng = np.random.default_rng(0)
    y_train, y_test = np.tile(np.arange(3), 60), np.tile(np.arange(3), 30)  # 180 / 90 images
    centres = rng.normal(scale=3, size=(3, 6))
    train = {"sample": (centres[y_train] + rng.normal(size=(180, 6))).astype(np.float32)}
    test = {"sample": (centres[y_test] + rng.normal(size=(90, 6))).astype(np.float32)}
    models = tuple(m for m in MODELS if m.key in curves.CURVE_MODELS)
    full, _, _ = fit_all(train, test, y_train, y_test, ["a", "b", "c"], 0, models)
    out, timings = curves.learning_curves(train, test, y_train, y_test, 3, 0, full)
    for model in curves.CURVE_MODELS:
        points = out["sample"][model]
        assert [p["n_train"] for p in points] == [22, 45, 90, 180]
        assert points[-1]["accuracy"] == full[model]["sample"]["accuracy"]
        assert all(p["ci"][0] <= p["accuracy"] <= p["ci"][1] for p in points)
    # Every curve timed: finite seconds, and the subset fits together take measurable time.
    seconds = [timings["sample"][m]["fit_predict_seconds"] for m in curves.CURVE_MODELS]
    assert set(timings) == {"sample"} and all(math.isfinite(s) for s in seconds) and sum(seconds) > 0
    # Well-separated classes: the linear model is far above chance from the smallest subset on.
    assert out["sample"]["logreg"][0]["accuracy"] > 0.8


def curve_metrics(vae: list[tuple[int, float, float]], pixels: list[tuple[int, float]]) -> dict:
    """A metrics.json with one VAE feature set and its PCA baseline: points (n, acc, ci half-width)."""
    def pts(rows):
        return [{"n_train": n, "accuracy": a, "ci": [a - h, a + h]} for n, a, h in rows]

    return {"models": {"logreg": {"label": "Logistic Regression"}},
            "classes": [f"c{i}" for i in range(10)],
            "feature_set_order": ["sample", "pixels_pca_sample"],
            "feature_sets": {"sample": {"label": ".sample()", "n_features": 64, "kind": "vae"},
                             "pixels_pca_sample": {"label": "pixels, PCA-64", "n_features": 64,
                                                   "kind": "baseline", "matches": "sample"}},
            "learning_curves": {"models": ["logreg"], "sizes": [n for n, _, _ in vae],
                                "curves": {"sample": {"logreg": pts(vae)},
                                           "pixels_pca_sample": {"logreg": pts([(n, a, 0.01) for n, a in pixels])}}}}


def curve_text(metrics: dict) -> list[str]:
    from report import facts, sentences

    curves = facts.curves(metrics)
    return sentences.curve_sentences(curves, "2") if curves else []


def test_learning_curve_sentences_rising_and_crossing():
    metrics = curve_metrics([(1000, 0.30, 0.01), (2000, 0.34, 0.01), (5000, 0.40, 0.01)],
                            [(1000, 0.33), (2000, 0.34), (5000, 0.37)])
    gains, reading, crossing = curve_text(metrics)
    assert "from 2,000 to 5,000 training images" in gains and "+6.0 points" in gains
    assert "every curve ends above the previous size's 95% band, which suggests" in reading
    assert "not tested" in reading
    assert "behind at 1,000" in crossing and "ahead at 5,000" in crossing and "cross" in crossing
    assert "of equal width" in crossing


def test_learning_curve_sentences_flat_curve_suggests_feature_limited():
    metrics = curve_metrics([(1000, 0.40, 0.02), (2000, 0.41, 0.02)], [(1000, 0.30), (2000, 0.31)])
    _, flat, ahead = curve_text(metrics)
    assert "no curve ends above the previous size's 95% band" in flat and "suggests" in flat
    assert "ahead at every size" in ahead


def test_learning_curve_sentences_none_for_a_single_size():
    assert curve_text(curve_metrics([(16, 0.4, 0.1)], [(16, 0.3)])) == []
