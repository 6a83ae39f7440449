"""TAESD checkpoints in their original format: the files ComfyUI and A1111 users keep.

Not run on its own; ``analysis.vae`` hands it a checkpoint, e.g.
``make report VAE=~/ComfyUI/models/vae_approx/taef2_encoder.pth``.

A checkpoint is the ``state_dict`` of an ``nn.Sequential`` saved with ``torch.save`` (or
as ``.safetensors``): keys are the Sequential's indices (``0.weight``, ``1.conv.0.weight``,
``11.pool.0.weight``, ...). ``<name>_encoder.pth`` may have a ``<name>_decoder.pth`` beside
it; without one the model is encoder-only (no reconstructions).

The layout is read from the tensors' names and shapes, never from the file name: each
published layout is built here as a module, and a checkpoint fits a layout when its keys
and shapes are exactly those of the module. Published layouts (madebyollin/taesd):

* ``taesd``: 8x down, plain blocks; 4 channels (taesd, taesdxl) or 16 (taesd3, taef1).
  Held by diffusers' ``AutoencoderTiny``, so loaded into it.
* ``taef2``: 8x down, 32 channels, a group-norm "pool" branch in the last three encoder
  blocks and the first three decoder blocks. No diffusers class holds it.
* ``taesana``: 32x down (two stride-2 convs before the first block), 32 channels. No
  diffusers class holds it.

The last two load into ``TAESD`` below, which behaves like ``AutoencoderTiny`` where the
pipeline touches it: ``encoder`` takes images in [-1, 1] and feeds the weights [0, 1] (what
TAESD was trained on; ``AutoencoderTiny``'s encoder rescales the same way), ``decode(z).sample``
returns images in [-1, 1]. Latents are raw (TAESD's latent scale factor is 1).

Checkpoints are read with ``torch.load(weights_only=True)`` only: a pickle that needs code
to unpickle is refused, never executed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from analysis.common import VaelabError

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".safetensors")
WIDTH = 64  # every published TAESD block is 64 channels wide
POOL_GROUPS = 4  # the pool branch's GroupNorm: 4 groups over 4 * 64 channels


# ---- the modules: one definition of every published layout -------------------------------

def _conv(n_in: int, n_out: int, **kwargs):
    import torch.nn as nn

    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


def _modules():
    """The building blocks, defined on first use so that importing this file needs no torch."""
    import torch
    import torch.nn as nn

    class Clamp(nn.Module):
        def forward(self, x):
            return torch.tanh(x / 3) * 3

    class Block(nn.Module):
        """conv-ReLU-conv-ReLU-conv plus the identity, then ReLU; with ``pool``, the input
        first gets ``x + pool(x)``: 1x1 conv (n -> 4n), GroupNorm(4), ReLU, 1x1 conv (4n -> n)."""

        def __init__(self, n: int, pool: bool = False):
            super().__init__()
            self.conv = nn.Sequential(_conv(n, n), nn.ReLU(), _conv(n, n), nn.ReLU(), _conv(n, n))
            self.skip = nn.Identity()
            self.fuse = nn.ReLU()
            self.pool = (nn.Sequential(nn.Conv2d(n, 4 * n, 1, bias=False),
                                       nn.GroupNorm(POOL_GROUPS, 4 * n), nn.ReLU(),
                                       nn.Conv2d(4 * n, n, 1, bias=False)) if pool else None)

        def forward(self, x):
            if self.pool is not None:
                x = x + self.pool(x)
            return self.fuse(self.conv(x) + self.skip(x))

    return Clamp, Block


def encoder_layers(layout: str, channels: int):
    """The published encoder as an ``nn.Sequential``: (B, 3, H, W) in [0, 1] ->
    (B, channels, H/8, W/8), or H/32 for taesana."""
    import torch.nn as nn

    _, Block = _modules()
    pool = layout == "taef2"
    if layout == "taesana":  # 32x: two stride-2 convs, then the 8x body
        head = [_conv(3, 32, stride=2), nn.ReLU(), _conv(32, WIDTH, stride=2), nn.ReLU(), Block(WIDTH)]
    else:
        head = [_conv(3, WIDTH), Block(WIDTH)]
    body = []
    for stage in range(3):
        last = stage == 2
        body += [_conv(WIDTH, WIDTH, stride=2, bias=False)] + [Block(WIDTH, pool and last) for _ in range(3)]
    return nn.Sequential(*head, *body, _conv(WIDTH, channels))


def decoder_layers(layout: str, channels: int):
    """The published 8x decoder: (B, channels, h, w) latent -> (B, 3, 8h, 8w), about [0, 1]."""
    import torch.nn as nn

    Clamp, Block = _modules()
    pool = layout == "taef2"
    layers = [Clamp(), _conv(channels, WIDTH), nn.ReLU()]
    for stage in range(3):
        layers += [Block(WIDTH, pool and stage == 0) for _ in range(3)]
        layers += [nn.Upsample(scale_factor=2), _conv(WIDTH, WIDTH, bias=False)]
    return nn.Sequential(*layers, Block(WIDTH), _conv(WIDTH, 3))


# ---- layouts, read from the tensors ------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    name: str  # "taesd", "taef2" or "taesana"
    channels: int  # latent channels
    downsampling: int  # image side / latent side
    diffusers: bool  # True: diffusers' AutoencoderTiny can hold it


ENCODER_LAYOUTS = {"taesd": 8, "taef2": 8, "taesana": 32}  # layout -> downsampling
DECODER_LAYOUTS = ("taesd", "taef2")  # no 32x decoder is published
ACCEPTED_LAYOUTS = ("taesd/taesdxl (8x, 4 channels), taesd3/taef1 (8x, 16 channels), taef2 (8x, 32 "
                    "channels, group-norm pool branch), taesana (32x, 32 channels)")


def _shapes(module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _found(state: dict) -> str:
    """What a state dict holds, in a few words, for error messages."""
    names = list(state)
    pools = sorted({k.split(".")[0] for k in names if ".pool." in k}, key=lambda s: (len(s), s))
    first = next(iter(state.values()), None)
    first_shape = tuple(first.shape) if first is not None else ()
    return (f"{len(names)} tensors, keys {names[0] if names else '-'} .. {names[-1] if names else '-'}, "
            f"first {first_shape}" + (f", pool branch in blocks {','.join(pools)}" if pools else ""))


def _channels(state: dict, decoder: bool) -> int:
    """Latent channels as the tensors say: the decoder's first conv input (key 1.weight) or
    the encoder's last conv output (its highest index)."""
    try:
        if decoder:
            return int(state["1.weight"].shape[1])
        last = max(int(k.split(".")[0]) for k in state if k.split(".")[0].isdigit())
        return int(state[f"{last}.weight"].shape[0])
    except (KeyError, ValueError, IndexError, AttributeError):
        return 0


def detect(state: dict, decoder: bool = False) -> Layout | None:
    """The published layout whose module has exactly these keys and shapes, or None."""
    channels = _channels(state, decoder)
    if channels < 1:
        return None
    given = {k: tuple(v.shape) for k, v in state.items()}
    for name in (DECODER_LAYOUTS if decoder else ENCODER_LAYOUTS):
        build = decoder_layers if decoder else encoder_layers
        if _shapes(build(name, channels)) == given:
            return Layout(name, channels, 8 if decoder else ENCODER_LAYOUTS[name], name == "taesd")
    return None


def read_state_dict(path: Path) -> dict:
    """name -> tensor from a checkpoint file, never running code from it; else one line."""
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError for code, RuntimeError/EOFError for damage
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            raise VaelabError(f"{path} needs code to unpickle, which vaelab never runs ({first}); "
                              "use a checkpoint saved as a plain state dict (torch.save(model."
                              "state_dict(), ...)) or as .safetensors") from None
        raise VaelabError(f"cannot read the checkpoint {path} ({type(err).__name__}: {first}); "
                          "re-download it") from None
    if not (isinstance(state, dict) and state
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())):
        raise VaelabError(f"{path} is not a state dict of tensors (it holds a "
                          f"{type(state).__name__}); pass a TAESD checkpoint ({ACCEPTED_LAYOUTS})")
    return dict(state)


def read_layout(path: Path, decoder: bool = False) -> tuple[dict, Layout]:
    """(state dict, layout) of an encoder or decoder checkpoint; one line when it fits none."""
    state = read_state_dict(path)
    layout = detect(state, decoder)
    if layout is None:
        part = "decoder" if decoder else "encoder"
        hint = ""
        if not decoder and detect(state, decoder=True) is not None:
            hint = " (it is a TAESD decoder: pass the encoder file)"
        elif decoder and detect(state) is not None:
            hint = " (it is a TAESD encoder)"
        raise VaelabError(f"{path} fits no TAESD {part} layout{hint}: found {_found(state)}; "
                          f"accepted: {ACCEPTED_LAYOUTS}" + ("" if decoder else
                                                             ", as Sequential state dicts"))
    return state, layout


# ---- what analysis.vae loads -------------------------------------------------------------

def diffusers_state_dict(encoder: dict | None, decoder: dict | None) -> dict:
    """A plain TAESD checkpoint's keys as ``AutoencoderTiny`` names them: encoder index N ->
    ``encoder.layers.N``; decoder index N -> ``decoder.layers.(N-1)`` (diffusers applies the
    Clamp at index 0 in ``forward``, so its layers start at the first conv)."""
    out = {}
    for key, value in (encoder or {}).items():
        out[f"encoder.layers.{key}"] = value
    for key, value in (decoder or {}).items():
        index, rest = key.split(".", 1)
        out[f"decoder.layers.{int(index) - 1}.{rest}"] = value
    return out


def taesd_config(layout: Layout) -> dict:
    """The config a checkpoint stands for: ``AutoencoderTiny``'s for plain layouts (its
    defaults are TAESD's), else the ``TAESD`` module's."""
    if layout.diffusers:
        return {"_class_name": "AutoencoderTiny", "in_channels": 3, "out_channels": 3,
                "latent_channels": layout.channels, "encoder_block_out_channels": [WIDTH] * 4,
                "decoder_block_out_channels": [WIDTH] * 4, "num_encoder_blocks": [1, 3, 3, 3],
                "num_decoder_blocks": [3, 3, 3, 1], "act_fn": "relu", "upsampling_scaling_factor": 2,
                "force_upcast": False, "scaling_factor": 1.0}
    return {"_class_name": "TAESD", "layout": layout.name, "latent_channels": layout.channels,
            "downsampling": layout.downsampling, "force_upcast": False, "scaling_factor": 1.0}


def build_taesd():
    """The ``TAESD`` class (defined on first use: importing this file needs no torch)."""
    import torch.nn as nn

    class ScaledEncoder(nn.Module):
        """[-1, 1] images -> [0, 1], the range the weights were trained on -> raw latent."""

        def __init__(self, layers):
            super().__init__()
            self.layers = layers

        def forward(self, x):
            return self.layers(x.add(1).div(2))

    class ScaledDecoder(nn.Module):
        """latent -> image about [0, 1] -> [-1, 1], as the pipeline expects."""

        def __init__(self, layers):
            super().__init__()
            self.layers = layers

        def forward(self, z):
            return self.layers(z).mul(2).sub(1)

    @dataclass
    class Decoded:
        sample: object  # (B, 3, H, W) in about [-1, 1]

    class TAESD(nn.Module):
        """A TAESD layout no diffusers class holds (taef2's pool branch, taesana's 32x)."""

        def __init__(self, config: dict, encoder: dict, decoder: dict | None):
            super().__init__()
            self.config = dict(config)
            layers = encoder_layers(config["layout"], config["latent_channels"])
            layers.load_state_dict(encoder)
            self.encoder = ScaledEncoder(layers)
            self.decoder = None
            if decoder is not None:
                layers = decoder_layers(config["layout"], config["latent_channels"])
                layers.load_state_dict(decoder)
                self.decoder = ScaledDecoder(layers)

        def decode(self, z):
            return Decoded(self.decoder(z))

    return TAESD


def load(config: dict, encoder_path: Path, decoder_path: Path | None):
    """The model on the CPU in float32, eval mode; ``decoder`` is None without a decoder file.
    TAESD checkpoints are often float16 on disk; the pipeline picks the compute precision."""
    import torch

    encoder, _ = read_layout(encoder_path)
    decoder = read_layout(decoder_path, decoder=True)[0] if decoder_path else None

    def as_float(state):
        return None if state is None else {k: v.to(torch.float32) for k, v in state.items()}

    encoder, decoder = as_float(encoder), as_float(decoder)
    if config["_class_name"] == "AutoencoderTiny":
        from diffusers import AutoencoderTiny

        model = AutoencoderTiny(**{k: v for k, v in config.items() if not k.startswith("_")})
        state = diffusers_state_dict(encoder, decoder)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith("decoder.") for k in missing) or (decoder and missing):
            raise VaelabError(f"{encoder_path} does not fit AutoencoderTiny (missing "
                              f"{len(missing)}, unexpected {len(unexpected)} tensors); report this")
        if decoder is None:
            model.decoder = None  # never decode with random weights
    else:
        model = build_taesd()(config, encoder, decoder)
    return model.eval().requires_grad_(False)
