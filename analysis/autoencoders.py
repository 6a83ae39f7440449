"""What each diffusers image autoencoder yields: the one place that says it.

Not run on its own. ``analysis.vae`` reads a model's class from its ``config.json`` and
looks it up here; ``analysis.encode`` stores the arrays a class yields; ``analysis.classify``,
``analysis.baselines``, ``analysis.figures`` and the report take the feature sets a run has
from its latents file (``feature_sets``), so a variant gets exactly the feature sets its
encoder has, and comparisons are made only where both sides have one.

It also owns the names built from the feature sets, spelt nowhere else: the pixel baselines
(``BASELINES``, ``POOLED``, ``pca_baseline``, ``baseline_label``), the paired comparisons
(``COMPARISONS``, ``PIXEL_COMPARISONS``, ``MEAN_STD_VS_SAMPLE``, ``versus``) and the random predictor that is no
real model (``RANDOM``, ``is_real_model``).

Classes:
* ``AutoencoderKL`` (SD 1.x/2.x, SDXL, SD3 and FLUX.1 with 16 channels and ``shift_factor``):
  a diagonal Gaussian per image, stored as ``mean``, ``std`` and one seeded ``sample``;
  feature sets ``.sample()`` (C*h*w features) and ``mean & std`` (2*C*h*w).
* ``AutoencoderTiny`` (TAESD, TAESDXL, TAESD3, TAEF1): deterministic, stored as ``latent``;
  one feature set, the latent itself (C*h*w).
* ``AutoencoderDC`` (DC-AE, 32x downsampling): deterministic, ``latent`` as above:
  (N, 32, 1, 1) at 32 px, (N, 32, 2, 2) at RESOLUTION=64.
* ``TAESD`` (``analysis.taesd``: TAESD checkpoints no diffusers class holds, TAEF2 with its
  group-norm pool branch and TAESana with 32x downsampling): deterministic, ``latent`` as
  for ``AutoencoderTiny``: TAEF2 (N, 32, 4, 4), TAESana (N, 32, 1, 1) at 32 px. Plain TAESD
  checkpoints (taesd, taesdxl, taesd3, taef1) load into ``AutoencoderTiny``.

Latents are never scaled or shifted (``scaling_factor``/``shift_factor`` only matter to a
diffusion model); what the encoder outputs is what the classifiers see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.common import VaelabError, load_npz


@dataclass(frozen=True)
class Nouns:
    """How prose names one feature set: spelt here once, so no sentence branches on the word
    "latent" (a deterministic encoder's one set is "the latent", not "the latent latents")."""
    on: str  # after "SVC on": '.sample()', 'the latent'
    latents: str  # '.sample() latents', 'latents'
    features: str  # a subject: 'the .sample() features', 'the latent'
    number: int  # that subject's grammatical number, for ngettext: 1 singular, 2 plural
    listed: str  # in the Summary's list of sets: '.sample()', 'the latent itself'
    latent: str  # one image's latent: '.sample() latent', 'latent'
    test_latent: str  # one test image's: '.sample() test latent', 'test latent'


@dataclass(frozen=True)
class FeatureSet:
    key: str
    label: str  # as tables print it
    arrays: tuple[str, ...]  # latent arrays, flattened and put side by side in this order
    nouns: Nouns


def _named(label: str) -> Nouns:
    """The nouns of a feature set whose label qualifies 'latent': '.sample()', 'mean & std'."""
    return Nouns(label, f"{label} latents", f"the {label} features", 2, label, f"{label} latent",
                 f"{label} test latent")


FEATURE_SETS = {fs.key: fs for fs in (
    FeatureSet("sample", ".sample()", ("sample",), _named(".sample()")),
    FeatureSet("mean_std", "mean & std", ("mean", "std"), _named("mean & std")),
    FeatureSet("latent", "latent", ("latent",),
               Nouns("the latent", "latents", "the latent", 1, "the latent itself", "latent", "test latent")),
)}
_BY_LABEL = {fs.label: fs.nouns for fs in FEATURE_SETS.values()}


def nouns(label: str) -> Nouns:
    """The nouns of the feature set metrics.json labels ``label`` (as its tables print it); a
    label of no VAE feature set (a pixel baseline's) qualifies 'features' as it stands."""
    return _BY_LABEL.get(label) or _named(label)


# ---- names: the one place that spells the feature sets' rivals and comparisons -----------
# Pixel baselines as metrics.json names them (analysis.baselines fits them): key -> the VAE
# feature set whose width a PCA matches (None: pooling, whose width is fixed by the image
# size). A run gets those whose feature set its encoder yields.
POOLED = "pixels_pooled"


def pca_baseline(fs: str) -> str:
    """The pixel PCA as wide as VAE feature set ``fs``: 'pixels_pca_sample'."""
    return f"pixels_pca_{fs}"


BASELINES = {POOLED: None, **{pca_baseline(fs): fs for fs in FEATURE_SETS}}


def baseline_label(kind: str, n_features: int) -> str:
    """How tables label a pixel baseline of ``kind`` ("pooled" or "pca")."""
    return "pixels, pooled to 4×4×3" if kind == "pooled" else f"pixels, PCA-{n_features}"


def versus(a: str, b: str) -> str:
    """The name of the paired comparison of feature set ``a`` against ``b``: 'a_vs_b'."""
    return f"{a}_vs_{b}"


# The comparisons that pit a VAE feature set against a pixel baseline, in the report's order:
# the primary set (.sample() or a deterministic latent) against pooled pixels, then every
# VAE feature set against its equal-width pixel PCA.
PIXEL_COMPARISONS = {versus(a, b): (a, b) for a, b in (
    ("sample", POOLED), ("latent", POOLED), *((fs, pca_baseline(fs)) for fs in FEATURE_SETS))}
# Paired comparisons written to metrics.json: name -> (a, b); delta = acc(a) - acc(b). Each
# is made where a run has both sides; a KL autoencoder's mean & std is also set against its
# .sample().
MEAN_STD_VS_SAMPLE = versus("mean_std", "sample")
COMPARISONS = {MEAN_STD_VS_SAMPLE: ("mean_std", "sample"), **PIXEL_COMPARISONS}
# The random predictor: a chance reference among the models, never "the best" nor compared.
RANDOM = "random"


def is_real_model(key: str) -> bool:
    """False for the random predictor (RANDOM), True for every classifier that learns."""
    return key != RANDOM


@dataclass(frozen=True)
class AutoencoderClass:
    name: str  # diffusers class, as config.json's "_class_name" says
    stochastic: bool  # True: a Gaussian per image (mean, std, seeded sample)
    arrays: tuple[str, ...]  # per-image arrays in latents.npz, each (N, C, h, w)
    feature_sets: tuple[str, ...]  # keys of FEATURE_SETS, the first one primary
    decoded: str  # the array reconstructions decode
    # The tensors its encode path reads; the decoder's are not among them.
    encoder_tensors: tuple[str, ...]
    # The config keys that shape the encoder (not scaling/shift factors, not the decoder).
    encoder_config_keys: tuple[str, ...]
    blocks_key: str  # config key whose length - 1 is the number of 2x downsamplings; "": the
    # config's "downsampling" says the factor itself
    diffusers: bool = True  # False: vaelab's own module (analysis.taesd), never in a config.json


CLASSES = {c.name: c for c in (
    AutoencoderClass(
        "AutoencoderKL", True, ("mean", "std", "sample"), ("sample", "mean_std"), "mean",
        ("encoder.", "quant_conv."),
        ("_class_name", "in_channels", "latent_channels", "down_block_types", "block_out_channels",
         "layers_per_block", "act_fn", "norm_num_groups", "use_quant_conv",
         "mid_block_add_attention"),
        "block_out_channels"),
    AutoencoderClass(
        "AutoencoderTiny", False, ("latent",), ("latent",), "latent", ("encoder.",),
        ("_class_name", "in_channels", "latent_channels", "encoder_block_out_channels",
         "num_encoder_blocks", "act_fn"),
        "encoder_block_out_channels"),
    AutoencoderClass(
        "AutoencoderDC", False, ("latent",), ("latent",), "latent", ("encoder.",),
        ("_class_name", "in_channels", "latent_channels", "attention_head_dim",
         "encoder_block_types", "encoder_block_out_channels", "encoder_layers_per_block",
         "encoder_qkv_multiscales", "downsample_block_type", "encoder_out_shortcut"),
        "encoder_block_out_channels"),
    AutoencoderClass(
        "TAESD", False, ("latent",), ("latent",), "latent", ("encoder.",),
        ("_class_name", "layout", "latent_channels", "downsampling"), "", diffusers=False),
)}
DIFFUSERS_CLASSES = tuple(name for name, c in CLASSES.items() if c.diffusers)
ACCEPTED = ", ".join(DIFFUSERS_CLASSES) + " or a TAESD checkpoint (<name>_encoder.pth)"


def downsampling(autoencoder: AutoencoderClass, config: dict) -> int:
    """Image side / latent side: 8 for SD VAEs and TAESD, 32 for DC-AE and TAESana."""
    if not autoencoder.blocks_key:
        return int(config["downsampling"])
    blocks = config.get(autoencoder.blocks_key) or ()
    return 2 ** max(len(blocks) - 1, 0)


def stored_arrays(latents: dict[str, np.ndarray], split: str = "test") -> tuple[str, ...]:
    """The per-image latent arrays a latents file holds for ``split``: ("mean", "std", "sample")
    for a KL autoencoder, ("latent",) for a deterministic one."""
    names = {c.arrays for c in CLASSES.values()}
    for arrays in sorted(names, key=len, reverse=True):
        if all(f"{split}_{a}" in latents for a in arrays):
            return arrays
    return ()


def feature_set_keys(latents: dict[str, np.ndarray], split: str = "test") -> tuple[str, ...]:
    """The feature sets a latents file yields (judged by ``split``'s arrays), in display order."""
    arrays = stored_arrays(latents, split)
    for autoencoder in CLASSES.values():
        if autoencoder.arrays == arrays:
            return autoencoder.feature_sets
    return ()


def feature_sets(latents: dict[str, np.ndarray], split: str) -> dict[str, np.ndarray]:
    """Feature set -> float32 (N, D) for ``split``: each array flattened in C order (channel,
    then row, then column) and put side by side, e.g. mean & std of 4x4x4 latents -> (N, 128)."""
    n = len(latents[f"y_{split}"])
    return {fs: np.concatenate([latents[f"{split}_{a}"].reshape(n, -1)
                                for a in FEATURE_SETS[fs].arrays], axis=1)
            for fs in feature_set_keys(latents, split)}


def load_latents(path) -> dict[str, np.ndarray]:
    """A latents.npz with labels and every array of one autoencoder class for both splits;
    anything less is a one-line error."""
    latents = load_npz(path, "latents", ("y_train", "y_test"))
    arrays = stored_arrays(latents, "test")
    missing = [f"{s}_{a}" for s in ("train", "test") for a in arrays or ("mean", "std", "sample")
               if f"{s}_{a}" not in latents]
    if missing:
        raise VaelabError(f"latents at {path} lacks {', '.join(missing)}; delete it and rerun")
    return latents
