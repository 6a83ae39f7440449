"""Never compute the same thing twice: encoder-keyed latents, cached results, shared baselines.

Run:
    .venv/bin/python -m pytest -q tests/test_shared.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis import baselines
from analysis import encode as encode_mod
from analysis.common import load_npz
from analysis.encode import Encoder
from analysis.vae import encoder_checksum, resolve_model
from helpers import copy_build, run_make
from hubcache import make_env, makefile_default_vaes

pytestmark = pytest.mark.usefixtures("one_thread")
ORIGINAL_ENCODE = Encoder.encode


# ---- the encoder checksum -------------------------------------------------------------------

@pytest.fixture(scope="module")
def vaes(variant_vaes) -> dict[str, Path]:
    """Tiny VAEs: a and b share an encoder (b's decoder drawn anew), c is another."""
    return variant_vaes


def test_encoder_checksum_ignores_the_decoder_only(vaes):
    a, b, c = (resolve_model(str(vaes[k])) for k in "abc")
    assert a.weights_sha256 != b.weights_sha256  # the files differ (decoders)...
    assert a.encoder_sha256 == b.encoder_sha256  # ...the encoders do not
    assert a.encoder_sha256 != c.encoder_sha256


def test_encoder_checksum_sees_one_changed_encoder_weight(vaes, tmp_path):
    from safetensors.torch import load_file, save_file

    weights = vaes["a"] / "diffusion_pytorch_model.safetensors"
    config = json.loads((vaes["a"] / "config.json").read_text())
    tensors = load_file(str(weights))
    name = next(k for k in sorted(tensors) if k.startswith("quant_conv."))
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] += 1e-3
    save_file(tensors, str(tmp_path / "w.safetensors"))
    assert encoder_checksum(config, tmp_path / "w.safetensors") != encoder_checksum(config, weights)
    # The encoder's config is part of it too: another activation is another encoder.
    assert encoder_checksum(config | {"act_fn": "gelu"}, weights) != encoder_checksum(config, weights)


# ---- encoding: once per encoder, decoding once per variant ------------------------------------

def encode_run(vae: Path, run_dir: Path, dataset: Path, cache: Path, write_run_config) -> dict:
    cfg = write_run_config(vae, run_dir=run_dir)
    encode_mod.main([str(cfg), str(dataset), str(run_dir / "latents.npz"), "--cache", str(cache)])
    return json.loads((run_dir / "encode.json").read_text())


def test_shared_encoder_encodes_once_and_decodes_with_each_decoder(vaes, small_dataset, tmp_path,
                                                                   write_run_config, monkeypatch):
    images_encoded = []

    def counting(self, images):
        images_encoded.append(len(images))
        return ORIGINAL_ENCODE(self, images)

    monkeypatch.setattr(Encoder, "encode", counting)
    cache = tmp_path / "cache"
    info_a = encode_run(vaes["a"], tmp_path / "a", small_dataset, cache, write_run_config)
    encoded_for_a = sum(images_encoded)
    info_b = encode_run(vaes["b"], tmp_path / "b", small_dataset, cache, write_run_config)
    assert encoded_for_a == 60 and sum(images_encoded) == 60  # b encoded no image
    assert info_a["cache_key"] == info_b["cache_key"]
    assert info_a["latents_sha256"] == info_b["latents_sha256"]
    assert (tmp_path / "a/latents.npz").read_bytes() == (tmp_path / "b/latents.npz").read_bytes()
    # Each variant's reconstructions come from its own decoder.
    assert info_a["recon_cache_key"] != info_b["recon_cache_key"]
    rec_a = load_npz(tmp_path / "a/reconstructions.npz", "reconstructions")
    rec_b = load_npz(tmp_path / "b/reconstructions.npz", "reconstructions")
    np.testing.assert_array_equal(rec_a["originals"], rec_b["originals"])
    assert not np.array_equal(rec_a["reconstructions"], rec_b["reconstructions"])
    timing_b = json.loads((tmp_path / "b/timings-encode.json").read_text())
    assert timing_b["from_cache"] is True and timing_b["reconstructions_from_cache"] is False


def test_reconstruction_decodes_the_cached_means(vaes, small_dataset, tmp_path, write_run_config):
    """Decoding the stored latent means gives the same images as encoding and decoding anew."""
    import torch

    from analysis.vae import load_vae

    encode_run(vaes["b"], tmp_path / "b", small_dataset, tmp_path / "cache", write_run_config)
    recon = load_npz(tmp_path / "b/reconstructions.npz", "reconstructions")
    vae = load_vae(resolve_model(str(vaes["b"])))
    x = encode_mod.to_model_input(recon["originals"], "cpu")
    with torch.inference_mode():
        again = encode_mod.to_uint8_images(vae.decode(vae.encode(x).latent_dist.mean).sample)
    assert np.abs(again.astype(int) - recon["reconstructions"].astype(int)).max() <= 1


# ---- end to end: shared encoders, cached results, baselines once --------------------------------

def baseline_stamps(build: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (build / "baselines").glob("*/baseline.json")}


@pytest.fixture(scope="module")
def shared_build(variants_build) -> Path:
    """The default `make report` from the test hub cache, on 4 images/class: sd-vae-ft-ema and
    sd-vae-ft-mse (one encoder, two decoders) and sdxl-vae (another encoder)."""
    return variants_build


EMA, MSE = "sd-vae-ft-ema", "sd-vae-ft-mse"


def test_make_shared_encoder_trains_once_and_says_so(shared_build):
    runs = shared_build / "runs"
    # Built with make -j2: the two runs' encodes (and classifies) start together, and whichever
    # takes the cache entry's lock first does the work. The other reuses it.
    encoded = {r: not json.loads((runs / r / "timings-encode.json").read_text())["from_cache"]
               for r in (EMA, MSE)}
    fitted = {r: not json.loads((runs / r / "classify.json").read_text())["from_cache"]
              for r in (EMA, MSE)}
    assert sorted(encoded.values()) == [False, True], encoded
    assert sorted(fitted.values()) == [False, True], fitted
    reused = next(r for r in (EMA, MSE) if not fitted[r])
    assert json.loads((runs / reused / "timings-classify.json").read_text()) == {}  # nothing fitted
    assert (runs / EMA / "metrics.json").read_bytes() == (runs / MSE / "metrics.json").read_bytes()
    html = (shared_build / "report.html").read_text()
    checksum = json.loads((runs / EMA / "encode.json").read_text())["encoder_sha256"]
    assert f"{EMA} and {MSE} share one encoder" in html and checksum[:12] in html
    assert f"<th scope=\"col\">{EMA} = {MSE}</th>" in html  # their results in one column
    # One folder per baseline, fitted once for both runs.
    assert len(baseline_stamps(shared_build)) == 3


def test_make_diff_of_shared_encoder_says_so(shared_build, hub_cache, tmp_path):
    build = copy_build(shared_build, tmp_path / "b")  # make diff writes into the build
    with make_env(hub_cache):
        proc = run_make("diff", f"BUILD={build}", f"A={EMA}", f"B={MSE}")
    assert f"{EMA} and {MSE} share one encoder" in proc.stdout
    html = (build / f"diff-{EMA}-vs-{MSE}/diff.html").read_text()
    assert 'id="shared-encoder"' in html and "Only their decoders differ" in html


def test_make_another_variant_refits_no_baseline_but_another_seed_does(shared_build, hub_cache, vaes,
                                                                       synthetic_images, tmp_path):
    shared_build = copy_build(shared_build, tmp_path / "b")  # this test adds runs and baselines
    before = baseline_stamps(shared_build)
    common = [f"BUILD={shared_build}", f"DATASET=imagefolder:{synthetic_images}", "LIMIT=4"]
    defaults = " ".join(makefile_default_vaes())
    with make_env(hub_cache):
        # Up to the results (figures and documents add nothing to what is asked here).
        proc = run_make(str(shared_build / "runs/vae-c/metrics.json"), f"VAES={defaults} {vaes['c']}",
                        *common)
        assert "-m analysis.baselines" in proc.stdout and "baselines: fitting" not in proc.stderr
        assert baseline_stamps(shared_build) == before
        # vae-c has its own encoder: it trains its own classifiers.
        assert json.loads((shared_build / "runs/vae-c/classify.json").read_text())["from_cache"] is False
    # Another seed (a run's seed reaches the stage from its config: test_make's SEED test)
    # fits its own three baselines beside the others, which stay as they were.
    record = json.loads((shared_build / f"runs/{EMA}/baselines.json").read_text())
    _, fitted = baselines.ensure(shared_build / "data/dataset.npz", shared_build / "baselines",
                                 record["widths"], 1, json.loads(
                                     (shared_build / f"runs/{EMA}/encode.json").read_text())["classes"])
    after = baseline_stamps(shared_build)
    assert len(fitted) == 3 and set(before) < set(after) and len(after) == 6
    assert set(after) - set(before) == set(fitted)
    assert all(after[name] == stamp for name, stamp in before.items())


def test_damaged_baseline_folder_is_fitted_again(tmp_path):
    """A baseline folder whose predictions are truncated (or deleted) is refitted, not reused."""
    from analysis import baselines, cache
    from analysis.common import save_npz

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 6)
    save_npz(tmp_path / "dataset.npz", x_train=rng.integers(0, 256, (18, 32, 32, 3), dtype=np.uint8),
             y_train=y, x_test=rng.integers(0, 256, (9, 32, 32, 3), dtype=np.uint8), y_test=y[::2])
    root = tmp_path / "baselines"
    folders, fitted = baselines.ensure(tmp_path / "dataset.npz", root, {"sample": 4}, 0, ["a", "b", "c"])
    assert len(fitted) == 2
    damaged = root / folders["pixels_pooled"] / "predictions.npz"
    damaged.write_bytes(damaged.read_bytes()[:40])
    again, fitted = baselines.ensure(tmp_path / "dataset.npz", root, {"sample": 4}, 0, ["a", "b", "c"])
    assert again == folders and fitted == [folders["pixels_pooled"]]
    assert cache.reusable(root / folders["pixels_pooled"])
