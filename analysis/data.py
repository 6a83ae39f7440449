"""Stage 1: decode the image dataset once into a compact array file.

Run:
    python -m analysis.data build/data/config.json build/data/dataset.npz

Writes ``dataset.npz`` (x_train, x_test: uint8 (N, 32, 32, 3) RGB; y_train, y_test: int64)
and ``dataset.json`` (class names, counts, checksum, source) next to it.

Sources:
* ``cifar10``: torchvision's CIFAR10, downloaded (md5-checked by torchvision) into
  ``data_root`` on first use.
* ``imagefolder:PATH``: ``PATH/{train,test}/<class>/*.{png,jpg,jpeg,bmp,webp}``; the class
  set is the sorted folder names and must be the same in both splits. Hidden files and
  folders (names starting with ``.``: macOS ``._*`` AppleDouble files and ``.DS_Store``,
  editor swap files) are not images: they are skipped, and the hidden files skipped inside
  class folders are counted in ``dataset.json`` (``hidden_files_skipped``) and the report.

Image policy: every image is converted to RGB (grayscale, palette, RGBA over white,
16-bit all become 8-bit RGB). Images that are not 32x32 are centre-cropped to a square
and resized to 32x32 with Pillow's antialiasing bicubic filter. ``limit`` keeps the first
N images per class per split in file-name order, so subsets are deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
import socket
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from analysis.common import VaelabError, run_main, save_npz, write_json
from analysis.config import DataConfig, load_data_config
from analysis.runs import DATASET, timings_file

SIZE = 32
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
RESIZE_POLICY = ("converted to 8-bit RGB (transparency composited on white); images that "
                 "are not 32x32 are centre-cropped to a square and resized to 32x32 (bicubic, "
                 "antialiased)")


def to_rgb32(img: Image.Image) -> tuple[np.ndarray, bool]:
    """Return a (32, 32, 3) uint8 RGB array and whether the image had to be resized."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale: scale to 8 bits instead of clipping at 255. Mode "I" (32-bit)
        # carries no bit depth, so its range is guessed from the values.
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode != "I" or arr.max() > 255 else 255.0
        img = Image.fromarray(np.round(arr / peak * 255).astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    img = img.convert("RGB")
    resized = img.size != (SIZE, SIZE)
    if resized:
        img = ImageOps.fit(img, (SIZE, SIZE), method=Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.uint8), resized


def read_image(path: Path) -> tuple[np.ndarray, bool]:
    """Decode one image file to a (32, 32, 3) uint8 array, and whether it was resized.

    Any failure while opening or decoding the file (Pillow raises many types for broken
    files: UnidentifiedImageError, OSError for truncation, SyntaxError, ValueError,
    struct.error, EOFError, IndexError, DecompressionBombError, MemoryError, ...) becomes
    one VaelabError line naming the file. Pillow's decompression-bomb limit
    (Image.MAX_IMAGE_PIXELS) is kept: images over twice it are refused as such.
    """
    try:
        with Image.open(path) as img:
            img.load()
            return to_rgb32(img)
    except Exception as err:  # noqa: BLE001 - every decoder failure is this one file's problem
        raise image_error(path, err) from None


def image_error(path: Path, err: Exception) -> VaelabError:
    """The one-line error for an image file that cannot be read or decoded."""
    detail = " ".join(str(err).replace(f" '{path}'", "").split())[:200]  # one line, no repeated path
    what = f"{type(err).__name__}: {detail}" if detail else type(err).__name__
    if isinstance(err, OSError) and err.errno is not None:  # missing, unreadable: not a bad image
        what = f"{type(err).__name__}: {err.strerror or detail}"
        return VaelabError(f"cannot open image {path} ({what}); check that the file exists and "
                           "is readable, or remove it")
    if isinstance(err, Image.DecompressionBombError):
        return VaelabError(f"image {path} is too large to decode safely ({what}); shrink it or "
                           "remove it from the dataset")
    if isinstance(err, MemoryError):
        return VaelabError(f"image {path} needs more memory to decode than is free ({what}); "
                           "shrink it or remove it from the dataset")
    return VaelabError(f"cannot read image {path} ({what}); remove or replace the file")


def hidden(path: Path) -> bool:
    """Names starting with "." are metadata, never images or classes: macOS leaves an
    AppleDouble ``._NAME.jpg`` beside every file it copies, and ``.DS_Store`` in every folder."""
    return path.name.startswith(".")


def list_classes(split_dir: Path) -> list[str]:
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not hidden(p))


def list_images(class_dir: Path) -> tuple[list[Path], int]:
    """The image files of a class folder in name order, and how many hidden files it skipped."""
    files = [p for p in class_dir.iterdir() if p.is_file()]
    images = sorted(p for p in files if not hidden(p) and p.suffix.lower() in IMAGE_SUFFIXES)
    return images, sum(hidden(p) for p in files)


def load_imagefolder(root: Path, limit: int) -> tuple[dict[str, np.ndarray], list[str], int, int]:
    """Arrays, class names, images resized and hidden files skipped of an image folder."""
    if not root.exists():
        raise VaelabError(f"dataset folder {root} does not exist; check DATASET=imagefolder:PATH")
    if not root.is_dir():
        raise VaelabError(f"dataset path {root} is a file, not a folder; point DATASET at the folder "
                          "holding train/ and test/")
    classes_by_split = {}
    for split in ("train", "test"):
        split_dir = root / split
        if not split_dir.is_dir():
            raise VaelabError(f"dataset folder {root} has no {split}/ folder; expected "
                              f"{root}/{{train,test}}/<class>/*.png")
        classes_by_split[split] = list_classes(split_dir)
        if not classes_by_split[split]:
            raise VaelabError(f"{split_dir} has no class folders; expected {split_dir}/<class>/*.png")
    train_cls, test_cls = classes_by_split["train"], classes_by_split["test"]
    if train_cls != test_cls:
        only_train = sorted(set(train_cls) - set(test_cls))
        only_test = sorted(set(test_cls) - set(train_cls))
        raise VaelabError(
            f"train/ and test/ under {root} have different classes (only in train: "
            f"{only_train or 'none'}; only in test: {only_test or 'none'}); make both splits hold "
            "the same class folders"
        )
    if len(train_cls) < 2:
        raise VaelabError(f"{root} has only one class ({train_cls[0]}); classification needs at least two")

    arrays: dict[str, np.ndarray] = {}
    resized = skipped = 0
    for split in ("train", "test"):
        images, labels = [], []
        for label, name in enumerate(train_cls):
            class_dir = root / split / name
            files, hidden_files = list_images(class_dir)
            skipped += hidden_files
            if not files:
                raise VaelabError(f"{class_dir} holds no images (.png/.jpg/...); add images or "
                                  "remove the class from both splits")
            if limit:
                files = files[:limit]
            for path in files:
                arr, was_resized = read_image(path)
                images.append(arr)
                labels.append(label)
                resized += was_resized
        arrays[f"x_{split}"] = np.stack(images)  # (N, 32, 32, 3) uint8
        arrays[f"y_{split}"] = np.asarray(labels, dtype=np.int64)
    return arrays, train_cls, resized, skipped


def load_cifar10(data_root: Path, limit: int) -> tuple[dict[str, np.ndarray], list[str]]:
    from torchvision.datasets import CIFAR10

    arrays: dict[str, np.ndarray] = {}
    for split, train in (("train", True), ("test", False)):
        try:
            probe = CIFAR10(root=str(data_root), train=train, download=False)
        except RuntimeError:
            probe = None  # not downloaded (or corrupt): fetch it below
        if probe is None:
            old_timeout = socket.getdefaulttimeout()
            socket.setdefaulttimeout(15)  # fail within seconds when offline
            try:
                probe = CIFAR10(root=str(data_root), train=train, download=True)
            except Exception as err:  # URLError, socket errors, checksum failures
                raise VaelabError(
                    f"could not download CIFAR-10 ({type(err).__name__}: {err}); looked in "
                    f"{data_root}/cifar-10-batches-py; put cifar-10-python.tar.gz in {data_root} "
                    "(set DATA_ROOT), or use DATASET=imagefolder:PATH"
                ) from None
            finally:
                socket.setdefaulttimeout(old_timeout)
        x = np.asarray(probe.data, dtype=np.uint8)  # (N, 32, 32, 3)
        y = np.asarray(probe.targets, dtype=np.int64)
        if limit:
            # The first `limit` images of each class, in the official order.
            keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:limit] for c in range(10)]))
            x, y = x[keep], y[keep]
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    return arrays, list(probe.classes)


def images_checksum(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over images and labels in a fixed order: the dataset's identity."""
    h = hashlib.sha256()
    for key in ("x_train", "y_train", "x_test", "y_test"):
        h.update(key.encode())
        h.update(np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()


def build_dataset(config: DataConfig) -> tuple[dict[str, np.ndarray], dict]:
    resized = skipped = 0
    if config.dataset == "cifar10":
        arrays, classes = load_cifar10(Path(config.data_root), config.limit)
        source = "CIFAR-10 (torchvision.datasets.CIFAR10)"
    else:
        root = Path(config.dataset.split(":", 1)[1])
        arrays, classes, resized, skipped = load_imagefolder(root, config.limit)
        source = f"image folder {root}"
    info = {
        "classes": classes,
        "source": source,
        "dataset": config.dataset,
        "limit": config.limit,
        "n_train": int(len(arrays["y_train"])),
        "n_test": int(len(arrays["y_test"])),
        "train_per_class": np.bincount(arrays["y_train"], minlength=len(classes)).tolist(),
        "test_per_class": np.bincount(arrays["y_test"], minlength=len(classes)).tolist(),
        "resized_images": int(resized),
        "hidden_files_skipped": int(skipped),
        "image_policy": RESIZE_POLICY,
        "sha256": images_checksum(arrays),
    }
    return arrays, info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Decode the dataset into dataset.npz")
    parser.add_argument("config", type=Path, help="data config.json from analysis.config")
    parser.add_argument("out", type=Path, help="dataset.npz to write")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = load_data_config(args.config)
    arrays, info = build_dataset(config)
    # dataset.json first: make tracks dataset.npz, so it must be the last file written.
    write_json(args.out.with_name(DATASET), info)
    write_json(args.out.with_name(timings_file("data")),
               {"data_seconds": round(time.perf_counter() - started, 2)})
    save_npz(args.out, **arrays)
    print(f"dataset: {info['n_train']} train / {info['n_test']} test images, "
          f"{len(info['classes'])} classes -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    run_main(main)
