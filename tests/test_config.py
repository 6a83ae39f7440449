"""Tests for analysis.config: validation of every user variable and the stamp file."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from analysis import config
from analysis.common import VaelabError
from analysis.config import (check_dataset, check_vae, make_data_config, make_run_config,
                             parse_limit, write_if_changed)


def run_args(**overrides: str) -> dict[str, str]:
    args = {"vae": "stabilityai/sd-vae-ft-ema", "revision": "", "seed": "0", "device": "cpu",
            "precision": "fp32", "batch_size": "64"}
    args.update(overrides)
    return args


# ---- LIMIT -------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "  ", "all", "ALL", " all "])
def test_parse_limit_empty_or_all_means_zero(text):
    assert parse_limit(text) == 0


@pytest.mark.parametrize("text, expected", [("1", 1), ("30", 30), (" 7 ", 7)])
def test_parse_limit_positive_number_kept(text, expected):
    assert parse_limit(text) == expected


@pytest.mark.parametrize("text", ["0", "-3"])
def test_parse_limit_zero_and_negative_rejected(text):
    with pytest.raises(VaelabError, match="LIMIT"):
        parse_limit(text)


@pytest.mark.parametrize("text", ["abc", "1.5", "3x"])
def test_parse_limit_non_integer_rejected(text):
    with pytest.raises(VaelabError, match="LIMIT.*not an integer"):
        parse_limit(text)


# ---- SEED / DEVICE / PRECISION / BATCH ----------------------------------------------------

def test_run_config_seed_not_integer_rejected():
    with pytest.raises(VaelabError, match="SEED"):
        make_run_config(**run_args(seed="x"))


def test_run_config_negative_seed_rejected():
    with pytest.raises(VaelabError, match="SEED"):
        make_run_config(**run_args(seed="-1"))


@pytest.mark.parametrize("seed", ["99999999999999999999999", str(2**31), str(2**32)])
def test_run_config_seed_above_every_generators_range_rejected(seed):
    with pytest.raises(VaelabError, match=r"^SEED=\d+ must be from 0 to 2147483647$"):
        make_run_config(**run_args(seed=seed))


def test_run_config_seed_at_the_range_ends_kept():
    assert [make_run_config(**run_args(seed=s)).seed for s in ("0", str(2**31 - 1))] == [0, 2**31 - 1]


def test_seed_max_is_the_narrowest_generator_range():
    """SEED_MAX is taken by every generator SEED seeds, and one more is not told apart by
    LightGBM (it keeps a seed modulo 2**31) or refused by scikit-learn further up."""
    import numpy as np
    import torch
    from lightgbm import LGBMClassifier
    from sklearn.decomposition import PCA

    rng = np.random.RandomState(0)
    x, y = rng.rand(200, 4), rng.randint(0, 2, 200)
    np.random.RandomState(config.SEED_MAX), np.random.default_rng(config.SEED_MAX)
    torch.Generator().manual_seed(config.SEED_MAX)
    PCA(2, svd_solver="randomized", random_state=config.SEED_MAX).fit(x)

    def lightgbm(seed: int) -> np.ndarray:
        return LGBMClassifier(random_state=seed, n_estimators=5, subsample=0.5, subsample_freq=1,
                              colsample_bytree=0.5, deterministic=True, force_row_wise=True,
                              verbose=-1, n_jobs=1).fit(x, y).predict_proba(x)

    assert not np.array_equal(lightgbm(config.SEED_MAX), lightgbm(0))
    assert np.array_equal(lightgbm(config.SEED_MAX + 1), lightgbm(0))
    with pytest.raises(ValueError, match="random_state"):
        PCA(2, random_state=2**32).fit(x)


def test_run_config_valid_values_parsed():
    cfg = make_run_config(**run_args(seed=" 42 ", precision=" BF16 ", device="cuda:1",
                                     batch_size="16"))
    assert (cfg.seed, cfg.precision, cfg.device, cfg.batch_size) == (42, "bf16", "cuda:1", 16)


@pytest.mark.parametrize("text", ["auto", " AUTO ", ""])
def test_run_config_batch_auto_is_none(text):
    assert make_run_config(**run_args(batch_size=text)).batch_size is None


@pytest.mark.parametrize("text", ["0", "-4", "sixteen", "1.5"])
def test_run_config_bad_batch_rejected(text):
    with pytest.raises(VaelabError, match="BATCH"):
        make_run_config(**run_args(batch_size=text))


def test_run_config_empty_device_and_precision_mean_auto():
    cfg = make_run_config(**run_args(device="", precision=""))
    assert (cfg.device, cfg.precision) == ("auto", "auto")


@pytest.mark.parametrize("precision", ["fp8", "float32", "half"])
def test_run_config_unknown_precision_rejected(precision):
    with pytest.raises(VaelabError, match="PRECISION"):
        make_run_config(**run_args(precision=precision))


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "tpu", "cpu0"])
def test_run_config_unknown_device_rejected(device):
    with pytest.raises(VaelabError, match="DEVICE"):
        make_run_config(**run_args(device=device))


def test_run_config_bad_compile_rejected():
    with pytest.raises(VaelabError, match="COMPILE='sometimes' is not known"):
        make_run_config(**run_args(), compile="sometimes")


@pytest.mark.parametrize("batch", ["0", "many"])
def test_run_config_bad_batch_size_rejected(batch):
    with pytest.raises(VaelabError, match="BATCH"):
        make_run_config(**run_args(batch_size=batch))


# ---- DATASET ------------------------------------------------------------------------------

def test_check_dataset_cifar10_accepted():
    assert check_dataset(" cifar10 ") == "cifar10"


def test_check_dataset_imagefolder_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = check_dataset("imagefolder:some/images")
    assert spec == f"imagefolder:{tmp_path.resolve() / 'some' / 'images'}"
    assert Path(spec.split(":", 1)[1]).is_absolute()


def test_check_dataset_imagefolder_absolute_path_unchanged(tmp_path):
    assert check_dataset(f"imagefolder:{tmp_path}") == f"imagefolder:{tmp_path.resolve()}"


@pytest.mark.parametrize("spec", ["", "cifar100", "imagefolder:", "imagefolder:   ", "mnist:/x",
                                  "CIFAR10 ; rm -rf /"])
def test_check_dataset_garbage_rejected(spec):
    with pytest.raises(VaelabError, match="DATASET"):
        check_dataset(spec)


def test_make_data_config_expands_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = make_data_config("cifar10", "all", "~/data")
    assert cfg.data_root == str(tmp_path / "data")
    assert cfg.limit == 0


# ---- VAE ------------------------------------------------------------------------------------

@pytest.mark.parametrize("hub_id", ["stabilityai/sd-vae-ft-ema", "stabilityai/sd-vae-ft-mse",
                                    "madebyollin/sdxl-vae-fp16-fix"])
def test_check_vae_hub_id_accepted(hub_id):
    assert check_vae(hub_id) == hub_id


def test_check_vae_existing_directory_made_absolute(tmp_path, monkeypatch):
    (tmp_path / "my-vae").mkdir()
    monkeypatch.chdir(tmp_path)
    assert check_vae("./my-vae") == str(tmp_path.resolve() / "my-vae")
    assert check_vae("my-vae") == str(tmp_path.resolve() / "my-vae")


def test_check_vae_linked_directory_keeps_the_name_given(tmp_path, monkeypatch):
    # A folder linked as sd-vae-ft-ema: its run is called sd-vae-ft-ema, and so must the weights
    # be, not the link's target (the report named one variant two ways).
    (tmp_path / "downloads" / "vae-random").mkdir(parents=True)
    (tmp_path / "sd-vae-ft-ema").symlink_to(tmp_path / "downloads" / "vae-random")
    monkeypatch.chdir(tmp_path)
    assert check_vae("sd-vae-ft-ema") == str(tmp_path.resolve() / "sd-vae-ft-ema")
    assert check_vae("./downloads/../sd-vae-ft-ema") == str(tmp_path.resolve() / "sd-vae-ft-ema")


@pytest.mark.parametrize("vae", ["a;rm -rf x", "a;b", "$(touch x)", "a b/c", "owner/name;ls",
                                 "no-slash-name", "", "   "])
def test_check_vae_shell_metacharacters_and_garbage_rejected(vae, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VaelabError, match="VAE"):
        check_vae(vae)


@pytest.mark.parametrize("vae", ["./nope", "./a;rm -rf x"])
def test_check_vae_nonexistent_relative_path_rejected(vae, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VaelabError, match="VAE"):
        check_vae(vae)


# ---- stamp file -------------------------------------------------------------------------------

OLD_NS = 1_000_000_000 * 10**9  # 2001-09-09: any rewrite would move the mtime past this


def test_write_if_changed_creates_missing_file(tmp_path):
    target = tmp_path / "sub" / "config.json"
    assert write_if_changed(target, {"a": 1}) is True
    assert json.loads(target.read_text()) == {"a": 1}


def test_write_if_changed_keeps_mtime_when_equal(tmp_path):
    target = tmp_path / "config.json"
    write_if_changed(target, make_data_config("cifar10", "5", "/data"))
    os.utime(target, ns=(OLD_NS, OLD_NS))
    assert write_if_changed(target, make_data_config("cifar10", "5", "/data")) is False
    assert target.stat().st_mtime_ns == OLD_NS


def test_write_if_changed_rewrites_when_content_changes(tmp_path):
    target = tmp_path / "config.json"
    write_if_changed(target, make_data_config("cifar10", "5", "/data"))
    os.utime(target, ns=(OLD_NS, OLD_NS))
    assert write_if_changed(target, make_data_config("cifar10", "6", "/data")) is True
    assert target.stat().st_mtime_ns != OLD_NS
    assert json.loads(target.read_text())["limit"] == 6


def test_config_main_run_writes_loadable_config(tmp_path):
    out = tmp_path / "run" / "config.json"
    config.main(["run", "--vae", "owner/model", "--seed", "3", "--device", "cpu",
                 "--precision", "fp32", "--batch-size", "4", "--out", str(out)])
    cfg = config.load_run_config(out)
    assert (cfg.vae, cfg.seed, cfg.device, cfg.precision, cfg.batch_size) == \
        ("owner/model", 3, "cpu", "fp32", 4)


def test_config_main_same_command_twice_keeps_mtime(tmp_path):
    out = tmp_path / "data" / "config.json"
    argv = ["data", "--dataset", "cifar10", "--limit", "", "--data-root", "/d", "--out", str(out)]
    config.main(argv)
    os.utime(out, ns=(OLD_NS, OLD_NS))
    config.main(argv)
    assert out.stat().st_mtime_ns == OLD_NS
    assert config.load_data_config(out).limit == 0


def test_config_main_invalid_value_writes_nothing(tmp_path):
    out = tmp_path / "run" / "config.json"
    with pytest.raises(VaelabError):
        config.main(["run", "--vae", "a;b", "--out", str(out)])
    assert not out.exists()


# ---- the run plan (build/plan.mk) -------------------------------------------------------------

def plan_variables(text: str, tmp_path: Path, extra: tuple[str, ...] = ()) -> dict[str, str]:
    """The variables a plan.mk gives make (and ``extra`` ones), read back by make itself."""
    import subprocess

    (tmp_path / "plan.mk").write_text(text)
    names = ["RUN_NAMES", "VAELAB_RUNS", "FIGURE_FILES", *extra]
    names += [f"{kind}.{name}" for name in text.split("RUN_NAMES := ")[1].split("\n")[0].split()
              for kind in ("RUN_VAE", "RUN_RESOLUTION")]
    lines = ["BUILD := B", "include plan.mk", *(f"$(info {n}=$({n}))" for n in names), "all: ; @:"]
    (tmp_path / "Makefile").write_text("\n".join(lines) + "\n")
    out = subprocess.run(["make", "-s"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def test_make_plan_names_a_run_per_vae_and_resolution(tmp_path):
    text = config.make_plan("owner/sd-vae-ft-ema /w/taef2_encoder.pth /w/my-vae/", "owner/sd-vae-ft-ema",
                            "32 64")
    got = plan_variables(text, tmp_path)
    assert got["RUN_NAMES"] == "sd-vae-ft-ema sd-vae-ft-ema-r64 taef2 taef2-r64 my-vae my-vae-r64"
    assert got["RUN_VAE.taef2-r64"] == "/w/taef2_encoder.pth" and got["RUN_RESOLUTION.taef2-r64"] == "64"
    assert got["RUN_VAE.my-vae"] == "/w/my-vae/" and got["RUN_RESOLUTION.my-vae"] == "32"
    assert got["VAELAB_RUNS"] == "6"


def test_config_main_name_prints_run_names(capsys):
    config.main(["name", "build/runs/taef2/", "/w/taesd_encoder.safetensors", "owner/sd-vae-ft-mse"])
    assert capsys.readouterr().out == "taef2 taesd sd-vae-ft-mse\n"


def test_make_plan_values_reach_make_unchanged(tmp_path):
    vae = "/tmp/it's_$HOME_#1/vae"  # no spaces: VAES splits on them
    got = plan_variables(config.make_plan(vae, vae, ""), tmp_path)
    assert got["RUN_VAE.vae"] == vae and got["RUN_RESOLUTION.vae"] == "32"


def test_make_plan_names_the_commit_so_a_new_one_rewrites_the_plan(tmp_path):
    """provenance.json depends on plan.mk: a plan that changes with the commit makes a new
    commit rebuild each run's provenance (Appendix A), and only that."""
    vae = "owner/sd-vae-ft-ema"
    a, b = (config.make_plan(vae, vae, "", commit=c) for c in ("1" * 40, "2" * 40))
    assert a != b and plan_variables(a, tmp_path, ("VAELAB_COMMIT",))["VAELAB_COMMIT"] == "1" * 40
    assert "VAELAB_COMMIT" not in config.make_plan(vae, vae, "")  # not a git checkout
    assert a.replace("1" * 40, "2" * 40) == b  # nothing else differs


def test_make_plan_figure_files_are_the_figures_module_list():
    from analysis import figures

    assert config.figure_files() == [f"figures/{n}" for n in figures.FIGURES] + ["figures/figures.json"]


@pytest.mark.parametrize("vaes, vae, resolution, message", [
    ("a/b", "a/b c/d", "32", "VAE='a/b c/d' must be one hub id or one directory without spaces"),
    ("a/b", "", "32", "VAE='' must be one hub id"),
    ("a/b", "a/b", "64 big", "RESOLUTION='64 big' must be whole numbers of pixels"),
    ("a/b", "a/b", "32 32", "RESOLUTION='32 32' names a resolution twice"),
    ("a/b", "a/b", "33", "RESOLUTION=33 must be a multiple of 8"),
    ("a/vae /x/vae", "a/vae", "32", "has two models with the same name; rename one directory"),
    ("/x/a#b", "/x/a#b", "32", "the run name 'a#b' is empty or holds one of"),
])
def test_make_plan_rejects_what_make_cannot_run(vaes, vae, resolution, message):
    with pytest.raises(VaelabError, match=re.escape(message)):
        config.make_plan(vaes, vae, resolution)


def test_config_main_plan_rewrites_only_on_change_and_nothing_on_error(tmp_path):
    out = tmp_path / "b" / "plan.mk"
    argv = ["plan", "--vaes", "a/b", "--vae", "a/b", "--out", str(out)]
    config.main(argv)
    os.utime(out, ns=(OLD_NS, OLD_NS))
    config.main(argv)
    assert out.stat().st_mtime_ns == OLD_NS
    with pytest.raises(VaelabError):
        config.main([*argv, "--resolution", "abc"])
    assert out.stat().st_mtime_ns == OLD_NS
    with pytest.raises(VaelabError):
        config.main(["plan", "--resolution", "abc", "--out", str(tmp_path / "c" / "plan.mk")])
    assert not (tmp_path / "c").exists()
