"""TAESD checkpoints in their original format (analysis.taesd through analysis.vae).

Run: .venv/bin/python -m pytest -n 0 -q tests/test_taesd.py

Two halves:
* every published layout, built here from tiny random tensors with the published key
  pattern (written out below independently of analysis.taesd), loads and encodes; a state
  dict of no known layout and a pickle that needs code are each refused in one line;
* the real pretrained checkpoints in ../shared/models/taesd/ on real CIFAR-10 JPEGs: tests
  that fail when the science is wrong (labels detached from latents, images scaled to the
  wrong range, a broken pool branch), with thresholds set from measurements (below).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from analysis import encode as encode_mod
from analysis.autoencoders import feature_sets, load_latents
from analysis.common import VaelabError, load_npz
from analysis.encode import Encoder
from analysis.vae import load_vae, resolve_model

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_thread")

# ---- the published key patterns (madebyollin/taesd; ../shared/models/README.md) ------------
# Each entry: Sequential index -> ("conv", in, out, bias) or ("block", pool branch).
WIDTH = 64


def blocks(indices, pool=()):
    return {i: ("block", i in pool) for i in indices}


def encoder_8x(channels: int, pool=()) -> dict:
    return {0: ("conv", 3, WIDTH, True), 2: ("conv", WIDTH, WIDTH, False),
            6: ("conv", WIDTH, WIDTH, False), 10: ("conv", WIDTH, WIDTH, False),
            14: ("conv", WIDTH, channels, True),
            **blocks((1, 3, 4, 5, 7, 8, 9, 11, 12, 13), pool)}


def encoder_32x(channels: int) -> dict:
    return {0: ("conv", 3, 32, True), 2: ("conv", 32, WIDTH, True),
            5: ("conv", WIDTH, WIDTH, False), 9: ("conv", WIDTH, WIDTH, False),
            13: ("conv", WIDTH, WIDTH, False), 17: ("conv", WIDTH, channels, True),
            **blocks((4, 6, 7, 8, 10, 11, 12, 14, 15, 16))}


def decoder_8x(channels: int, pool=()) -> dict:
    return {1: ("conv", channels, WIDTH, True), 7: ("conv", WIDTH, WIDTH, False),
            12: ("conv", WIDTH, WIDTH, False), 17: ("conv", WIDTH, WIDTH, False),
            19: ("conv", WIDTH, 3, True), **blocks((3, 4, 5, 8, 9, 10, 13, 14, 15, 18), pool)}


def random_state(pattern: dict, seed: int = 0) -> dict:
    """Random float16 tensors (as the published files are) named and shaped as ``pattern``."""
    generator = torch.Generator().manual_seed(seed)
    state = {}

    def add(name, *shape):
        state[name] = (torch.randn(*shape, generator=generator) * 0.05).to(torch.float16)

    for i in sorted(pattern):
        kind, *rest = pattern[i]
        if kind == "conv":
            n_in, n_out, bias = rest
            add(f"{i}.weight", n_out, n_in, 3, 3)
            if bias:
                add(f"{i}.bias", n_out)
        else:
            for j in (0, 2, 4):
                add(f"{i}.conv.{j}.weight", WIDTH, WIDTH, 3, 3)
                add(f"{i}.conv.{j}.bias", WIDTH)
            if rest[0]:  # pool: 1x1 conv n -> 4n, GroupNorm(4, 4n), ReLU, 1x1 conv 4n -> n
                add(f"{i}.pool.0.weight", 4 * WIDTH, WIDTH, 1, 1)
                add(f"{i}.pool.1.weight", 4 * WIDTH)
                add(f"{i}.pool.1.bias", 4 * WIDTH)
                add(f"{i}.pool.3.weight", WIDTH, 4 * WIDTH, 1, 1)
    return state


# name -> (encoder pattern, decoder pattern or None, latent shape at 32 px, class, layout)
LAYOUTS = {
    "taesd": (encoder_8x(4), decoder_8x(4), (4, 4, 4), "AutoencoderTiny", "taesd"),
    "taef1": (encoder_8x(16), decoder_8x(16), (16, 4, 4), "AutoencoderTiny", "taesd"),
    "taef2": (encoder_8x(32, pool=(11, 12, 13)), decoder_8x(32, pool=(3, 4, 5)), (32, 4, 4),
              "TAESD", "taef2"),
    "taesana": (encoder_32x(32), None, (32, 1, 1), "TAESD", "taesana"),
}


def save_checkpoint(folder: Path, name: str, encoder: dict, decoder: dict | None = None,
                    suffix: str = ".pth") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for part, state in (("encoder", encoder), ("decoder", decoder)):
        if state is not None:
            path = folder / f"{name}_{part}{suffix}"
            if suffix == ".safetensors":
                from safetensors.torch import save_file

                save_file(state, str(path))
            else:
                torch.save(state, path)
    return folder / f"{name}_encoder{suffix}"


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# ---- every layout, from random tensors ----------------------------------------------------

@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_taesd_each_published_layout_loads_and_encodes(tmp_path, name):
    enc_pattern, dec_pattern, shape, cls, layout = LAYOUTS[name]
    encoder = random_state(enc_pattern)
    decoder = random_state(dec_pattern, seed=1) if dec_pattern else None
    model = resolve_model(str(save_checkpoint(tmp_path, name, encoder, decoder)))
    assert (model.autoencoder_class, model.layout, model.has_decoder) == (cls, layout, decoder is not None)
    assert model.decoder_file == (f"{name}_decoder.pth" if decoder else "")
    vae = load_vae(model)
    assert type(vae).__name__ == cls
    # The file's tensors are the module's, as float32 (the published files are float16).
    first = dict(vae.encoder.named_parameters())["layers.0.weight"]
    torch.testing.assert_close(first, encoder["0.weight"].float())
    enc = Encoder(vae, "cpu", "fp32")
    (latent,) = enc.encode(images(2))
    assert tuple(latent.shape) == (2, *shape)
    if decoder is not None:
        assert tuple(enc.decode(latent).shape) == (2, 3, 32, 32)
    else:
        assert vae.decoder is None  # never a decoder with random weights


def test_taesd_own_module_matches_autoencoder_tiny(tmp_path):
    """The two loading paths agree: analysis.taesd's module (used for taef2 and taesana) and
    diffusers' AutoencoderTiny (plain layouts) give the same latents and decodes from the
    same tensors, so both feed the weights images in the same range."""
    from analysis import taesd

    encoder, decoder = random_state(encoder_8x(4)), random_state(decoder_8x(4), seed=1)
    tiny = load_vae(resolve_model(str(save_checkpoint(tmp_path, "taesd", encoder, decoder))))
    config = {"layout": "taesd", "latent_channels": 4, "downsampling": 8}
    as_float = {k: v.float() for k, v in encoder.items()}, {k: v.float() for k, v in decoder.items()}
    own = taesd.build_taesd()(config, *as_float).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1  # the pipeline's [-1, 1]
    with torch.no_grad():
        torch.testing.assert_close(own.encoder(x), tiny.encoder(x))
        z = own.encoder(x)
        torch.testing.assert_close(own.decode(z).sample, tiny.decode(z).sample)
        # Against the bare published Sequential fed [0, 1] (TAESD's training range):
        bare = taesd.encoder_layers("taesd", 4)
        bare.load_state_dict(as_float[0])
        torch.testing.assert_close(bare((x + 1) / 2), z)


def test_taesd_layout_read_from_tensors_not_file_name(tmp_path):
    enc_pattern, dec_pattern, *_ = LAYOUTS["taef2"]
    # taef2 tensors under the plain taesd's file name still load as taef2, decoder beside it.
    model = resolve_model(str(save_checkpoint(tmp_path / "a", "taesd", random_state(enc_pattern),
                                              random_state(dec_pattern))))
    assert (model.layout, model.autoencoder_class, model.has_decoder) == ("taef2", "TAESD", True)
    # A file renamed without "_encoder": it loads, with no decoder name to look for.
    renamed = tmp_path / "b" / "weights.pth"
    renamed.parent.mkdir()
    torch.save(random_state(LAYOUTS["taesana"][0]), renamed)
    model = resolve_model(str(renamed))
    assert (model.layout, model.has_decoder) == ("taesana", False)


def test_taesd_folder_with_one_encoder_resolves_and_two_are_refused(tmp_path):
    enc_pattern, dec_pattern, *_ = LAYOUTS["taesd"]
    folder = save_checkpoint(tmp_path / "models", "mine", random_state(enc_pattern),
                             random_state(dec_pattern)).parent
    model = resolve_model(str(folder))
    assert (Path(model.path).name, model.decoder_file) == ("mine_encoder.pth", "mine_decoder.pth")
    save_checkpoint(folder, "other", random_state(enc_pattern))
    with pytest.raises(VaelabError) as excinfo:
        resolve_model(str(folder))
    assert "2 TAESD encoders" in one_line_error(excinfo)


def test_taesd_safetensors_checkpoint_loads(tmp_path):
    enc_pattern, dec_pattern, *_ = LAYOUTS["taef1"]
    model = resolve_model(str(save_checkpoint(tmp_path, "taef1", random_state(enc_pattern),
                                              random_state(dec_pattern), suffix=".safetensors")))
    assert (model.layout, model.decoder_file) == ("taesd", "taef1_decoder.safetensors")


def test_taesd_unknown_layout_refused_in_one_line(tmp_path):
    state = random_state(LAYOUTS["taef2"][0])
    del state["12.pool.3.weight"]  # a pool branch cut short: no published layout
    path = tmp_path / "odd_encoder.pth"
    torch.save(state, path)
    with pytest.raises(VaelabError) as excinfo:
        resolve_model(str(path))
    message = one_line_error(excinfo)
    assert "fits no TAESD encoder layout" in message and "78 tensors" in message
    assert all(name in message for name in ("taesd/taesdxl", "taesd3/taef1", "taef2", "taesana"))


def test_taesd_decoder_given_as_encoder_is_named(tmp_path):
    path = tmp_path / "x_encoder.pth"
    torch.save(random_state(LAYOUTS["taesd"][1]), path)
    with pytest.raises(VaelabError) as excinfo:
        resolve_model(str(path))
    assert "it is a TAESD decoder" in one_line_error(excinfo)


class Payload:
    """Unpickling this runs os.mkdir(marker): what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_taesd_pickle_with_code_refused_and_never_run(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil_encoder.pth"
    torch.save({"0.weight": torch.zeros(1), "payload": Payload(marker)}, path)
    with pytest.raises(VaelabError) as excinfo:
        resolve_model(str(path))
    assert "needs code to unpickle" in one_line_error(excinfo)
    assert not marker.exists()


# ---- the real checkpoints on real images --------------------------------------------------
# Measured through this pipeline (2-core AMD EPYC, float32): logistic regression
# on TAEF2 latents, first 300 train / 100 test images per class, 0.567
# (../shared/models/README.md: 0.566), with shuffled training labels 0.086; on the first
# 50 / 25 per class, as here, 0.524, shuffled 0.132 and 0.108 (seeds 0, 1); 40 / 20: 0.435.
# TAEF2 reconstructions 24.2 dB mean PSNR on the first 10 test images per class; feeding the
# encoder [-1, 1] instead of [0, 1] gives 9.2 dB, leaving the decoder's [0, 1] output
# unrescaled 10.9 dB, so the PSNR test catches the wrong input range on either side. Thresholds: 0.35 is about 6 standard errors
# below 0.524 on 250 test images and 9 above chance; 0.2 is 5 above chance.
N_TRAIN, N_TEST = 50, 25


@pytest.fixture(scope="module")
def real_dataset(tmp_path_factory) -> Path:
    """dataset.npz of the first N_TRAIN train and N_TEST test CIFAR-10 JPEGs per class."""
    from analysis import config, data
    from helpers import extract_cifar

    root = tmp_path_factory.mktemp("real")
    images = extract_cifar(root / "cifar10-jpeg", N_TRAIN, N_TEST)
    config.main(["data", "--dataset", f"imagefolder:{images}", "--limit", "",
                 "--data-root", str(root / "unused"), "--out", str(root / "data/config.json")])
    data.main([str(root / "data/config.json"), str(root / "data/dataset.npz")])
    return root / "data/dataset.npz"


def encode_run(vae: Path, dataset: Path, run_dir: Path, cache: Path) -> Path:
    """analysis.config + analysis.encode as `make report` runs them; the run directory."""
    from analysis import config

    config.main(["run", "--vae", str(vae), "--device", "cpu", "--precision", "fp32",
                 "--batch-size", "64", "--compile", "off", "--out", str(run_dir / "config.json")])
    encode_mod.main([str(run_dir / "config.json"), str(dataset), str(run_dir / "latents.npz"),
                     "--cache", str(cache)])
    return run_dir


@pytest.fixture(scope="module")
def taef2_run(taesd_models, real_dataset, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("taef2")
    return encode_run(taesd_models / "taef2_encoder.pth", real_dataset, root / "run", root / "cache")


def logreg_accuracy(latents: dict, shuffle_seed: int | None = None) -> float:
    """The pipeline's protocol: StandardScaler + logistic regression on the flattened latent."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, x_test = feature_sets(latents, "train")["latent"], feature_sets(latents, "test")["latent"]
    y_train = latents["y_train"]
    if shuffle_seed is not None:
        y_train = np.random.default_rng(shuffle_seed).permutation(y_train)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(model.fit(x_train, y_train).score(x_test, latents["y_test"]))


def test_taef2_logistic_regression_far_above_chance(taef2_run):
    latents = load_latents(taef2_run / "latents.npz")
    assert latents["train_latent"].shape == (10 * N_TRAIN, 32, 4, 4)
    assert logreg_accuracy(latents) > 0.35  # chance: 0.10


def test_taef2_logistic_regression_with_shuffled_labels_falls_to_chance(taef2_run):
    latents = load_latents(taef2_run / "latents.npz")
    assert max(logreg_accuracy(latents, seed) for seed in (0, 1)) < 0.2


def test_taef2_reconstructions_above_20_db(taef2_run):
    recon = load_npz(taef2_run / "reconstructions.npz", "reconstructions", ("psnr", "ssim"))
    assert len(recon["psnr"]) == 100 and recon["psnr"].mean() >= 20.0
    assert recon["ssim"].mean() > 0.7


def test_taef2_weights_do_not_behave_as_untrained(taef2_run, real_dataset):
    """analysis.weights' rule on the real TAEF2: its reconstructions beat the flat image and
    its latents beat pooled pixels (logistic regression on both, as metrics.json holds it).
    The rule needs both to fail; each alone must pass here, so the rule is not saved by one."""
    from analysis import weights
    from analysis.autoencoders import POOLED
    from analysis.baselines import pooled
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_npz(real_dataset, "dataset", ("x_train", "y_train", "x_test", "y_test"))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    pixels = float(model.fit(pooled(data["x_train"]), data["y_train"]).score(pooled(data["x_test"]), data["y_test"]))
    latent = logreg_accuracy(load_latents(taef2_run / "latents.npz"))
    metrics = {"classes": [str(c) for c in range(10)],
               "best": {"model": "logreg", "feature_set": "latent", "accuracy": latent},
               "results": {"logreg": {"latent": {"accuracy": latent}, POOLED: {"accuracy": pixels}}},
               "feature_sets": {POOLED: {"label": "pixels, pooled to 4×4×3"}}}
    (taef2_run / "metrics.json").write_text(json.dumps(metrics))
    check = weights.judge(taef2_run, real_dataset)
    assert check["behaves_untrained"] is False
    assert check["reconstructions"]["psnr_over_flat_db"] > 2 * weights.PSNR_MARGIN_DB
    assert not check["accuracy"]["uninformative"]


def test_taesana_loads_without_decoder_and_gives_32x1x1_latents(taesd_models, real_dataset, tmp_path):
    model = resolve_model(str(taesd_models / "taesana_encoder.pth"))
    assert (model.layout, model.has_decoder, model.decoder_file) == ("taesana", False, "")
    run = encode_run(taesd_models / "taesana_encoder.pth", real_dataset, tmp_path / "run",
                     tmp_path / "cache")
    latents = load_latents(run / "latents.npz")
    assert latents["test_latent"].shape == (10 * N_TEST, 32, 1, 1)
    assert not (run / "reconstructions.npz").exists()
    info = json.loads((run / "encode.json").read_text())
    assert info["model"]["has_decoder"] is False and info["downsampling"] == 32


def test_taesd_checkpoints_share_encoder_checksum(taesd_models, tmp_path):
    """An encoder file without its decoder, copied and renamed, is the same encoder: the same
    checksum (so the same cached latents and results); another encoder is not."""
    with_decoder = resolve_model(str(taesd_models / "taef2_encoder.pth"))
    alone = tmp_path / "copy" / "renamed_encoder.pth"
    alone.parent.mkdir()
    shutil.copyfile(taesd_models / "taef2_encoder.pth", alone)
    copy = resolve_model(str(alone))
    assert copy.encoder_sha256 == with_decoder.encoder_sha256
    assert (copy.has_decoder, with_decoder.has_decoder) == (False, True)
    other = resolve_model(str(taesd_models / "taesana_encoder.pth"))
    assert other.encoder_sha256 != with_decoder.encoder_sha256


# ---- make: run names and an encoder-only variant in the report ----------------------------

@pytest.mark.e2e
def test_make_names_checkpoint_runs_after_the_file(taesd_models, tmp_path):
    from helpers import run_make

    # BUILD outside the checkout: even `make -n` writes the run plan (BUILD/plan.mk).
    proc = run_make("-n", "report", f"BUILD={tmp_path}/never",
                    f"VAES={taesd_models / 'taef2_encoder.pth'} {taesd_models / 'taesana_encoder.pth'}")
    assert f"{tmp_path}/never/runs/taef2/config.json" in proc.stdout
    assert f"{tmp_path}/never/runs/taesana/config.json" in proc.stdout
    assert "_encoder" not in proc.stdout.replace("_encoder.pth", "")


def test_make_report_with_encoder_only_variant(cifar_build, taesd_models, cifar_subset, tmp_path):
    """The issue's "done when" at a tiny size: every run, TAESana said to have no decoder, no
    image of its reconstructions anywhere, TAEF2's real reconstructions in the comparison."""
    from helpers import cifar_vars, copy_build, run_make

    html = (cifar_build / "report.html").read_text()
    assert 'id="fig-reconstructions"' in html and "runs/tiny-vae/figures/reconstructions.png" in html
    assert "runs/taesana/figures/reconstructions.png" not in html
    assert "taesana has no decoder" in html and 'id="fig-variant-reconstructions"' in html
    variants = {v["name"]: v for v in json.loads((cifar_build / "compare/variants.json").read_text())}
    assert list(variants) == ["tiny-vae", "taef2", "taesana", "tiny-taesd", "tiny-dc"]
    assert [name for name, v in variants.items() if not v["has_decoder"]] == ["taesana"]
    assert variants["taef2"]["psnr_mean"] > 20 and variants["taesana"]["psnr_mean"] is None
    assert (cifar_build / "report.pdf").stat().st_size > 10_000
    build = copy_build(cifar_build, tmp_path / "b")  # make diff and the next report write into it
    proc = run_make("diff", "A=taef2", "B=taesana", f"BUILD={build}")
    assert "taesana had no decoder" in proc.stdout
    assert not (build / "diff-taef2-vs-taesana/figures/a-reconstructions.png").exists()
    # TAESana alone (its run is reused): the primary has no decoder, and the report says so.
    run_make("report", *cifar_vars(build, str(taesd_models / "taesana_encoder.pth"), cifar_subset))
    html = (build / "report.html").read_text()
    assert 'id="no-decoder"' in html and 'id="fig-reconstructions"' not in html
    assert "reconstructions.png" not in html
    assert "(<code>encoder.*</code> and its config)" in html  # a TAESD encoder has no quant_conv
