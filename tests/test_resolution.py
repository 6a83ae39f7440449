"""RESOLUTION: images upsampled before encoding, one run per (VAE, resolution), compared in the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis import config
from analysis.common import VaelabError, load_npz, sha256_json
from helpers import copy_build, make_vars, run_make

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- RESOLUTION validation ---------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [("32", 32), ("64", 64), (" 128 ", 128), ("", 32)])
def test_parse_resolution_accepts_multiples_of_eight(text, expected):
    assert config.parse_resolution(text) == expected


@pytest.mark.parametrize("text", ["abc", "64.0", "16", "60", "0", "520", "1024"])
def test_parse_resolution_rejects_others_with_one_line(text):
    with pytest.raises(VaelabError, match="RESOLUTION") as err:
        config.parse_resolution(text)
    assert "\n" not in str(err.value)


def test_run_config_records_resolution_and_old_stamps_mean_32(tmp_path):
    out = tmp_path / "config.json"
    config.main(["run", "--vae", "owner/model", "--resolution", "64", "--out", str(out)])
    assert config.load_run_config(out).resolution == 64
    old = json.loads(out.read_text())
    del old["resolution"]  # a stamp written before RESOLUTION existed
    out.write_text(json.dumps(old))
    assert config.load_run_config(out).resolution == 32


@pytest.mark.e2e
def test_make_rejects_non_numeric_resolution(tmp_path):
    proc = run_make("report", *make_vars(tmp_path / "b", tmp_path / "vae", tmp_path / "images", 3),
                    "RESOLUTION=64 big", check=False)
    assert proc.returncode != 0 and "RESOLUTION" in proc.stderr
    assert not (tmp_path / "b").exists()


# ---- encoding at 32 and 64 px ----------------------------------------------------------------

@pytest.fixture(scope="module")
def encoded(one_thread, tiny_vae, small_dataset, tmp_path_factory):
    """The 30/30-image synthetic set encoded without the option, at 32 and at 64 (one cache)."""
    from analysis import encode

    root = tmp_path_factory.mktemp("resolution")
    runs = {}
    for name, extra in (("default", []), ("r32", ["--resolution", "32"]),
                        ("r64", ["--resolution", "64"])):
        cfg = root / name / "config.json"
        config.main(["run", "--vae", str(tiny_vae), "--device", "cpu", "--precision", "fp32",
                     "--batch-size", "16", *extra, "--out", str(cfg)])
        encode.main([str(cfg), str(small_dataset), str(root / name / "latents.npz"),
                     "--cache", str(root / "cache")])
        runs[name] = root / name
    return runs


def test_encode_at_64_gives_8x8_latents_and_wider_feature_sets(encoded):
    from analysis.classify import feature_sets

    latents = load_npz(encoded["r64"] / "latents.npz", "latents")
    for key in ("train_mean", "train_std", "train_sample", "test_mean", "test_std", "test_sample"):
        assert latents[key].shape == (30, 4, 8, 8), key
        assert np.isfinite(latents[key]).all(), key
    widths = {fs: x.shape for fs, x in feature_sets(latents, "train").items()}
    assert widths == {"sample": (30, 256), "mean_std": (30, 512)}
    info = json.loads((encoded["r64"] / "encode.json").read_text())
    assert info["resolution"] == 64 and "bicubic" in info["upsampling"]
    assert info["cache_fields"]["resolution"] == 64


def test_encode_at_64_matches_bicubic_upsampled_input(encoded, tiny_vae, small_dataset):
    import torch
    import torch.nn.functional as F

    from analysis.encode import to_model_input
    from analysis.vae import load_vae, resolve_model

    vae = load_vae(resolve_model(str(tiny_vae)))
    x = to_model_input(load_npz(small_dataset, "dataset")["x_test"][:4], "cpu")
    big = F.interpolate(x, size=(64, 64), mode="bicubic", align_corners=False).clamp(-1, 1)
    with torch.inference_mode():
        mean = vae.encode(big).latent_dist.mean.numpy()
    stored = load_npz(encoded["r64"] / "latents.npz", "latents")["test_mean"][:4]
    np.testing.assert_allclose(stored, mean, rtol=1e-4, atol=1e-5)


def test_cache_key_fields_and_32px_latents(encoded, tiny_vae, small_dataset):
    """The cache key has exactly the fields latents depend on (the encoder, not the model's
    name or decoder), RESOLUTION=32 is the default, and the latents at 32 px are the plain
    encoder's, not resampled."""
    import torch

    from analysis.encode import ENCODER_VERSION, to_model_input
    from analysis.vae import load_vae, resolve_model

    infos = {n: json.loads((encoded[n] / "encode.json").read_text()) for n in encoded}
    fields = infos["default"]["cache_fields"]
    assert sorted(fields) == ["compiled", "dataset_sha256", "device_type", "encoder_class",
                              "encoder_sha256", "encoder_version", "precision", "resolution", "seed"]
    assert fields["encoder_version"] == ENCODER_VERSION == 4
    assert fields["encoder_class"] == "AutoencoderKL" and fields["resolution"] == 32
    assert infos["default"]["cache_key"] == sha256_json(fields)[:24]
    assert infos["r32"]["cache_key"] == infos["default"]["cache_key"]
    assert infos["r64"]["cache_key"] != infos["default"]["cache_key"]
    assert json.loads((encoded["r32"] / "timings-encode.json").read_text())["from_cache"] is True
    assert infos["default"]["resolution"] == 32 and infos["default"]["upsampling"] is None

    latents = load_npz(encoded["default"] / "latents.npz", "latents")
    assert latents["test_mean"].shape == (30, 4, 4, 4)
    vae = load_vae(resolve_model(str(tiny_vae)))
    with torch.inference_mode():
        dist = vae.encode(to_model_input(load_npz(small_dataset, "dataset")["x_test"], "cpu")).latent_dist
    np.testing.assert_allclose(latents["test_mean"], dist.mean.numpy(), rtol=1e-5, atol=1e-6)


def test_reconstructions_at_64_are_stored_at_32x32(encoded):
    for name in ("default", "r64"):
        recon = load_npz(encoded[name] / "reconstructions.npz", "reconstructions")
        assert recon["reconstructions"].shape == recon["originals"].shape == (10, 32, 32, 3), name
        assert recon["reconstructions"].dtype == np.uint8
        assert np.isfinite(recon["psnr"]).all() and (recon["psnr"] > 0).all()
        assert ((recon["ssim"] >= -1) & (recon["ssim"] <= 1)).all()


def test_pixel_pca_baselines_follow_the_wider_latents():
    """PCA as wide as the 64 px feature sets (256, 512), capped at the 300 training images."""
    from analysis.baselines import pixel_features

    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (300, 32, 32, 3), dtype=np.uint8)
    x_test = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    train, test = pixel_features(x_train, x_test, {"sample": 256, "mean_std": 512}, seed=0)
    assert {k: v.shape[1] for k, v in test.items()} == \
        {"pixels_pooled": 48, "pixels_pca_sample": 256, "pixels_pca_mean_std": 300}


# ---- the whole pipeline at two resolutions -----------------------------------------------------

@pytest.mark.e2e
def test_make_report_at_two_resolutions_compares_them(tmp_path, demo_build, tiny_vae, synthetic_images):
    # A copy of the demo build (tiny-vae at 32 px) gets a second run at 64 px: the first is reused.
    build = copy_build(demo_build, tmp_path / "b")
    # One OpenMP thread per process: same results, but tiny fits do not stall on a busy
    # 2-core machine under -j2.
    proc = run_make("-j2", "report", *make_vars(build, tiny_vae, synthetic_images, 6),
                    "RESOLUTION=32 64", env={"OMP_NUM_THREADS": "1"})
    assert f"analysis.encode {build}/runs/tiny-vae-r64/config.json" in proc.stdout
    assert f"analysis.encode {build}/runs/tiny-vae/config.json" not in proc.stdout
    runs = build / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["tiny-vae", "tiny-vae-r64"]
    assert json.loads((runs / "tiny-vae/config.json").read_text())["resolution"] == 32
    assert json.loads((runs / "tiny-vae-r64/config.json").read_text())["resolution"] == 64
    widths = {r: {fs: v["n_features"] for fs, v in
                  json.loads((runs / r / "metrics.json").read_text())["feature_sets"].items()}
              for r in ("tiny-vae", "tiny-vae-r64")}
    assert (widths["tiny-vae"]["sample"], widths["tiny-vae"]["mean_std"]) == (64, 128)
    assert (widths["tiny-vae-r64"]["sample"], widths["tiny-vae-r64"]["mean_std"]) == (256, 512)
    variants = json.loads((build / "compare/variants.json").read_text())
    assert [v["label"] for v in variants] == ["tiny-vae @ 32 px", "tiny-vae @ 64 px"]
    assert (build / "compare/reconstructions.png").is_file()
    html = (build / "report.html").read_text()
    assert 'id="comparing-encoders"' in html
    assert '<th scope="col">tiny-vae @ 32 px</th><th scope="col">tiny-vae @ 64 px</th>' in html
    assert "Resolution, for tiny-vae: best accuracy" in html and "at 64 px (" in html
    assert (build / "report.pdf").is_file()
    # the primary run (main sections) is the first VAE at the first resolution
    assert "runs/tiny-vae/figures/" in html and "runs/tiny-vae-r64/figures/" not in html
