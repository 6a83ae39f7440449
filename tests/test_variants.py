"""Several VAE variants in one report, report diffs, and the float16 overflow guard."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from analysis.common import VaelabError
from analysis.demo import TINY_CONFIG
from helpers import ROOT, copy_build, run_make


@pytest.fixture(scope="module")
def two_variants(variants_build):
    """The default `make report` (three tiny stand-ins under the default hub ids) on 4 images/class."""
    return variants_build


def test_variants_report_has_comparison_section(two_variants):
    html = (two_variants / "report.html").read_text()
    assert 'id="comparing-encoders"' in html and 'id="variants-table"' in html
    assert 'id="sdxl-paragraph"' in html
    assert (two_variants / "compare/reconstructions.png").is_file()
    variants = json.loads((two_variants / "compare/variants.json").read_text())
    assert [v["name"] for v in variants] == ["sd-vae-ft-ema", "sd-vae-ft-mse", "sdxl-vae"]
    for v in variants:
        assert v["psnr_mean"] > 0 and -1 <= v["ssim_mean"] <= 1
    # each variant has its own run directory; the dataset is decoded once
    assert (two_variants / "runs/sd-vae-ft-ema/metrics.json").is_file()
    assert (two_variants / "runs/sdxl-vae/metrics.json").is_file()


def test_variants_report_counts_variants_and_distinct_encoders(two_variants):
    """Issue 36: ema and mse share an encoder, so 3 variants are 2 encoders, and the figure's
    means are over every decoded image, not the ones shown."""
    text = " ".join((two_variants / "report.html").read_text().split())
    assert "The same images went through 3 variants, with 2 distinct encoders among them" in text
    assert "with mean PSNR and SSIM over all 40 decoded test images (Table C2's sample), not only the ones shown" in text


def test_diff_writes_reports_and_prints_table(two_variants, tmp_path):
    build = copy_build(two_variants, tmp_path / "b")  # make diff writes into the build
    proc = run_make("diff", f"BUILD={build}", "A=sd-vae-ft-ema", "B=sdxl-vae")
    assert "McNemar p" in proc.stdout and "Logistic Regression" in proc.stdout
    out = build / "diff-sd-vae-ft-ema-vs-sdxl-vae"
    assert (out / "diff.html").is_file() and (out / "diff.pdf").stat().st_size > 5000
    assert 'id="diff-table"' in (out / "diff.html").read_text()


def test_diff_refuses_different_test_sets(two_variants, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(two_variants / "runs/sdxl-vae", other)
    encode = json.loads((other / "encode.json").read_text())
    encode["dataset_sha256"] = "0" * 64
    (other / "encode.json").write_text(json.dumps(encode))
    proc = subprocess.run([sys.executable, "-m", "report.diff", str(two_variants / "runs/sd-vae-ft-ema"),
                           str(other), "--table"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "different test sets" in proc.stderr and "Traceback" not in proc.stderr


def test_diff_compare_delta_matches_accuracies(two_variants):
    from report.diff import compare, load_run

    a, b = load_run(two_variants / "runs/sd-vae-ft-ema"), load_run(two_variants / "runs/sdxl-vae")
    for row in compare(a, b):
        assert row["delta"] == pytest.approx(row["acc_b"] - row["acc_a"], abs=1e-4)
        assert row["ci"][0] <= row["delta"] + 1e-9 <= row["ci"][1] + 2e-9
        assert 0 <= row["p_value"] <= 1


def overflowing_vae(tmp_path, force_upcast: bool):
    """A tiny VAE whose first conv has huge weights: fine in float32, Inf in float16."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(**TINY_CONFIG, force_upcast=force_upcast)
    with torch.no_grad():
        vae.encoder.conv_in.weight.mul_(1e5)
    path = tmp_path / f"overflow-{force_upcast}"
    vae.save_pretrained(path)
    return path


def test_fp16_overflow_is_caught_by_the_nan_guard(tmp_path):
    """Run in float16 on purpose (force_upcast off): the guard must stop with a one-line error."""
    import torch

    from analysis.encode import Encoder, check_finite, count_nonfinite
    from analysis.vae import load_vae, resolve_model

    model = resolve_model(str(overflowing_vae(tmp_path, force_upcast=False)))
    images = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    fp32_mean, fp32_std = Encoder(load_vae(model), "cpu", "fp32").encode(images)
    assert count_nonfinite(fp32_mean, fp32_std) == 0  # the model itself is fine
    fp16 = Encoder(load_vae(model), "cpu", "fp16")
    assert fp16.dtype == torch.float16
    mean, std = fp16.encode(images)
    bad = count_nonfinite(mean, std)
    assert bad > 0
    with pytest.raises(VaelabError, match=r"non-finite.*fp16.*PRECISION=fp32"):
        check_finite(bad, "latent", "overflow-vae", "fp16", "cpu")


def test_force_upcast_vae_is_never_run_in_fp16(tmp_path):
    from analysis.devices import choose_precision

    with pytest.raises(VaelabError, match="force_upcast"):
        choose_precision("fp16", "cpu", force_upcast=True, name="sdxl-vae")
    assert choose_precision("auto", "cpu", force_upcast=True, name="sdxl-vae")[0] in ("fp32", "bf16")
