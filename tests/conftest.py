"""Shared fixtures: a tiny saved AutoencoderKL, synthetic image folders, CIFAR-10 JPEG subset.

Nothing here touches the network: the VAE is built from a config, saved with
``save_pretrained`` and loaded back through the same ``from_pretrained`` path as a hub model.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

from analysis.demo import save_random_vae, save_synthetic_images

ROOT = Path(__file__).resolve().parent.parent
CIFAR_ZIP = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.zip"

# Keep tests offline even if a developer's machine has internet.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QUIET", "1")


@pytest.fixture(scope="session")
def tiny_vae(tmp_path_factory) -> Path:
    """A randomly initialised 4-down-block AutoencoderKL saved with save_pretrained."""
    return save_random_vae(tmp_path_factory.mktemp("models") / "tiny-vae")


@pytest.fixture(scope="session")
def synthetic_images(tmp_path_factory) -> Path:
    """PATH/{train,test}/<class>/NNNN.png, 10 classes x 12 images per split."""
    return save_synthetic_images(tmp_path_factory.mktemp("data") / "images", per_class=12)


@pytest.fixture(scope="session")
def cifar_subset(tmp_path_factory) -> Path:
    """The first 20 train and 10 test JPEGs per class of the shared CIFAR-10 JPEG set."""
    if not CIFAR_ZIP.is_file():
        pytest.skip(f"CIFAR-10 JPEG set not found at {CIFAR_ZIP}")
    out = tmp_path_factory.mktemp("cifar") / "cifar10-jpeg"
    with zipfile.ZipFile(CIFAR_ZIP) as zf:
        for name in zf.namelist():
            parts = name.split("/")  # cifar10-jpeg/<split>/<class>/NNNN.jpg
            if len(parts) != 4 or not parts[3].endswith(".jpg"):
                continue
            split, cls, fname = parts[1], parts[2], parts[3]
            if int(fname[:4]) < (20 if split == "train" else 10):
                target = out / split / cls / fname
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    return out
