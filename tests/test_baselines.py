"""Pixel baselines, bootstrap intervals and paired tests (analysis.classify, analysis.stats).

Run:
    .venv/bin/python -m pytest -q tests/test_baselines.py
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis import classify, stats
from analysis.autoencoders import BASELINES, CLASSES, COMPARISONS
from analysis.baselines import pixel_features
from analysis.common import VaelabError, save_npz
from helpers import classify_run, comp, kl_metrics, tiny_run

pytestmark = pytest.mark.usefixtures("one_thread")
WIDTHS = {"sample": 64, "mean_std": 128}
# What an AutoencoderKL yields, the pixel baselines matched to it and the comparisons it gets.
FEATURE_SETS = CLASSES["AutoencoderKL"].feature_sets
KL_BASELINES = [b for b, matches in BASELINES.items() if matches is None or matches in FEATURE_SETS]
KL_COMPARISONS = {name: (a, b) for name, (a, b) in COMPARISONS.items()
                  if a in FEATURE_SETS and (b in FEATURE_SETS or b in KL_BASELINES)}


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


# ---- pixel features -----------------------------------------------------------------------------

def test_baselines_never_see_test_images():
    x_train = images(200, 0)
    train_a, test_a = pixel_features(x_train, images(40, 1), WIDTHS, seed=0)
    # Same training images, entirely different test images (noise of another range).
    other = np.random.default_rng(2).integers(100, 120, (7, 32, 32, 3), dtype=np.uint8)
    train_b, test_b = pixel_features(x_train, other, WIDTHS, seed=0)
    assert set(train_a) == set(KL_BASELINES)
    for key in KL_BASELINES:
        np.testing.assert_array_equal(train_a[key], train_b[key], err_msg=key)
    assert test_b["pixels_pca_sample"].shape == (7, 64)


def test_baseline_test_features_are_the_train_fitted_transform():
    from sklearn.decomposition import PCA

    x_train, x_test = images(150, 3), images(30, 4)
    train, test = pixel_features(x_train, x_test, WIDTHS, seed=0)
    # Test images that are copies of training images get exactly their training features...
    _, again = pixel_features(x_train, x_train[:5], WIDTHS, seed=0)
    for key in KL_BASELINES:
        np.testing.assert_allclose(again[key], train[key][:5], rtol=1e-5, atol=1e-5, err_msg=key)
    # ...and every test feature is the projection by a PCA fitted on the training pixels alone.
    flat = x_train.reshape(150, -1).astype(np.float32) / 255
    pca = PCA(n_components=64, random_state=0).fit(flat)
    np.testing.assert_allclose(pca.mean_, flat.mean(axis=0), atol=1e-6)
    expected = pca.transform(x_test.reshape(30, -1).astype(np.float32) / 255)
    np.testing.assert_allclose(test["pixels_pca_sample"], expected, rtol=1e-4, atol=1e-4)


def test_pooled_shape_and_hand_checked_value():
    x = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    x[0, :8, :8, 0] = np.arange(64, dtype=np.uint8).reshape(8, 8)  # block (0, 0), red: mean 31.5
    x[0, 8:16, 16:24, 1] = 255  # block (1, 2), green: mean 255
    x[1] = 51  # every block of every channel: 51/255 = 0.2
    train, test = pixel_features(x, x, WIDTHS, seed=0)
    pooled = train["pixels_pooled"]
    assert pooled.shape == (2, 48) and test["pixels_pooled"].shape == (2, 48)
    # Flattened (row, column, channel): index (r * 4 + c) * 3 + channel.
    assert pooled[0, 0] == pytest.approx(31.5 / 255)
    assert pooled[0, (1 * 4 + 2) * 3 + 1] == pytest.approx(1.0)
    assert np.count_nonzero(pooled[0]) == 2
    np.testing.assert_allclose(pooled[1], 0.2, rtol=1e-6)


def test_pca_components_capped_for_tiny_subsets():
    train, test = pixel_features(images(12, 5), images(9, 6), WIDTHS, seed=0)
    assert train["pixels_pca_sample"].shape == (12, 12)
    assert train["pixels_pca_mean_std"].shape == (12, 12)
    assert test["pixels_pca_mean_std"].shape == (9, 12)
    full, _ = pixel_features(images(200, 5), images(3, 6), WIDTHS, seed=0)
    assert full["pixels_pca_sample"].shape == (200, 64)
    assert full["pixels_pca_mean_std"].shape == (200, 128)


# ---- a real classify run on tiny data -------------------------------------------------------------

@pytest.fixture(scope="module")
def metrics(tiny_classified) -> dict:
    return json.loads((tiny_classified / "metrics.json").read_text())


def test_classify_records_baseline_feature_sets(metrics):
    assert metrics["feature_set_order"] == [*FEATURE_SETS, *KL_BASELINES]
    kinds = {fs: info["kind"] for fs, info in metrics["feature_sets"].items()}
    assert kinds == {"sample": "vae", "mean_std": "vae", "pixels_pooled": "baseline",
                     "pixels_pca_sample": "baseline", "pixels_pca_mean_std": "baseline"}
    # 36 training images: both PCA baselines are capped at 36 components.
    assert [metrics["feature_sets"][fs]["n_features"] for fs in KL_BASELINES] == [48, 36, 36]
    assert metrics["best"]["feature_set"] in FEATURE_SETS  # best is over the VAE only


def test_made_up_metrics_hold_only_fields_of_a_real_metrics_json(metrics):
    """The report tests' made-up metrics (helpers.kl_metrics) against build_metrics' own, level
    by level: a field renamed or dropped in metrics.json fails here, not silently there."""
    made = kl_metrics({"svc": (0.4, 0.5)}, comparisons={"svc": {
        "sample_vs_pixels_pooled": comp("sample", "pixels_pooled", 0.1, 0.001)}})
    levels = [(made, metrics), (made["results"]["svc"]["sample"], metrics["results"]["svc"]["sample"]),
              (made["comparisons"]["svc"]["sample_vs_pixels_pooled"],
               metrics["comparisons"]["svc"]["sample_vs_pixels_pooled"]),
              (made["feature_sets"]["pixels_pca_sample"], metrics["feature_sets"]["pixels_pca_sample"]),
              (made["best"], metrics["best"]), (made["tests"], metrics["tests"])]
    for fake, real in levels:
        assert set(fake) <= set(real), set(fake) - set(real)
    # The verdicts a report states are stored: adjusted p and significance beside each raw p.
    for per in metrics["comparisons"].values():
        for c in per.values():
            assert c["p_value"] <= c["p_adjusted"] <= 1 and c["significant"] == (c["p_adjusted"] < 0.05)
    assert metrics["tests"]["alpha"] == 0.05 and sum(metrics["tests"]["families"].values()) == \
        sum(len(per) for per in metrics["comparisons"].values())


def test_intervals_contain_their_point_estimates(metrics):
    n_results = 0
    for model, per_fs in metrics["results"].items():
        assert set(per_fs) == set(metrics["feature_set_order"]), model
        for fs, res in per_fs.items():
            low, high = res["accuracy_ci"]
            assert 0 <= low <= res["accuracy"] <= high <= 1, (model, fs, res["accuracy_ci"])
            n_results += 1
    assert n_results == len(classify.MODELS) * 5


def test_comparisons_present_with_valid_p_values(metrics):
    real = [m.key for m in classify.MODELS if m.key != "random"]
    assert sorted(metrics["comparisons"]) == sorted(real)
    for model in real:
        per = metrics["comparisons"][model]
        assert set(per) == set(KL_COMPARISONS)
        for name, comp in per.items():
            a, b = KL_COMPARISONS[name]
            assert (comp["a"], comp["b"]) == (a, b)
            assert 0 <= comp["p_value"] <= 1
            assert comp["ci"][0] <= comp["delta"] <= comp["ci"][1], (model, name)
            acc = metrics["results"][model]
            assert comp["delta"] == pytest.approx(acc[a]["accuracy"] - acc[b]["accuracy"], abs=2e-4)
            # Images only a / only b gets right explain the whole accuracy difference.
            n_test = metrics["n_test"]
            assert comp["delta"] == pytest.approx(
                (comp["only_a_correct"] - comp["only_b_correct"]) / n_test, abs=1e-4)


def test_classify_rejects_dataset_of_other_images(tmp_path):
    run = tiny_run(tmp_path)
    data = dict(np.load(tmp_path / "data" / "dataset.npz"))
    data["y_test"] = data["y_test"][::-1].copy()
    save_npz(tmp_path / "data" / "dataset.npz", **data)
    with pytest.raises(VaelabError, match="does not match the latents"):
        classify_run(run)
    assert not (run / "metrics.json").exists()


# ---- analysis.stats on hand-made vectors ------------------------------------------------------------

def test_mcnemar_exact_matches_the_binomial_test():
    # b = 0 images only A gets right, c = 6 only B: p = 2 * 0.5**6 = 0.03125.
    a = np.array([1] * 10 + [0] * 6 + [0] * 4, dtype=bool)
    b = np.array([1] * 10 + [1] * 6 + [0] * 4, dtype=bool)
    result = stats.mcnemar_exact(a, b)
    assert (result["only_a_correct"], result["only_b_correct"]) == (0, 6)
    assert result["p_value"] == pytest.approx(0.03125)
    # b = 1, c = 5: p = 2 * (1 + 6) / 64 = 0.21875.
    a[10] = True
    b[10] = False
    b[11:16] = True
    assert stats.mcnemar_exact(a, b)["p_value"] == pytest.approx(0.21875)
    assert stats.mcnemar_exact(a, a)["p_value"] == 1.0


def test_delta_and_accuracy_intervals_contain_the_observed_values():
    rng = np.random.default_rng(0)
    a = rng.random(300) < 0.55
    b = rng.random(300) < 0.65
    low, high = stats.delta_ci(a, b, seed=0)
    assert low < b.mean() - a.mean() < high
    assert high - low < 0.3
    low, high = stats.accuracy_ci(b, seed=0)
    assert low < b.mean() < high
    assert stats.accuracy_ci(np.ones(10, dtype=bool), seed=0) == (1.0, 1.0)
