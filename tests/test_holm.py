"""Families of paired tests get Holm's correction, in metrics.json (analysis.verdicts) and in
`make diff` (analysis.diffstats); a difference is significant only on its adjusted p-value,
and the report states the stored verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.stats import holm
from analysis.verdicts import judge, judged_comparisons
from helpers import comp
from report.context import conclusions
from report.diff import compare, format_table
from report.tables import comparison_tables


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


def metrics_with(p_sample: list[float], p_pixels: list[float]) -> dict:
    """Three classifiers; raw p of mean & std vs .sample() and of .sample() vs pooled pixels."""
    models = ["logreg", "rf", "svc"]
    confusion = [[8, 2], [3, 7]]
    return judge({
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
        "comparisons": {m: {"mean_std_vs_sample": comp("mean_std", "sample", 0.02, ps),
                            "sample_vs_pixels_pooled": comp("sample", "pixels_pooled", 0.02, pp)}
                        for m, ps, pp in zip(models, p_sample, p_pixels)},
    })


def test_verdicts_adjust_each_family_on_its_own():
    metrics = metrics_with([0.02, 0.03, 0.04], [0.001, 0.5, 0.9])
    comps = metrics["comparisons"]
    sample = [comps[m]["mean_std_vs_sample"]["p_adjusted"] for m in ("logreg", "rf", "svc")]
    pixels = [comps[m]["sample_vs_pixels_pooled"]["p_adjusted"] for m in ("logreg", "rf", "svc")]
    assert sample == pytest.approx(holm([0.02, 0.03, 0.04]))
    assert pixels == pytest.approx(holm([0.001, 0.5, 0.9]))
    assert comps["rf"]["mean_std_vs_sample"]["family_size"] == 3
    # Raw p-values are kept as they were.
    assert comps["svc"]["mean_std_vs_sample"]["p_value"] == 0.04
    assert [comps[m]["sample_vs_pixels_pooled"]["significant"] for m in ("logreg", "rf", "svc")] \
        == [True, False, False]
    assert metrics["tests"] == {"alpha": 0.05, "correction": "holm",
                                "families": {"vae_vs_pixels": 3, "mean_std_vs_sample": 3}}
    assert judged_comparisons(comps) == comps  # judging again changes nothing


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


def test_make_diff_and_the_report_agree_on_every_verdict(tmp_path, one_thread):
    """One run pair whose diff is the report's own family of tests: B's .sample() predictions
    are A's mean & std ones, so `make diff A B` (report.diff: analysis.diffstats) tests, for
    each classifier, what A's report tests as mean & std against .sample() (Table 5, from
    metrics.json's verdicts). Same p-values, Holm over the same family, the same verdicts."""
    import csv
    import shutil

    from analysis.runs import read_predictions
    from helpers import classify_run, tiny_run
    from report.diff import load_run

    a_dir = tiny_run(tmp_path, n_test=20)
    classify_run(a_dir)
    b_dir = tmp_path / "run-b"
    shutil.copytree(a_dir, b_dir)
    columns = read_predictions(a_dir)
    metrics = load_run(a_dir)["metrics"]
    real = [m for m in metrics["model_order"] if m != "random"]
    kept = {"y_true": columns["y_true"]} | {f"{m}__sample": columns[f"{m}__mean_std"] for m in real}
    with open(b_dir / "predictions.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(kept)
        writer.writerows(zip(*kept.values()))

    a, b = load_run(a_dir), load_run(b_dir)
    for run in (a, b):
        run["encode"]["model"]["name"] = run["name"]  # tiny_run's encode.json names no model
    rows = compare(a, b, seed=metrics["seed"])
    stored = [metrics["comparisons"][m]["mean_std_vs_sample"] for m in real]
    assert [r["model"] for r in rows] == [metrics["models"][m]["label"] for m in real]
    for key in ("delta", "ci", "p_value", "p_adjusted", "significant", "family_size"):
        assert [r[key] for r in rows] == [c[key] for c in stored], key
    report_rows = comparison_tables(metrics)["sample_rows"]
    assert [r["significant"] for r in report_rows] == [r["significant"] for r in rows]
    # The diff's table marks exactly those rows, at the level metrics.json records.
    table = format_table(a, b, rows).splitlines()
    marked = [line.endswith(" *") for line in table[4:4 + len(rows)]]
    assert marked == [r["significant"] for r in rows]
    assert f"p < {metrics['tests']['alpha']}" in table[-1]
