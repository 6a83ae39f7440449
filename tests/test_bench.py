"""Encoding paths agree with the plain diffusers loop; the benchmark writes its figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from analysis.bench import CIFAR_ZIP, bench_classes, main as bench_main, relative_error, stage_wall
from analysis.common import VaelabError
from analysis.encode import Encoder, to_model_input
from analysis.vae import load_vae, resolve_model


def images(n: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def test_encoder_fp32_matches_plain_diffusers_loop(tiny_vae):
    vae = load_vae(resolve_model(str(tiny_vae)))
    x = images(16)
    with torch.no_grad():
        plain = vae.encode(to_model_input(x, "cpu")).latent_dist
    mean, std = Encoder(load_vae(resolve_model(str(tiny_vae))), "cpu", "fp32").encode(x)
    assert relative_error(plain.mean, mean) < 1e-5
    assert relative_error(plain.std, std) < 1e-5


def test_encoder_bf16_latents_within_2e_2_of_fp32(tiny_vae):
    x = images(16)
    ref_mean, ref_std = Encoder(load_vae(resolve_model(str(tiny_vae))), "cpu", "fp32").encode(x)
    bf_mean, bf_std = Encoder(load_vae(resolve_model(str(tiny_vae))), "cpu", "bf16").encode(x)
    assert bf_mean.dtype == torch.float32  # returned in float32 whatever the compute precision
    assert 0 < relative_error(ref_mean, bf_mean) < 2e-2
    assert relative_error(ref_std, bf_std) < 2e-2


def test_relative_error_is_relative():
    a = torch.tensor([3.0, 4.0])
    assert relative_error(a, a) == 0
    assert abs(relative_error(a, a * 1.01) - 0.01) < 1e-6


def test_bench_main_writes_ratios_and_classifier_times(tiny_vae, tmp_path):
    out = tmp_path / "bench.json"
    bench_main([str(out), "--model", str(tiny_vae), "--images", "16", "--batch-size", "8",
                "--reps", "1", "--rows", "300", "--class-images", "0", "--no-compile",  # compile: test_encode
                "--tune-models", "logreg"])  # the cheapest search; at full size: svc lightgbm
    result = json.loads(out.read_text())
    enc = result["encoder"]
    assert enc["untrained"] is True and "same FLOPs" in enc["note"]
    assert enc["ratio_vs_plain"]["plain_fp32"] == 1.0
    assert enc["images_per_second"]["vaelab_fp32"] > 0
    assert enc["default_path"] in enc["images_per_second"]
    classifiers = result["classifiers"]
    assert set(classifiers["seconds"]) >= {"logreg", "svc", "xgboost", "random"}
    assert set(classifiers["seconds"]["svc"]) == {"64", "128"}
    # Both SVC implementations side by side on the same features; the totals count SVC=auto's.
    svc = classifiers["svc"]["64"]
    assert svc["libsvm"]["fit_seconds"] > 0 and 0 <= svc["libsvm"]["accuracy"] <= 1
    default = classifiers["svc_default"]["implementation"]
    assert classifiers["seconds"]["svc"]["64"]["fit_seconds"] == svc[default]["fit_seconds"]
    if default == "onedal":
        assert svc["onedal"]["support_vectors"] > 0 and 0.9 <= svc["agreement"] <= 1
    # CIFAR-like features where the shared JPEG set is at hand, and it says which.
    expected = "CIFAR-10 JPEG" if CIFAR_ZIP.is_file() else "Gaussian mixture"
    assert expected in classifiers["features"] and classifiers["test_rows"] == 100
    # Learning curves and probes timed beside the classifiers, as a share of them.
    assert set(classifiers["curves"]["64"]) == {"logreg", "lightgbm"}
    assert classifiers["curves_seconds"] == pytest.approx(
        sum(v for per in classifiers["curves"].values() for v in per.values()), abs=0.02)
    assert classifiers["curves_ratio"] == pytest.approx(
        classifiers["curves_seconds"] / classifiers["classifier_seconds"], abs=1e-3)
    assert classifiers["probes_seconds"] > 0
    # TUNE's search beside the default fit of the same model, on the same features.
    tune = result["tune"]
    assert tune["models"] == ["logreg"] and set(tune["widths"]) == {"64", "128"}
    for r in (tune["widths"][w]["logreg"] for w in ("64", "128")):
        assert r["search_seconds"] > 0 and r["default_seconds"] > 0 and r["params"]["C"] in (0.01, 0.1, 1.0, 10.0)
        assert r["tune_seconds"] == pytest.approx(r["search_seconds"] + (r["refit_seconds"] if r["refit_needed"] else 0),
                                                  abs=0.02)
    # The pooled-pixel baseline timed too: every model on its 48 features.
    assert classifiers["pooled"]["features"] == 48 and set(classifiers["pooled"]["seconds"]) == {
        "logreg", "rf", "knn", "svc", "histgb", "lightgbm", "xgboost", "random"}
    pooled = sum(t["fit_seconds"] + t["predict_seconds"] for t in classifiers["pooled"]["seconds"].values())
    # 100 rows: fit_all fits in-process, one after the other, so each stage's wall is its sum.
    assert classifiers["classifier_wall_seconds"] == pytest.approx(classifiers["classifier_seconds"], abs=0.02)
    assert classifiers["baseline_wall_seconds"] == pytest.approx(classifiers["classifier_seconds"] + pooled, abs=0.05)
    # Both sides count the VAE sets and their equal-width PCAs: the default run fits, curves and
    # probes them (and fits the pooled pixels); TUNE searches and refits them.
    stage = (classifiers["classifier_wall_seconds"] + classifiers["baseline_wall_seconds"]
             + 2 * classifiers["curves_seconds"] + classifiers["probes_seconds"])
    assert tune["stage_seconds"] == pytest.approx(stage, abs=1e-2)
    assert tune["stage_ratio"] == pytest.approx(2 * tune["tune_seconds"] / stage, abs=1e-3)
    assert tune["fits_ratio"] == pytest.approx(tune["tune_seconds"] / classifiers["classifier_seconds"], abs=1e-3)
    # One model tuned: its part is the whole ratio (up to each width's time rounded to 0.01 s).
    assert set(tune["model_stage_ratios"]) == {"logreg"}
    assert tune["model_stage_ratios"]["logreg"] == pytest.approx(tune["stage_ratio"], abs=2 * 2 * 0.005 / stage + 2e-3)
    assert result["peak_rss_mb"] > 0


def test_stage_wall_puts_libsvm_fits_side_by_side_longest_first():
    def t(seconds):
        return {"fit_seconds": seconds, "predict_seconds": 0.0}

    sets = [{"svc": t(4.0), "rf": t(1.0)}, {"svc": t(6.0), "rf": t(2.0)}, {"svc": t(3.0)}]
    # Two workers: 6 on one, 4 then 3 on the other (7); the rest one after the other (3).
    assert stage_wall(sets, True, 2) == pytest.approx(10.0)
    assert stage_wall(sets, True, 1) == pytest.approx(16.0)
    assert stage_wall(sets, False, 2) == pytest.approx(16.0)  # oneDAL: in-process, one at a time
    assert stage_wall([{"rf": t(1.0)}], True, 2) == pytest.approx(1.0)


def test_bench_tune_part_runs_alone(tmp_path):
    """BENCH_PARTS=tune: no model needed, only the tuning figures written."""
    out = tmp_path / "bench.json"
    bench_main([str(out), "--parts", "tune", "--rows", "100", "--tune-models", "logreg"])
    result = json.loads(out.read_text())
    assert result["parts"] == ["tune"] and result["encoder"] is None and result["tune"]["ratio"] > 0
    assert "stage_ratio" not in result["tune"]  # no classifier part to set it against
    with pytest.raises(VaelabError, match="unknown part"):
        bench_main([str(out), "--parts", "tuning"])


def test_bench_classes_times_each_encoder_class(tmp_path):
    archs = {"KL": "tiny", "KL 16": "tiny-kl16", "Tiny": "tiny-taesd", "DC": "tiny-dc"}
    result = bench_classes(4, 2, 1, tmp_path, archs)
    shapes = {name: c["latent_shape"] for name, c in result["classes"].items()}
    assert shapes == {"KL": [4, 4, 4], "KL 16": [16, 4, 4], "Tiny": [4, 4, 4], "DC": [8, 1, 1]}
    assert all(c["images_per_second"] > 0 for c in result["classes"].values())
    assert "same FLOPs" in result["note"]
