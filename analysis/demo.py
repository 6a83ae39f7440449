"""Offline stand-ins: a randomly initialised AutoencoderKL and a synthetic image folder.

Run:
    python -m analysis.demo vae build/demo/models/tiny-vae            # tiny, 4 down blocks
    python -m analysis.demo vae build/bench/models/sd-vae-arch --full # sd-vae-ft-ema shape
    python -m analysis.demo images build/demo/images --per-class 30

The VAE is saved with ``save_pretrained`` and later loaded through the same
``from_pretrained`` path as a hub model. A marker file next to its config tells the report
that the weights are untrained, so the report says so on its first page. The ``--full``
model has the exact sd-vae-ft-ema architecture with random weights: it costs the same
FLOPs as the real one, so it is good for speed measurements and nothing else.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from analysis.common import run_main, write_json
from analysis.vae import UNTRAINED_MARKER

# Four down blocks, so 32x32 images become 4x4 latents like the real SD VAE (3 halvings).
TINY_CONFIG = dict(
    in_channels=3, out_channels=3, latent_channels=4, sample_size=32, layers_per_block=1,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(8, 16, 16, 16), norm_num_groups=4,
)
# stabilityai/sd-vae-ft-ema's config.json (the architecture; the weights are not needed).
SD_VAE_CONFIG = dict(
    in_channels=3, out_channels=3, latent_channels=4, sample_size=256, layers_per_block=2,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512), norm_num_groups=32, act_fn="silu",
    scaling_factor=0.18215,
)
PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [128, 128, 0], [0, 0, 128]],
                   dtype=np.float64)
SYNTHETIC_CLASSES = ["circle", "square", "stripes_h", "stripes_v", "checker",
                     "gradient", "cross", "ring", "dots", "noise"]


def save_random_vae(out: Path, full: bool = False, seed: int = 0, config: dict | None = None,
                    decoder_seed: int | None = None) -> Path:
    """A randomly initialised AutoencoderKL from ``seed``. With ``decoder_seed``, the decoder
    (decoder.*, post_quant_conv.*) is drawn anew from that seed: the encoder is the same as
    with ``seed`` alone, like sd-vae-ft-ema and sd-vae-ft-mse, which differ only in their decoders."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    vae = AutoencoderKL(**(config or (SD_VAE_CONFIG if full else TINY_CONFIG)))
    if decoder_seed is not None:
        torch.manual_seed(decoder_seed)
        fresh = AutoencoderKL(**vae.config)
        vae.decoder.load_state_dict(fresh.decoder.state_dict())
        if vae.post_quant_conv is not None:
            vae.post_quant_conv.load_state_dict(fresh.post_quant_conv.state_dict())
    vae.save_pretrained(out)
    kind = "sd-vae-ft-ema architecture" if full else "tiny test architecture"
    write_json(out / UNTRAINED_MARKER, {
        "untrained": True, "seed": seed, "decoder_seed": decoder_seed,
        "note": f"randomly initialised AutoencoderKL ({kind}) made by vaelab; its numbers say "
                "nothing about any pretrained VAE",
    })
    return out


def synthetic_image(label: int, rng: np.random.Generator) -> np.ndarray:
    """A 32x32 RGB image whose shape pattern is the class, with random colour and jitter."""
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    cx, cy = rng.uniform(10, 22, size=2)
    r = np.hypot(xx - cx, yy - cy)
    period = rng.uniform(4, 8)
    masks = [
        r < rng.uniform(6, 10),
        (abs(xx - cx) < 7) & (abs(yy - cy) < 7),
        np.sin(yy * 2 * np.pi / period) > 0,
        np.sin(xx * 2 * np.pi / period) > 0,
        ((xx // period + yy // period) % 2) == 0,
        xx / 32 > rng.uniform(0.2, 0.8, size=(32, 32)),
        (abs(xx - cx) < 3) | (abs(yy - cy) < 3),
        (r > 6) & (r < 10),
        (np.sin(xx * 2 * np.pi / period) > 0.7) & (np.sin(yy * 2 * np.pi / period) > 0.7),
        rng.random((32, 32)) > 0.5,
    ]
    # Class-tinted foreground, random background: learnable, but not trivially.
    fg = np.clip(PALETTE[label] + rng.normal(0, 40, size=3), 0, 255)
    bg = rng.uniform(0, 255, size=3)
    img = np.where(masks[label][..., None], fg, bg) + rng.normal(0, 12, size=(32, 32, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def save_synthetic_images(out: Path, per_class: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for label, name in enumerate(SYNTHETIC_CLASSES):
            folder = out / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.fromarray(synthetic_image(label, rng)).save(folder / f"{i:04d}.png")
    (out / "classes.txt").write_text("\n".join(SYNTHETIC_CLASSES) + "\n")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Make offline stand-ins for the demo and tests")
    sub = parser.add_subparsers(dest="what", required=True)
    vae = sub.add_parser("vae", help="save a randomly initialised AutoencoderKL")
    vae.add_argument("out", type=Path)
    vae.add_argument("--full", action="store_true", help="sd-vae-ft-ema architecture")
    vae.add_argument("--seed", type=int, default=0)
    vae.add_argument("--decoder-seed", type=int, default=None,
                     help="draw the decoder from this seed (same encoder as --seed alone)")
    images = sub.add_parser("images", help="write a synthetic train/test image folder")
    images.add_argument("out", type=Path)
    images.add_argument("--per-class", type=int, default=30)
    images.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    # Build in a temporary sibling and rename: an interrupted run leaves no partial model.
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if args.what == "vae":
        save_random_vae(tmp, args.full, args.seed, decoder_seed=args.decoder_seed)
    else:
        save_synthetic_images(tmp, args.per_class, args.seed)
    shutil.rmtree(args.out, ignore_errors=True)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    run_main(main)
