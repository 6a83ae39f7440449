"""Finding, checking and loading a diffusers ``AutoencoderKL``; device and precision choice.

Not run on its own; used by ``analysis.encode`` and ``analysis.tinyvae``.

Hub ids and local directories go through the same ``AutoencoderKL.from_pretrained`` call:
a hub id is first resolved to its local snapshot (downloaded once into the Hugging Face
cache), so the model is always loaded from a directory and every failure is caught
before any weights are read.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path

from analysis.common import VaelabError, sha256_file

WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
# The tensors AutoencoderKL.encode reads; the decoder (decoder.*, post_quant_conv.*) is not.
ENCODER_TENSORS = ("encoder.", "quant_conv.")
# The config keys that shape the encoder (scaling/shift factors and the decoder's blocks do
# not change latents; force_upcast only changes the precision, which is keyed on its own).
ENCODER_CONFIG_KEYS = ("_class_name", "in_channels", "latent_channels", "down_block_types",
                       "block_out_channels", "layers_per_block", "act_fn", "norm_num_groups",
                       "use_quant_conv", "mid_block_add_attention")
# Written by analysis.tinyvae next to config.json: marks weights that were never trained.
UNTRAINED_MARKER = "vaelab-untrained.json"


@dataclass(frozen=True)
class ResolvedModel:
    """A model located on disk, with what the report needs to say where it came from."""

    name: str  # what the user asked for: hub id or absolute directory
    path: str  # local directory holding config.json and the weights
    revision: str  # resolved hub commit, or "local"
    weights_file: str
    weights_sha256: str  # the whole weights file: encoder and decoder
    # What the encoding path reads (encoder.*, quant_conv.* and the config keys that shape
    # them): two variants with the same encoder_sha256 give the same latents.
    encoder_sha256: str
    untrained: bool  # random weights made by vaelab itself (demo, tests, benchmarks)
    untrained_note: str


def hub_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def snapshot(repo_id: str, revision: str) -> Path:
    """Download (or find in the HF cache) config.json and the weights of ``repo_id``."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    where = f"looked in the Hugging Face cache {hub_cache_dir()}"
    offline_hint = ("download it on a machine with internet (e.g. `hf download "
                    f"{repo_id} config.json diffusion_pytorch_model.safetensors --local-dir DIR`) "
                    "and pass VAE=DIR")
    try:
        for weights in WEIGHT_FILES:  # prefer safetensors; older repos only have .bin
            path = Path(snapshot_download(repo_id, revision=revision or None, etag_timeout=10,
                                          allow_patterns=["config.json", weights]))
            if (path / weights).exists():
                return path
    except RepositoryNotFoundError:
        raise VaelabError(f"hub model {repo_id!r} does not exist (or is private); check VAE=") from None
    except GatedRepoError:
        raise VaelabError(f"hub model {repo_id!r} is gated; log in with `hf auth login` first") from None
    except RevisionNotFoundError:
        raise VaelabError(f"hub model {repo_id} has no revision {revision!r}; check REVISION=") from None
    except LocalEntryNotFoundError:
        raise VaelabError(f"cannot fetch VAE {repo_id} (offline?); {where}; {offline_hint}") from None
    except OSError as err:  # connection errors, proxies, disk problems
        raise VaelabError(f"cannot fetch VAE {repo_id} ({type(err).__name__}); {where}; "
                          f"{offline_hint}") from None
    raise VaelabError(f"hub model {repo_id} has no {' or '.join(WEIGHT_FILES)}; it is not a "
                      "diffusers AutoencoderKL repository")


def check_model_dir(path: Path) -> tuple[dict, Path]:
    """Return (config, weights file) of a diffusers AutoencoderKL directory, or explain why not."""
    if not path.is_dir():
        raise VaelabError(f"VAE directory {path} does not exist; check VAE=")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise VaelabError(f"{path} is not a diffusers model directory (no config.json); save the "
                          "model with AutoencoderKL.save_pretrained(DIR)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise VaelabError(f"{config_file} is not valid JSON ({err}); re-download the model") from None
    class_name = config.get("_class_name") if isinstance(config, dict) else None
    if class_name != "AutoencoderKL":
        raise VaelabError(f"{path} holds a {class_name or 'non-diffusers'} config, not an "
                          "AutoencoderKL; point VAE= at a VAE (for a full pipeline, its vae/ folder)")
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            return config, path / name
    raise VaelabError(f"{path} has config.json but no weights ({' or '.join(WEIGHT_FILES)}); "
                      "copy the weights file next to config.json")


def encoder_checksum(config: dict, weights: Path) -> str:
    """sha256 of what the encoding path reads: the encoder's config keys, then every
    ``encoder.*`` and ``quant_conv.*`` tensor (name, dtype, shape, bytes) in name order.

    Read tensor by tensor from the weights file, so the decoder is never loaded. Models
    whose only difference is the decoder (sd-vae-ft-ema and sd-vae-ft-mse fine-tuned only
    theirs) get the same checksum, and so share latents and classifier results.
    """
    import hashlib

    import torch

    digest = hashlib.sha256()
    digest.update(json.dumps({k: config.get(k) for k in ENCODER_CONFIG_KEYS}, sort_keys=True).encode())

    def add(name: str, tensor) -> None:
        tensor = tensor.detach().contiguous().cpu()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())

    try:
        if weights.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(weights), framework="pt") as fh:
                for name in sorted(k for k in fh.keys() if k.startswith(ENCODER_TENSORS)):
                    add(name, fh.get_tensor(name))
        else:  # a pickled state dict cannot be read in parts
            state = torch.load(weights, map_location="cpu", weights_only=True)
            for name in sorted(k for k in state if k.startswith(ENCODER_TENSORS)):
                add(name, state[name])
    except Exception as err:  # truncated or corrupt file: safetensors and torch raise many types
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise VaelabError(f"cannot read the encoder weights in {weights} ({first_line[:200]}); "
                          "re-download or re-save the model") from None
    return digest.hexdigest()


def resolve_model(name: str, revision: str = "") -> ResolvedModel:
    local = Path(name)
    if local.is_absolute() or local.exists():
        path, resolved = local, "local"
    else:
        path = snapshot(name, revision)
        resolved = path.name  # snapshots/<commit hash>
    config, weights = check_model_dir(path)
    marker = path / UNTRAINED_MARKER
    note = ""
    if marker.is_file():
        note = json.loads(marker.read_text(encoding="utf-8")).get("note", "random weights")
    return ResolvedModel(name=name, path=str(path), revision=resolved, weights_file=weights.name,
                         weights_sha256=sha256_file(weights),
                         encoder_sha256=encoder_checksum(config, weights), untrained=marker.is_file(),
                         untrained_note=note)


def load_vae(model: ResolvedModel):
    """``AutoencoderKL.from_pretrained`` on the resolved directory, in float32, eval mode."""
    from diffusers import AutoencoderKL
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # no hints about optional packages in our output
    try:
        vae = AutoencoderKL.from_pretrained(model.path)
    except Exception as err:  # corrupt weights, shape mismatch, unreadable files
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise VaelabError(f"cannot load VAE from {model.path} ({first_line[:300]}); re-download "
                          "or re-save the model") from None
    return vae.eval().requires_grad_(False)


def cpu_has_native_bf16() -> bool:
    import torch

    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks)


def choose_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise VaelabError(f"DEVICE={requested} but no CUDA GPU is visible; use DEVICE=cpu or auto")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise VaelabError("DEVICE=mps but Apple's MPS backend is not available; use DEVICE=cpu or auto")
    return requested


def choose_precision(requested: str, device: str, force_upcast: bool, name: str) -> str:
    """Pick the compute precision; float16 is refused for VAEs that must be upcast.

    auto: bfloat16 where the hardware computes it natively (CUDA with bf16, CPUs with
    AVX512-BF16 or AMX), float32 everywhere else. bfloat16 keeps float32's exponent
    range, so it cannot overflow where float16 does.
    """
    import torch

    if requested == "fp16" and force_upcast:
        raise VaelabError(f"{name} sets force_upcast in its config (it overflows in float16); "
                          "use PRECISION=bf16 or PRECISION=fp32")
    if requested != "auto":
        return requested
    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
