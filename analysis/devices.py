"""The machine: which device runs the encoder, in which precision and batch, and its name.

Not run on its own; used by ``analysis.encode`` and ``analysis.bench``.

Choices that depend on the CPU are made by measurement, not by its name:
* PRECISION=auto on the CPU times one 3x3 convolution (128 -> 128 channels at 32x32, batch
  16, channels_last: the shape most of the SD encoder's FLOPs run at) in float32 and in
  bfloat16 (``conv_rates``) and takes bfloat16 only where it ran at least
  ``BF16_MIN_SPEEDUP`` times float32's rate. On a Zen 5 it ran 1.9x, on a Zen 4 2.0x, on an
  Emerald Rapids guest without AMX 0.64x, emulated (AVX2 only) several times slower
  (docs/benchmarks.md): no table of CPU names could say that as well.
* BATCH=auto (``choose_batch``) times the run's own encoder at a few batch sizes and keeps
  the default 16 unless another is at least ``BATCH_MIN_GAIN`` times faster.

Each measurement is taken once per machine and kept (``measured_once``: a JSON file in the
latent cache keyed by the CPU, the torch version, the thread count and what was timed), so
that two runs on one machine make the same choice and so encode the same latents. The
reason goes into encode.json and the report's Methodology; the numbers stay in the kept
files (and, for the batch, timings-encode.json), since like wall-clock times they differ
between identical runs.

On a GPU and on Apple's MPS the precision follows what the device computes natively
(bfloat16 where it can; float16 only for a model that does not set force_upcast).
"""

from __future__ import annotations

import contextlib
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from analysis.common import VaelabError, file_lock, read_json, sha256_json, write_json

PRECISION_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
# bfloat16 halves the bytes moved and, with AVX512-BF16 or AMX, doubles the multiply rate;
# where the measured gain is under this, float32 is kept (exact to 1e-5, no casts).
BF16_MIN_SPEEDUP = 1.1
# BATCH=auto: sizes tried, and the gain over the default that a larger one must show to be
# taken (smaller gains are within the probe's run-to-run noise).
DEFAULT_BATCH = 16
# "128/16": batches of 128 whose high-resolution blocks run 16 images at a time (Batching).
BATCH_CANDIDATES = {"cpu": ("16", "32", "64", "64/16", "128/16"), "cuda": ("64", "256", "1024"),
                    "mps": ("16", "64", "256")}
BATCH_MIN_GAIN = 1.05
# The reference convolution: (batch, channels, side) of the SD encoder's widest 32 px layers.
REFERENCE_CONV = (16, 128, 32)


def conv_flops(batch: int, channels: int, side: int) -> float:
    """Multiply-adds x 2 of one 3x3, stride-1, same-padding convolution."""
    return 2.0 * batch * channels * channels * 9 * side * side


def conv_rate(precision: str, device: str = "cpu", shape: tuple[int, int, int] = REFERENCE_CONV,
              seconds: float = 0.1) -> float:
    """GFLOP/s of one 3x3 convolution in ``precision`` on ``device`` (channels_last, inference
    mode, the weights cast as the encoder's are), timed for about ``seconds`` after a warm-up.

    bfloat16 on the CPU runs as autocast, as the encoder does there."""
    import torch

    batch, channels, side = shape
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1).eval()
    x = torch.randn(batch, channels, side, side)
    autocast = device == "cpu" and precision == "bf16"
    dtype = torch.float32 if autocast else getattr(torch, PRECISION_NAMES[precision])
    conv = conv.to(device=device, dtype=dtype, memory_format=torch.channels_last)
    x = x.to(device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    synchronize = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    with torch.inference_mode(), context:
        for _ in range(2):
            conv(x)
        synchronize()
        calls, started = 0, time.perf_counter()
        while calls < 3 or time.perf_counter() - started < seconds:
            conv(x)
            calls += 1
        synchronize()
        elapsed = time.perf_counter() - started
    return round(conv_flops(*shape) * calls / elapsed / 1e9, 1)


def conv_rates(device: str = "cpu", rounds: int = 3) -> dict[str, float]:
    """GFLOP/s of the reference convolution in float32 and bfloat16, timed in turn ``rounds``
    times (the best of each), so a moment of load hits both alike and is then left out."""
    rates = {"fp32": 0.0, "bf16": 0.0}
    for _ in range(rounds):
        for precision in rates:
            rates[precision] = max(rates[precision], conv_rate(precision, device))
    return rates


def machine_fields() -> dict:
    """What a measurement on this machine depends on (the key of ``measured_once``)."""
    import torch

    return {"cpu": device_name("cpu"), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "machine": platform.machine()}


def measured_once(cache_dir: Path | None, what: str, fields: dict, measure: Callable[[], dict]) -> dict:
    """``measure()``, taken once per machine and ``fields`` and kept in ``cache_dir`` as
    ``probe-WHAT-KEY.json`` (None: measured every time, as the benchmark wants)."""
    if cache_dir is None:
        return measure()
    fields = machine_fields() | fields
    path = Path(cache_dir) / f"probe-{what}-{sha256_json(fields)[:16]}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_suffix(".lock")):  # make -j: one run measures, the others read it
        if path.is_file():
            try:
                return read_json(path, "probe")["measured"]
            except (VaelabError, KeyError, TypeError):
                pass  # a damaged file is measured again
        result = measure()
        write_json(path, {"fields": fields, "measured": result})
    return result


def bf16_decision(rates: dict[str, float]) -> tuple[str, str]:
    """float32 or bfloat16 from measured convolution rates (GFLOP/s by precision), and why,
    as one sentence: the decision, not the numbers (they stay in the kept probe file)."""
    timed = "PRECISION=auto timed one bfloat16 and one float32 convolution on this CPU"
    speedup = round(rates["bf16"] / rates["fp32"], 3) if rates.get("fp32") else 0.0
    if speedup >= BF16_MIN_SPEEDUP:
        return "bf16", (f"{timed}: bfloat16 ran at least {BF16_MIN_SPEEDUP}x as fast, and it keeps "
                        "float32's exponent range, so bfloat16.")
    return "fp32", (f"{timed}: bfloat16 ran less than {BF16_MIN_SPEEDUP}x as fast (it is slower "
                    "where it is emulated or its units are slow), so float32.")


def choose_precision(requested: str, device: str, force_upcast: bool, name: str,
                     cache_dir: Path | None = None) -> tuple[str, str]:
    """The compute precision and why, as one sentence for encode.json and the report;
    float16 is refused for VAEs that must be upcast.

    auto: on the CPU, by measured convolution rates (``bf16_decision``); on CUDA bfloat16
    where the GPU computes it natively, on MPS where macOS 14+ and PyTorch 2.3+ do; on a GPU
    without it float16 unless the model sets force_upcast; float32 everywhere else.
    bfloat16 keeps float32's exponent range, so it cannot overflow where float16 does.
    """
    if requested == "fp16" and force_upcast:
        raise VaelabError(f"{name} sets force_upcast in its config (it overflows in float16); "
                          "use PRECISION=bf16 or PRECISION=fp32")
    if requested != "auto":
        return requested, f"PRECISION={requested} was asked for, so it is used as given."
    no_overflow = "bfloat16 keeps float32's exponent range, so it cannot overflow where float16 does"
    if device == "cpu":
        return bf16_decision(measured_once(cache_dir, "conv-rates", {"what": "reference conv",
                                                                     "shape": REFERENCE_CONV},
                                           conv_rates))
    if device.startswith("cuda"):
        if cuda_has_native_bf16():
            return "bf16", f"This GPU computes bfloat16 natively, and {no_overflow}."
        where = "This GPU has no native bfloat16"
    elif device == "mps":
        if mps_has_bf16():
            return "bf16", f"MPS computes bfloat16 here (macOS 14+, PyTorch 2.3+), and {no_overflow}."
        where = "MPS has no bfloat16 here (it needs macOS 14+ and PyTorch 2.3+)"
    else:
        return "fp32", f"vaelab knows no native half precision on {device}, so float32."
    if force_upcast:
        return "fp32", (f"{where}, and the model sets force_upcast (it overflows in float16), "
                        "so float32.")
    return "fp16", f"{where}, and the model does not set force_upcast, so float16 is safe."


@dataclass(frozen=True)
class Batching:
    """How the encoder takes its images: ``size`` at a time, and with ``micro`` the blocks at
    the two highest resolutions ``micro`` at a time within them (analysis.encode.Encoder)."""

    size: int
    micro: int | None = None

    @classmethod
    def parse(cls, label: str) -> "Batching":
        size, _, micro = str(label).partition("/")
        return cls(int(size), int(micro) if micro else None)

    @property
    def label(self) -> str:  # "64", or "128/16": the key of a measurement
        return f"{self.size}/{self.micro}" if self.micro else str(self.size)

    @property
    def words(self) -> str:
        if not self.micro:
            return str(self.size)
        return f"{self.size} (its high-resolution blocks {self.micro} images at a time)"


def batch_decision(images_per_second: dict[str, float]) -> tuple[Batching, str]:
    """The batching from measured throughputs (``Batching.label`` -> images/s), and why: the
    fastest, unless it beats the default by less than ``BATCH_MIN_GAIN`` (noise), then the
    default. As for the precision, the throughputs stay out of the sentence (timings-encode.json)."""
    fastest = max(images_per_second, key=images_per_second.get)
    default = Batching(DEFAULT_BATCH)
    base = images_per_second.get(default.label)
    gain = f"{BATCH_MIN_GAIN - 1:.0%}"
    tried = [Batching.parse(label) for label in images_per_second]
    plain = [str(b.size) for b in tried if not b.micro]
    staged = [str(b.size) for b in tried if b.micro]
    what = f"batches {', '.join(plain[:-1])} and {plain[-1]}" if len(plain) > 1 else f"batch {plain[0]}"
    if staged:
        micro = next(b.micro for b in tried if b.micro)
        what += (f", and {' and '.join(staged)} with its high-resolution blocks {micro} images at "
                 "a time,")
    timed = f"BATCH=auto timed this encoder at {what} on this machine"
    chosen = Batching.parse(fastest)
    if fastest == default.label or base is None:
        return chosen, f"{timed} and took {chosen.words}, the fastest."
    if round(images_per_second[fastest] / base, 3) >= BATCH_MIN_GAIN:
        return chosen, f"{timed} and took {chosen.words}, at least {gain} faster than {DEFAULT_BATCH}."
    return default, f"{timed} and kept {DEFAULT_BATCH}: no other was {gain} faster."


def choose_batch(requested: int | None, device: str, probe: bool,
                 time_batches: Callable[[tuple[Batching, ...]], dict[str, float]],
                 cache_dir: Path | None, fields: dict) -> tuple[Batching, str, dict[str, float] | None]:
    """(batching, why, measured images/s per candidate label or None).

    ``requested``: BATCH as given, None for auto. ``probe``: whether the run is large enough
    to repay the probe's few seconds (the runs that compile). ``time_batches(candidates)``
    returns images/s of the run's own encoder for each; ``fields`` say what it encodes (the
    encoder's architecture, precision, resolution), the key under which it is kept."""
    if requested is not None:
        return Batching(requested), f"BATCH={requested} was asked for, so it is used as given.", None
    if not probe:
        return Batching(DEFAULT_BATCH), (f"BATCH=auto keeps {DEFAULT_BATCH} for a run this small: "
                                         "probing other sizes would cost more than it could save."), None
    candidates = tuple(Batching.parse(label) for label in
                       BATCH_CANDIDATES.get(device.split(":")[0], (str(DEFAULT_BATCH),)))
    measured = measured_once(cache_dir, "batch",
                             fields | {"device": device, "candidates": [c.label for c in candidates]},
                             lambda: time_batches(candidates))
    rates = {label: float(v) for label, v in measured.items()}
    return (*batch_decision(rates), rates)


def cpu_bf16() -> str:
    """The bfloat16 units this CPU reports: "amx" (Intel's matrix tiles), "avx512_bf16", or ""
    (none: bfloat16 is emulated). Named in the benchmark beside the measured rates; what
    PRECISION=auto picks is decided by those rates (``bf16_decision``), not by this name: an
    Emerald Rapids guest with AVX512-BF16 ran a bfloat16 convolution at 0.64x float32's
    rate, a Zen 5 with the same flag at 1.9x (docs/benchmarks.md)."""
    import torch

    def probe(name: str) -> bool:
        try:
            return bool(getattr(torch.cpu, name, lambda: False)())
        except Exception:  # an odd build: treat the unit as absent
            return False

    if probe("_is_amx_tile_supported"):
        return "amx"
    return "avx512_bf16" if probe("_is_avx512_bf16_supported") else ""


def mps_available() -> bool:
    """Whether Apple's MPS backend can run here (False on builds without it)."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    try:
        return bool(mps is not None and mps.is_available())
    except Exception:  # an old or odd build: treat MPS as absent
        return False


def mps_has_bf16() -> bool:
    """Whether MPS computes bfloat16: PyTorch 2.3 or newer on macOS 14 (Sonoma) or newer."""
    import torch

    try:
        if tuple(int(part) for part in torch.__version__.split(".")[:2]) < (2, 3):
            return False
        check = (getattr(getattr(torch.backends, "mps", None), "is_macos_or_newer", None)
                 or getattr(torch._C, "_mps_is_on_macos_or_newer", None))
        if check is not None:
            return bool(check(14, 0))
        release = platform.mac_ver()[0]  # "" off macOS
        return bool(release) and int(release.split(".")[0]) >= 14
    except Exception:  # an unparsable version or a probe that fails: no bfloat16
        return False


def cuda_has_native_bf16() -> bool:
    """Whether the current CUDA GPU computes bfloat16 in hardware (not emulated)."""
    import torch

    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # PyTorch before 2.3 has no including_emulation (and does not emulate)
        return bool(torch.cuda.is_bf16_supported())


def choose_device(requested: str) -> str:
    """auto: CUDA, then Apple MPS, then the CPU; an explicit device must be present."""
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if mps_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise VaelabError(f"DEVICE={requested} but no CUDA GPU is visible; use DEVICE=cpu or auto")
    if requested == "mps" and not mps_available():
        raise VaelabError("DEVICE=mps but Apple's MPS backend is not available; use DEVICE=cpu or auto")
    return requested


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    if device == "mps":
        try:
            chip = torch.backends.mps.get_name()  # newer PyTorch only: e.g. "Apple M2 Pro"
        except Exception:
            chip = ""
        mac = platform.mac_ver()[0]
        details = ", ".join(part for part in (f"macOS {mac}" if mac else "", platform.machine()) if part)
        return f"{chip or 'Apple'} MPS ({details})" if details else f"{chip or 'Apple'} MPS"
    try:
        name = cpu_description(Path("/proc/cpuinfo").read_text())
    except OSError:
        name = None
    return name or platform.processor() or platform.machine()


# The cores behind a virtual machine's bare "AMD EPYC" or "Intel(R) Xeon(R) Processor", by
# (cpu family, model): the server parts this project's figures came from or name.
CORE_NAMES = {("25", "1"): "Zen 3", ("25", "17"): "Zen 4", ("25", "160"): "Zen 4c",
              ("6", "143"): "Sapphire Rapids", ("6", "207"): "Emerald Rapids",
              ("6", "173"): "Granite Rapids"}


def cpu_description(cpuinfo: str) -> str | None:
    """The first processor of a /proc/cpuinfo text: its model name, then its family and model
    and the widest vector units it has, e.g. "AMD EPYC (Zen 5: family 26, model 2; AVX-512, bf16)".

    Virtual machines often report a bare "AMD EPYC"; the family tells Zen 3 (25) from Zen 5
    (26), and the vector units tell whether bfloat16 runs natively, which is what decides the
    encoder's speed. None when the text names no model.
    """
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor is enough
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name")
    if not name:
        return None
    flags = set(fields.get("flags", "").split())
    widest = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None
    units = ([widest] if widest else []) + [unit for unit, flag in (("bf16", "avx512_bf16"), ("AMX", "amx_tile"))
                                            if flag in flags]
    family, model = fields.get("cpu family"), fields.get("model")
    where = f"family {family}, model {model}" if family and model else ""
    core = CORE_NAMES.get((family, model)) or ("Zen 5" if family == "26" else None)
    if where and core:
        where = f"{core}: {where}"
    details = "; ".join(part for part in (where, ", ".join(units)) if part)
    return f"{name} ({details})" if details else name
