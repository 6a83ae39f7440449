"""Tests for analysis.classify on small made-up latents (no VAE needed)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from analysis import classify, models
from analysis.autoencoders import BASELINES, CLASSES, feature_sets
from analysis.classify import metrics_csv, predictions_csv, train_and_score
from analysis.verdicts import best
from analysis.models import MODELS, check_latents, score
from analysis.common import VaelabError, save_npz, write_json

pytestmark = pytest.mark.usefixtures("one_thread")
SPECS = {spec.key: spec for spec in MODELS}
# What an AutoencoderKL yields, and the pixel baselines matched to it.
FEATURE_SETS = CLASSES["AutoencoderKL"].feature_sets
KL_BASELINES = [b for b, matches in BASELINES.items() if matches is None or matches in FEATURE_SETS]


def separable_latents(n_classes: int = 3, per_class: int = 30, n_test_per_class: int = 10,
                      seed: int = 0, gap: float = 10.0) -> dict[str, np.ndarray]:
    """(N, 4, 4, 4) latents whose class means are `gap` apart in every dimension."""
    rng = np.random.default_rng(seed)
    latents = {}
    for split, k in (("train", per_class), ("test", n_test_per_class)):
        y = np.repeat(np.arange(n_classes), k).astype(np.int64)
        mean = (gap * y[:, None, None, None] + rng.normal(0, 1, (len(y), 4, 4, 4))).astype(np.float32)
        std = rng.uniform(0.1, 0.5, mean.shape).astype(np.float32)
        latents[f"{split}_mean"], latents[f"{split}_std"] = mean, std
        latents[f"{split}_sample"] = (mean + std * rng.normal(size=mean.shape)).astype(np.float32)
        latents[f"y_{split}"] = y
    return latents


# ---- feature sets ---------------------------------------------------------------------------

def test_feature_sets_shapes_and_layout():
    mean = np.arange(2 * 64, dtype=np.float32).reshape(2, 4, 4, 4)
    latents = {"train_mean": mean, "train_std": mean + 1000, "train_sample": -mean,
               "y_train": np.array([0, 1])}
    fs = feature_sets(latents, "train")
    assert set(fs) == set(FEATURE_SETS)
    assert fs["sample"].shape == (2, 64) and fs["mean_std"].shape == (2, 128)
    # Flattened in C order (channel first), mean first, then std.
    np.testing.assert_array_equal(fs["mean_std"][0, :64], np.arange(64))
    np.testing.assert_array_equal(fs["mean_std"][0, 64:], np.arange(64) + 1000)
    np.testing.assert_array_equal(fs["mean_std"][1, :64], np.arange(64, 128))
    np.testing.assert_array_equal(fs["sample"][1], -np.arange(64, 128))
    assert fs["mean_std"][0, 16] == mean[0, 1, 0, 0]


# ---- scoring --------------------------------------------------------------------------------

def test_score_hand_computed_values():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    res = score(y_true, y_pred, ["a", "b", "c"])
    assert res["accuracy"] == round(4 / 6, 4)
    assert res["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # a: precision 1/2, recall 1/2; b: precision 2/3, recall 2/2; c: precision 1/1, recall 1/2
    assert res["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert res["per_class"]["b"] == {"precision": 0.6667, "recall": 1.0, "f1": 0.8, "support": 2}
    assert res["per_class"]["c"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert res["precision_macro"] == round((0.5 + 2 / 3 + 1) / 3, 4)
    assert res["recall_macro"] == round((0.5 + 1 + 0.5) / 3, 4)
    assert res["f1_macro"] == round((0.5 + 0.8 + 2 / 3) / 3, 4)


def test_score_class_never_seen_gets_zero_and_full_confusion():
    res = score(np.array([0, 1]), np.array([0, 1]), ["a", "b", "c"])
    assert res["accuracy"] == 1.0
    assert res["confusion"] == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert res["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_best_ignores_random_prefers_the_earlier_model_and_names_its_ties():
    results = {
        "random": {"sample": {"accuracy": 0.99}, "mean_std": {"accuracy": 0.98}},
        "logreg": {"sample": {"accuracy": 0.5}, "mean_std": {"accuracy": 0.6}},
        "svc": {"sample": {"accuracy": 0.6}, "mean_std": {"accuracy": 0.4}},
    }
    metrics = {"model_order": ["logreg", "svc", "random"], "results": results}
    assert best(metrics, ["sample", "mean_std"]) == {
        "model": "logreg", "feature_set": "mean_std", "accuracy": 0.6,
        "ties": [{"model": "svc", "feature_set": "sample"}]}
    results["svc"]["mean_std"]["accuracy"] = 0.61
    assert best(metrics, ["sample", "mean_std"]) == {
        "model": "svc", "feature_set": "mean_std", "accuracy": 0.61, "ties": []}
    assert best(metrics, ["sample"])["model"] == "svc"


# ---- training -------------------------------------------------------------------------------

FAST = (SPECS["logreg"], SPECS["rf"], SPECS["random"])


def test_train_and_score_separable_data():
    latents = separable_latents()
    classes = ["a", "b", "c"]
    results, predictions, timings = train_and_score(latents, classes, seed=0, models=FAST)
    assert set(results) == {"logreg", "rf", "random"}
    for fs in FEATURE_SETS:
        assert results["logreg"][fs]["accuracy"] > 0.9
        assert results["rf"][fs]["accuracy"] > 0.9
        assert sum(map(sum, results["logreg"][fs]["confusion"])) == 30
    assert set(predictions) == {f"{m}__{fs}" for m in results for fs in FEATURE_SETS}
    for pred in predictions.values():
        assert pred.shape == (30,) and pred.dtype == np.int64
        assert set(np.unique(pred)) <= {0, 1, 2}
    # One record per model and feature set; a forest of 100 trees takes measurable time.
    assert {(m, fs) for m in timings for fs in timings[m]} == {(m, fs) for m in results for fs in FEATURE_SETS}
    assert all(math.isfinite(t[k]) for per in timings.values() for t in per.values()
               for k in ("fit_seconds", "predict_seconds"))
    assert timings["rf"]["sample"]["fit_seconds"] > 0


def test_train_and_score_deterministic_for_a_seed():
    latents = separable_latents(gap=0.3)  # overlapping classes, so the seed could matter
    _, first, _ = train_and_score(latents, ["a", "b", "c"], seed=3, models=FAST)
    _, second, _ = train_and_score(latents, ["a", "b", "c"], seed=3, models=FAST)
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def test_train_and_score_worker_processes_give_the_same_results():
    latents = separable_latents(gap=0.3)
    models = (SPECS["svc"], SPECS["logreg"], SPECS["rf"], SPECS["random"])
    one = train_and_score(latents, ["a", "b", "c"], seed=3, models=models, n_jobs=1)
    two = train_and_score(latents, ["a", "b", "c"], seed=3, models=models, n_jobs=2)
    assert one[0] == two[0]  # every metric, in model order
    assert list(one[0]) == ["svc", "logreg", "rf", "random"]
    assert one[1].keys() == two[1].keys()
    for key in one[1]:
        np.testing.assert_array_equal(one[1][key], two[1][key], err_msg=key)


def test_train_and_score_seed_reaches_the_models():
    latents = separable_latents()
    _, a, _ = train_and_score(latents, ["a", "b", "c"], seed=0, models=(SPECS["random"],))
    _, b, _ = train_and_score(latents, ["a", "b", "c"], seed=1, models=(SPECS["random"],))
    assert not np.array_equal(a["random__sample"], b["random__sample"])


def test_make_model_knn_uses_at_most_n_train_neighbours():
    model = models.make_model("knn", 0, n_train=6)
    assert model[-1].n_neighbors == 6
    assert models.make_model("knn", 0, n_train=1000)[-1].n_neighbors == 25


def test_make_model_unknown_key():
    with pytest.raises(ValueError):
        models.make_model("perceptron", 0, 10)


def test_models_cover_every_make_model_key():
    from sklearn.exceptions import NotFittedError
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils.validation import check_is_fitted

    for spec in MODELS:
        model = models.make_model(spec.key, 0, 50)
        with pytest.raises(NotFittedError):  # a fresh estimator, not a shared fitted one
            check_is_fitted(model)
        # The scaled models (the tables' "scaled" column) standardise first, the others do not.
        first = model.steps[0][1] if hasattr(model, "steps") else model
        assert isinstance(first, StandardScaler) == spec.scaled, spec.key


# ---- checks and CSVs --------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_latents_rejects_non_finite(bad):
    latents = separable_latents(per_class=2, n_test_per_class=2)
    latents["test_std"][1, 2, 3, 0] = bad
    with pytest.raises(VaelabError, match="1 NaN/Inf values in test_std"):
        check_latents(latents)


def test_check_latents_accepts_finite():
    check_latents(separable_latents(per_class=2, n_test_per_class=2))


def test_metrics_csv_header_and_rows():
    res = {"accuracy": 0.5, "precision_macro": 0.25, "recall_macro": 1 / 3, "f1_macro": 1.0}
    results = {m: {fs: res for fs in FEATURE_SETS} for m in ("logreg", "svc")}
    rows = list(csv.reader(io.StringIO(metrics_csv(results))))
    assert rows[0] == ["model", "feature_set", "accuracy", "precision_macro", "recall_macro", "f1_macro"]
    assert len(rows) == 1 + 2 * len(FEATURE_SETS)
    assert rows[1] == ["logreg", "sample", "0.5000", "0.2500", "0.3333", "1.0000"]
    assert [r[:2] for r in rows[1:]] == [["logreg", "sample"], ["logreg", "mean_std"],
                                         ["svc", "sample"], ["svc", "mean_std"]]


def test_predictions_csv_header_and_rows():
    y_test = np.array([2, 0, 1])
    predictions = {"logreg__sample": np.array([2, 0, 0]), "rf__mean_std": np.array([1, 0, 1])}
    rows = list(csv.reader(io.StringIO(predictions_csv(y_test, predictions))))
    assert rows[0] == ["index", "y_true", "logreg__sample", "rf__mean_std"]
    assert len(rows) == 1 + 3
    assert rows[1] == ["0", "2", "2", "1"]
    assert rows[3] == ["2", "1", "0", "1"]


# ---- main -------------------------------------------------------------------------------------

def make_run_dir(root: Path, latents: dict[str, np.ndarray], classes: list[str], seed: int = 0) -> Path:
    """run/{latents.npz,config.json,encode.json} and data/dataset.npz with matching labels."""
    run = root / "run"
    save_npz(run / "latents.npz", **latents)
    write_json(run / "config.json", {"seed": seed})
    write_json(run / "encode.json", {"classes": classes})
    rng = np.random.default_rng(seed)
    images = {}
    for split in ("train", "test"):
        y = latents[f"y_{split}"]
        # Class-dependent brightness, so that the pixel baselines have something to learn.
        base = (40 + 60 * y).clip(0, 200)[:, None, None, None]
        images[f"x_{split}"] = (base + rng.integers(0, 50, (len(y), 32, 32, 3))).astype(np.uint8)
        images[f"y_{split}"] = y
    save_npz(root / "data" / "dataset.npz", **images)
    return run


def classify_args(run: Path) -> list[str]:
    """Fit the run's pixel baselines (analysis.baselines); the arguments of analysis.classify."""
    from analysis import baselines

    data = run.parent / "data" / "dataset.npz"
    baselines.main([str(data), str(run.parent / "baselines"), str(run / "baselines.json"),
                    "--latents", str(run / "latents.npz")])
    return [str(run / "latents.npz"), str(data), str(run / "metrics.json"),
            "--baselines", str(run / "baselines.json")]


def test_classify_main_writes_metrics_for_every_model(tmp_path):
    latents = separable_latents(per_class=10, n_test_per_class=4)
    run = make_run_dir(tmp_path, latents, ["a", "b", "c"])
    classify.main(classify_args(run))

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["model_order"] == [m.key for m in MODELS]
    all_sets = list(FEATURE_SETS) + KL_BASELINES
    assert metrics["feature_set_order"] == all_sets  # VAE first, then the pixel baselines
    assert set(metrics["results"]) == {m.key for m in MODELS}
    for model in metrics["results"].values():
        assert set(model) == set(all_sets)
    assert metrics["feature_sets"]["sample"]["n_features"] == 64
    assert metrics["feature_sets"]["mean_std"]["n_features"] == 128
    assert metrics["feature_sets"]["pixels_pooled"]["n_features"] == 48
    # 30 training images: the PCA baselines are capped at 30 components.
    assert metrics["feature_sets"]["pixels_pca_sample"]["n_features"] == 30
    assert metrics["feature_sets"]["pixels_pca_mean_std"]["n_features"] == 30
    assert {fs["kind"] for fs in metrics["feature_sets"].values()} == {"vae", "baseline"}
    assert metrics["best"]["feature_set"] in FEATURE_SETS
    assert (metrics["n_train"], metrics["n_test"], metrics["seed"]) == (30, 12, 0)
    assert metrics["best"]["model"] != "random"
    assert metrics["best"]["accuracy"] > 0.9

    rows = list(csv.reader(io.StringIO((run / "metrics.csv").read_text())))
    assert len(rows) == 1 + len(MODELS) * len(all_sets)
    preds = list(csv.reader(io.StringIO((run / "predictions.csv").read_text())))
    assert len(preds) == 1 + 12 and len(preds[0]) == 2 + len(MODELS) * len(all_sets)
    assert set(json.loads((run / "timings-classify.json").read_text())) == {m.key for m in MODELS}
    record = json.loads((run / "classify.json").read_text())
    assert record["from_cache"] is False
    # The SVC implementation (config.json has no SVC: auto) is named and keys the results.
    assert metrics["svc"] == record["key_fields"]["svc"] == models.svc_implementation("auto")
    assert metrics["models"]["svc"]["description"].endswith(metrics["svc"]["label"])


def test_classify_main_rejects_nan_latents(tmp_path):
    latents = separable_latents(per_class=2, n_test_per_class=2)
    latents["train_mean"][0, 0, 0, 0] = np.nan
    run = make_run_dir(tmp_path, latents, ["a", "b", "c"])
    with pytest.raises(VaelabError, match="NaN"):
        classify.main(classify_args(run))
    assert not (run / "metrics.json").exists()


def test_classify_main_rejects_single_class(tmp_path):
    latents = separable_latents(n_classes=1, per_class=4, n_test_per_class=2)
    run = make_run_dir(tmp_path, latents, ["a"])
    with pytest.raises(VaelabError, match="fewer than two classes"):
        classify.main(classify_args(run))


def test_classify_main_missing_key_in_latents(tmp_path):
    latents = separable_latents(per_class=2, n_test_per_class=2)
    del latents["test_std"]
    run = make_run_dir(tmp_path, latents, ["a", "b", "c"])
    with pytest.raises(VaelabError, match="lacks test_std"):
        classify.main(classify_args(run))
