"""Benchmark: encoder throughput (plain diffusers loop vs vaelab's path) and classifier cost.

Run:
    python -m analysis.bench build/bench.json [--images 512] [--rows 50000] [--model DIR]
    python -m analysis.bench build/bench-tune.json --parts tune --rows 50000 --tune-models "svc lightgbm"

Without ``--model`` it builds the sd-vae-ft-ema architecture with random weights
(``analysis.demo vae --full``): the same FLOPs as the real model, so throughput numbers
are valid for it, but the latents mean nothing. The JSON says which model was used.

``classes`` times vaelab's eager float32 path (channels_last, BATCH) for each accepted encoder
class's real architecture at 32 px, built with random weights (``analysis.demo``
ARCHITECTURES ``sd-vae``, ``flux-vae``, ``taesd``, ``dc-ae``; same FLOPs, meaningless
latents), interleaved on the same images.

Encoder paths are timed on the same images, interleaved (A, B, A, B, ...) so that noise
from the machine hits both alike; each figure is the median over repetitions. Classifiers are
timed at 64 and 128 features on pixel PCA of the shared CIFAR-10 JPEG set (what the pixel
baselines fit; SVC costs 10-20 times more there than on synthetic data), or on a Gaussian
mixture where that set is absent; ``classifiers.features`` says which. SVC is timed in both
implementations on the same features (``classifiers.svc``: libsvm on one core, oneDAL on every
core, with their accuracy, support vectors and how many test predictions agree); the
classifier totals count the one ``SVC=auto`` picks. Beside them, on the same features: the learning-curve subsets (analysis.curves) and the latent probes
(analysis.probes, the 64 features taken as a 4x4x4 latent), and their cost as a share of
the classifier stage (``curves_ratio``, ``probes_ratio``).

``tune`` (``--parts tune``, on its own or with the others) times TUNE's search (analysis.tune)
on the same features at 64 and 128 features, for each of ``--tune-models`` (SVC and LightGBM by
default) beside its default fit: the search, the refit of the chosen settings on every
training row, and their ratio to the default fit and predict, all the searches scheduled as the
tune stage schedules them (analysis.tune.run_searches); with the classifiers part
in the same run, also TUNE's cost on a one-variant default run (the VAE feature sets and their
equal-width pixel PCAs: the widths timed here, twice) against that run's classifier stages at
the same widths, fits (with the pooled-pixel baseline's, also timed), learning curves and probes
(``stage_ratio``; ``fits_ratio`` against the default fits alone; ``tune_on_default_run``).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from analysis import threads
from analysis.common import VaelabError, run_main, write_json
from analysis.config import parse_tune
from analysis.encode import Encoder, to_model_input
from analysis.devices import (DEFAULT_BATCH, REFERENCE_CONV, bf16_decision, conv_rates, cpu_bf16,
                              device_name)
from analysis.vae import load_vae, resolve_model

PLAIN_BATCH = 64  # the plain loop keeps the batch of 64 that issue 4 measured it with
# What `make bench` can time (BENCH_PARTS): the encoder paths and where their time goes, the
# encoder classes, the classifiers (with learning curves and probes), TUNE's search.
PARTS = ("encoder", "classes", "classifiers", "tune")


def plain_loop(vae, images: np.ndarray, batch_size: int) -> None:
    """What a user would write: float32, eager, diffusers' encode, batch by batch."""
    import torch

    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            dist = vae.encode(to_model_input(images[start:start + batch_size], "cpu")).latent_dist
            dist.mean.numpy(), dist.std.numpy()


def project_path(encoder: Encoder, images: np.ndarray, batch_size: int) -> None:
    for start in range(0, len(images), batch_size):
        encoder.encode(images[start:start + batch_size])


def time_interleaved(fns: dict, reps: int) -> dict[str, float]:
    """Median seconds per call of each function, run in turn ``reps`` times after a warm-up."""
    for fn in fns.values():
        fn()
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - t0)
    return {name: statistics.median(s) for name, s in seconds.items()}


def relative_error(reference, other) -> float:
    """||other - reference|| / ||reference||, rounded to 6 significant digits."""
    import torch

    err = torch.linalg.vector_norm(other.float() - reference.float()) / torch.linalg.vector_norm(reference.float())
    return float(f"{float(err):.6g}")


def bench_encoder(model_dir: Path, n_images: int, batch_size: int, reps: int,
                  compiled: bool = True) -> dict:
    """Plain loop vs vaelab's paths on the same images, interleaved.

    ``vaelab_fp32`` is what a full-size CPU run uses (channels_last, ``batch_size``,
    torch.compile unless ``compiled`` is False); ``vaelab_fp32_eager`` is the same without
    the compile, to show what the compile adds. bfloat16 is timed too, briefly if emulated.
    """
    import copy

    model = resolve_model(str(model_dir))
    vae = without_decoder(load_vae(model))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n_images, 32, 32, 3), dtype=np.uint8)
    # Time bfloat16 in full wherever the hardware computes it, fast or slow, so that the
    # table shows whether PRECISION=auto's choice (the default path) was the faster one.
    native_bf16 = cpu_bf16() != ""
    rates = conv_rates()  # the machine's own reference: one convolution per precision
    default = bf16_decision(rates)[0]  # what PRECISION=auto picks from them

    def encoder(precision: str, compile_it: bool) -> Encoder:
        return Encoder(copy.deepcopy(vae), "cpu", precision, batch_size=batch_size,
                       compiled=compile_it)

    encoders = {"vaelab_fp32": encoder("fp32", compiled), "vaelab_fp32_eager": encoder("fp32", False),
                "vaelab_bf16": encoder("bf16", compiled and native_bf16)}
    # One-off compile cost (paid once per run of `make report`), kept out of the throughput.
    compile_seconds = {name: round(enc.warm_up(), 2) for name, enc in encoders.items() if enc.compiled}
    fns = {"plain_fp32": lambda: plain_loop(vae, images, PLAIN_BATCH),
           "vaelab_fp32": lambda: project_path(encoders["vaelab_fp32"], images, batch_size)}
    if compiled:
        fns["vaelab_fp32_eager"] = lambda: project_path(encoders["vaelab_fp32_eager"], images, batch_size)
    if native_bf16:
        fns["vaelab_bf16"] = lambda: project_path(encoders["vaelab_bf16"], images, batch_size)
    seconds = time_interleaved(fns, reps)
    ips = {name: round(n_images / s, 2) for name, s in seconds.items()}
    if not native_bf16:
        # Emulated bfloat16 is several times slower: one short pass shows it, no more.
        few = images[:min(64, n_images)]
        t0 = time.perf_counter()
        project_path(encoders["vaelab_bf16"], few, batch_size)
        ips["vaelab_bf16_emulated"] = round(len(few) / (time.perf_counter() - t0), 2)
    first = images[:batch_size]
    ref_mean, ref_std = encoders["vaelab_fp32"].encode(first)
    bf_mean, bf_std = encoders["vaelab_bf16"].encode(first)
    with torch_no_grad():
        plain = vae.encode(to_model_input(first, "cpu")).latent_dist
    result = {
        "model": model.name, "untrained": model.untrained,
        "note": "random weights, sd-vae-ft-ema architecture: same FLOPs as the real model"
        if model.untrained else "pretrained weights",
        "images": n_images, "batch_size": batch_size, "plain_batch_size": PLAIN_BATCH,
        "repetitions": reps, "compiled": compiled, "compile_seconds": compile_seconds,
        "images_per_second": ips,
        "default_path": f"vaelab_{default}",
        "relative_error_vs_plain_fp32": {
            "vaelab_fp32_mean": relative_error(plain.mean, ref_mean),
            "vaelab_fp32_std": relative_error(plain.std, ref_std),
            "vaelab_bf16_mean": relative_error(plain.mean, bf_mean),
            "vaelab_bf16_std": relative_error(plain.std, bf_std),
        },
    }
    base = ips["plain_fp32"]
    result["ratio_vs_plain"] = {name: round(v / base, 3) for name, v in ips.items()}
    result["cifar10_minutes_default_path"] = round(60000 / ips[result["default_path"]] / 60, 1)
    gflop = encoder_gflop(vae)
    result["reference_conv"] = {"shape": "3x3, %d -> %d channels, %d x %d px, batch %d, channels_last"
                                % (REFERENCE_CONV[1], REFERENCE_CONV[1], REFERENCE_CONV[2],
                                   REFERENCE_CONV[2], REFERENCE_CONV[0]),
                                "gflop_per_second": rates}
    result["gflop_per_image"] = gflop
    # The encoder's rate as a share of the reference convolution's in the same precision.
    result["share_of_conv_rate"] = {
        name: round(ips[name] * gflop / rates["bf16" if "bf16" in name else "fp32"], 3)
        for name in ips if name.startswith("vaelab") and "emulated" not in name}
    return result


# Changes tried against the default compiled path (issue 33): each kept only where it is faster.
CANDIDATES = {"batch 32": dict(batch_size=32), "batch 64": dict(batch_size=64),
              "batch 64, 32/16 px blocks 16 at a time": dict(batch_size=64, micro_batch=16),
              "batch 128, 32/16 px blocks 16 at a time": dict(batch_size=128, micro_batch=16),
              "NCHW instead of channels_last": dict(channels_last=False),
              "no inductor freezing": dict(freeze=False),
              "bf16 weights cast instead of autocast": dict(bf16_cast=True)}


def bench_candidates(vae, images: np.ndarray, precision: str, batch_size: int, reps: int) -> dict:
    """The default compiled encoder in ``precision`` beside each of ``CANDIDATES``, on the
    same images, interleaved: images/s, the ratio to the default, and whether it is kept
    (faster by more than BATCH_MIN_GAIN, the noise margin BATCH=auto uses too). Beside them,
    what BATCH=auto's eager probe (analysis.encode.time_batches) picks on this machine."""
    import copy

    from analysis.devices import BATCH_CANDIDATES, BATCH_MIN_GAIN, Batching, batch_decision
    from analysis.encode import time_batches

    def make(**options) -> Encoder:
        settings = {"batch_size": batch_size} | options
        return Encoder(copy.deepcopy(vae), "cpu", precision, compiled=True, **settings)

    paths = {"default": make()} | {name: make(**options) for name, options in CANDIDATES.items()
                                   if precision == "bf16" or "bf16" not in name}
    for path in paths.values():
        path.warm_up()
    seconds = time_interleaved({name: (lambda e=e: project_path(e, images, e.batch_size))
                                for name, e in paths.items()}, reps)
    ips = {name: round(len(images) / s, 2) for name, s in seconds.items()}
    ref = paths["default"].encode(images[:batch_size])[0]
    out = {name: {"images_per_second": ips[name], "ratio": round(ips[name] / ips["default"], 3),
                  "kept": name != "default" and ips[name] >= BATCH_MIN_GAIN * ips["default"],
                  "relative_error_vs_default": relative_error(ref, e.encode(images[:batch_size])[0])}
           for name, e in paths.items()}
    probe = time_batches(copy.deepcopy(vae), "cpu", precision, 32, images,
                         tuple(Batching.parse(label) for label in BATCH_CANDIDATES["cpu"]))
    return {"precision": precision, "compiled": True, "paths": out, "batch_probe_eager": probe,
            "batch_auto_picks": batch_decision(probe)[0].label}


def encoder_gflop(vae) -> float:
    """GFLOP of one 32x32 image through the encoder (and quant_conv), by torch's FLOP counter
    (convolutions and matrix products: what the reference convolution measures)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, 32, 32)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        vae.encode(x)
    return round(counter.get_total_flops() / 1e9, 3)


def layer_groups(encoder) -> dict[str, list]:
    """An SD-style encoder's modules by the resolution they run at (32, 16, 8 and 4 px for a
    32 px image, the downsampler with the side it reads) and the mid-block attention apart;
    {} for other layouts (no down_blocks)."""
    enc = encoder.vae.encoder
    if not hasattr(enc, "down_blocks"):
        return {}
    sides = [32 // 2 ** i for i in range(len(enc.down_blocks))]
    groups = {f"{side} px": [block] for side, block in zip(sides, enc.down_blocks)}
    groups[f"{sides[0]} px"].insert(0, enc.conv_in)
    last = f"{sides[-1]} px"
    groups[last] += list(enc.mid_block.resnets) + [enc.conv_norm_out, enc.conv_out]
    if getattr(encoder.vae, "quant_conv", None) is not None:
        groups[last].append(encoder.vae.quant_conv)
    groups["mid-block attention"] = [a for a in enc.mid_block.attentions if a is not None]
    return groups


def profile_layer_groups(encoder, images: np.ndarray, batch_size: int) -> dict:
    """Share of the eager encoder's time per layer group (``layer_groups``), by the torch
    profiler: each group's modules run inside a record_function named after it. Eager only:
    a compiled encoder's fused kernels no longer belong to one module."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    groups = layer_groups(encoder)
    if not groups:
        return {}
    hooks, open_ranges = [], []
    for label, modules in groups.items():
        for module in modules:
            def enter(_module, _args, label=label):
                open_ranges.append(record_function(label).__enter__())

            def leave(_module, _args, _out):
                open_ranges.pop().__exit__(None, None, None)

            hooks += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    try:
        project_path(encoder, images[:batch_size], batch_size)  # warm-up outside the profile
        started = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            project_path(encoder, images, batch_size)
        wall = time.perf_counter() - started
    finally:
        for hook in hooks:
            hook.remove()
    totals = {e.key: e.cpu_time_total / 1e6 for e in prof.key_averages() if e.key in groups}
    grouped = sum(totals.values())
    flops = group_gflop(encoder, groups)
    return {"precision": encoder.precision, "images": len(images), "wall_seconds": round(wall, 3),
            "share": {label: round(totals.get(label, 0.0) / grouped, 3) for label in groups},
            "gflop_per_image": flops,
            "gflop_per_second": {label: round(flops[label] * len(images) / totals[label], 1)
                                 for label in groups if totals.get(label)},
            "note": "eager path under the profiler; shares of the time spent in the groups"}


def group_gflop(encoder, groups: dict[str, list]) -> dict[str, float]:
    """GFLOP per 32x32 image of each layer group, by torch's FLOP counter per module."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    enc = encoder.vae.encoder
    names = {id(module): f"{type(enc).__name__}.{name}" for name, module in enc.named_modules()}
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        enc(torch.zeros(1, 3, 32, 32, dtype=next(enc.parameters()).dtype))
    counts = {name: sum(per_op.values()) for name, per_op in counter.get_flop_counts().items()}
    return {label: round(sum(counts.get(names.get(id(m), ""), 0) for m in modules) / 1e9, 4)
            for label, modules in groups.items()}


def without_decoder(vae):
    """``vae`` with its decoder dropped: the bench only encodes, and the decoders it would
    otherwise hold (one per model copy, DC-AE's alone 0.6 GB in float32) double its memory."""
    import torch

    vae.decoder = torch.nn.Identity()
    return vae


def torch_no_grad():
    import torch

    return torch.no_grad()


CIFAR_ZIP = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "cifar10-jpeg.zip"


def cifar_pixels(zip_path: Path, rows: int) -> tuple[dict[str, np.ndarray], str] | None:
    """The first ``rows`` training images (rows / 10 per class) and as many test images as
    the Gaussian fallback has (10,000 at full scale) of the CIFAR-10 JPEG set, read through
    the project's image-folder loader; None when the set is absent."""
    import tempfile
    import zipfile

    from analysis.data import load_imagefolder

    if not zip_path.is_file():
        return None
    per_class = {"train": max(rows // 10, 1), "test": test_rows(rows) // 10}
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            parts = name.split("/")  # cifar10-jpeg/<split>/<class>/NNNN.jpg
            if len(parts) == 4 and parts[3].endswith(".jpg") and int(parts[3][:4]) < per_class[parts[1]]:
                zf.extract(name, tmp)
        arrays, _, _, _ = load_imagefolder(Path(tmp) / "cifar10-jpeg", 0)
    return arrays, f"pixel PCA of the CIFAR-10 JPEG set ({zip_path.name}): what the pixel baselines fit"


def test_rows(rows: int) -> int:
    return min(10000, max(rows // 5, 100))  # 10,000 test rows at full scale, as CIFAR-10


def bench_features(cifar, rows: int, n_features: int, seed: int, rng: np.random.Generator):
    """(x_train, y_train, x_test, y_test) of width ``n_features``: a pixel PCA of the CIFAR-10
    JPEG set when ``cifar`` (cifar_pixels) has it, else a Gaussian mixture of ``rows`` rows."""
    from analysis.baselines import pca

    if cifar:
        data = cifar[0]
        x_train, x_test = pca(data["x_train"], data["x_test"], n_features, seed)
        return x_train, data["y_train"], x_test, data["y_test"]
    return gaussian_features(rows, n_features, rng)


def gaussian_features(rows: int, n_features: int, rng: np.random.Generator):
    """Synthetic 10-class Gaussian mixture (rows + test rows) x n_features: a fallback only;
    SVC finds it 10-20 times easier than CIFAR-10 features."""
    centers = rng.normal(0, 0.6, size=(10, n_features))
    y = rng.integers(0, 10, size=rows + test_rows(rows))
    x = (centers[y] + rng.normal(size=(len(y), n_features))).astype(np.float32)
    return x[:rows], y[:rows], x[rows:], y[rows:]


# Each accepted class's real architecture (analysis.demo.ARCHITECTURES), built with random weights.
CLASS_ARCHITECTURES = {"AutoencoderKL (sd-vae-ft-ema)": "sd-vae",
                       "AutoencoderKL 16 channels (FLUX.1)": "flux-vae",
                       "AutoencoderTiny (taesd)": "taesd",
                       "AutoencoderDC (dc-ae-f32c32-sana)": "dc-ae"}


def bench_classes(n_images: int, batch_size: int, reps: int, workdir: Path,
                  architectures: dict[str, str] = CLASS_ARCHITECTURES) -> dict:
    """Images per second of vaelab's eager float32 path, per encoder class, on the same 32 px
    images, interleaved: what encoding costs with each kind of autoencoder."""
    from analysis.demo import save_random_vae

    images = np.random.default_rng(1).integers(0, 256, size=(n_images, 32, 32, 3), dtype=np.uint8)
    encoders, info = {}, {}
    for name, arch in architectures.items():
        folder = workdir / arch
        if not (folder / "config.json").is_file():  # built aside, then renamed: never half-written
            tmp = folder.with_name(f".{folder.name}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(save_random_vae(tmp, seed=0, arch=arch), folder)
        vae = without_decoder(load_vae(resolve_model(str(folder))))
        encoders[name] = Encoder(vae, "cpu", "fp32", batch_size=batch_size)
        latent = encoders[name].encode(images[:1])[0]
        info[name] = {"architecture": arch, "latent_shape": list(latent.shape[1:]),
                      "encoder_parameters": int(sum(p.numel() for p in vae.encoder.parameters()))}
    seconds = time_interleaved({name: (lambda e=e: project_path(e, images, batch_size))
                                for name, e in encoders.items()}, reps)
    for name, s in seconds.items():
        info[name]["images_per_second"] = round(n_images / s, 2)
    return {"images": n_images, "precision": "fp32", "compiled": False,
            "note": "random weights, real architectures: same FLOPs as the trained models",
            "classes": info}


def bench_svc(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
              seed: int) -> dict:
    """Both SVC implementations on the same features, one after the other: implementation ->
    fit/predict seconds, accuracy, support vectors; ``agreement``: share of equal test
    predictions (oneDAL only where scikit-learn-intelex imports)."""
    from analysis.models import make_model, svc_implementation

    out, predictions = {}, {}
    for impl in ("libsvm", "onedal"):
        if svc_implementation("auto" if impl == "onedal" else impl)["implementation"] != impl:
            continue
        model = make_model("svc", seed, len(y_train), impl)
        t0 = time.perf_counter()
        model.fit(x_train, y_train)
        t1 = time.perf_counter()
        predictions[impl] = np.asarray(model.predict(x_test))
        t2 = time.perf_counter()
        out[impl] = {"fit_seconds": round(t1 - t0, 2), "predict_seconds": round(t2 - t1, 2),
                     "accuracy": round(float(np.mean(predictions[impl] == y_test)), 4),
                     "support_vectors": int(np.sum(model[-1].n_support_))}
        print(f"  SVC {impl:6s} {len(y_train)} x {x_train.shape[1]}: fit {t1 - t0:7.1f}s "
              f"predict {t2 - t1:6.1f}s accuracy {out[impl]['accuracy']:.4f}", file=sys.stderr)
    if len(predictions) == 2:
        out["agreement"] = round(float(np.mean(predictions["libsvm"] == predictions["onedal"])), 4)
    return out


def bench_classifiers(rows: int, seed: int, zip_path: Path = CIFAR_ZIP) -> dict:
    """Fit and predict seconds of every model at 64 and 128 features on ``rows`` training rows.

    Features are CIFAR-like where the shared CIFAR-10 JPEG set is at hand (pixel PCA to 64
    and 128 components, as the baselines compute it), else a Gaussian mixture; ``features``
    in the result says which."""
    from analysis.models import MODELS, PARALLEL_MIN_ROWS, fit_predict, make_model, svc_implementation
    from analysis.probes import probe

    cifar = cifar_pixels(zip_path, rows)
    rng = np.random.default_rng(seed)
    out: dict = {"features": cifar[1] if cifar else
                 "synthetic Gaussian mixture (CIFAR-10 JPEG set not found): SVC looks far cheaper "
                 "than on real features", "seconds": {}, "curves": {}, "svc": {},
                 "svc_default": svc_implementation("auto")}
    for n_features in (64, 128):
        x_train, y_train, x_test, y_test = bench_features(cifar, rows, n_features, seed, rng)
        out["test_rows"] = len(x_test)
        out["svc"][str(n_features)] = svc = bench_svc(x_train, y_train, x_test, y_test, seed)
        default = svc[out["svc_default"]["implementation"]]
        out["seconds"]["svc"] = out["seconds"].get("svc", {}) | {str(n_features): {
            k: default[k] for k in ("fit_seconds", "predict_seconds")}}
        for spec in MODELS:
            if spec.key == "svc":
                continue
            model = make_model(spec.key, seed, len(y_train))
            t0 = time.perf_counter()
            model.fit(x_train, y_train)
            t1 = time.perf_counter()
            model.predict(x_test)
            t2 = time.perf_counter()
            out["seconds"].setdefault(spec.key, {})[str(n_features)] = {
                "fit_seconds": round(t1 - t0, 2), "predict_seconds": round(t2 - t1, 2)}
            print(f"  {spec.label:22s} {len(y_train)} x {n_features}: fit {t1 - t0:7.1f}s "
                  f"predict {t2 - t1:6.1f}s", file=sys.stderr)
        out["curves"][str(n_features)] = curve_seconds(x_train, y_train, x_test, seed)
        if n_features == 64:  # the 64 features as a (N, 4, 4, 4) latent, as SD VAEs give at 32 px
            t0 = time.perf_counter()
            probe(x_train.reshape(-1, 4, 4, 4), x_test.reshape(-1, 4, 4, 4), y_train, y_test, seed)
            out["probes_seconds"] = round(time.perf_counter() - t0, 2)
    # The pooled-pixel baseline (N, 48), the third set analysis.baselines fits once per dataset
    # (no learning curves): part of a default run's classifier stages, never tuned.
    x_train, y_train, x_test, _ = pooled_features(cifar, rows, rng)
    out["pooled"] = {"features": int(x_train.shape[1]), "seconds": {}}
    for spec in MODELS:
        _, fit_s, predict_s = fit_predict(spec.key, seed, x_train, y_train, x_test,
                                          out["svc_default"]["implementation"])
        out["pooled"]["seconds"][spec.key] = {"fit_seconds": round(fit_s, 2), "predict_seconds": round(predict_s, 2)}
        print(f"  {spec.label:22s} {len(y_train)} x {x_train.shape[1]} (pooled pixels): fit {fit_s:7.1f}s "
              f"predict {predict_s:6.1f}s", file=sys.stderr)
    # analysis.models.fit_all's SVC workers at this size
    out |= stage_ratios(out, threads.workers() if rows >= PARALLEL_MIN_ROWS else 1)
    return out


def pooled_features(cifar, rows: int, rng: np.random.Generator):
    """The pooled-pixel baseline's features (analysis.baselines.pooled: 8x8 means, (N, 48)) of
    the CIFAR-10 JPEGs, or a Gaussian mixture of 48 features where the set is absent."""
    from analysis.baselines import pooled

    if cifar:
        data = cifar[0]
        return pooled(data["x_train"]), data["y_train"], pooled(data["x_test"]), data["y_test"]
    return gaussian_features(rows, 48, rng)


def curve_seconds(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int) -> dict:
    """Fit+predict seconds of the learning-curve subsets (analysis.curves) of each curve model;
    the full-size point is the main fit and costs nothing extra."""
    from analysis import curves
    from analysis.models import fit_predict

    plan = curves.sizes(len(y_train), 10)[:-1]
    out = {}
    for model in curves.CURVE_MODELS:
        total = 0.0
        for n, rows in curves.subsets(y_train, plan, seed).items():
            _, fit_s, predict_s = fit_predict(model, seed, x_train[rows], y_train[rows], x_test)
            total += fit_s + predict_s
        out[model] = round(total, 2)
        print(f"  learning curve {model:9s} sizes {plan}: {total:7.1f}s", file=sys.stderr)
    return out


def tune_on_default_run(tune: dict, classifiers: dict) -> dict:
    """TUNE's cost on a one-variant default run against that run's classifier stages, measured
    in the same process at the widths timed here (64 and 128 features, and the pooled 48).

    The default run fits every model on the VAE feature sets (analysis.classify) and on the
    pixel baselines (analysis.baselines: the PCAs as wide as the VAE sets and the pooled
    pixels), with learning curves on the VAE sets and the PCAs and probes on the latent, each
    stage as analysis.models.fit_all schedules it (``classifier_wall_seconds``, the baselines'
    ``baseline_wall_seconds``); TUNE searches and refits the VAE sets and the PCAs: twice the
    jobs timed here, counted as twice their schedule's wall time (one schedule of all of them
    leaves its workers idle at the end once, not twice, so this errs high by at most one job's
    tail). ``fits_ratio`` sets TUNE against those default fits alone (without the pooled pixels,
    which TUNE does not search). ``model_stage_ratios``: each model's part of ``stage_ratio``
    (its share of the jobs' seconds, those side by side divided among the workers; they add up
    to it), from which a TUNE list within a budget can be read."""
    stage = (classifiers["classifier_wall_seconds"] + classifiers["baseline_wall_seconds"]
             + 2 * classifiers["curves_seconds"] + classifiers["probes_seconds"])
    ratio = 2 * tune["tune_seconds"] / stage
    per_model = {key: ratio * share for key, share in tune["model_shares"].items()}
    return {"stage_seconds": round(stage, 2), "stage_ratio": round(ratio, 3),
            "fits_ratio": round(tune["tune_seconds"] / classifiers["classifier_seconds"], 3),
            "model_stage_ratios": {key: round(r, 3) for key, r in per_model.items()}}


def stage_wall(seconds: list[dict], side_by_side: bool, workers: int) -> float:
    """The wall time of one analysis.models.fit_all call over feature sets whose model ->
    {fit_seconds, predict_seconds} are ``seconds``: libsvm's SVC fits (``side_by_side``) go to
    ``workers`` processes, longest first, each to the one free first; the rest one after the
    other."""
    def total(t: dict) -> float:
        return t["fit_seconds"] + t["predict_seconds"]

    svc = sorted((total(per["svc"]) for per in seconds if "svc" in per), reverse=True)
    rest = sum(total(t) for per in seconds for key, t in per.items() if key != "svc")
    if not side_by_side:
        return rest + sum(svc)
    loads = [0.0] * max(1, min(workers, len(svc)))
    for s in svc:
        loads[loads.index(min(loads))] += s
    return rest + max(loads)


def stage_ratios(out: dict, workers: int) -> dict:
    """Learning curves and probes against the classifier stage at the same widths (64 and 128):
    against the summed fit+predict seconds of every model, and against the stage's wall time
    as analysis.models.fit_all schedules it (``stage_wall``: libsvm's SVCs side by side; oneDAL's
    one after the other, each on every core; ``workers``: its SVC processes).
    ``baseline_wall_seconds``: the same for the pixel baselines' fit_all (the two widths and,
    where timed, the pooled pixels)."""
    seconds = out["seconds"]
    serial = sum(t["fit_seconds"] + t["predict_seconds"] for per in seconds.values() for t in per.values())
    side_by_side = out.get("svc_default", {}).get("implementation", "libsvm") == "libsvm"
    by_width = [{key: per[w] for key, per in seconds.items() if w in per} for w in ("64", "128")]
    wall = stage_wall(by_width, side_by_side, workers)
    pooled = [out["pooled"]["seconds"]] if "pooled" in out else []
    curves_total = sum(v for per in out["curves"].values() for v in per.values())
    return {"classifier_seconds": round(serial, 2), "classifier_wall_seconds": round(wall, 2),
            "baseline_wall_seconds": round(stage_wall(by_width + pooled, side_by_side, workers), 2),
            "curves_seconds": round(curves_total, 2),
            "curves_ratio": round(curves_total / serial, 4) if serial else None,
            "curves_ratio_wall": round(curves_total / wall, 4) if wall else None,
            "probes_ratio": round(out.get("probes_seconds", 0.0) / serial, 4) if serial else None}


def bench_tune(rows: int, seed: int, models: tuple[str, ...] = ("svc", "lightgbm"),
               zip_path: Path = CIFAR_ZIP) -> dict:
    """TUNE's searches and refits against the default fit, per model, at 64 and 128 features
    on ``rows`` training rows (the classifiers part's features), scheduled as the tune stage
    schedules them (analysis.tune.run_searches: the boosted trees' and libsvm's searches side
    by side, one thread each; the rest in-process). ``tune_seconds``: that schedule's wall time;
    each row's ``tune_seconds`` its search and refit (none where the defaults were chosen: the
    stage takes the default fit's predictions then), on one thread where side by side."""
    from analysis.config import TuneConfig
    from analysis.models import fit_predict, svc_implementation
    from analysis.tune import run_searches

    cifar = cifar_pixels(zip_path, rows)
    rng = np.random.default_rng(seed)
    config = TuneConfig(models=tuple(models))
    svc = svc_implementation("auto")
    impl = svc["implementation"]
    y_train, y_test, features = tune_features(cifar, rows, (64, 128), seed, rng)
    out: dict = {"features": cifar[1] if cifar else "synthetic Gaussian mixture (CIFAR-10 JPEG set not found)",
                 "models": list(models), "svc": svc, "max_rows": config.max_rows, "folds": config.folds,
                 "factor": config.factor, "widths": {}}
    jobs = [(key, width) for width in features for key in models]
    defaults, default_seconds = {}, {}
    for key, width in jobs:
        x_train, x_test = features[width]
        defaults[key, width], fit_s, predict_s = fit_predict(key, seed, x_train, y_train, x_test, impl)
        default_seconds[key, width] = fit_s + predict_s
    workers = threads.workers()
    t0 = time.perf_counter()
    found = run_searches(jobs, features, y_train, defaults, seed, impl, config, workers)
    wall = time.perf_counter() - t0
    side_by_side = [job for job in jobs if "side_by_side" in found[job][2]]
    for job in jobs:
        record, predictions, seconds = found[job]
        tune_s = seconds["search_seconds"] + seconds["refit_seconds"]
        out["widths"].setdefault(job[1], {})[job[0]] = {
            "default_seconds": round(default_seconds[job], 2), "search_seconds": round(seconds["search_seconds"], 2),
            "refit_seconds": round(seconds["refit_seconds"], 2), "refit_needed": not record["default"],
            "tune_seconds": round(tune_s, 2), "ratio": round(tune_s / default_seconds[job], 3),
            "side_by_side": job in side_by_side, "params": record["params"], "rounds": record["rounds"],
            "cv_accuracy": record["cv_accuracy"],
            "default_accuracy": round(float(np.mean(defaults[job] == y_test)), 4),
            "tuned_accuracy": round(float(np.mean(predictions == y_test)), 4)}
        print(f"  tune {job[0]:9s} {len(y_train)} x {job[1]}: default {default_seconds[job]:7.1f}s, search "
              f"{seconds['search_seconds']:7.1f}s, refit {seconds['refit_seconds']:7.1f}s"
              f"{' (defaults chosen: no refit)' if record['default'] else ''}{' (side by side)' if job in side_by_side else ''}"
              f", chose {record['params']}", file=sys.stderr)
    out["tune_seconds"] = round(wall, 2)
    out["job_seconds"] = round(sum(seconds["search_seconds"] + seconds["refit_seconds"]
                                   for _, _, seconds in found.values()), 2)
    out["workers"] = min(workers, len(side_by_side)) if side_by_side else 1
    out["side_by_side"] = sorted({key for key, _ in side_by_side}, key=list(models).index)
    out["default_seconds"] = round(sum(default_seconds.values()), 2)
    out["ratio"] = round(wall / sum(default_seconds.values()), 3)
    # Each model's part of the wall time: its jobs' seconds, those side by side shared among
    # the workers.
    cost = {key: sum((s["search_seconds"] + s["refit_seconds"]) / (out["workers"] if job in side_by_side else 1)
                     for job, (_, _, s) in found.items() if job[0] == key) for key in models}
    out["model_shares"] = {key: round(c / (sum(cost.values()) or 1), 4) for key, c in cost.items()}
    return out


def tune_features(cifar, rows: int, widths: tuple[int, ...], seed: int, rng: np.random.Generator):
    """(y_train, y_test, {width: (x_train, x_test)}): bench_features at each width, on one set of
    labels (the tune stage's searches share the run's), the Gaussian fallback drawn once at the
    widest and cut."""
    if cifar:
        by_width = {str(w): bench_features(cifar, rows, w, seed, rng) for w in widths}
        y_train, y_test = by_width[str(widths[0])][1], by_width[str(widths[0])][3]
        return y_train, y_test, {w: (f[0], f[2]) for w, f in by_width.items()}
    x_train, y_train, x_test, y_test = gaussian_features(rows, max(widths), rng)
    return y_train, y_test, {str(w): (x_train[:, :w], x_test[:, :w]) for w in widths}


def bench_speed(model_dir: Path, n_images: int, batch_size: int, reps: int, encoder: dict,
                candidates: bool = True) -> dict:
    """Where the encoder's time goes against the machine's own convolution rate: the layer
    groups of the eager encoder in each precision (``profile_layer_groups``), and with
    ``candidates`` the changes tried against the default compiled path (``bench_candidates``)."""
    import copy

    vae = without_decoder(load_vae(resolve_model(str(model_dir))))
    images = np.random.default_rng(2).integers(0, 256, size=(n_images, 32, 32, 3), dtype=np.uint8)
    precisions = ["fp32"] + (["bf16"] if cpu_bf16() else [])  # emulated bfloat16: not profiled
    out: dict = {"layer_groups": {p: profile_layer_groups(Encoder(copy.deepcopy(vae), "cpu", p,
                                                                  batch_size=batch_size),
                                                          images, batch_size)
                                  for p in precisions}}
    if candidates:
        default = encoder["default_path"].removeprefix("vaelab_")
        out["candidates"] = bench_candidates(vae, images, default, batch_size, reps)
    return out


def print_speed(encoder: dict, speed: dict) -> None:
    """The encoder against the reference convolution, its layer groups and the candidates."""
    ref = encoder["reference_conv"]
    rates = ref["gflop_per_second"]
    print(f"\nreference convolution ({ref['shape']}): float32 {rates['fp32']:.0f} GFLOP/s, bfloat16 "
          f"{rates['bf16']:.0f} GFLOP/s ({rates['bf16'] / rates['fp32']:.2f}x)")
    print(f"  encoder {encoder['gflop_per_image']:.2f} GFLOP per 32x32 image; share of the "
          "reference rate in its precision:")
    for name, share in encoder["share_of_conv_rate"].items():
        print(f"  {name:20s} {share:6.1%}")
    for precision, groups in speed["layer_groups"].items():
        if not groups:
            continue
        print(f"  layer groups, eager {precision} (torch profiler, {groups['images']} images): " + "; ".join(
            f"{label} {share:.0%} at {groups['gflop_per_second'].get(label, 0):.0f} GFLOP/s"
            for label, share in groups["share"].items()))
    cand = speed.get("candidates")
    if cand:
        print(f"  changes tried against the default compiled {cand['precision']} path, side by side:")
        for name, path in cand["paths"].items():
            verdict = "" if name == "default" else ("kept" if path["kept"] else "not kept")
            print(f"    {name:40s} {path['images_per_second']:8.1f} images/s {path['ratio']:6.2f}x  "
                  f"latents {path['relative_error_vs_default']:.1e} from default  {verdict}")
        probe = ", ".join(f"{v:.1f} at {b}" for b, v in cand["batch_probe_eager"].items())
        print(f"    BATCH=auto's eager probe here: {probe} images/s -> {cand['batch_auto_picks']}")


def main(argv: list[str] | None = None) -> None:
    import torch

    parser = argparse.ArgumentParser(description="Benchmark encoding and classifiers")
    parser.add_argument("out", type=Path, help="bench.json to write")
    parser.add_argument("--model", type=Path, default=None, help="local AutoencoderKL directory (the encoder part)")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH,
                        help="vaelab's batch size (the plain loop keeps 64)")
    parser.add_argument("--no-compile", action="store_true", help="time vaelab's path eager only")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rows", type=int, default=50000, help="training rows for classifiers; 0 skips")
    parser.add_argument("--class-images", type=int, default=128,
                        help="images per encoder class in the per-class throughput; 0 skips")
    parser.add_argument("--parts", default=" ".join(PARTS),
                        help=f"what to time, of: {' '.join(PARTS)} (e.g. --parts tune)")
    parser.add_argument("--tune-models", default="svc lightgbm", help="the models the tune part times")
    args = parser.parse_args(argv)
    parts = args.parts.replace(",", " ").split()
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise VaelabError(f"--parts {args.parts!r}: unknown part {' '.join(unknown) or '(none)'}; use some of "
                          f"{', '.join(PARTS)}")
    tune_models = parse_tune(args.tune_models)
    if "encoder" in parts and args.model is None:
        raise VaelabError("the encoder part needs --model DIR (an AutoencoderKL folder)")

    encoder = speed = None
    if "encoder" in parts:
        encoder = bench_encoder(args.model, args.images, args.batch_size, args.reps,
                                compiled=not args.no_compile)
        speed = bench_speed(args.model, args.images, args.batch_size, args.reps, encoder,
                            candidates=not args.no_compile)
    classes = (bench_classes(args.class_images, args.batch_size, args.reps, args.out.parent / "bench" / "models")
               if args.class_images and "classes" in parts else None)
    classifiers = (bench_classifiers(args.rows, 0) if args.rows and "classifiers" in parts
                   else {"features": None, "seconds": {}})
    tune = bench_tune(args.rows, 0, tune_models) if args.rows and "tune" in parts and tune_models else None
    if tune and classifiers.get("classifier_seconds"):
        tune |= tune_on_default_run(tune, classifiers)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "machine": {"cpu": device_name("cpu"), "cores": torch.get_num_threads(),
                    "bf16_units": cpu_bf16() or "emulated", "python": platform.python_version(),
                    "torch": torch.__version__},
        "parts": parts,
        "encoder": encoder, "encoder_speed": speed, "encoder_classes": classes, "classifiers": {"rows": args.rows} | classifiers,
        "tune": tune and {"rows": args.rows} | tune,
        "peak_rss_mb": round(peak_mb, 1),
    }
    write_json(args.out, result)
    if encoder:
        print_encoder(args, encoder, speed, result)
    if classifiers.get("classifier_seconds"):
        print_classifiers(args, classifiers)
    if tune:
        print_tune(args, tune)
    if classes:
        print(f"\nencoder classes, eager float32, {classes['images']} images at 32 px ({classes['note']}):")
        for name, c in classes["classes"].items():
            print(f"  {name:36s} latent {'x'.join(map(str, c['latent_shape'])):8s} "
                  f"{c['images_per_second']:8.1f} images/s")
    print(f"peak RSS {peak_mb:.0f} MB -> {args.out}")


def print_tune(args, tune: dict) -> None:
    print(f"\ntuning search (TUNE, analysis.tune), {args.rows} training rows (the search's last round on at most "
          f"{tune['max_rows']:,}), {tune['folds']}-fold, SVC {tune['svc']['label']}:")
    for width, per in tune["widths"].items():
        for key, r in per.items():
            print(f"  {key:9s} {width:>3s} features: default fit+predict {r['default_seconds']:7.1f} s; search "
                  f"{r['search_seconds']:7.1f} s + refit {r['refit_seconds']:7.1f} s"
                  f"{'' if r['refit_needed'] else ' (not needed: the defaults won)'}"
                  f"{' (one thread, side by side)' if r['side_by_side'] else ''} = {r['ratio']:.2f}x the default; "
                  f"accuracy {r['default_accuracy']:.4f} -> {r['tuned_accuracy']:.4f}")
    together = (f"{', '.join(tune['side_by_side'])} side by side in {tune['workers']} processes"
                if tune["side_by_side"] else "one after the other")
    print(f"  all ({together}): {tune['tune_seconds']:.1f} s of tuning ({tune['job_seconds']:.1f} s of searches "
          f"and refits) against {tune['default_seconds']:.1f} s of default fits ({tune['ratio']:.2f}x)")
    if tune.get("stage_ratio") is not None:
        print(f"  TUNE=\"{' '.join(tune['models'])}\" on a one-variant default run (the VAE sets and their "
              f"equal-width PCAs): 2 x {tune['tune_seconds']:.1f} s against the classifier stages' "
              f"{tune['stage_seconds']:.1f} s at those widths (fits of the VAE sets, their PCAs and the pooled pixels "
              f"as analysis.models.fit_all schedules them, learning curves, probes) = "
              f"{tune['stage_ratio']:.2f}x; target at most 2x ({tune['fits_ratio']:.2f}x the default fits alone)")
        print("  each model's part of that ratio: "
              + ", ".join(f"{key} {r:.2f}x" for key, r in tune["model_stage_ratios"].items()))


def print_encoder(args, encoder: dict, speed: dict, result: dict) -> None:
    ips = encoder["images_per_second"]
    print(f"\nencoder ({encoder['note']}), {args.images} images, median of {args.reps}:")
    for name, value in ips.items():
        print(f"  {name:20s} {value:8.1f} images/s   ratio vs plain {encoder['ratio_vs_plain'][name]:.2f}x")
    if encoder["compile_seconds"]:
        print(f"  one-off torch.compile seconds (not in the rates): {encoder['compile_seconds']}")
    print(f"  default path {encoder['default_path']}: CIFAR-10 (60,000 images) in about "
          f"{encoder['cifar10_minutes_default_path']} min")
    if "vaelab_bf16" in ips:
        faster = max(("vaelab_fp32", "vaelab_bf16"), key=ips.get)
        verdict = "the faster" if faster == encoder["default_path"] else f"slower than {faster}"
        print(f"  PRECISION=auto picks {encoder['default_path']} here (bfloat16 units: "
              f"{result['machine']['bf16_units']}): {verdict}, measured side by side")
    print(f"  relative error of latents vs the plain float32 loop: "
          f"{encoder['relative_error_vs_plain_fp32']}")
    print_speed(encoder, speed)


def print_classifiers(args, c: dict) -> None:
    print(f"\nclassifiers, {args.rows} training rows at 64 and 128 features, SVC "
          f"{c['svc_default']['label']}: {c['classifier_seconds']:.1f} s of fit+predict "
          f"({c['classifier_wall_seconds']:.1f} s wall as analysis.classify schedules them)")
    for width, svc in c["svc"].items():
        print(f"  SVC at {width} features: " + "; ".join(
            f"{impl} fit {r['fit_seconds']:.1f} s, predict {r['predict_seconds']:.1f} s, "
            f"accuracy {r['accuracy']:.4f}" for impl, r in svc.items() if impl != "agreement")
            + (f"; predictions agree on {svc['agreement']:.2%}" if "agreement" in svc else ""))
    pooled = c["pooled"]["seconds"]
    print(f"  pooled pixels ({c['pooled']['features']} features, the third pixel baseline): "
          f"{sum(t['fit_seconds'] + t['predict_seconds'] for t in pooled.values()):.1f} s of fit+predict; "
          f"the pixel baselines' stage {c['baseline_wall_seconds']:.1f} s wall")
    print(f"  learning curves {c['curves_seconds']:.1f} s = {c['curves_ratio']:.1%} of it "
          f"({c['curves_ratio_wall']:.1%} of the wall time); target under 15%")
    print(f"  latent probes (64 features as 4x4x4) {c['probes_seconds']:.1f} s = "
          f"{c['probes_ratio']:.1%} of it")

if __name__ == "__main__":
    run_main(main)
