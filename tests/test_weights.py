"""analysis.weights: weights that behave as untrained are named, by a rule with stated thresholds.

Made-up numbers for each side of the rule; vaelab's random tiny VAE (the demo build) must
trigger it; the real TAEF2 weights must not (tests/test_taesd.py, which has their run).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from analysis import weights as W
from helpers import ROOT, copy_build

CLASSES = [f"c{i}" for i in range(10)]


def made_up_metrics(latent: float, pooled: float | None) -> dict:
    """metrics.json's fields the rule reads: the best latent accuracy and the pooled pixels'."""
    results = {"logreg": {"sample": {"accuracy": latent}}, "random": {"sample": {"accuracy": 0.9}}}
    feature_sets = {"sample": {"label": ".sample()", "kind": "vae"}}
    if pooled is not None:
        results["logreg"]["pixels_pooled"] = {"accuracy": pooled}
        results["random"]["pixels_pooled"] = {"accuracy": 0.99}  # not a classifier: never counted
        feature_sets["pixels_pooled"] = {"label": "pixels, pooled to 4×4×3", "kind": "baseline"}
    return {"classes": CLASSES, "results": results, "feature_sets": feature_sets,
            "best": {"model": "logreg", "feature_set": "sample", "accuracy": latent}}


def recon(psnr: float, flat: float) -> dict:
    return W.reconstruction_check(np.full(5, psnr), np.full(5, 0.1), np.full(5, flat), np.full(5, 0.2), 120)


@pytest.mark.parametrize("psnr, flat, no_better", [(10.1, 12.4, True), (12.4 + W.PSNR_MARGIN_DB - 0.01, 12.4, True),
                                                   (12.4 + W.PSNR_MARGIN_DB, 12.4, False), (24.2, 12.4, False)])
def test_reconstructions_against_the_flat_image(psnr, flat, no_better):
    check = recon(psnr, flat)
    assert check["no_better_than_flat"] is no_better
    assert check["psnr_over_flat_db"] == pytest.approx(psnr - flat)


@pytest.mark.parametrize("latent, pooled, near, below", [
    (0.12, 0.45, True, True),  # the issue's .sample() at random weights
    (0.149, None, True, False),  # under 1.5 x chance, no pixel baseline to compare
    (0.3258, 0.45, False, True),  # above chance, below merely averaged pixels
    (0.55, 0.37, False, False),  # TAEF2-like
])
def test_latents_against_chance_and_pooled_pixels(latent, pooled, near, below):
    check = W.accuracy_check(made_up_metrics(latent, pooled))
    assert (check["near_chance"], check["below_pooled_pixels"]) == (near, below)
    assert check["uninformative"] is (near or below)
    assert check["chance"] == 0.1 and check["pooled_pixels"] == pooled


def test_verdict_needs_both_with_a_decoder_and_accuracy_alone_without():
    bad, good = W.accuracy_check(made_up_metrics(0.3, 0.45)), W.accuracy_check(made_up_metrics(0.55, 0.37))
    assert W.verdict(recon(10.1, 12.4), bad)["behaves_untrained"] is True
    assert W.verdict(recon(24.2, 12.4), bad)["behaves_untrained"] is False  # a decoder that decodes
    assert W.verdict(recon(10.1, 12.4), good)["behaves_untrained"] is False  # latents that classify
    assert W.verdict(None, bad)["behaves_untrained"] is True
    assert W.verdict(None, good)["behaves_untrained"] is False
    stored = W.verdict(None, bad)
    assert stored["thresholds"] == {"psnr_margin_db": W.PSNR_MARGIN_DB, "chance_factor": W.CHANCE_FACTOR}
    assert f"{W.PSNR_MARGIN_DB:g} dB" in stored["rule"] and f"{W.CHANCE_FACTOR:g} times chance" in stored["rule"]


def test_flat_scores_of_the_flat_image_itself_are_perfect():
    originals = np.full((3, 8, 8, 3), 117, dtype=np.uint8)
    psnr, ssim = W.flat_scores(originals, 117)
    assert np.all(psnr == 100.0) and np.allclose(ssim, 1.0)
    psnr, _ = W.flat_scores(originals, 117 + 25)
    assert np.allclose(psnr, 20 * np.log10(255 / 25))


def test_tiny_random_vae_behaves_as_untrained(demo_build):
    check = json.loads((demo_build / "runs/tiny-vae/weights.json").read_text())
    assert check["behaves_untrained"] is True
    assert check["reconstructions"]["no_better_than_flat"] and check["accuracy"]["uninformative"]
    assert check["reconstructions"]["images"] == 60  # the decoded sample: 6 test images per class


def test_demo_keeps_its_own_label_and_adds_none(demo_build):
    page = (demo_build / "report.html").read_text(encoding="utf-8")
    assert 'id="untrained-warning"' in page and 'id="untrained-behaviour"' not in page


def test_unmarked_random_weights_are_named_on_the_first_page(demo_build, tmp_path):
    """The demo's run as a student's broken download would give it: no marker of vaelab's own
    random weights, so only the measurements can tell."""
    from pypdf import PdfReader

    build = copy_build(demo_build, tmp_path / "b")
    encode = build / "runs/tiny-vae/encode.json"
    encode.write_text(json.dumps(json.loads(encode.read_text()) | {"model": json.loads(
        encode.read_text())["model"] | {"untrained": False, "untrained_note": ""}}))
    html, pdf = build / "report.html", build / "report.pdf"
    for args in (["html", str(build / "runs/tiny-vae"), str(html), "--data", str(build / "data")],
                 ["pdf", str(html), str(pdf)]):
        subprocess.run([sys.executable, "-m", "report.render", *args], cwd=ROOT, check=True,
                       capture_output=True, text=True)
    first = " ".join(PdfReader(pdf).pages[0].extract_text().split())
    assert "These weights behave as untrained" in first and "Untrained encoder" not in first
    assert "tiny-vae reconstructs the test images no better than a flat grey image" in first
    assert "describe these weights, not a pretrained VAE" in first
    # The Summary no longer hedges what the note above it has just said.
    assert "(which behave as untrained: see the note above the Summary)" in first
    assert "the run cannot tell" not in first
