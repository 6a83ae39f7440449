"""Finding, checking and loading a diffusers image autoencoder (device and precision: analysis.devices).

Not run on its own; used by ``analysis.encode`` and ``analysis.bench``.

The accepted classes (``AutoencoderKL``, ``AutoencoderTiny``, ``AutoencoderDC``) and what
each yields are listed in ``analysis.autoencoders``; the class is read from ``config.json``.
A pipeline (a folder or hub repository with ``model_index.json`` and a ``vae/`` folder, such
as FLUX.1 or SDXL base) is taken at its ``vae/``, and only that is downloaded.

Hub ids and local directories go through the same ``<class>.from_pretrained`` call: a hub id
is first resolved to its local snapshot (downloaded once into the Hugging Face cache), so
the model is always loaded from a directory and every failure is caught before any weights
are read.

A TAESD checkpoint in its original format (``taef2_encoder.pth``, with ``taef2_decoder.pth``
found beside it, or a folder holding one ``<name>_encoder.pth``) is read by
``analysis.taesd``: into ``AutoencoderTiny`` where that class holds the layout, else into
its own small module. Without a decoder file the model is encoder-only
(``ResolvedModel.has_decoder`` is False): no reconstructions, PSNR or SSIM.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from analysis.autoencoders import ACCEPTED, CLASSES, AutoencoderClass
from analysis.common import VaelabError, sha256_file
from analysis.taesd import CHECKPOINT_SUFFIXES

WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
# A pipeline keeps its autoencoder here, next to model_index.json.
PIPELINE_VAE = "vae"
# Written by analysis.demo next to config.json: marks weights that were never trained.
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
    autoencoder_class: str = "AutoencoderKL"  # config.json's _class_name (analysis.autoencoders)
    subfolder: str = ""  # "vae" when taken from a pipeline
    # TAESD checkpoints (analysis.taesd): path is the encoder file, weights_* describe it.
    layout: str = ""  # "taesd", "taef2" or "taesana"; "" for a diffusers model
    decoder_file: str = ""  # the decoder checkpoint beside the encoder; "" when none
    decoder_sha256: str = ""
    has_decoder: bool = True  # False: encoder only, no reconstructions


def hub_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def snapshot(repo_id: str, revision: str) -> Path:
    """Download (or find in the HF cache) config.json and the weights of ``repo_id``: the
    autoencoder's directory in the snapshot (the snapshot itself, or its vae/ for a pipeline)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    at = f" at revision {revision}" if revision else ""
    where = f"looked in the Hugging Face cache {hub_cache_dir()}"
    offline_hint = ("download it on a machine with internet (e.g. `hf download "
                    f"{repo_id} config.json diffusion_pytorch_model.safetensors"
                    f"{f' --revision {revision}' if revision else ''} --local-dir DIR`) "
                    "and pass VAE=DIR")
    try:
        # A pipeline repository holds model_index.json and its autoencoder in vae/: only those.
        for folder in ("", f"{PIPELINE_VAE}/"):
            for weights in WEIGHT_FILES:  # prefer safetensors; older repos only have .bin
                path = Path(snapshot_download(
                    repo_id, revision=revision or None, etag_timeout=10,
                    allow_patterns=["model_index.json", f"{folder}config.json", f"{folder}{weights}"]))
                if (path / folder / weights).exists():
                    return path / folder
            if (path / "config.json").exists() or not (path / "model_index.json").exists():
                break  # a single model, not a pipeline: no vae/ to look in
    except RepositoryNotFoundError:
        raise VaelabError(f"hub model {repo_id!r} does not exist (or is private); check VAE=") from None
    except GatedRepoError:
        raise VaelabError(f"hub model {repo_id!r} is gated; log in with `hf auth login` first") from None
    except RevisionNotFoundError:
        raise VaelabError(f"hub model {repo_id} has no revision {revision!r}; check REVISION=") from None
    except LocalEntryNotFoundError:
        raise VaelabError(f"cannot fetch VAE {repo_id}{at} (offline?); {where}; {offline_hint}") from None
    except OSError as err:  # connection errors, proxies, disk problems
        raise VaelabError(f"cannot fetch VAE {repo_id}{at} ({type(err).__name__}); {where}; "
                          f"{offline_hint}") from None
    if (path / "model_index.json").exists() and not (path / PIPELINE_VAE).is_dir():
        raise VaelabError(f"hub repository {repo_id} is a pipeline without a {PIPELINE_VAE}/ "
                          f"folder; point VAE= at an image autoencoder ({ACCEPTED})")
    if (path / "config.json").exists():
        return path  # check_model_dir names the class it holds, or the missing weights
    raise VaelabError(f"hub model {repo_id} has no {' or '.join(WEIGHT_FILES)}; it is not a "
                      f"diffusers autoencoder repository ({ACCEPTED})")


def model_folder(path: Path) -> Path:
    """``path``, or its vae/ when it is a pipeline folder (model_index.json, no config.json)."""
    if (path / "model_index.json").is_file() and not (path / "config.json").is_file():
        if (path / PIPELINE_VAE / "config.json").is_file():
            return path / PIPELINE_VAE
        raise VaelabError(f"{path} is a diffusers pipeline without a {PIPELINE_VAE}/ folder; point "
                          f"VAE= at an image autoencoder ({ACCEPTED})")
    return path


def autoencoder_class(config: dict) -> AutoencoderClass:
    return CLASSES[config["_class_name"]]


def check_model_dir(path: Path) -> tuple[dict, Path]:
    """Return (config, weights file) of a diffusers autoencoder directory, or explain why not."""
    if not path.is_dir():
        raise VaelabError(f"VAE directory {path} does not exist; check VAE=")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise VaelabError(f"{path} is not a diffusers model directory (no config.json); save the "
                          "model with <class>.save_pretrained(DIR), e.g. AutoencoderKL")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise VaelabError(f"{config_file} is not valid JSON ({err}); re-download the model") from None
    class_name = config.get("_class_name") if isinstance(config, dict) else None
    if class_name not in CLASSES or not CLASSES[class_name].diffusers:
        raise VaelabError(f"{path} holds a {class_name or 'non-diffusers'} config, not an image "
                          f"autoencoder ({ACCEPTED}); point VAE= at one (or at a pipeline with a "
                          f"{PIPELINE_VAE}/ folder)")
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            return config, path / name
    raise VaelabError(f"{path} has config.json but no weights ({' or '.join(WEIGHT_FILES)}); "
                      "copy the weights file next to config.json")


def tensor_digest(autoencoder: AutoencoderClass, config: dict, tensors) -> str:
    """sha256 of the encoder's config keys, then of ``tensors`` ((name, tensor) pairs, in
    name order: name, dtype, shape, bytes)."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    digest.update(json.dumps({k: config.get(k) for k in autoencoder.encoder_config_keys},
                             sort_keys=True).encode())
    for name, tensor in tensors:
        tensor = tensor.detach().contiguous().cpu()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def encoder_checksum(config: dict, weights: Path) -> str:
    """sha256 of what the encoding path reads: the encoder's config keys, then every encoder
    tensor (KL: ``encoder.*`` and ``quant_conv.*``; name, dtype, shape, bytes) in name order.

    Read tensor by tensor from the weights file, so the decoder is never loaded. Models
    whose only difference is the decoder (sd-vae-ft-ema and sd-vae-ft-mse fine-tuned only
    theirs) get the same checksum, and so share latents and classifier results.
    """
    import torch

    autoencoder = autoencoder_class(config)
    prefixes = autoencoder.encoder_tensors
    try:
        if weights.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(weights), framework="pt") as fh:
                names = sorted(k for k in fh.keys() if k.startswith(prefixes))
                return tensor_digest(autoencoder, config, ((n, fh.get_tensor(n)) for n in names))
        # a pickled state dict cannot be read in parts
        state = torch.load(weights, map_location="cpu", weights_only=True)
        return tensor_digest(autoencoder, config,
                             ((n, state[n]) for n in sorted(k for k in state if k.startswith(prefixes))))
    except Exception as err:  # truncated or corrupt file: safetensors and torch raise many types
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise VaelabError(f"cannot read the encoder weights in {weights} ({first_line[:200]}); "
                          "re-download or re-save the model") from None


def checkpoint_files(path: Path) -> tuple[Path, Path | None] | None:
    """(encoder, decoder or None) when ``path`` is a TAESD checkpoint file or a folder holding
    one ``<name>_encoder.pth`` (and no diffusers config); None for anything else. The decoder
    is ``<name>_decoder.pth`` beside ``<name>_encoder.pth``."""
    if path.is_file():
        if path.suffix not in CHECKPOINT_SUFFIXES:
            raise VaelabError(f"VAE={path} is a file but not a TAESD checkpoint "
                              f"({'/'.join(CHECKPOINT_SUFFIXES)}); point VAE= at a checkpoint, a "
                              "diffusers model directory or a hub id")
        encoder = path
    elif path.is_dir() and not any((path / f).exists() for f in ("config.json", "model_index.json")):
        encoders = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES
                          and p.stem.endswith("_encoder"))
        if len(encoders) > 1:
            raise VaelabError(f"{path} holds {len(encoders)} TAESD encoders "
                              f"({', '.join(p.name for p in encoders)}); pass one file as VAE=")
        if not encoders:
            return None
        encoder = encoders[0]
    else:
        return None
    if not encoder.stem.endswith("_encoder"):
        return encoder, None  # a renamed file: no decoder name to look for
    stem = encoder.stem[:-len("_encoder")] + "_decoder"
    for suffix in (encoder.suffix, *CHECKPOINT_SUFFIXES):
        if (encoder.with_name(stem + suffix)).is_file():
            return encoder, encoder.with_name(stem + suffix)
    return encoder, None


def resolve_checkpoint(name: str, encoder: Path, decoder: Path | None) -> ResolvedModel:
    """A TAESD checkpoint (pair): layout from its tensors, checksum over the encoder's
    tensors as the class names them (``encoder.layers.N...``, as ``AutoencoderTiny`` does)."""
    from analysis import taesd

    state, layout = taesd.read_layout(encoder)
    if decoder is not None:
        _, decoder_layout = taesd.read_layout(decoder, decoder=True)
        if (decoder_layout.name, decoder_layout.channels) != (layout.name, layout.channels):
            raise VaelabError(f"{decoder.name} ({decoder_layout.name}, {decoder_layout.channels} "
                              f"channels) does not match {encoder.name} ({layout.name}, "
                              f"{layout.channels} channels); keep matching files together")
    config = taesd.taesd_config(layout)
    tensors = taesd.diffusers_state_dict(state, None)
    checksum = tensor_digest(CLASSES[config["_class_name"]], config,
                             ((n, tensors[n]) for n in sorted(tensors)))
    return ResolvedModel(name=name, path=str(encoder), revision="local", weights_file=encoder.name,
                         weights_sha256=sha256_file(encoder), encoder_sha256=checksum,
                         untrained=False, untrained_note="",
                         autoencoder_class=config["_class_name"], layout=layout.name,
                         decoder_file=decoder.name if decoder else "",
                         decoder_sha256=sha256_file(decoder) if decoder else "",
                         has_decoder=decoder is not None)


def resolve_model(name: str, revision: str = "") -> ResolvedModel:
    local = Path(name)
    if local.is_absolute() or local.exists():
        checkpoint = checkpoint_files(local)
        if checkpoint is not None:
            return resolve_checkpoint(name, *checkpoint)
        path, resolved = model_folder(local), "local"
    else:
        path = snapshot(name, revision)
        resolved = (path.parent if path.name == PIPELINE_VAE else path).name  # snapshots/<commit>
    config, weights = check_model_dir(path)
    marker = path / UNTRAINED_MARKER
    note = ""
    if marker.is_file():
        note = json.loads(marker.read_text(encoding="utf-8")).get("note", "random weights")
    return ResolvedModel(name=name, path=str(path), revision=resolved, weights_file=weights.name,
                         weights_sha256=sha256_file(weights),
                         encoder_sha256=encoder_checksum(config, weights), untrained=marker.is_file(),
                         untrained_note=note, autoencoder_class=config["_class_name"],
                         subfolder=PIPELINE_VAE if path.name == PIPELINE_VAE and path != local else "")


def load_vae(model: ResolvedModel):
    """``<class>.from_pretrained`` on the resolved directory, in float32, eval mode (a TAESD
    checkpoint: ``analysis.taesd.load``)."""
    if model.layout:
        from analysis import taesd

        encoder = Path(model.path)
        _, layout = taesd.read_layout(encoder)
        return taesd.load(taesd.taesd_config(layout), encoder,
                          encoder.with_name(model.decoder_file) if model.decoder_file else None)
    import diffusers
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # no hints about optional packages in our output
    try:
        vae = getattr(diffusers, model.autoencoder_class).from_pretrained(model.path)
    except Exception as err:  # corrupt weights, shape mismatch, unreadable files
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise VaelabError(f"cannot load VAE from {model.path} ({first_line[:300]}); re-download "
                          "or re-save the model") from None
    return vae.eval().requires_grad_(False)
