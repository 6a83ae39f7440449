"""Stage 2: encode every image with the VAE encoder into a cached latent file.

Run:
    python -m analysis.encode build/runs/NAME/config.json build/data/dataset.npz \
        build/runs/NAME/latents.npz --cache build/cache

Writes, next to ``latents.npz``:
* ``latents.npz``: for an ``AutoencoderKL``, ``{train,test}_{mean,std,sample}`` float32
  (N, C, h, w) — (N, 4, 4, 4) for 32x32 images and an SD VAE, (N, 4, R/8, R/8) at
  RESOLUTION=R, (N, 16, 4, 4) for SD3/FLUX.1 — for a deterministic encoder (``AutoencoderTiny``,
  ``AutoencoderDC``) ``{train,test}_latent`` (DC-AE: (N, 32, 1, 1) at 32 px); plus
  ``y_train``/``y_test``. What each class yields is said in ``analysis.autoencoders``;
* ``reconstructions.npz``: the first test image of each class and its decoded latent mean
  (at 32x32: decodes at a larger resolution are averaged back down before PSNR/SSIM); not
  written for an encoder-only model (a TAESD checkpoint without its decoder file:
  ``encode.json``'s ``model.has_decoder`` is false);
* ``encode.json``: the resolved configuration (model revision, device, precision, cache key,
  encoder and latents checksums);
* ``timings-encode.json``: wall-clock seconds (kept apart: the only non-deterministic file).

For a KL autoencoder, ``std`` is ``exp(0.5 * logvar)`` and ``sample = mean + std * eps``, exactly what
``latent_dist.sample(generator)`` computes, with ``eps`` drawn once per split from a
``torch.Generator`` seeded with SEED. Drawing the noise up front makes the sample
independent of batch size, chunking, device and resume points.

With ``resolution`` above 32 (RESOLUTION=64), each [-1, 1] batch is upsampled to R x R
(bicubic, ``align_corners=False``, clamped to [-1, 1]) right before the encoder.

On the CPU, runs of 10,000 images or more (COMPILE=auto) encode through ``torch.compile``
with frozen weights, in fixed batches of BATCH (16 by default: a batch's activations stay
in cache); smaller runs stay eager, where the one-off compile would cost more than it saves.
Compiled latents agree with eager float32 to a few 1e-6 relative error (2.9e-6 on the latent
mean, 5.0e-7 on the std, measured in docs/benchmarks.md), not bit for bit, so whether the run
was compiled is part of the cache key and of encode.json.

Latents are cached under ``--cache`` as ``latents-KEY.npz``, keyed by what they depend on:
the checksum of the encoder (``encoder.*`` and ``quant_conv.*`` tensors and the encoder's
config, read without the decoder; ``analysis.vae.encoder_checksum``), the encoder class,
dataset checksum, seed, device type, precision, compilation and resolution. Not by the
model's name or its decoder: variants that share an encoder (sd-vae-ft-ema and
sd-vae-ft-mse fine-tuned only their decoders) encode once, and a second ``make report``
(or switching back to an earlier VAE) does not re-encode. Reconstructions decode the cached
latent means through each variant's own decoder, cached as ``recon-KEY.npz`` keyed by the
whole weights file as well. Work is written in chunks, so an interrupted run resumes from
the last complete chunk; a lock per entry makes parallel runs (``make -j``) encode once.
Each entry has its checksum file beside it (``latents-KEY.sha256``, analysis.cache): one that
fails it is encoded again, never trusted. ``latents.npz.d`` lists the modules this stage
runs, for make (analysis.deps).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from analysis import cache, deps, runs, threads
from analysis.autoencoders import CLASSES, AutoencoderClass, downsampling
from analysis.common import (VaelabError, copy_file, file_lock, load_npz, progress, read_json,
                             run_main, save_npz, write_json)
from analysis.config import RunConfig, load_run_config
from analysis.devices import (DEFAULT_BATCH, PRECISION_NAMES, Batching, choose_batch, choose_device,
                              choose_precision, device_name)
from analysis.vae import ResolvedModel, load_vae, resolve_model

# Bump when a change here alters the latents, so that old cache entries are not reused.
ENCODER_VERSION = 4
CHUNK = 4096  # images per resumable chunk
RECON_PER_CLASS = 10  # test images per class decoded for PSNR/SSIM
# COMPILE=auto compiles from this many images: below it the compile outweighs the gain.
COMPILE_MIN_IMAGES = 10_000
IMAGE_SIDE = 32  # the stored images' side; other resolutions are resampled from it


def to_model_input(images: np.ndarray, device: str, dtype=None):
    """uint8 (B, 32, 32, 3) RGB -> float (B, 3, 32, 32) in [-1, 1] on ``device``."""
    import torch

    x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float()
    x = x / 127.5 - 1.0
    return x if dtype is None else x.to(dtype)


def resize(x, side: int, mode: str):
    """float (B, 3, H, W) in [-1, 1] -> (B, 3, side, side); unchanged when already that size.

    ``mode``: "bicubic" to upsample before encoding (clamped: bicubic overshoots),
    "area" to average decoded images back down to the stored size.
    """
    import torch.nn.functional as F

    if tuple(x.shape[-2:]) == (side, side):
        return x
    if mode == "bicubic":
        return F.interpolate(x, size=(side, side), mode="bicubic", align_corners=False).clamp(-1, 1)
    return F.interpolate(x, size=(side, side), mode=mode)


def to_uint8_images(x) -> np.ndarray:
    """float (B, 3, H, W) in [-1, 1] -> uint8 (B, H, W, 3), rounding like torchvision."""
    x = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to("cpu")
    return x.permute(0, 2, 3, 1).numpy().astype(np.uint8)


def choose_compile(requested: str, device: str, n_images: int) -> bool:
    """COMPILE=auto compiles on the CPU when there are enough images to repay the one-off
    compile (30-45 s on the 2-core benchmark machine) and a C++ compiler for inductor."""
    if requested != "auto":
        return requested == "on"
    has_compiler = any(shutil.which(cc) for cc in ("c++", "g++", "clang++"))
    return device == "cpu" and n_images >= COMPILE_MIN_IMAGES and has_compiler


class Encoder:
    """The autoencoder on its device in its precision; ``encode`` returns, as float32 tensors
    named by ``outputs``, the mean and std of a KL autoencoder's Gaussian or a deterministic
    encoder's latent, for the images resized to ``resolution`` x ``resolution`` (32: as stored).

    With ``compiled``, the encoder runs through ``torch.compile`` (inductor, weights frozen
    as constants so oneDNN packs them once; group norm, SiLU and adds fused). Batches are
    padded to ``batch_size`` so one static shape is compiled once. Latents match eager
    float32 to a few 1e-6 relative error (2.9e-6 on the latent mean, measured in
    docs/benchmarks.md; summation order), which is why the cache key and encode.json record it.
    """

    def __init__(self, vae, device: str, precision: str, resolution: int = IMAGE_SIDE,
                 batch_size: int = 16, compiled: bool = False, *, micro_batch: int | None = None,
                 channels_last: bool = True, freeze: bool = True, bf16_cast: bool = False):
        import torch

        self.device, self.precision, self.resolution = device, precision, resolution
        self.batch_size, self.compiled = batch_size, compiled
        # The high-resolution blocks of an SD-style encoder run micro_batch images at a time
        # (their activations stay in cache), the low-resolution ones on the whole batch (their
        # 4x4 and 8x8 maps make matrices too small for the vector units at batch 16).
        encoder = getattr(vae, "encoder", None)
        staged = micro_batch and micro_batch < batch_size and hasattr(encoder, "down_blocks") \
            and hasattr(encoder, "mid_block")
        self.micro_batch = micro_batch if staged else None
        self.dtype = getattr(torch, PRECISION_NAMES[precision])
        self.autoencoder = CLASSES[type(vae).__name__]
        # KL: a Gaussian's mean and std (the sample is drawn later); else the latent itself.
        self.outputs = ("mean", "std") if self.autoencoder.stochastic else ("latent",)
        # Low precision on CUDA runs with weights cast; on the CPU bfloat16 runs as autocast,
        # which keeps the numerically delicate ops (group norm, softmax) in float32.
        # ``bf16_cast`` (the benchmark's alternative) casts the weights there too.
        self.autocast = device == "cpu" and precision == "bf16" and not bf16_cast
        cast = torch.float32 if self.autocast else self.dtype
        # channels_last (NHWC) lets oneDNN pick NHWC convolution kernels on CPUs. Same
        # latents; 0.95-1.33x the NCHW speed on the 2-core benchmark machine (docs/benchmarks.md).
        self.memory_format = (torch.channels_last if device == "cpu" and channels_last
                              else torch.contiguous_format)
        self.vae = vae.to(device=device, dtype=cast, memory_format=self.memory_format)
        self.forward = self.eager_forward
        if compiled:
            import logging

            # A CPU build warns "No CUDA runtime is found" while inductor loads its C++ tools.
            logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
            # Every Encoder compiles the same code object (eager_forward), so each new model,
            # precision or batch is a recompile of it; past dynamo's limit (8) it would run
            # eager without a word. The probes and the bench make more than 8 in one process.
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
            # freezing: weights become constants, so oneDNN packs them once, not per call.
            self.forward = torch.compile(self.eager_forward, dynamic=False,
                                         options={"freezing": freeze})

    def eager_forward(self, x):
        """(B, 3, R, R) -> what ``encode`` of the class computes: (B, 2C, h, w) moments that
        ``AutoencoderKL`` feeds its Gaussian, or the (B, C, h, w) latent of a deterministic one."""
        h = self.vae.encoder(x) if self.micro_batch is None else self.staged_encoder(x)
        quant_conv = getattr(self.vae, "quant_conv", None) if self.autoencoder.stochastic else None
        return h if quant_conv is None else quant_conv(h)

    def staged_encoder(self, x):
        """(B, 3, R, R) -> (B, 2C, h, w): diffusers' ``Encoder.forward`` (inference), with
        conv_in and the first half of the down blocks (32 and 16 px for a 32 px image) run
        ``micro_batch`` images at a time. Each image's result is the same bytes either way."""
        import torch

        enc = self.vae.encoder
        head = len(enc.down_blocks) // 2

        def front(chunk):
            h = enc.conv_in(chunk)
            for block in enc.down_blocks[:head]:
                h = block(h)
            return h

        h = torch.cat([front(chunk) for chunk in x.split(self.micro_batch)])
        for block in enc.down_blocks[head:]:
            h = block(h)
        return enc.conv_out(enc.conv_act(enc.conv_norm_out(enc.mid_block(h))))

    def context(self):
        import torch

        if self.autocast:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def warm_up(self) -> float:
        """Run one batch so that compilation happens now; seconds taken. A failure to compile
        becomes a one-line error naming the way out."""
        started = time.perf_counter()
        try:
            self.encode(np.zeros((1, IMAGE_SIDE, IMAGE_SIDE, 3), np.uint8))
        except Exception as error:  # inductor raises many types: compiler missing, codegen, ...
            if not self.compiled:
                raise
            first = (str(error).strip().splitlines() or [""])[0][:200]
            raise VaelabError(f"torch.compile of the encoder failed ({type(error).__name__}: "
                              f"{first}); rerun with COMPILE=off") from error
        return time.perf_counter() - started

    def encode(self, images: np.ndarray):
        import torch

        n = len(images)
        if self.compiled and n < self.batch_size:  # pad to the one compiled shape
            images = np.concatenate([images, np.repeat(images[-1:], self.batch_size - n, axis=0)])
        x = resize(to_model_input(images, self.device), self.resolution, "bicubic")  # float32
        x = x if self.autocast else x.to(self.dtype)
        x = x.contiguous(memory_format=self.memory_format)  # (B, 3, R, R), NHWC in memory
        with torch.inference_mode(), self.context():
            out = self.forward(x)
            if not self.autoencoder.stochastic:
                return (out[:n].float().cpu(),)  # (n, C, h, w)
            # Imported here: a TAESD checkpoint's encode never loads diffusers (~8 s of imports).
            from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

            dist = DiagonalGaussianDistribution(out)
            mean, std = dist.mean[:n].float().cpu(), dist.std[:n].float().cpu()
        return mean, std  # each (n, C, h, w)

    def decode(self, latents):
        import torch

        z = latents.to(self.device, None if self.autocast else self.dtype)
        with torch.inference_mode(), self.context():
            return self.vae.decode(z).sample.float().cpu()  # (B, 3, H, W)


def count_nonfinite(*tensors) -> int:
    import torch

    return int(sum((~torch.isfinite(t)).sum().item() for t in tensors))


def check_finite(count: int, what: str, name: str, precision: str, device: str) -> None:
    if count:
        hint = ("rerun with PRECISION=fp32" if precision != "fp32" else
                "the weights themselves are broken; re-download or re-save the model")
        raise VaelabError(
            f"VAE {name} produced {count} non-finite (NaN/Inf) {what} values in {precision} on "
            f"{device}; {hint}"
        )


def encode_split(encoder: Encoder, images: np.ndarray, batch_size: int, partial: Path,
                 split: str, name: str) -> dict[str, np.ndarray]:
    """Encode ``images`` chunk by chunk; chunks already in ``partial`` are reused.
    Returns ``encoder.outputs`` name -> (N, C, h, w)."""
    import torch

    names = encoder.outputs
    parts: dict[str, list[np.ndarray]] = {key: [] for key in names}
    with progress(len(images), f"encode {split}", "img") as bar:
        for start in range(0, len(images), CHUNK):
            stop = min(start + CHUNK, len(images))
            chunk_file = partial / f"{split}-{start:06d}-{stop:06d}.npz"
            if chunk_file.exists():
                with contextlib.suppress(VaelabError):  # a damaged chunk is simply redone
                    done = load_npz(chunk_file, "chunk", names)
                    for key in names:
                        parts[key].append(done[key])
                    bar.update(stop - start)
                    continue
            batches: dict[str, list] = {key: [] for key in names}
            for b in range(start, stop, batch_size):
                outputs = encoder.encode(images[b:min(b + batch_size, stop)])
                check_finite(count_nonfinite(*outputs), "latent", name, encoder.precision,
                             encoder.device)
                for key, tensor in zip(names, outputs):
                    batches[key].append(tensor)
                bar.update(len(outputs[0]))
            chunk = {key: torch.cat(batches[key]).numpy() for key in names}
            save_npz(chunk_file, **chunk)
            for key in names:
                parts[key].append(chunk[key])
    return {key: np.concatenate(parts[key]) for key in names}


def draw_noise(seed: int, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """eps ~ N(0, 1) per split from one seeded generator: train first, then test."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return {split: torch.randn(shape, generator=generator).numpy() for split, shape in shapes.items()}


def reconstruct(encoder: Encoder, test_mean: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                n_classes: int, name: str, batch_size: int) -> dict[str, np.ndarray]:
    """Decode the latent means of a fixed test sample: the first RECON_PER_CLASS images per class.

    ``test_mean``: float32 (N, C, h, w), the cached latent means (the latents, for a
    deterministic encoder) of every test image, so only the decoder runs here (variants that share an encoder encode once and decode each).
    ``originals``/``reconstructions`` hold the first image of each class (at most 10) for
    the figure; ``psnr``/``ssim`` are per image over the whole sample (skimage, 8-bit RGB).
    Decodes at a larger resolution are area-averaged back to the originals' 32x32 first, so
    metrics and panels compare across resolutions.
    """
    import torch

    sample = np.concatenate([np.flatnonzero(y_test == c)[:RECON_PER_CLASS] for c in range(n_classes)])
    means = torch.from_numpy(test_mean[sample])  # (K, C, h, w)
    decoded = torch.cat([encoder.decode(means[start:start + batch_size])  # (B, 3, R, R), ~[-1, 1]
                         for start in range(0, len(sample), batch_size)])
    check_finite(count_nonfinite(decoded), "reconstruction", name, encoder.precision, encoder.device)
    decoded = resize(decoded, x_test.shape[1], "area")  # (K, 3, 32, 32)
    recon = to_uint8_images(decoded)  # (K, 32, 32, 3)
    originals = x_test[sample]
    psnr, ssim = image_scores(originals, recon)
    mse = torch.mean((decoded.clamp(-1, 1) - to_model_input(originals, "cpu")) ** 2).item()
    first = np.array([np.flatnonzero(y_test[sample] == c)[0] for c in range(min(n_classes, 10))
                      if np.any(y_test[sample] == c)])  # positions in `sample`
    return {"index": sample[first], "labels": y_test[sample[first]], "originals": originals[first],
            "reconstructions": recon[first], "mse": np.float64(mse), "sample_index": sample,
            "psnr": psnr, "ssim": ssim}


def image_scores(originals: np.ndarray, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image PSNR (capped at 100 dB: an exact copy has none) and SSIM of uint8
    (K, H, W, 3) ``images`` against ``originals`` (scikit-image, 8-bit RGB)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    psnr = np.array([peak_signal_noise_ratio(o, r, data_range=255) for o, r in zip(originals, images)])
    ssim = np.array([structural_similarity(o, r, data_range=255, channel_axis=-1)
                     for o, r in zip(originals, images)])
    return np.minimum(psnr, 100.0), ssim


def save_cached(path: Path, **arrays: np.ndarray) -> None:
    """Write a cache entry, then its checksum file (analysis.cache)."""
    save_npz(path, **arrays)
    cache.seal(path)


def encode_dataset(encoder: Encoder, data: dict[str, np.ndarray], seed: int, name: str,
                   partial: Path) -> dict[str, np.ndarray]:
    """Every image's latent mean, std and sample seeded by ``seed`` (KL) or latent
    (deterministic encoders), in resumable chunks under ``partial``."""
    partial.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        for key, value in encode_split(encoder, data[f"x_{split}"], encoder.batch_size, partial,
                                       split, name).items():
            arrays[f"{split}_{key}"] = value  # (N, C, h, w)
    if encoder.autoencoder.stochastic:
        noise = draw_noise(seed, {s: arrays[f"{s}_mean"].shape for s in ("train", "test")})
        for split in ("train", "test"):
            arrays[f"{split}_sample"] = arrays[f"{split}_mean"] + arrays[f"{split}_std"] * noise[split]
    for split in ("train", "test"):
        arrays[f"y_{split}"] = data[f"y_{split}"]
    return arrays


@dataclass(frozen=True)
class EncodePlan:
    """What one encode stage will do, decided before any image is read: the model, where and
    how it runs, and the cache entries its latents and reconstructions live in."""

    model: ResolvedModel
    autoencoder: AutoencoderClass
    factor: int  # the encoder's downsampling
    device: str
    precision: str
    precision_reason: str
    compiled: bool
    key_fields: dict
    key: str
    recon_key: str
    latents_file: Path
    recon_file: Path | None  # None: encoder only, no reconstructions


def plan(config: RunConfig, vae, model: ResolvedModel, n_images: int, dataset_sha256: str,
         cache_dir: Path) -> EncodePlan:
    """Check the resolution, choose device, precision and compilation, and name the cache
    entries. Latents depend on the encoder and these settings only, not on the model's name
    or its decoder: variants that share an encoder share one cache entry and encode once."""
    vae_config = dict(vae.config)
    autoencoder = CLASSES[model.autoencoder_class]
    factor = downsampling(autoencoder, vae_config)
    if config.resolution % factor:
        raise VaelabError(f"{config.vae} ({autoencoder.name}) downsamples {factor}x, so RESOLUTION="
                          f"{config.resolution} gives no whole latent; use a multiple of {factor}, "
                          f"e.g. RESOLUTION={max(factor, config.resolution // factor * factor)}")
    device = choose_device(config.device)
    precision, reason = choose_precision(config.precision, device,
                                         bool(vae_config.get("force_upcast", True)), config.vae,
                                         cache_dir=cache_dir)
    compiled = choose_compile(config.compile, device, n_images)
    # Not the batch size: every encoder's latents are the same bytes at any batch (each
    # image's convolutions and norms are its own; tests/test_encode.py checks it).
    key_fields = {"encoder_version": ENCODER_VERSION, "encoder_class": model.autoencoder_class,
                  "encoder_sha256": model.encoder_sha256, "dataset_sha256": dataset_sha256,
                  "seed": config.seed, "device_type": device.split(":")[0], "precision": precision,
                  "resolution": config.resolution,
                  "compiled": compiled}  # compiled latents differ from eager in the last bits
    key = cache.key(key_fields)
    # Reconstructions go through each variant's own decoder: keyed by the whole weights file.
    # A TAESD checkpoint's decoder is a file of its own, so its checksum joins the key.
    recon_fields = {"weights_sha256": model.weights_sha256} | (
        {"decoder_sha256": model.decoder_sha256} if model.decoder_sha256 else {})
    recon_key = cache.key(key_fields | recon_fields)
    return EncodePlan(model=model, autoencoder=autoencoder, factor=factor, device=device,
                      precision=precision, precision_reason=reason, compiled=compiled,
                      key_fields=key_fields, key=key, recon_key=recon_key,
                      latents_file=cache_dir / f"latents-{key}.npz",
                      recon_file=cache_dir / f"recon-{recon_key}.npz" if model.has_decoder else None)


def time_batches(vae, device: str, precision: str, resolution: int, images: np.ndarray,
                 candidates: tuple[Batching, ...]) -> dict[str, float]:
    """Images/s of the run's own encoder, eager, for each of ``candidates`` (by label), on the
    first images of the run, interleaved (each once, then again: the better of two), so a
    moment of load hits all alike. Eager, since compiling each would cost ~30 s; the compiled
    encoder spends the same share of its time in the convolutions (docs/benchmarks.md)."""
    encoders = {c.label: Encoder(vae, device, precision, resolution, c.size, micro_batch=c.micro)
                for c in candidates}
    n = max(2 * max(c.size for c in candidates), 64)  # the same images for every candidate
    images = images[np.arange(n) % len(images)]  # (n, 32, 32, 3), repeated if the run has fewer
    for encoder in encoders.values():
        encoder.encode(images[:encoder.batch_size])  # warm-up: oneDNN picks kernels for the shape
    best = {label: 0.0 for label in encoders}
    for _ in range(2):
        for label, encoder in encoders.items():
            started = time.perf_counter()
            for start in range(0, n, encoder.batch_size):
                encoder.encode(images[start:start + encoder.batch_size])
            best[label] = max(best[label], round(n / (time.perf_counter() - started), 2))
    return best


@dataclass(frozen=True)
class Encoding:
    """How the latents were made: batch size, why, and the probe behind it."""

    batch_size: int
    micro_batch: int | None  # the high-resolution blocks this many images at a time (Batching)
    batch_reason: str
    batch_probe: dict | None  # images/s per batch size (BATCH=auto on a large run), else None
    compile_seconds: float | None


def encoding_file(latents_file: Path) -> Path:
    """Beside a cache entry: how its latents were made (``Encoding``), read back when reused."""
    return latents_file.with_suffix(".encoding.json")


def execute(p: EncodePlan, vae, config: RunConfig, data_file: Path, n_classes: int,
            cache_dir: Path) -> tuple[dict[str, bool], Encoding]:
    """Encode (or reuse) the latents and decode (or reuse) the reconstructions of ``p``;
    which were reused, and how the latents were made."""
    import torch

    reused = {"latents": cache.reusable(p.latents_file),
              "reconstructions": p.recon_file is None or cache.reusable(p.recon_file)}
    encoding = None
    if reused["latents"] and encoding_file(p.latents_file).is_file():
        with contextlib.suppress(VaelabError, TypeError):
            encoding = Encoding(**read_json(encoding_file(p.latents_file), "encoding"))
    if all(reused.values()):
        return reused, encoding or Encoding(config.batch_size or DEFAULT_BATCH, None,
                                            "The latents were reused from the cache.", None, None)
    data = load_npz(data_file, "dataset", ("x_train", "y_train", "x_test", "y_test"))
    torch.manual_seed(config.seed)
    if encoding is None:
        fields = {"encoder_class": p.model.autoencoder_class, "precision": p.precision,
                  "resolution": config.resolution,
                  "architecture": {k: vae.config.get(k) for k in p.autoencoder.encoder_config_keys}}
        batching, reason, probe = choose_batch(
            config.batch_size, p.device, p.compiled and not reused["latents"],
            lambda sizes: time_batches(vae, p.device, p.precision, config.resolution,
                                       data["x_train"], sizes),
            cache_dir, fields)
        encoding = Encoding(batching.size, batching.micro, reason, probe, None)
    # Compiled only to encode: decoding a few images runs eager either way.
    encoder = Encoder(vae, p.device, p.precision, config.resolution, encoding.batch_size,
                      p.compiled and not reused["latents"], micro_batch=encoding.micro_batch)
    if encoder.compiled:
        encoding = replace(encoding, compile_seconds=round(encoder.warm_up(), 2))
    decoded = f"test_{p.autoencoder.decoded}"  # what reconstructions decode
    if reused["latents"]:
        test_mean = load_npz(p.latents_file, "cached latents", (decoded,))[decoded]
    else:
        partial = cache_dir / f"latents-{p.key}.partial"
        arrays = encode_dataset(encoder, data, config.seed, config.vae, partial)
        write_json(encoding_file(p.latents_file), asdict(encoding))
        save_cached(p.latents_file, **arrays)
        shutil.rmtree(partial, ignore_errors=True)
        test_mean = arrays[decoded]
    if not reused["reconstructions"]:
        save_cached(p.recon_file, **reconstruct(encoder, test_mean, data["x_test"], data["y_test"],
                                                n_classes, config.vae, encoding.batch_size))
    return reused, encoding


def describe(p: EncodePlan, vae, config: RunConfig, data_info: dict, encoding: Encoding) -> dict:
    """encode.json: the resolved configuration and checksums, and why this precision and batch."""
    vae_config = dict(vae.config)
    return {
        "model": asdict(p.model),
        "vae_config": {k: vae_config.get(k) for k in (
            "block_out_channels", "latent_channels", "scaling_factor", "shift_factor",
            "force_upcast", "sample_size", "down_block_types", "encoder_block_out_channels",
            "layout", "downsampling")},
        "parameters": int(sum(t.numel() for t in vae.parameters())),
        "device": p.device, "device_name": device_name(p.device), "precision": p.precision,
        "precision_reason": p.precision_reason,
        "batch_size": encoding.batch_size, "micro_batch": encoding.micro_batch,
        "batch_requested": config.batch_size or "auto",
        "batch_reason": encoding.batch_reason,
        "memory_format": "channels_last" if p.device == "cpu" else "contiguous",
        "compiled": p.compiled, "compile_requested": config.compile,
        "seed": config.seed, "cache_key": p.key, "recon_cache_key": p.recon_key,
        "encoder_sha256": p.model.encoder_sha256,
        "latents_sha256": cache.checksum_file(p.latents_file).read_text().strip(),
        "classes": data_info["classes"], "resolution": config.resolution,
        "upsampling": (None if config.resolution == IMAGE_SIDE else
                       f"{IMAGE_SIDE}x{IMAGE_SIDE} -> {config.resolution}x{config.resolution}, "
                       "bicubic, align_corners=False, clamped to [-1, 1]"),
        "dataset_sha256": data_info["sha256"], "cache_fields": p.key_fields,
        "autoencoder_class": p.autoencoder.name, "stochastic": p.autoencoder.stochastic,
        "feature_sets": list(p.autoencoder.feature_sets), "downsampling": p.factor,
        "sample_definition": ("mean + std * eps, eps ~ N(0, I) from torch.Generator(seed)"
                              if p.autoencoder.stochastic else None),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Encode the dataset with a VAE")
    parser.add_argument("config", type=Path, help="run config.json from analysis.config")
    parser.add_argument("data", type=Path, help="dataset.npz from analysis.data")
    parser.add_argument("out", type=Path, help="latents.npz to write")
    parser.add_argument("--cache", type=Path, required=True, help="latent cache directory")
    args = parser.parse_args(argv)
    config: RunConfig = load_run_config(args.config)
    data_info = read_json(args.data.with_name(runs.DATASET), "dataset description")
    n_images = int(data_info["n_train"] + data_info["n_test"])
    started = time.perf_counter()

    import torch

    threads.apply()  # torch's pool: this stage's share of the cores under make -j
    model = resolve_model(config.vae, config.revision)
    vae = load_vae(model)
    p = plan(config, vae, model, n_images, data_info["sha256"], args.cache)
    with file_lock(args.cache / f"latents-{p.key}.lock"):
        reused, encoding = execute(p, vae, config, args.data, len(data_info["classes"]), args.cache)
        if p.recon_file is None:  # no stale reconstructions from an earlier model may stay
            args.out.with_name(runs.RECONSTRUCTIONS).unlink(missing_ok=True)
        else:
            copy_file(p.recon_file, args.out.with_name(runs.RECONSTRUCTIONS))
        write_json(args.out.with_name(runs.ENCODE), describe(p, vae, config, data_info, encoding))
        write_json(args.out.with_name(runs.timings_file("encode")),
                   {"encode_seconds": round(time.perf_counter() - started, 2),
                    "from_cache": reused["latents"],
                    "reconstructions_from_cache": reused["reconstructions"] if p.recon_file else None,
                    "compile_seconds": None if reused["latents"] else encoding.compile_seconds,
                    # Measured rates (they differ between identical runs, so not in the report).
                    "batch_probe_images_per_second": encoding.batch_probe,
                    # make -j's share (analysis.threads); the latents do not depend on it.
                    "torch_threads": torch.get_num_threads(), "images": n_images})
        # latents.npz last: it is the file make tracks.
        copy_file(p.latents_file, args.out)
    print(f"latents: {'reused cache' if reused['latents'] else 'encoded'} {p.latents_file.name} -> "
          f"{args.out}", file=sys.stderr)
    deps.write(args.out, __file__)


if __name__ == "__main__":
    run_main(main)
