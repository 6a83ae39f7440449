"""Every accepted diffusers autoencoder class: AutoencoderKL (4 and 16 channels, shift_factor),
AutoencoderTiny, AutoencoderDC; pipelines taken at their vae/; each run gets the feature sets
its encoder yields, and the report, comparison and diff follow."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from analysis import encode
from analysis.autoencoders import (CLASSES, feature_set_keys, feature_sets, load_latents)
from analysis.common import VaelabError, save_npz
from analysis.demo import save_random_vae
from analysis.vae import encoder_checksum, resolve_model
from hubcache import write_hub_model_dir, write_hub_repo

pytestmark = pytest.mark.usefixtures("one_thread")
# analysis.demo's tiny configs, one per class (and the 16-channel KL layout of SD3/FLUX.1).
TINY = ("tiny", "tiny-kl16", "tiny-taesd", "tiny-dc")


@pytest.fixture(scope="module")
def models(tiny_vae, class_vaes) -> dict[str, Path]:
    return {"tiny": tiny_vae, **class_vaes}


# ---- feature sets ---------------------------------------------------------------------------

def test_feature_sets_deterministic_latent_is_one_set():
    latent = np.arange(2 * 8, dtype=np.float32).reshape(2, 8, 1, 1)
    latents = {"test_latent": latent, "train_latent": latent, "y_test": np.array([0, 1]),
               "y_train": np.array([0, 1])}
    assert feature_set_keys(latents) == ("latent",)
    fs = feature_sets(latents, "test")
    assert list(fs) == ["latent"] and fs["latent"].shape == (2, 8)
    np.testing.assert_array_equal(fs["latent"][1], np.arange(8, 16))


def test_feature_sets_kl_has_sample_and_mean_std():
    mean = np.ones((3, 16, 4, 4), np.float32)
    latents = {"test_mean": mean, "test_std": 2 * mean, "test_sample": 3 * mean, "y_test": np.zeros(3)}
    fs = feature_sets(latents, "test")
    assert list(fs) == ["sample", "mean_std"]
    assert fs["sample"].shape == (3, 256) and fs["mean_std"].shape == (3, 512)


def test_load_latents_missing_split_is_one_line_error(tmp_path):
    path = tmp_path / "latents.npz"
    save_npz(path, test_latent=np.zeros((2, 4, 1, 1), np.float32), y_test=np.zeros(2, np.int64),
             y_train=np.zeros(2, np.int64))
    with pytest.raises(VaelabError, match="lacks train_latent") as err:
        load_latents(path)
    assert "\n" not in str(err.value)


# ---- finding and checking models ------------------------------------------------------------

@pytest.mark.parametrize("arch", TINY)
def test_resolve_model_accepts_each_class(models, arch):
    model = resolve_model(str(models[arch]))
    config = json.loads((models[arch] / "config.json").read_text())
    assert model.autoencoder_class == config["_class_name"] and model.untrained


def test_resolve_model_unknown_class_names_accepted_ones(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "VQModel"}))
    with pytest.raises(VaelabError) as err:
        resolve_model(str(tmp_path))
    message = str(err.value)
    assert "VQModel" in message and all(name in message for name in CLASSES)


def test_resolve_model_pipeline_folder_uses_its_vae(models, tmp_path):
    pipeline = tmp_path / "pipeline"
    shutil.copytree(models["tiny-taesd"], pipeline / "vae")
    (pipeline / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline",
                                                           "vae": ["diffusers", "AutoencoderTiny"]}))
    model = resolve_model(str(pipeline))
    assert Path(model.path) == pipeline / "vae" and model.subfolder == "vae"
    assert model.autoencoder_class == "AutoencoderTiny"


def test_resolve_model_pipeline_without_vae_is_one_line_error(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "SomePipeline"}))
    (tmp_path / "unet").mkdir()
    with pytest.raises(VaelabError, match="pipeline without a vae/") as err:
        resolve_model(str(tmp_path))
    assert "\n" not in str(err.value)


def offline_cache(monkeypatch, hub: Path) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))


def test_resolve_model_hub_pipeline_takes_vae_only(models, tmp_path, monkeypatch):
    """A pipeline repository (model_index.json, vae/, unet/) resolves to its cached vae/."""
    hub = tmp_path / "hub"
    files = {f"vae/{p.name}": p.read_bytes() for p in models["tiny-kl16"].iterdir()}
    files["model_index.json"] = json.dumps({"_class_name": "FluxPipeline"}).encode()
    snapshot = write_hub_repo(hub, "someone/flux-like", files,
                              listed_only={"unet/config.json": b"{}"})
    offline_cache(monkeypatch, hub)
    model = resolve_model("someone/flux-like")
    assert Path(model.path) == snapshot / "vae" and model.revision == snapshot.name
    assert model.autoencoder_class == "AutoencoderKL" and model.subfolder == "vae"


def test_resolve_model_hub_autoencoder_tiny(models, tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    snapshot = write_hub_model_dir(hub, "someone/taesd-like", models["tiny-taesd"])
    offline_cache(monkeypatch, hub)
    model = resolve_model("someone/taesd-like")
    assert Path(model.path) == snapshot and model.autoencoder_class == "AutoencoderTiny"


@pytest.mark.parametrize("arch", ("tiny-taesd", "tiny-dc"))
def test_encoder_checksum_ignores_decoder_of_each_class(tmp_path, arch):
    a = save_random_vae(tmp_path / "a", seed=0, arch=arch)
    b = save_random_vae(tmp_path / "b", seed=0, arch=arch, decoder_seed=1)
    c = save_random_vae(tmp_path / "c", seed=1, arch=arch)
    config = json.loads((a / "config.json").read_text())
    weights = "diffusion_pytorch_model.safetensors"
    sums = [encoder_checksum(config, d / weights) for d in (a, b, c)]
    assert (a / weights).read_bytes() != (b / weights).read_bytes()
    assert sums[0] == sums[1] != sums[2]


# ---- encoding -------------------------------------------------------------------------------

@pytest.mark.parametrize("arch, arrays, shape", [
    ("tiny-kl16", ("mean", "std", "sample"), (16, 4, 4)),
    ("tiny-taesd", ("latent",), (4, 4, 4)),
    ("tiny-dc", ("latent",), (8, 1, 1)),
])
def test_encode_main_stores_what_the_class_yields(models, small_dataset, write_run_config, tmp_path,
                                                  arch, arrays, shape):
    config = write_run_config(models[arch])
    out = tmp_path / "run" / "latents.npz"
    encode.main([str(config), str(small_dataset), str(out), "--cache", str(tmp_path / "cache")])
    latents = load_latents(out)
    for split in ("train", "test"):
        for name in arrays:
            assert latents[f"{split}_{name}"].shape == (30, *shape)
    assert not any(k.endswith(("_mean", "_sample")) for k in latents) or "mean" in arrays
    info = json.loads((out.parent / "encode.json").read_text())
    autoencoder = CLASSES[info["autoencoder_class"]]
    assert info["feature_sets"] == list(autoencoder.feature_sets)
    assert info["stochastic"] == ("sample" in arrays)
    assert info["downsampling"] == 32 // shape[-1]
    recon = np.load(out.parent / "reconstructions.npz")
    assert recon["reconstructions"].shape[1:] == (32, 32, 3)


def test_encode_resolution_not_a_multiple_of_downsampling_is_one_line_error(
        models, small_dataset, tmp_path):
    from analysis import config as config_stage

    path = tmp_path / "run" / "config.json"
    config_stage.main(["run", "--vae", str(models["tiny-dc"]), "--device", "cpu", "--precision",
                       "fp32", "--resolution", "40", "--out", str(path)])
    with pytest.raises(VaelabError, match=r"downsamples 32x.*RESOLUTION=32") as err:
        encode.main([str(path), str(small_dataset), str(tmp_path / "run" / "latents.npz"),
                     "--cache", str(tmp_path / "cache")])
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run" / "latents.npz").exists()


# ---- end to end -----------------------------------------------------------------------------

# The session's cifar_build has every class: tiny-vae (AutoencoderKL, 4 channels), taef2 and
# taesana (TAESD checkpoint files), tiny-taesd (AutoencoderTiny), tiny-dc; each run's feature
# sets and widths.
MIXED = {"tiny-vae": {"sample": 64, "mean_std": 128}, "taef2": {"latent": 512}, "taesana": {"latent": 32},
         "tiny-taesd": {"latent": 64}, "tiny-dc": {"latent": 8}}


def test_make_report_mixed_classes_feature_sets_per_run(cifar_build):
    for run, widths in MIXED.items():
        sets = list(widths)
        metrics = json.loads((cifar_build / "runs" / run / "metrics.json").read_text())
        vae_sets = [fs for fs in metrics["feature_set_order"]
                    if metrics["feature_sets"][fs]["kind"] == "vae"]
        assert vae_sets == sets, run
        assert {fs: metrics["feature_sets"][fs]["n_features"] for fs in sets} == widths
        # A PCA baseline per feature set, as wide as it (capped by the 100 training images).
        record = json.loads((cifar_build / "runs" / run / "baselines.json").read_text())
        assert record["widths"] == widths
        assert set(record["baselines"]) == {"pixels_pooled", *(f"pixels_pca_{fs}" for fs in sets)}
        assert metrics["feature_sets"][f"pixels_pca_{sets[0]}"]["n_features"] == min(100, widths[sets[0]])
        # Comparisons only between what the run has.
        for per in metrics["comparisons"].values():
            assert all(c["a"] in sets for c in per.values())
            assert ("mean_std_vs_sample" in per) == ("mean_std" in sets)


def test_make_report_mixed_classes_report_names_classes(cifar_build):
    html = (cifar_build / "report.html").read_text()
    for name in ("AutoencoderKL", "AutoencoderTiny", "AutoencoderDC"):
        assert name in html
    table = html[html.index('id="variants-table"'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r"<tr[^>]*><td>([^<]*)</td><td>([^<]*)</td>(.*?)</tr>", table)
    cells = {(model, fs.split(" (")[0]): re.findall(r'<td class="num[^"]*">([^<]*)</td>', rest)
             for model, fs, rest in rows}
    # One column per encoder, in VAES order: a run without the row's feature set shows "–".
    for fs in (".sample()", "latent"):
        has = [fs.strip(".()") in widths for widths in MIXED.values()]
        assert [cell != "–" for cell in cells[("SVC", fs)]] == has, fs


def test_make_diff_across_classes_says_no_common_feature_set(cifar_build):
    diff = cifar_build / "diff-tiny-vae-vs-tiny-taesd"
    html = (diff / "diff.html").read_text()
    assert "different feature sets" in html and "none in common" in html
    assert 'id="diff-table"' not in html
    assert (diff / "diff.pdf").is_file()
