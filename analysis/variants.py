"""Stage 4b: compare VAE variants: one reconstruction panel and a PSNR/SSIM summary.

Run:
    python -m analysis.variants build/compare/reconstructions.png build/runs/A build/runs/B ...

Writes the panel (originals on top, then one row per variant that has a decoder, the same
test images throughout) and ``variants.json`` next to it: per variant, the mean PSNR and
SSIM over the fixed test sample decoded by ``analysis.encode`` (scikit-image
implementations; None for an encoder-only variant, ``has_decoder`` false), its
resolution, and the label the report uses for it: the run name, or "VAE @ R px" when the
runs differ in resolution (RESOLUTION="32 64").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from analysis.common import VaelabError, atomic_path, run_main, write_json
from analysis.runs import VARIANTS, has_decoder, read_encode, read_reconstructions
from analysis.config import run_name

PRINT_WIDTH = 6.7  # inches: one A4 text width, as analysis.figures.WIDTH


def summarise(run: Path) -> dict:
    """One run's row; PSNR and SSIM are None (and images 0) for an encoder-only run."""
    encode = read_encode(run)
    decoder = has_decoder(encode)
    recon = read_reconstructions(run, ("psnr", "ssim", "originals")) if decoder else None
    return {
        "name": run.name, "model": encode["model"]["name"], "precision": encode["precision"],
        "vae_name": run_name(encode["model"]["name"]),
        "resolution": int(encode["resolution"]),
        "untrained": encode["model"]["untrained"],
        "autoencoder_class": encode["model"]["autoencoder_class"],
        "revision": encode["model"]["revision"],
        # Equal latents checksums: one encoder under the same settings, so the same latents
        # and classifier results (None, in files from before they were recorded: never equal).
        "encoder_sha256": encode["encoder_sha256"],
        "latents_sha256": encode["latents_sha256"],
        "force_upcast": encode["vae_config"]["force_upcast"],
        "scaling_factor": encode["vae_config"]["scaling_factor"],
        "has_decoder": decoder,
        "psnr_mean": round(float(np.mean(recon["psnr"])), 2) if decoder else None,
        "ssim_mean": round(float(np.mean(recon["ssim"])), 4) if decoder else None,
        "images": int(len(recon["psnr"])) if decoder else 0,
    }


def summarise_all(runs: list[Path]) -> list[dict]:
    """summarise() per run, each with its ``label``: "sd-vae-ft-ema @ 64 px" when the runs
    differ in resolution, else the run name."""
    stats = [summarise(r) for r in runs]
    by_resolution = len({s["resolution"] for s in stats}) > 1
    for s in stats:
        s["label"] = f"{s['vae_name']} @ {s['resolution']} px" if by_resolution else s["name"]
    return stats


def plot_panel(runs: list[Path], stats: list[dict], out: Path) -> None:
    """Originals, then one row per run that has a decoder (encoder-only runs have no row; with
    none at all, a one-line figure saying so, which the report leaves out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kept = [(run, s) for run, s in zip(runs, stats) if s["has_decoder"]]
    if not kept:
        fig = plt.figure(figsize=(PRINT_WIDTH, 0.6))
        fig.text(0.5, 0.5, "No reconstructions: no variant has a decoder", ha="center", va="center")
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png", dpi=150, metadata={"Software": None})
        plt.close(fig)
        return
    runs, stats = [run for run, _ in kept], [s for _, s in kept]
    recons = [read_reconstructions(r, ("originals", "reconstructions")) for r in runs]
    originals = recons[0]["originals"]
    for run, rec in zip(runs, recons):
        if not np.array_equal(rec["originals"], originals):
            raise VaelabError(f"run {run} decoded other test images than {runs[0]}; rebuild both "
                              "with the same DATASET and LIMIT")
    rows, cols = len(runs) + 1, len(originals)
    # Drawn at its print size, one text width (17 cm, like analysis.figures), with the row
    # labels in a 1.6-inch margin: the report shows it unscaled, so 7 pt text stays 7 pt.
    width, margin = PRINT_WIDTH, 1.6
    cell = min((width - margin) / max(cols, 1), 0.9)
    fig, axes = plt.subplots(rows, cols, figsize=(width, cell * rows + 0.15), squeeze=False,
                             gridspec_kw={"left": margin / width, "right": 0.995, "top": 0.99,
                                          "bottom": 0.01, "wspace": 0.06, "hspace": 0.06})
    labels = ["original"] + [f"{s['label']}\n{s['psnr_mean']:.1f} dB, SSIM {s['ssim_mean']:.2f}"
                             for s in stats]
    images = [originals] + [rec["reconstructions"] for rec in recons]
    for i, (label, row) in enumerate(zip(labels, images)):
        for j in range(cols):
            ax = axes[i][j]
            ax.imshow(row[j], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
        axes[i][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=150, metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Compare VAE variants")
    parser.add_argument("out", type=Path, help="reconstruction panel PNG to write")
    parser.add_argument("runs", type=Path, nargs="+", help="run directories, primary first")
    args = parser.parse_args(argv)
    stats = summarise_all(args.runs)
    # variants.json first: make tracks the panel, so it must be the last file written.
    write_json(args.out.with_name(VARIANTS), stats)
    plot_panel(args.runs, stats, args.out)


if __name__ == "__main__":
    run_main(main)
