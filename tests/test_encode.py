"""Tests for analysis.vae and analysis.encode with the tiny untrained VAE (offline, CPU)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from analysis import encode as encode_mod
from analysis.common import VaelabError, load_npz, save_npz, sha256_file
from analysis.encode import Encoder, draw_noise, to_model_input, to_uint8_images
from analysis.devices import Batching, choose_precision
from analysis.vae import check_model_dir, load_vae, resolve_model

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_thread")
ORIGINAL_ENCODE = Encoder.encode  # before any test monkeypatches it
LATENT_KEYS = ("train_mean", "train_std", "train_sample", "test_mean", "test_std", "test_sample")


# ---- helpers --------------------------------------------------------------------------------

def run_encode(config: Path, dataset: Path, run_dir: Path, cache: Path) -> dict[str, np.ndarray]:
    out = run_dir / "latents.npz"
    encode_mod.main([str(config), str(dataset), str(out), "--cache", str(cache)])
    return load_npz(out, "latents")


def timings(run_dir: Path) -> dict:
    return json.loads((run_dir / "timings-encode.json").read_text())


def cache_file(cache: Path, run_dir: Path) -> Path:
    """The cache entry that the run in run_dir used (its key is in encode.json)."""
    key = json.loads((run_dir / "encode.json").read_text())["cache_key"]
    return cache / f"latents-{key}.npz"


def assert_same_latents(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


class CountingEncode:
    """Replaces Encoder.encode: counts the images it encodes; interrupts after `stop_after`."""

    def __init__(self, stop_after: int | None = None):
        self.images = 0
        self.stop_after = stop_after

    def install(self, monkeypatch) -> "CountingEncode":
        def encode(encoder, images):
            if self.stop_after is not None and self.images >= self.stop_after:
                raise KeyboardInterrupt
            self.images += len(images)
            return ORIGINAL_ENCODE(encoder, images)

        monkeypatch.setattr(Encoder, "encode", encode)
        return self


@pytest.fixture(scope="module")
def first_run(one_thread, tiny_vae, small_dataset, tmp_path_factory):
    """One complete encoding (seed 0, fp32, batch 8) shared by the read-only tests."""
    from analysis import config

    root = tmp_path_factory.mktemp("encode")
    cfg = root / "run" / "config.json"
    config.main(["run", "--vae", str(tiny_vae), "--seed", "0", "--device", "cpu", "--precision",
                 "fp32", "--batch-size", "8", "--out", str(cfg)])
    latents = run_encode(cfg, small_dataset, root / "run", root / "cache")
    return {"root": root, "config": cfg, "latents": latents, "cache": root / "cache"}


# ---- model resolution and loading ------------------------------------------------------------

def test_resolve_model_tiny_vae_is_local_and_untrained(tiny_vae):
    model = resolve_model(str(tiny_vae))
    assert model.untrained is True and "randomly initialised" in model.untrained_note
    assert model.revision == "local" and model.path == str(tiny_vae)
    assert model.weights_file == "diffusion_pytorch_model.safetensors"
    assert model.weights_sha256 == sha256_file(tiny_vae / model.weights_file)


def test_load_vae_uses_from_pretrained_on_resolved_dir(tiny_vae, monkeypatch):
    from diffusers import AutoencoderKL

    calls = []
    original = AutoencoderKL.from_pretrained.__func__

    def spy(cls, path, *args, **kwargs):
        calls.append(str(path))
        return original(cls, path, *args, **kwargs)

    monkeypatch.setattr(AutoencoderKL, "from_pretrained", classmethod(spy))
    vae = load_vae(resolve_model(str(tiny_vae)))
    assert calls == [str(tiny_vae)]
    assert isinstance(vae, AutoencoderKL) and not vae.training
    assert not any(p.requires_grad for p in vae.parameters())
    assert vae.config.latent_channels == 4


def test_resolve_model_trained_dir_is_not_marked_untrained(tiny_vae, tmp_path):
    copy = tmp_path / "vae"
    copy.mkdir()
    for name in ("config.json", "diffusion_pytorch_model.safetensors"):
        (copy / name).write_bytes((tiny_vae / name).read_bytes())
    model = resolve_model(str(copy))
    assert model.untrained is False and model.untrained_note == ""


def test_check_model_dir_missing_dir(tmp_path):
    with pytest.raises(VaelabError, match="does not exist"):
        check_model_dir(tmp_path / "gone")


def test_resolve_model_dir_without_config(tmp_path):
    (tmp_path / "diffusion_pytorch_model.safetensors").write_bytes(b"x")
    with pytest.raises(VaelabError, match="no config.json.*save_pretrained"):
        resolve_model(str(tmp_path))


def test_resolve_model_unet_config_rejected(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    (tmp_path / "diffusion_pytorch_model.safetensors").write_bytes(b"x")
    with pytest.raises(VaelabError, match="UNet2DConditionModel.*not an image autoencoder.*AutoencoderKL.*vae/"):
        resolve_model(str(tmp_path))


def test_resolve_model_config_not_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(VaelabError, match="not valid JSON"):
        resolve_model(str(tmp_path))


def test_resolve_model_config_without_weights(tiny_vae, tmp_path):
    (tmp_path / "config.json").write_bytes((tiny_vae / "config.json").read_bytes())
    with pytest.raises(VaelabError, match="no weights.*diffusion_pytorch_model.safetensors"):
        resolve_model(str(tmp_path))


def test_load_vae_corrupt_weights(tiny_vae, tmp_path):
    (tmp_path / "config.json").write_bytes((tiny_vae / "config.json").read_bytes())
    (tmp_path / "diffusion_pytorch_model.safetensors").write_bytes(b"\x00" * 64)
    # Caught while the encoder checksum is read, before any weights are loaded.
    with pytest.raises(VaelabError, match="cannot read the encoder weights .* re-download or re-save"):
        resolve_model(str(tmp_path))


def test_resolve_model_unknown_hub_id_offline_fails_fast(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)
    started = time.perf_counter()
    with pytest.raises(VaelabError) as err:
        resolve_model("nobody-xyz/not-a-model")
    assert time.perf_counter() - started < 5
    message = str(err.value)
    assert "nobody-xyz/not-a-model" in message
    assert str(tmp_path / "hub") in message  # where it looked
    assert "VAE=DIR" in message and "--local-dir" in message  # how to pass a local directory


# ---- device and precision ---------------------------------------------------------------------

def test_choose_precision_fp16_refused_when_force_upcast():
    with pytest.raises(VaelabError, match="force_upcast.*bf16.*fp32"):
        choose_precision("fp16", "cpu", force_upcast=True, name="some/vae")


def test_choose_precision_fp16_allowed_without_force_upcast():
    assert choose_precision("fp16", "cpu", force_upcast=False, name="some/vae")[0] == "fp16"


@pytest.mark.parametrize("requested", ["fp32", "bf16"])
def test_choose_precision_explicit_value_kept(requested):
    assert choose_precision(requested, "cpu", force_upcast=True, name="x")[0] == requested


# ---- small pure helpers ----------------------------------------------------------------------

def test_to_model_input_scales_to_minus_one_one():
    images = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    images[1] = 255
    images[0, 0, 0] = (0, 255, 0)
    x = to_model_input(images, "cpu")
    assert tuple(x.shape) == (2, 3, 32, 32) and x.dtype == torch.float32
    assert x[0, :, 0, 0].tolist() == [-1.0, 1.0, -1.0]
    assert (x[1] == 1.0).all()


def test_to_uint8_images_round_trips_model_input():
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8_images(to_model_input(images, "cpu")), images)


def test_draw_noise_train_then_test_from_one_generator():
    noise = draw_noise(7, {"train": (3, 2), "test": (2, 2)})
    generator = torch.Generator().manual_seed(7)
    np.testing.assert_array_equal(noise["train"], torch.randn((3, 2), generator=generator).numpy())
    np.testing.assert_array_equal(noise["test"], torch.randn((2, 2), generator=generator).numpy())


# ---- encoding ----------------------------------------------------------------------------------

def test_encode_latent_shapes_and_dtypes(first_run, small_dataset):
    latents = first_run["latents"]
    dataset = load_npz(small_dataset, "dataset")
    for key in LATENT_KEYS:
        n = 30
        assert latents[key].shape == (n, 4, 4, 4), key
        assert latents[key].dtype == np.float32, key
        assert np.isfinite(latents[key]).all(), key
    np.testing.assert_array_equal(latents["y_train"], dataset["y_train"])
    np.testing.assert_array_equal(latents["y_test"], dataset["y_test"])
    assert (latents["train_std"] > 0).all() and (latents["test_std"] > 0).all()


def test_encode_mean_matches_vae_latent_dist(first_run, small_dataset, tiny_vae):
    vae = load_vae(resolve_model(str(tiny_vae)))
    x = load_npz(small_dataset, "dataset")["x_test"][:5]
    with torch.inference_mode():
        dist = vae.encode(to_model_input(x, "cpu")).latent_dist
    np.testing.assert_allclose(first_run["latents"]["test_mean"][:5], dist.mean.numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(first_run["latents"]["test_std"][:5], dist.std.numpy(),
                               rtol=1e-5, atol=1e-6)


def test_encode_sample_is_mean_plus_std_times_seeded_noise(first_run):
    latents = first_run["latents"]
    generator = torch.Generator().manual_seed(0)
    for split in ("train", "test"):  # train first, then test, from the same generator
        eps = torch.randn(latents[f"{split}_mean"].shape, generator=generator).numpy()
        expected = latents[f"{split}_mean"] + latents[f"{split}_std"] * eps
        np.testing.assert_array_equal(latents[f"{split}_sample"], expected)
        assert not np.array_equal(latents[f"{split}_sample"], latents[f"{split}_mean"])


def test_encode_sample_matches_diffusers_latent_dist_sample(first_run):
    from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

    latents = first_run["latents"]
    mean = torch.from_numpy(latents["train_mean"])
    logvar = 2 * torch.log(torch.from_numpy(latents["train_std"]))
    dist = DiagonalGaussianDistribution(torch.cat([mean, logvar], dim=1))
    sample = dist.sample(generator=torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_allclose(latents["train_sample"], sample, rtol=1e-5, atol=1e-6)


def test_encode_writes_side_files(first_run):
    run = first_run["root"] / "run"
    info = json.loads((run / "encode.json").read_text())
    assert info["precision"] == "fp32" and info["device"] == "cpu" and info["seed"] == 0
    assert info["model"]["untrained"] is True
    assert len(info["classes"]) == 10
    recon = load_npz(run / "reconstructions.npz", "reconstructions")
    assert recon["reconstructions"].shape == (10, 32, 32, 3)
    assert recon["reconstructions"].dtype == np.uint8
    assert timings(run)["from_cache"] is False and timings(run)["images"] == 60
    assert not list(first_run["cache"].glob("*.partial"))  # chunk folder removed on success


def test_encode_second_run_reuses_cache(first_run, small_dataset, tmp_path, monkeypatch):
    def must_not_encode(self, images):
        raise AssertionError("the cache should have been reused")

    monkeypatch.setattr(Encoder, "encode", must_not_encode)
    latents = run_encode(first_run["config"], small_dataset, tmp_path / "run2", first_run["cache"])
    assert timings(tmp_path / "run2")["from_cache"] is True
    assert_same_latents(latents, first_run["latents"])


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_encode_corrupt_cache_is_re_encoded(first_run, small_dataset, tmp_path, damage, capsys):
    cache = tmp_path / "cache"
    cache.mkdir()
    for path in first_run["cache"].iterdir():
        (cache / path.name).write_bytes(path.read_bytes())
    entry = cache_file(cache, first_run["root"] / "run")
    assert entry.is_file()
    blob = bytearray(entry.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:
        blob[len(blob) // 2] ^= 0xFF
    entry.write_bytes(bytes(blob))

    latents = run_encode(first_run["config"], small_dataset, tmp_path / "run", cache)
    assert "fails its checksum" in capsys.readouterr().err
    assert timings(tmp_path / "run")["from_cache"] is False
    assert_same_latents(latents, first_run["latents"])
    assert sha256_file(entry) == entry.with_suffix(".sha256").read_text().strip()


def test_encode_resumes_from_partial_chunks(first_run, small_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(encode_mod, "CHUNK", 8)
    cfg = first_run["config"]  # batch size 8: one batch per chunk
    # An uninterrupted run with the same chunking, for reference.
    full = CountingEncode().install(monkeypatch)
    reference = run_encode(cfg, small_dataset, tmp_path / "ref", tmp_path / "ref-cache")

    CountingEncode(stop_after=8).install(monkeypatch)  # dies at the start of the second chunk
    with pytest.raises(KeyboardInterrupt):
        run_encode(cfg, small_dataset, tmp_path / "run", tmp_path / "cache")
    (partial,) = (tmp_path / "cache").glob("*.partial")
    assert [p.name for p in partial.iterdir()] == ["train-000000-000008.npz"]
    assert not (tmp_path / "run" / "latents.npz").exists()

    resumed = CountingEncode().install(monkeypatch)
    latents = run_encode(cfg, small_dataset, tmp_path / "run", tmp_path / "cache")
    assert resumed.images == full.images - 8  # everything but the saved first chunk
    assert_same_latents(latents, reference)
    assert not partial.exists()


def test_encode_damaged_chunk_is_redone(first_run, small_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(encode_mod, "CHUNK", 8)
    cfg = first_run["config"]
    full = CountingEncode().install(monkeypatch)
    reference = run_encode(cfg, small_dataset, tmp_path / "ref", tmp_path / "ref-cache")
    CountingEncode(stop_after=16).install(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_encode(cfg, small_dataset, tmp_path / "run", tmp_path / "cache")
    (partial,) = (tmp_path / "cache").glob("*.partial")
    (partial / "train-000008-000016.npz").write_bytes(b"garbage")
    resumed = CountingEncode().install(monkeypatch)
    latents = run_encode(cfg, small_dataset, tmp_path / "run", tmp_path / "cache")
    assert resumed.images == full.images - 8  # only the intact first chunk was reused
    assert_same_latents(latents, reference)


def test_encode_other_seed_changes_sample_only(first_run, small_dataset, tmp_path,
                                               write_run_config, tiny_vae):
    cfg = write_run_config(tiny_vae, seed=1, run_dir=tmp_path / "run")
    latents = run_encode(cfg, small_dataset, tmp_path / "run", first_run["cache"])
    base = first_run["latents"]
    assert timings(tmp_path / "run")["from_cache"] is False  # the seed is part of the cache key
    for split in ("train", "test"):
        np.testing.assert_array_equal(latents[f"{split}_mean"], base[f"{split}_mean"])
        np.testing.assert_array_equal(latents[f"{split}_std"], base[f"{split}_std"])
        assert not np.allclose(latents[f"{split}_sample"], base[f"{split}_sample"])


def test_encode_batch_size_does_not_change_latents(first_run, small_dataset, tmp_path,
                                                   write_run_config, tiny_vae):
    # The same bytes at any batch: why the batch size is not part of the latent cache key.
    cfg = write_run_config(tiny_vae, seed=0, batch_size=7, run_dir=tmp_path / "run")
    latents = run_encode(cfg, small_dataset, tmp_path / "run", tmp_path / "cache")
    assert json.loads((tmp_path / "run" / "encode.json").read_text())["batch_size"] == 7
    assert_same_latents(latents, first_run["latents"])


def test_encode_batch_auto_small_run_keeps_16_without_probing(small_dataset, tmp_path,
                                                             write_run_config, tiny_vae, monkeypatch):
    def no_probe(*args):
        raise AssertionError("a small eager run must not probe batch sizes")

    monkeypatch.setattr(encode_mod, "time_batches", no_probe)
    cfg = write_run_config(tiny_vae, batch_size="auto", run_dir=tmp_path / "run")
    run_encode(cfg, small_dataset, tmp_path / "run", tmp_path / "cache")
    info = json.loads((tmp_path / "run" / "encode.json").read_text())
    assert (info["batch_size"], info["batch_requested"]) == (16, "auto")
    assert "BATCH=auto keeps 16" in info["batch_reason"]


def test_encode_batch_auto_compiled_run_takes_the_probed_batch_and_keeps_it(
        small_dataset, tmp_path, write_run_config, tiny_vae, monkeypatch):
    probed = []

    def fake_probe(vae, device, precision, resolution, images, candidates):
        probed.append([c.label for c in candidates])
        return {"16": 100.0, "32": 130.0, "64": 110.0}

    monkeypatch.setattr(encode_mod, "time_batches", fake_probe)
    cfg = write_run_config(tiny_vae, batch_size="auto", run_dir=tmp_path / "run", compile="on")
    run_encode(cfg, small_dataset, tmp_path / "run", tmp_path / "cache")
    info = json.loads((tmp_path / "run" / "encode.json").read_text())
    assert info["batch_size"] == 32 and "took 32" in info["batch_reason"]
    assert timings(tmp_path / "run")["batch_probe_images_per_second"] == {"16": 100.0, "32": 130.0,
                                                                          "64": 110.0}
    # Reused from the cache: the batch that made the latents is read back, nothing is probed.
    run_encode(cfg, small_dataset, tmp_path / "run2", tmp_path / "cache")
    again = json.loads((tmp_path / "run2" / "encode.json").read_text())
    assert (again["batch_size"], again["batch_reason"]) == (32, info["batch_reason"])
    assert probed == [["16", "32", "64", "64/16", "128/16"]]


def test_time_batches_times_every_size_on_the_run_images(tiny_vae):
    vae = load_vae(resolve_model(str(tiny_vae)))
    images = np.zeros((10, 32, 32, 3), np.uint8)  # fewer than one batch of 64: repeated
    rates = encode_mod.time_batches(vae, "cpu", "fp32", 32, images, (Batching(4), Batching(16, 4)))
    assert set(rates) == {"4", "16/4"} and all(v > 0 for v in rates.values())


def test_encoder_staged_batches_give_the_same_latents(tiny_vae):
    # The high-resolution blocks micro-batched: each image's latents the same bytes.
    images = np.random.default_rng(3).integers(0, 256, size=(16, 32, 32, 3), dtype=np.uint8)
    whole = Encoder(load_vae(resolve_model(str(tiny_vae))), "cpu", "fp32", batch_size=16)
    staged = Encoder(load_vae(resolve_model(str(tiny_vae))), "cpu", "fp32", batch_size=16, micro_batch=4)
    assert staged.micro_batch == 4 and whole.micro_batch is None
    for a, b in zip(whole.encode(images), staged.encode(images)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_choose_compile_auto_only_for_large_cpu_runs(monkeypatch):
    monkeypatch.setattr(encode_mod.shutil, "which", lambda name: "/usr/bin/" + name)
    big, small = encode_mod.COMPILE_MIN_IMAGES, encode_mod.COMPILE_MIN_IMAGES - 1
    assert encode_mod.choose_compile("auto", "cpu", big) is True
    assert encode_mod.choose_compile("auto", "cpu", small) is False
    assert encode_mod.choose_compile("auto", "cuda", big) is False
    assert encode_mod.choose_compile("off", "cpu", big) is False
    assert encode_mod.choose_compile("on", "cpu", 1) is True
    monkeypatch.setattr(encode_mod.shutil, "which", lambda name: None)  # no C++ compiler
    assert encode_mod.choose_compile("auto", "cpu", big) is False


def test_encode_compiled_matches_eager_and_has_own_cache_key(first_run, small_dataset, tmp_path,
                                                             write_run_config, tiny_vae):
    cfg = write_run_config(tiny_vae, seed=0, batch_size=8, run_dir=tmp_path / "run", compile="on")
    latents = run_encode(cfg, small_dataset, tmp_path / "run", tmp_path / "cache")
    info = json.loads((tmp_path / "run" / "encode.json").read_text())
    assert info["compiled"] is True and info["cache_fields"]["compiled"] is True
    assert info["cache_key"] != json.loads((first_run["root"] / "run" / "encode.json").read_text())["cache_key"]
    assert timings(tmp_path / "run")["compile_seconds"] > 0
    base = first_run["latents"]  # eager, same batch size; the last batch of each split is padded
    for key in LATENT_KEYS:
        np.testing.assert_allclose(latents[key], base[key], rtol=1e-4, atol=1e-5, err_msg=key)


def test_encoder_compile_failure_is_one_line_error(tiny_vae, monkeypatch):
    import torch

    def broken_compile(fn, **kwargs):
        def run(x):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nmore detail")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    encoder = Encoder(load_vae(resolve_model(str(tiny_vae))), "cpu", "fp32", batch_size=4,
                      compiled=True)
    with pytest.raises(VaelabError, match=r"torch.compile of the encoder failed \(RuntimeError: "
                                          r"InvalidCxxCompiler.*found\); rerun with COMPILE=off$"):
        encoder.warm_up()


def test_encode_nan_latent_reported_with_precision(first_run, small_dataset, tmp_path, monkeypatch):
    def nan_encode(self, images):
        mean, std = ORIGINAL_ENCODE(self, images)
        mean = mean.clone()
        mean[0, 0, 0, 0] = float("nan")
        return mean, std

    monkeypatch.setattr(Encoder, "encode", nan_encode)
    with pytest.raises(VaelabError) as err:
        run_encode(first_run["config"], small_dataset, tmp_path / "run", tmp_path / "cache")
    message = str(err.value)
    assert "NaN" in message and "fp32" in message and "cpu" in message
    assert not (tmp_path / "run" / "latents.npz").exists()
    assert not list((tmp_path / "cache").glob("latents-*.npz"))


def test_encode_missing_dataset_json(first_run, tmp_path):
    save_npz(tmp_path / "dataset.npz", x=np.zeros(1))
    with pytest.raises(VaelabError, match="dataset description not found"):
        encode_mod.main([str(first_run["config"]), str(tmp_path / "dataset.npz"),
                         str(tmp_path / "run" / "latents.npz"), "--cache", str(tmp_path / "c")])
