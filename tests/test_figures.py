"""Tests for analysis.figures on tiny made-up runs (no VAE, no network)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis import figures, probes
from analysis.common import VaelabError, save_npz, write_json

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MODELS = {"logreg": "Logistic Regression", "svc": "SVC", "random": "Random predictor"}
FEATURE_SETS = {"sample": (".sample()", 64), "mean_std": ("mean & std", 128)}


def fake_metrics(classes: list[str], y_test: np.ndarray, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    k = len(classes)
    results = {}
    for model in MODELS:
        results[model] = {}
        for fs in FEATURE_SETS:
            predicted = np.where(rng.random(len(y_test)) < 0.6, y_test, rng.integers(0, k, len(y_test)))
            confusion = np.zeros((k, k), dtype=int)
            np.add.at(confusion, (y_test, predicted), 1)
            results[model][fs] = {"accuracy": float(np.mean(predicted == y_test)),
                                  "confusion": confusion.tolist()}
    return {
        "classes": classes,
        "feature_sets": {key: {"label": label, "n_features": n} for key, (label, n) in FEATURE_SETS.items()},
        "models": {key: {"label": label} for key, label in MODELS.items()},
        "results": results,
        "best": {"model": "svc", "feature_set": "mean_std",
                 "accuracy": results["svc"]["mean_std"]["accuracy"]},
        "learning_curves": {"models": ["logreg"], "sizes": [6, 12, len(y_test)], "curves": {
            fs: {"logreg": [{"n_train": n, "accuracy": a, "ci": [a - 0.1, a + 0.1]}
                            for n, a in ((6, 0.4), (12, 0.5), (len(y_test), 0.6))]}
            for fs in FEATURE_SETS}},
    }


def make_run(root: Path, n_classes: int = 3, per_class: int = 8, seed: int = 0,
             separation: float = 1.0) -> tuple[Path, Path]:
    """Write dataset.npz/json and a run folder whose latent means depend on the class."""
    rng = np.random.default_rng(seed)
    classes = [f"class{c}" for c in range(n_classes)]
    arrays, lat = {}, {}
    for split in ("train", "test"):
        y = np.repeat(np.arange(n_classes), per_class).astype(np.int64)
        arrays[f"x_{split}"] = rng.integers(0, 256, (len(y), 32, 32, 3), dtype=np.uint8)
        arrays[f"y_{split}"] = y
        centres = rng.normal(0, separation, (n_classes, 4, 4, 4))
        mean = (centres[y] + rng.normal(0, 1, (len(y), 4, 4, 4))).astype(np.float32)
        std = rng.uniform(0.1, 0.5, mean.shape).astype(np.float32)
        lat[f"{split}_mean"], lat[f"{split}_std"] = mean, std
        lat[f"{split}_sample"] = mean + std * rng.normal(size=mean.shape).astype(np.float32)
        lat[f"y_{split}"] = y
    data_dir, run_dir = root / "data", root / "run"
    save_npz(data_dir / "dataset.npz", **arrays)
    write_json(data_dir / "dataset.json", {"classes": classes})
    save_npz(run_dir / "latents.npz", **lat)
    index = np.array([np.flatnonzero(arrays["y_test"] == c)[0] for c in range(min(n_classes, 10))])
    originals = arrays["x_test"][index]
    noisy = np.clip(originals.astype(int) + rng.integers(-20, 21, originals.shape), 0, 255)
    save_npz(run_dir / "reconstructions.npz", index=index, labels=arrays["y_test"][index],
             originals=originals, reconstructions=noisy.astype(np.uint8), mse=np.array([0.0123]))
    write_json(run_dir / "metrics.json", fake_metrics(classes, arrays["y_test"], seed))
    result, _ = probes.probe(lat["train_sample"], lat["test_sample"], lat["y_train"], lat["y_test"], seed)
    write_json(run_dir / "probes.json", result | {"label": ".sample()", "classes": classes})
    return run_dir, data_dir / "dataset.npz"


def run_figures(tmp_path: Path, out_name: str = "figures", **kwargs) -> Path:
    run_dir, data = make_run(tmp_path, **kwargs)
    out = tmp_path / out_name
    figures.main([str(run_dir), str(data), str(out)])
    return out


def test_figures_main_writes_all_pngs(tmp_path):
    import matplotlib.image as mpimg

    out = run_figures(tmp_path)
    for name in figures.FIGURES:
        path = out / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE, name
        pixels = mpimg.imread(path)
        assert pixels.ndim == 3 and pixels.shape[0] > 50 and pixels.shape[1] > 50, name
        assert pixels.std() > 0, f"{name} is blank"
    assert not list(out.glob(".*.tmp")), "temporary files left behind"


def test_figures_are_byte_identical_on_rerun(tmp_path):
    run_dir, data = make_run(tmp_path, per_class=60)  # enough points to overlap in the scatter
    first, second = tmp_path / "a", tmp_path / "b"
    figures.main([str(run_dir), str(data), str(first)])
    figures.main([str(run_dir), str(data), str(second)])
    for name in (*figures.FIGURES, "figures.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_kde_skips_degenerate_class(tmp_path):
    import matplotlib.image as mpimg

    rng = np.random.default_rng(1)
    features = rng.normal(size=(13, 6))
    labels = np.array([0] * 6 + [1] * 6 + [2])  # class 2 has a single point
    features[labels == 1, :] = 3.0  # class 1 is constant in every column
    features[:, 3] = 0.0  # and column 3 is constant overall
    path = tmp_path / "kde.png"
    figures.plot_kde(features, labels, ["a", "b", "c"], path)
    assert mpimg.imread(path).shape[0] > 50


def test_kde_skips_empty_class(tmp_path):
    features = np.random.default_rng(2).normal(size=(10, 4))
    labels = np.array([0] * 5 + [1] * 5)
    figures.plot_kde(features, labels, ["a", "b", "never seen"], tmp_path / "kde.png")
    assert (tmp_path / "kde.png").read_bytes()[:8] == PNG_SIGNATURE


def test_pca_ratios_are_valid_and_decreasing(tmp_path):
    out = run_figures(tmp_path, per_class=20, separation=3.0)
    summary = json.loads((out / "figures.json").read_text())["pca"]
    assert set(summary) == {"sample", "mean_std"}
    for key, entry in summary.items():
        pc1, pc2 = entry["explained_variance_ratio"]
        assert 0 < pc2 <= pc1 < 1, key
        assert pc1 + pc2 <= 1, key


def test_pca_fit_on_train_only():
    rng = np.random.default_rng(3)
    # Train varies mostly along feature 0; test along feature 1 only. A PCA fitted on train
    # puts all test points at nearly the same PC1; one fitted on test would spread them.
    train = np.zeros((50, 3))
    train[:, 0] = rng.normal(0, 5, 50)
    train[:, 1] = rng.normal(0, 0.1, 50)
    test = np.zeros((40, 3))
    test[:, 1] = rng.normal(0, 5, 40)
    points, ratios = figures.fit_pca(train, test, seed=0)
    assert points.shape == (40, 2)
    assert ratios[0] > 0.99  # train variance is almost all on feature 0
    # PC1 is (almost exactly) train's feature 0, which is constant in test.
    assert points[:, 0].std() < 0.05 * points[:, 1].std()
    assert points[:, 1].std() > 1


def test_row_normalise_handles_empty_row():
    fractions = figures.row_normalise([[3, 1], [0, 0]])
    assert np.allclose(fractions, [[0.75, 0.25], [0, 0]])


def test_many_classes_wrap_and_reconstruction_mse_scalar(tmp_path):
    run_dir, data = make_run(tmp_path, n_classes=12, per_class=3)
    recon = dict(np.load(run_dir / "reconstructions.npz"))
    recon["mse"] = np.float64(0.02)  # a 0-d array (save_npz would make it (1,))
    np.savez(run_dir / "reconstructions.npz", **recon)
    figures.main([str(run_dir), str(data), str(tmp_path / "out")])
    assert (tmp_path / "out" / "examples.png").exists()


@pytest.mark.parametrize("victim", ["latents.npz", "metrics.json", "reconstructions.npz"])
def test_missing_or_corrupt_input_is_vaelab_error(tmp_path, victim):
    run_dir, data = make_run(tmp_path)
    (run_dir / victim).write_bytes(b"garbage")
    with pytest.raises(VaelabError):
        figures.main([str(run_dir), str(data), str(tmp_path / "out")])
    (run_dir / victim).unlink()
    with pytest.raises(VaelabError):
        figures.main([str(run_dir), str(data), str(tmp_path / "out")])


def test_metrics_without_best_is_vaelab_error(tmp_path):
    run_dir, data = make_run(tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    del metrics["best"]
    write_json(run_dir / "metrics.json", metrics)
    with pytest.raises(VaelabError, match="best"):
        figures.main([str(run_dir), str(data), str(tmp_path / "out")])


def test_display_order_undoes_sorted_json_keys():
    # write_json sorts keys, so metrics.json comes back alphabetical.
    keys = sorted(["logreg", "rf", "knn", "svc", "histgb", "lightgbm", "xgboost", "random", "mlp"])
    assert figures.display_order(keys, figures.MODEL_ORDER) == [
        "logreg", "rf", "knn", "svc", "histgb", "lightgbm", "xgboost", "mlp", "random"]
    assert figures.display_order(["mean_std", "sample"], figures.FEATURE_SET_ORDER) == ["sample", "mean_std"]
    # metrics.json's own "model_order" list wins, random included.
    assert figures.display_order(keys, ["svc", "random", "knn"])[:3] == ["svc", "random", "knn"]


@pytest.mark.parametrize("shape", [(16, 4, 4), (32, 1, 1), (1, 1, 1), (4, 8, 8)])
def test_plot_probes_any_latent_shape(tmp_path, shape):
    """FLUX.1's 16 channels, DC-AE's 1x1, a single channel, RESOLUTION=64's 8x8 map."""
    import matplotlib.image as mpimg

    rng = np.random.default_rng(0)
    y_train, y_test = np.tile(np.arange(3), 10), np.tile(np.arange(3), 5)
    x_train = rng.normal(size=(30, *shape)).astype(np.float32)
    x_test = rng.normal(size=(15, *shape)).astype(np.float32)
    result, _ = probes.probe(x_train, x_test, y_train, y_test, 0)
    assert len(result["channels"]) == shape[0]
    assert [len(row) for row in result["positions"]] == [shape[2]] * shape[1]
    assert len(result["without_channel"]) == (shape[0] if shape[0] > 1 else 0)
    path = tmp_path / "probes.png"
    figures.plot_probes(result | {"label": "latent", "model_label": "Logistic Regression"}, 3, path)
    assert mpimg.imread(path).std() > 0


def test_figures_encoder_only_run_writes_a_placeholder_the_report_leaves_out(tmp_path):
    """No decoder (a TAESD checkpoint without its decoder file): no reconstructions.npz; the
    reconstructions product still exists, and figures.json says there are none to show."""
    import json

    run_dir, data = make_run(tmp_path)
    (run_dir / "reconstructions.npz").unlink()
    write_json(run_dir / "encode.json", {"model": {"name": "/m/taesana_encoder.pth", "has_decoder": False}})
    out = tmp_path / "out"
    figures.main([str(run_dir), str(data), str(out)])
    assert all((out / name).read_bytes()[:8] == PNG_SIGNATURE for name in figures.FIGURES)
    assert json.loads((out / "figures.json").read_text())["reconstructions"] is False
