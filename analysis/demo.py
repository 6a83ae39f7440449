"""Offline stand-ins: a randomly initialised AutoencoderKL and a synthetic image folder.

Run:
    python -m analysis.demo vae build/demo/models/tiny-vae            # tiny, 4 down blocks
    python -m analysis.demo vae build/bench/models/sd-vae-arch --full # sd-vae-ft-ema shape
    python -m analysis.demo vae build/bench/models/taesd --arch taesd # any of ARCHITECTURES
    python -m analysis.demo images build/demo/images --per-class 30
    python -m analysis.demo notes build/demo/notes --metadata report.toml  # example author text

ARCHITECTURES covers every accepted class (analysis.autoencoders): tiny test configs
(``tiny``, ``tiny-kl16``, ``tiny-taesd``, ``tiny-dc``) and the real architectures
(``sd-vae``, ``flux-vae``, ``taesd``, ``dc-ae``) with random weights.

The model is saved with ``save_pretrained`` and later loaded through the same
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

from analysis.autoencoders import pca_baseline
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
# black-forest-labs/FLUX.1-dev vae/config.json: 16 channels, shift_factor, no quant convs
# (SD3's VAE is the same layout with other factors).
FLUX_VAE_CONFIG = SD_VAE_CONFIG | dict(
    latent_channels=16, sample_size=1024, scaling_factor=0.3611, shift_factor=0.1159,
    use_quant_conv=False, use_post_quant_conv=False, force_upcast=True,
)
# The same layout, tiny: 16 channels and shift_factor, 8x downsampling.
TINY_KL16_CONFIG = TINY_CONFIG | dict(latent_channels=16, shift_factor=0.1159, scaling_factor=0.3611,
                                      use_quant_conv=False, use_post_quant_conv=False)
# madebyollin/taesd is AutoencoderTiny's defaults; this one is smaller, still 8x downsampling.
TINY_TAESD_CONFIG = dict(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                         num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1))
# mit-han-lab/dc-ae-f32c32-sana-1.0-diffusers config.json: 32x downsampling, 32 channels.
DC_AE_CONFIG = dict(
    in_channels=3, latent_channels=32, attention_head_dim=32,
    encoder_block_types=("ResBlock",) * 3 + ("EfficientViTBlock",) * 3,
    decoder_block_types=("ResBlock",) * 3 + ("EfficientViTBlock",) * 3,
    encoder_block_out_channels=(128, 256, 512, 512, 1024, 1024),
    decoder_block_out_channels=(128, 256, 512, 512, 1024, 1024),
    encoder_layers_per_block=(2, 2, 2, 3, 3, 3), decoder_layers_per_block=(3, 3, 3, 3, 3, 3),
    encoder_qkv_multiscales=((), (), (), (5,), (5,), (5,)),
    decoder_qkv_multiscales=((), (), (), (5,), (5,), (5,)),
    upsample_block_type="interpolate", downsample_block_type="Conv",
    decoder_norm_types="rms_norm", decoder_act_fns="silu", scaling_factor=0.41407,
)
# The same 32x downsampling (six stages), tiny: 8 channels, so 32x32 images give 1x1x8.
TINY_DC_CONFIG = dict(
    in_channels=3, latent_channels=8, attention_head_dim=8,
    encoder_block_types=("ResBlock",) * 5 + ("EfficientViTBlock",),
    decoder_block_types=("ResBlock",) * 5 + ("EfficientViTBlock",),
    encoder_block_out_channels=(8, 8, 16, 16, 16, 16), decoder_block_out_channels=(8, 8, 16, 16, 16, 16),
    encoder_layers_per_block=(1,) * 6, decoder_layers_per_block=(1,) * 6,
    encoder_qkv_multiscales=((),) * 5 + ((5,),), decoder_qkv_multiscales=((),) * 5 + ((5,),),
)
# name -> (diffusers class, config): every class analysis.autoencoders accepts.
ARCHITECTURES = {
    "tiny": ("AutoencoderKL", TINY_CONFIG),
    "tiny-kl16": ("AutoencoderKL", TINY_KL16_CONFIG),
    "tiny-taesd": ("AutoencoderTiny", TINY_TAESD_CONFIG),
    "tiny-dc": ("AutoencoderDC", TINY_DC_CONFIG),
    "sd-vae": ("AutoencoderKL", SD_VAE_CONFIG),
    "flux-vae": ("AutoencoderKL", FLUX_VAE_CONFIG),
    "taesd": ("AutoencoderTiny", {}),
    "dc-ae": ("AutoencoderDC", DC_AE_CONFIG),
}
PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [128, 128, 0], [0, 0, 128]],
                   dtype=np.float64)
SYNTHETIC_CLASSES = ["circle", "square", "stripes_h", "stripes_v", "checker",
                     "gradient", "cross", "ring", "dots", "noise"]


def save_random_vae(out: Path, full: bool = False, seed: int = 0, config: dict | None = None,
                    decoder_seed: int | None = None, arch: str | None = None) -> Path:
    """A randomly initialised autoencoder from ``seed``: ``arch`` from ARCHITECTURES, else
    an AutoencoderKL of ``config`` (default: TINY_CONFIG, or SD_VAE_CONFIG with ``full``).
    With ``decoder_seed``, the decoder (decoder.*, post_quant_conv.*) is drawn anew from that
    seed: the encoder is the same as with ``seed`` alone, like sd-vae-ft-ema and sd-vae-ft-mse,
    which differ only in their decoders."""
    import diffusers
    import torch

    # AutoencoderTiny stores keys its __init__ does not take; diffusers warns on reload.
    diffusers.utils.logging.set_verbosity_error()
    arch = arch or ("sd-vae" if full else "tiny")
    class_name, arch_config = ARCHITECTURES[arch]
    cls = getattr(diffusers, class_name)
    torch.manual_seed(seed)
    vae = cls(**(config or arch_config))
    if decoder_seed is not None:
        torch.manual_seed(decoder_seed)
        fresh = cls.from_config(vae.config)
        vae.decoder.load_state_dict(fresh.decoder.state_dict())
        if getattr(vae, "post_quant_conv", None) is not None:
            vae.post_quant_conv.load_state_dict(fresh.post_quant_conv.state_dict())
    vae.save_pretrained(out)
    kind = {"sd-vae": "sd-vae-ft-ema architecture", "tiny": "tiny test architecture"}.get(
        arch, f"{arch} architecture")
    write_json(out / UNTRAINED_MARKER, {
        "untrained": True, "seed": seed, "decoder_seed": decoder_seed,
        "note": f"randomly initialised {class_name} ({kind}) made by vaelab; its numbers say "
                "nothing about any pretrained model",
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


# The demo's author text (README.md, "Adding your own text"): a paragraph appended to the
# Results and a section of its own, with placeholders and cross-references.
EXAMPLE_RESULTS = """\
<!-- An example note (analysis/demo.py): text of your own appended to the Results. -->
*Author's note.* On these synthetic images {{ best_model }} on {{ best_set }} reaches the best
accuracy, {{ best_accuracy }} {{ best_ci }} (@tab:accuracy shows any ties); @fig:confusion shows
where it goes wrong.
"""
EXAMPLE_DISCUSSION = """\
<!-- An example note (analysis/demo.py): a section of the author's own, placed after the
     Conclusions by report.toml and numbered with the rest. -->
The numbers below come from this run and change with it: SVC on mean & std reaches
{{ accuracy svc mean_std }} {{ ci svc mean_std }}, {{ delta mean_std PCA_MEAN_STD svc }}
points from the pixel PCA of the same width (Holm-adjusted McNemar
p: {{ p_adj mean_std PCA_MEAN_STD svc }}; @tab:vae-vs-pixels).

| Question | Where to look |
|---|---|
| Do VAE latents beat pixels? | @tab:vae-vs-pixels |
| Would more images help? | @fig:learning-curves |

- The encoder is untrained[^1], so none of this says anything about a real VAE.
- @sec:conclusions states the same from the numbers alone.

[^1]: {{ vae }}, run on {{ device }} in {{ dtype }}.
""".replace("PCA_MEAN_STD", pca_baseline("mean_std"))  # the pixel PCA's key (analysis.autoencoders)


def save_example_notes(out: Path, metadata: Path | None) -> Path:
    """``out``/report.toml, ``metadata``'s title block with a [notes] table naming the two
    example notes written beside it. Returns the report.toml."""
    import json
    import tomllib

    title = {}
    if metadata is not None and metadata.is_file():
        with open(metadata, "rb") as fh:
            title = {k: v for k, v in tomllib.load(fh).items() if isinstance(v, str)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(EXAMPLE_RESULTS, encoding="utf-8")
    (out / "discussion.md").write_text(EXAMPLE_DISCUSSION, encoding="utf-8")
    lines = [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in title.items()]  # TOML strings
    lines += ["", "[notes]", 'results = "results.md"', "", "[[notes.sections]]",
              'title = "Answers to the lab questions"', 'label = "answers"', 'file = "discussion.md"', 'after = "conclusions"', ""]
    (out / "report.toml").write_text("\n".join(lines), encoding="utf-8")
    return out / "report.toml"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Make offline stand-ins for the demo and tests")
    sub = parser.add_subparsers(dest="what", required=True)
    vae = sub.add_parser("vae", help="save a randomly initialised AutoencoderKL")
    vae.add_argument("out", type=Path)
    vae.add_argument("--full", action="store_true", help="sd-vae-ft-ema architecture")
    vae.add_argument("--arch", choices=sorted(ARCHITECTURES), default=None,
                     help="architecture (default: tiny, or sd-vae with --full)")
    vae.add_argument("--seed", type=int, default=0)
    vae.add_argument("--decoder-seed", type=int, default=None,
                     help="draw the decoder from this seed (same encoder as --seed alone)")
    images = sub.add_parser("images", help="write a synthetic train/test image folder")
    images.add_argument("out", type=Path)
    images.add_argument("--per-class", type=int, default=30)
    images.add_argument("--seed", type=int, default=0)
    notes = sub.add_parser("notes", help="write example author notes and their report.toml")
    notes.add_argument("out", type=Path)
    notes.add_argument("--metadata", default="", help="report.toml whose title block to copy")
    args = parser.parse_args(argv)
    # Build in a temporary sibling and rename: an interrupted run leaves no partial model.
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if args.what == "vae":
        save_random_vae(tmp, args.full, args.seed, decoder_seed=args.decoder_seed, arch=args.arch)
    elif args.what == "notes":
        save_example_notes(tmp, Path(args.metadata) if args.metadata else None)
    else:
        save_synthetic_images(tmp, args.per_class, args.seed)
    shutil.rmtree(args.out, ignore_errors=True)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    run_main(main)
