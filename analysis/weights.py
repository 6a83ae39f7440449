"""Stage 4a: do the weights behave as trained? Reconstructions against a flat image, the
latents against chance and pixels.

Run:
    python -m analysis.weights build/runs/NAME build/data/dataset.npz build/runs/NAME/weights.json

A download or conversion that went wrong (random or zeroed weights, tensors mapped to the
wrong layers) still encodes, decodes and classifies, and every number it gives reads like a
pretrained VAE's. vaelab's own random models say so in a marker file (analysis.vae); these
two measurements tell for any weights:

* reconstructions (a run with a decoder): the mean PSNR of the decoded test sample
  (analysis.encode, reconstructions.npz) against that of a flat grey image, every pixel the
  training images' mean value, on the same test images. A decoder that beats such an image
  by less than ``PSNR_MARGIN_DB`` puts back nothing of an image but its average brightness.
* accuracy: the best test accuracy on the latents (metrics.json "best", any classifier on a
  VAE feature set) against chance (analysis.stats.chance) and against the best accuracy on
  the pixels average-pooled (the ``pixels_pooled`` baseline, analysis.baselines). Latents
  under ``CHANCE_FACTOR`` times chance, or under pixels that were merely averaged, keep
  less class information than the cheapest summary of the image.

The rule (``RULE``): the weights behave as untrained when the reconstructions are no better
than the flat image AND the latents are uninformative; an encoder-only run (no decoder) is
judged by its latents alone. Measured on the first 200 train and 200 test CIFAR-10 JPEGs per
class: vaelab's random tiny VAE reconstructs 1.6 dB *below* the flat image (10.9 against
12.5 dB) and its best latent accuracy, 0.20, is under pooled pixels' 0.37; the pretrained
TAEF2 beats the flat image by 11.7 dB (24.2 dB, SSIM 0.88) and pooled pixels by 27 points
(0.64). The thresholds sit far from both.

Writes OUT (``weights.json``: the verdict, the rule, its thresholds and every value it
compared) and ``OUT.d`` for make (analysis.deps).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from analysis import deps, stats
from analysis.autoencoders import POOLED, is_real_model
from analysis.common import load_npz, run_main, write_json
from analysis.runs import has_decoder, read_encode, read_metrics, read_reconstructions

PSNR_MARGIN_DB = 3.0  # a decoder must beat the flat image by this much to count as decoding
CHANCE_FACTOR = 1.5  # latents under 1.5 x chance (15% on 10 classes) are not clearly above it
ROUND = 4
RULE = ("behaves as untrained when the reconstructions' mean PSNR is less than "
        f"{PSNR_MARGIN_DB:g} dB above a flat grey image of the training mean on the same test "
        "images, and the best latent accuracy is under "
        f"{CHANCE_FACTOR:g} times chance or under the best accuracy on pooled pixels; "
        "without a decoder, by the accuracy alone")


def flat_scores(originals: np.ndarray, value: int) -> tuple[np.ndarray, np.ndarray]:
    """PSNR and SSIM of a flat image, every pixel ``value``, against each of ``originals``
    (uint8 (K, H, W, 3)), scored as analysis.encode scores its reconstructions."""
    from analysis.encode import image_scores

    return image_scores(originals, np.full_like(originals, value))


def reconstruction_check(psnr: np.ndarray, ssim: np.ndarray, flat_psnr: np.ndarray,
                         flat_ssim: np.ndarray, flat_value: int) -> dict:
    """The reconstructions' mean scores beside the flat image's, on the same images."""
    out = {"images": int(len(psnr)), "psnr_mean": float(np.mean(psnr)), "ssim_mean": float(np.mean(ssim)),
           "flat_psnr_mean": float(np.mean(flat_psnr)), "flat_ssim_mean": float(np.mean(flat_ssim))}
    out = {k: round(v, ROUND) if isinstance(v, float) else v for k, v in out.items()}
    out["psnr_over_flat_db"] = round(out["psnr_mean"] - out["flat_psnr_mean"], ROUND)
    out["flat_value"] = int(flat_value)
    out["no_better_than_flat"] = bool(out["psnr_over_flat_db"] < PSNR_MARGIN_DB)
    return out


def accuracy_check(metrics: dict) -> dict:
    """The best latent accuracy against chance and against the best on pooled pixels."""
    best = metrics["best"]
    chance = stats.chance(metrics["classes"])
    # (accuracy, model) of the best learning classifier on pooled pixels; none in older files.
    pooled = max(((res[POOLED]["accuracy"], model) for model, res in metrics["results"].items()
                  if is_real_model(model) and POOLED in res), default=(None, None))
    near_chance = best["accuracy"] < CHANCE_FACTOR * chance
    below_pixels = pooled[0] is not None and best["accuracy"] < pooled[0]
    return {"best": best["accuracy"], "best_model": best["model"], "best_feature_set": best["feature_set"],
            "chance": round(chance, ROUND), "near_chance": bool(near_chance),
            "pooled_pixels": pooled[0], "pooled_pixels_model": pooled[1],
            "pooled_pixels_label": metrics["feature_sets"].get(POOLED, {}).get("label"),
            "below_pooled_pixels": bool(below_pixels), "uninformative": bool(near_chance or below_pixels)}


def verdict(reconstructions: dict | None, accuracy: dict) -> dict:
    """weights.json: the verdict, the rule and the values (``reconstructions`` None without a decoder)."""
    untrained = accuracy["uninformative"] and (reconstructions is None
                                               or reconstructions["no_better_than_flat"])
    return {"behaves_untrained": bool(untrained), "rule": RULE,
            "thresholds": {"psnr_margin_db": PSNR_MARGIN_DB, "chance_factor": CHANCE_FACTOR},
            "reconstructions": reconstructions, "accuracy": accuracy}


def judge(run: Path, data_file: Path) -> dict:
    """A run folder's verdict; the flat image's value is the mean of every training pixel."""
    accuracy = accuracy_check(read_metrics(run))
    if not has_decoder(read_encode(run)):
        return verdict(None, accuracy)
    recon = read_reconstructions(run, ("sample_index", "psnr", "ssim"))
    data = load_npz(data_file, "dataset", ("x_train", "x_test"))
    value = int(np.rint(data["x_train"].mean(dtype=np.float64)))
    flat_psnr, flat_ssim = flat_scores(data["x_test"][recon["sample_index"]], value)
    return verdict(reconstruction_check(recon["psnr"], recon["ssim"], flat_psnr, flat_ssim, value),
                   accuracy)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Do a run's weights behave as trained?")
    parser.add_argument("run", type=Path, help="run directory (metrics.json, reconstructions.npz)")
    parser.add_argument("data", type=Path, help="dataset.npz from analysis.data")
    parser.add_argument("out", type=Path, help="weights.json to write")
    args = parser.parse_args(argv)
    write_json(args.out, judge(args.run, args.data))
    deps.write(args.out, __file__)


if __name__ == "__main__":
    run_main(main)
