"""Families of paired tests get Holm's correction, in the report and in `make diff`; a
difference is significant only on its adjusted p-value."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.stats import holm
from report.context import conclusions
from report.facts import with_holm
from report.tables import comparison_tables
from report.diff import compare, format_table


def test_holm_matches_statsmodels_on_fixture():
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.005]
    # By hand: sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> max(0.04, 0.06).
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))
    assert holm([]) == []


def test_holm_leaves_the_garbage_collector_as_it_found_it():
    import gc

    # holm freezes the heap around statsmodels' gc.collect(); nothing stays frozen after.
    assert gc.get_freeze_count() == 0
    holm([0.01, 0.2])
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_paired_bootstrap_vectorised_equals_one_call_per_resample():
    from scipy.stats import bootstrap

    from analysis.stats import N_RESAMPLES, delta_ci

    rng = np.random.default_rng(0)
    a, b = (rng.random(300) < 0.4).astype(float), (rng.random(300) < 0.5).astype(float)
    plain = bootstrap((a, b), lambda x, y: np.mean(y) - np.mean(x), paired=True,
                      n_resamples=N_RESAMPLES, method="percentile", random_state=np.random.default_rng(7))
    assert delta_ci(a, b, seed=7) == (plain.confidence_interval.low, plain.confidence_interval.high)


def comp(a: str, b: str, p: float, delta: float = 0.02) -> dict:
    return {"a": a, "b": b, "delta": delta, "ci": [delta - 0.01, delta + 0.01], "p_value": p,
            "only_a_correct": 30, "only_b_correct": 20}


def metrics_with(p_sample: list[float], p_pixels: list[float]) -> dict:
    """Three classifiers; raw p of mean & std vs .sample() and of .sample() vs pooled pixels."""
    models = ["logreg", "rf", "svc"]
    confusion = [[8, 2], [3, 7]]
    return {
        "classes": ["cat", "dog"], "model_order": [*models, "random"],
        "feature_set_order": ["sample", "mean_std", "pixels_pooled"],
        "feature_sets": {"sample": {"label": ".sample()", "n_features": 64, "kind": "vae"},
                         "mean_std": {"label": "mean & std", "n_features": 128, "kind": "vae"},
                         "pixels_pooled": {"label": "pooled", "n_features": 48, "kind": "baseline"}},
        "models": {k: {"label": k.upper(), "scaled": False, "description": ""} for k in [*models, "random"]},
        "results": {k: {fs: {"accuracy": 0.6, "confusion": confusion}
                        for fs in ("sample", "mean_std", "pixels_pooled")} | (
                            {"mean_std": {"accuracy": 0.62, "confusion": confusion}} if k != "random" else {})
                    for k in [*models, "random"]},
        "best": {"model": "svc", "feature_set": "mean_std", "accuracy": 0.62},
        "comparisons": {m: {"mean_std_vs_sample": comp("mean_std", "sample", ps),
                            "sample_vs_pixels_pooled": comp("sample", "pixels_pooled", pp)}
                        for m, ps, pp in zip(models, p_sample, p_pixels)},
    }


def test_with_holm_adjusts_each_family_on_its_own():
    metrics = with_holm(metrics_with([0.02, 0.03, 0.04], [0.001, 0.5, 0.9]))
    comps = metrics["comparisons"]
    sample = [comps[m]["mean_std_vs_sample"]["p_adjusted"] for m in ("logreg", "rf", "svc")]
    pixels = [comps[m]["sample_vs_pixels_pooled"]["p_adjusted"] for m in ("logreg", "rf", "svc")]
    assert sample == pytest.approx(holm([0.02, 0.03, 0.04]))
    assert pixels == pytest.approx(holm([0.001, 0.5, 0.9]))
    assert comps["rf"]["mean_std_vs_sample"]["family_size"] == 3
    # Raw p-values are kept as they were.
    assert comps["svc"]["mean_std_vs_sample"]["p_value"] == 0.04
    assert with_holm(metrics) == metrics  # idempotent


def test_raw_significant_but_adjusted_not_is_reported_not_significant():
    # Raw p 0.02, 0.03, 0.04 are each below 0.05; Holm gives 0.06, 0.06, 0.06.
    metrics = metrics_with([0.02, 0.03, 0.04], [0.001, 0.5, 0.9])
    tables = comparison_tables(metrics)
    assert [row["significant"] for row in tables["sample_rows"]] == [False, False, False]
    assert [row["p"] for row in tables["sample_rows"]] == ["0.020", "0.030", "0.040"]
    assert [row["p_adjusted"] for row in tables["sample_rows"]] == ["0.060", "0.060", "0.060"]
    text = " ".join(conclusions(metrics, [], untrained=True))
    assert "None of the 3 differences is significant after Holm's correction" in text
    assert "3 of the raw p-values are below 0.05" in text
    # The pixel family keeps its one real difference: 0.001 * 3 = 0.003.
    assert [row["cells"][0]["significant"] for row in tables["baseline_rows"]] == [True, False, False]
    assert tables["family_sizes"] == {"vae_vs_pixels": 3, "mean_std_vs_sample": 3}


def run(name: str, predictions: dict[str, np.ndarray], y: np.ndarray) -> dict:
    return {"name": name, "encode": {"dataset_sha256": "x", "model": {"name": name}},
            "predictions": {"y_true": y, **predictions},
            "metrics": {"model_order": ["m1", "m2"], "feature_set_order": ["sample"],
                        "feature_sets": {"sample": {"label": ".sample()", "n_features": 64}},
                        "models": {"m1": {"label": "M1"}, "m2": {"label": "M2"}}}}


def test_diff_table_is_one_holm_family():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    a = {"m1__sample": y.copy(), "m2__sample": y.copy()}
    b = {"m1__sample": y.copy(), "m2__sample": y.copy()}
    b["m1__sample"][:30] = 1 - y[:30]  # B wrong on 30 images A gets right: raw p tiny
    b["m2__sample"][:12] = 1 - y[:12]  # 12 images: raw p about 0.0005
    rows = compare(run("run-a-with-a-long-name", a, y), run("run-b", b, y))
    raw = [r["p_value"] for r in rows]
    assert [r["p_adjusted"] for r in rows] == pytest.approx(holm(raw), rel=1e-3)
    assert all(r["significant"] == (r["p_adjusted"] < 0.05) for r in rows)
    table = format_table(run("run-a-with-a-long-name", a, y), run("run-b", b, y), rows)
    assert "run-a-with-a-long-name" in table.splitlines()[2]  # not cut to 12 characters
    assert "Holm" in table


def test_proportion_ci_is_the_exact_binomial_interval():
    from analysis.stats import proportion_ci

    low, high = proportion_ci(0.1, 100)  # 10 of 100 (Clopper-Pearson: 0.0490 to 0.1762)
    assert (round(low, 4), round(high, 4)) == (0.049, 0.1762)
    assert proportion_ci(0.0, 50)[0] == 0.0 and proportion_ci(1.0, 50)[1] == 1.0
