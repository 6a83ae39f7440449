"""Tests for analysis.data: image-folder loading, image conversion, limits and bad inputs."""

from __future__ import annotations

import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from analysis import config, data
from analysis.common import VaelabError, load_npz
from analysis.config import DataConfig
from analysis.data import build_dataset, images_checksum, load_imagefolder, read_image, to_rgb32


def solid(value: int, size=(32, 32)) -> Image.Image:
    return Image.new("RGB", size, (value, value, value))


def make_folder(root: Path, layout: dict[str, dict[str, list[int]]]) -> Path:
    """layout: {split: {class: [grey values]}} -> root/split/class/NNNN.png, one solid image each."""
    for split, classes in layout.items():
        for name, values in classes.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i, value in enumerate(values):
                solid(value).save(folder / f"{i:04d}.png")
    return root


TWO_CLASSES = {"train": {"cat": [10, 20, 30], "ant": [40, 50]},
               "test": {"cat": [60], "ant": [70, 80]}}


# ---- loading --------------------------------------------------------------------------------

def test_load_imagefolder_shapes_dtypes_and_sorted_classes(tmp_path):
    root = make_folder(tmp_path / "imgs", TWO_CLASSES)
    arrays, classes, resized, _ = load_imagefolder(root, limit=0)
    assert classes == ["ant", "cat"]
    assert arrays["x_train"].shape == (5, 32, 32, 3) and arrays["x_train"].dtype == np.uint8
    assert arrays["x_test"].shape == (3, 32, 32, 3) and arrays["x_test"].dtype == np.uint8
    assert arrays["y_train"].dtype == np.int64 and arrays["y_test"].dtype == np.int64
    # "ant" (label 0) comes first although "cat" was created first.
    assert arrays["y_train"].tolist() == [0, 0, 1, 1, 1]
    assert arrays["y_test"].tolist() == [0, 0, 1]
    assert arrays["x_train"][:, 0, 0, 0].tolist() == [40, 50, 10, 20, 30]
    assert resized == 0


def test_load_imagefolder_limit_keeps_first_files_in_name_order(tmp_path):
    root = make_folder(tmp_path / "imgs", TWO_CLASSES)
    # Names that sort differently from creation order: "a.png" < "b.png" < "c.png".
    for name, value in (("c.png", 200), ("a.png", 100), ("b.png", 150)):
        solid(value).save(root / "train" / "ant" / name)
    arrays, _, _, _ = load_imagefolder(root, limit=2)
    # ant files sorted: 0000.png(40) 0001.png(50) a.png b.png c.png -> first two.
    assert arrays["x_train"][:, 0, 0, 0].tolist() == [40, 50, 10, 20]
    assert arrays["y_train"].tolist() == [0, 0, 1, 1]
    assert arrays["y_test"].tolist() == [0, 0, 1]


def test_load_imagefolder_limit_larger_than_class_keeps_all(tmp_path):
    root = make_folder(tmp_path / "imgs", TWO_CLASSES)
    arrays, _, _, _ = load_imagefolder(root, limit=100)
    assert len(arrays["y_train"]) == 5 and len(arrays["y_test"]) == 3


def test_load_imagefolder_ignores_hidden_dirs_and_non_images(tmp_path):
    root = make_folder(tmp_path / "imgs", TWO_CLASSES)
    (root / "train" / ".ipynb_checkpoints").mkdir()
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    arrays, classes, _, _ = load_imagefolder(root, limit=0)
    assert classes == ["ant", "cat"]
    assert len(arrays["y_train"]) == 5


def test_build_dataset_info_counts_and_checksum(tmp_path):
    root = make_folder(tmp_path / "imgs", TWO_CLASSES)
    arrays, info = build_dataset(DataConfig(dataset=f"imagefolder:{root}", limit=0))
    assert info["classes"] == ["ant", "cat"]
    assert (info["n_train"], info["n_test"]) == (5, 3)
    assert info["train_per_class"] == [2, 3] and info["test_per_class"] == [2, 1]
    assert info["sha256"] == images_checksum(arrays)


def test_data_main_writes_npz_and_json(tmp_path):
    root = make_folder(tmp_path / "imgs", TWO_CLASSES)
    cfg = tmp_path / "data" / "config.json"
    config.main(["data", "--dataset", f"imagefolder:{root}", "--limit", "", "--data-root",
                 str(tmp_path), "--out", str(cfg)])
    data.main([str(cfg), str(tmp_path / "data" / "dataset.npz")])
    arrays = load_npz(tmp_path / "data" / "dataset.npz", "dataset")
    info = json.loads((tmp_path / "data" / "dataset.json").read_text())
    assert sorted(arrays) == ["x_test", "x_train", "y_test", "y_train"]
    assert info["sha256"] == images_checksum(arrays)
    assert info["n_train"] == len(arrays["y_train"]) == 5


# ---- image conversion -------------------------------------------------------------------------

def saved(tmp_path: Path, img: Image.Image, name: str = "img.png") -> Path:
    path = tmp_path / name
    img.save(path)
    return path


def test_read_image_grayscale_becomes_rgb(tmp_path):
    arr, resized = read_image(saved(tmp_path, Image.new("L", (32, 32), 77)))
    assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8 and not resized
    assert (arr == 77).all()


def test_read_image_rgba_composited_on_white(tmp_path):
    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))  # fully transparent black
    img.putpixel((0, 0), (10, 20, 30, 255))  # one opaque pixel
    arr, _ = read_image(saved(tmp_path, img))
    assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8
    assert arr[0, 0].tolist() == [10, 20, 30]
    assert arr[5, 5].tolist() == [255, 255, 255]


def test_read_image_palette_becomes_rgb(tmp_path):
    img = Image.new("P", (32, 32), 1)
    img.putpalette([0, 0, 0, 200, 100, 50] + [0] * (256 * 3 - 6))
    arr, _ = read_image(saved(tmp_path, img))
    assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8
    assert arr[3, 3].tolist() == [200, 100, 50]


def test_read_image_palette_with_transparency_composited_on_white(tmp_path):
    img = Image.new("P", (32, 32), 0)
    img.putpalette([0, 0, 0, 200, 100, 50] + [0] * (256 * 3 - 6))
    img.putpixel((1, 1), 1)
    img.info["transparency"] = 0  # palette entry 0 is transparent
    arr, _ = read_image(saved(tmp_path, img))
    assert arr[0, 0].tolist() == [255, 255, 255]
    assert arr[1, 1].tolist() == [200, 100, 50]


def test_read_image_16bit_scaled_to_8bit(tmp_path):
    values = np.zeros((32, 32), dtype=np.uint16)
    values[0, 0], values[0, 1] = 65535, 32896  # full scale, and ~half scale (32896/65535*255 = 128)
    img = Image.fromarray(values)
    assert img.mode == "I;16"
    arr, _ = read_image(saved(tmp_path, img))
    assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8
    assert arr[0, 0].tolist() == [255, 255, 255]
    assert arr[0, 1].tolist() == [128, 128, 128]
    assert arr[5, 5].tolist() == [0, 0, 0]


def test_read_image_dark_16bit_scaled_like_bright_16bit(tmp_path):
    dark = np.full((32, 32), 255, dtype=np.uint16)  # 255/65535 of full scale: almost black
    bright = dark.copy()
    bright[0, 0] = 65535
    dark_arr, _ = read_image(saved(tmp_path, Image.fromarray(dark), "dark.png"))
    bright_arr, _ = read_image(saved(tmp_path, Image.fromarray(bright), "bright.png"))
    assert bright_arr[5, 5].tolist() == [1, 1, 1]  # round(255 / 65535 * 255) = 1
    assert dark_arr[5, 5].tolist() == bright_arr[5, 5].tolist()  # same 16-bit value, same pixel


def test_read_image_non_square_is_cropped_and_resized(tmp_path):
    img = Image.new("RGB", (64, 48), (90, 90, 90))
    arr, resized = read_image(saved(tmp_path, img))
    assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8 and resized
    assert (arr == 90).all()


def test_to_rgb32_centre_crop_drops_the_sides():
    # 64x32: left quarter red, middle half grey, right quarter blue -> the centre square is grey.
    arr = np.full((32, 64, 3), 128, dtype=np.uint8)
    arr[:, :16] = (255, 0, 0)
    arr[:, 48:] = (0, 0, 255)
    out, resized = to_rgb32(Image.fromarray(arr))
    assert resized and out.shape == (32, 32, 3)
    assert (out[:, 4:28] == 128).all()


def test_load_imagefolder_mixed_modes_and_sizes(tmp_path):
    root = make_folder(tmp_path / "imgs", {"train": {"a": [1], "b": [2]}, "test": {"a": [3], "b": [4]}})
    Image.new("L", (32, 32), 5).save(root / "train" / "a" / "gray.png")
    Image.new("RGBA", (32, 32), (1, 2, 3, 128)).save(root / "train" / "a" / "rgba.png")
    Image.new("P", (32, 32), 0).save(root / "train" / "b" / "pal.png")
    Image.fromarray(np.full((32, 32), 1000, np.uint16)).save(root / "train" / "b" / "deep.png")
    Image.new("RGB", (64, 48), (9, 9, 9)).save(root / "test" / "b" / "big.jpg")
    arrays, _, resized, _ = load_imagefolder(root, limit=0)
    assert arrays["x_train"].shape == (6, 32, 32, 3) and arrays["x_train"].dtype == np.uint8
    assert arrays["x_test"].shape == (3, 32, 32, 3)
    assert resized == 1


# ---- broken images --------------------------------------------------------------------------

def png_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["empty", "truncated", "text"])
def test_read_image_broken_file_names_the_file(tmp_path, kind):
    contents = {"empty": b"", "truncated": png_bytes(tmp_path)[:200], "text": b"hello, not a png\n"}
    path = tmp_path / f"broken-{kind}.png"
    path.write_bytes(contents[kind])
    with pytest.raises(VaelabError, match="broken-" + kind):
        read_image(path)


def test_load_imagefolder_broken_image_names_the_file(tmp_path):
    root = make_folder(tmp_path / "imgs", TWO_CLASSES)
    (root / "test" / "cat" / "0005.png").write_bytes(b"")
    with pytest.raises(VaelabError) as err:
        load_imagefolder(root, limit=0)
    assert str(root / "test" / "cat" / "0005.png") in str(err.value)


def test_load_imagefolder_broken_image_beyond_limit_is_not_read(tmp_path):
    root = make_folder(tmp_path / "imgs", TWO_CLASSES)
    (root / "train" / "cat" / "zzz.png").write_bytes(b"")
    arrays, _, _, _ = load_imagefolder(root, limit=1)
    assert arrays["y_train"].tolist() == [0, 1]


# ---- every decoder failure: one line naming the file ---------------------------------------------

def encoded(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def noise(mode: str = "RGB") -> Image.Image:
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return rgb.convert(mode)


def first_half(data: bytes) -> bytes:
    return data[:len(data) // 2]


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_with_broken_second_idat() -> bytes:
    """The image data split over two IDAT chunks, the second with a nonsense chunk type."""
    png = encoded(noise(), "PNG")
    at = png.index(b"IDAT")
    idat = png[at + 4:at + 4 + struct.unpack(">I", png[at - 4:at])[0]]
    half = len(idat) // 2
    return (png[:8] + png[8:33]  # signature, IHDR
            + png_chunk(b"IDAT", idat[:half]) + png_chunk(b"\0\0\0\0", idat[half:])
            + png_chunk(b"IEND", b""))


def tiff_with_undefined_strip_offsets() -> bytes:
    """A little-endian TIFF whose StripOffsets tag (273) claims type UNDEFINED (7)."""
    tif = bytearray(encoded(noise(), "TIFF"))
    ifd = struct.unpack("<I", tif[4:8])[0]
    for k in range(struct.unpack("<H", tif[ifd:ifd + 2])[0]):
        entry = ifd + 2 + 12 * k
        if struct.unpack("<H", tif[entry:entry + 2])[0] == 273:
            tif[entry + 2:entry + 4] = struct.pack("<H", 7)
    return bytes(tif)


def bmp_with_bit_depth(bits: int) -> bytes:
    bmp = bytearray(encoded(noise(), "BMP"))
    bmp[28:30] = struct.pack("<H", bits)  # BITMAPINFOHEADER biBitCount
    return bytes(bmp)


BROKEN_FILES = {
    # name: (contents, the exception Pillow raises for it)
    "random-bytes.png": (lambda: bytes(np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8)),
                         "UnidentifiedImageError"),
    "truncated.jpg": (lambda: first_half(encoded(noise(), "JPEG")), "OSError"),
    "truncated.gif": (lambda: first_half(encoded(noise("P"), "GIF")), "OSError"),
    "bad-idat.png": (png_with_broken_second_idat, "SyntaxError"),
    "bad-header.png": (lambda: b"P6\n3x 3\n255\n" + bytes(27), "ValueError"),  # a PPM, misnamed
    "bad-tag.tif": (tiff_with_undefined_strip_offsets, "TypeError"),
    "bad-depth.bmp": (lambda: bmp_with_bit_depth(7), "OSError"),
}


@pytest.mark.parametrize("name", sorted(BROKEN_FILES))
def test_read_image_decoder_error_is_one_line_naming_the_file(tmp_path, name):
    contents, raised = BROKEN_FILES[name]
    path = tmp_path / name
    path.write_bytes(contents())
    with pytest.raises(VaelabError) as err:
        read_image(path)
    message = str(err.value)
    assert str(path) in message and f"({raised}" in message
    assert "\n" not in message and "remove or replace the file" in message


def test_read_image_decompression_bomb_names_the_file(tmp_path, monkeypatch):
    path = saved(tmp_path, noise(), "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 32x32 = 1024 pixels: over twice the limit
    with pytest.raises(VaelabError) as err:
        read_image(path)
    message = str(err.value)
    assert str(path) in message and "DecompressionBombError" in message
    assert "too large to decode safely" in message and "\n" not in message


@pytest.mark.parametrize("error", [struct.error("unpack requires a buffer of 4 bytes"), EOFError(),
                                   IndexError("tuple index out of range"), KeyError("mode"),
                                   ZeroDivisionError("division by zero"), MemoryError(),
                                   ValueError("line one\nline two")])
def test_read_image_any_decoder_exception_becomes_one_line(tmp_path, monkeypatch, error):
    path = saved(tmp_path, noise(), "odd.png")

    def failing_load(self):
        raise error

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", failing_load)
    with pytest.raises(VaelabError) as err:
        read_image(path)
    message = str(err.value)
    assert str(path) in message and type(error).__name__ in message
    assert "\n" not in message


def test_read_image_missing_file_says_check_it_exists(tmp_path):
    path = tmp_path / "gone.png"
    with pytest.raises(VaelabError) as err:
        read_image(path)
    assert str(path) in str(err.value) and "exists and is readable" in str(err.value)


def test_data_cli_broken_image_one_line_error_and_no_output(tmp_path):
    from test_errors import assert_one_line_error, run_stage

    root = make_folder(tmp_path / "imgs", TWO_CLASSES)
    broken = root / "train" / "cat" / "0001.png"
    broken.write_bytes(png_with_broken_second_idat())
    cfg = tmp_path / "data" / "config.json"
    config.main(["data", "--dataset", f"imagefolder:{root}", "--limit", "", "--data-root",
                 str(tmp_path), "--out", str(cfg)])
    out = tmp_path / "data" / "dataset.npz"
    line = assert_one_line_error(run_stage("analysis.data", str(cfg), str(out)))
    assert str(broken) in line and "SyntaxError" in line
    assert sorted(p.name for p in out.parent.iterdir()) == ["config.json"]


# ---- broken folders -------------------------------------------------------------------------

def test_load_imagefolder_missing_folder(tmp_path):
    with pytest.raises(VaelabError, match="does not exist"):
        load_imagefolder(tmp_path / "nowhere", limit=0)


def test_load_imagefolder_file_instead_of_folder(tmp_path):
    path = tmp_path / "images.zip"
    path.write_bytes(b"PK")
    with pytest.raises(VaelabError, match="is a file"):
        load_imagefolder(path, limit=0)


def test_load_imagefolder_missing_test_split(tmp_path):
    root = make_folder(tmp_path / "imgs", {"train": TWO_CLASSES["train"]})
    with pytest.raises(VaelabError, match="no test/"):
        load_imagefolder(root, limit=0)


def test_load_imagefolder_class_missing_from_one_split(tmp_path):
    root = make_folder(tmp_path / "imgs", {"train": {"a": [1], "b": [2], "c": [3]},
                                           "test": {"a": [1], "b": [2]}})
    with pytest.raises(VaelabError, match=r"different classes.*only in train: \['c'\]"):
        load_imagefolder(root, limit=0)


def test_load_imagefolder_empty_class_folder(tmp_path):
    root = make_folder(tmp_path / "imgs", TWO_CLASSES)
    (root / "train" / "dog").mkdir()
    (root / "test" / "dog").mkdir()
    with pytest.raises(VaelabError, match="dog holds no images"):
        load_imagefolder(root, limit=0)


def test_load_imagefolder_split_without_class_folders(tmp_path):
    root = tmp_path / "imgs"
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    with pytest.raises(VaelabError, match="no class folders"):
        load_imagefolder(root, limit=0)


def test_load_imagefolder_single_class_rejected(tmp_path):
    root = make_folder(tmp_path / "imgs", {"train": {"a": [1]}, "test": {"a": [2]}})
    with pytest.raises(VaelabError, match="only one class"):
        load_imagefolder(root, limit=0)


# ---- checksum -------------------------------------------------------------------------------

def test_images_checksum_changes_with_one_pixel(tmp_path):
    arrays, _, _, _ = load_imagefolder(make_folder(tmp_path / "imgs", TWO_CLASSES), limit=0)
    before = images_checksum(arrays)
    assert images_checksum({k: v.copy() for k, v in arrays.items()}) == before
    arrays["x_test"][2, 31, 31, 2] ^= 1
    assert images_checksum(arrays) != before


def test_images_checksum_changes_with_one_label(tmp_path):
    arrays, _, _, _ = load_imagefolder(make_folder(tmp_path / "imgs", TWO_CLASSES), limit=0)
    before = images_checksum(arrays)
    arrays["y_train"][0] = 1
    assert images_checksum(arrays) != before


def test_images_checksum_changes_when_pixel_file_changes(tmp_path):
    root = make_folder(tmp_path / "imgs", TWO_CLASSES)
    before = images_checksum(load_imagefolder(root, limit=0)[0])
    img = solid(10)
    img.putpixel((7, 7), (11, 10, 10))
    img.save(root / "train" / "cat" / "0000.png")
    assert images_checksum(load_imagefolder(root, limit=0)[0]) != before


# ---- the real CIFAR-10 JPEG subset ----------------------------------------------------------------

def test_cifar_subset_loads_ten_classes(cifar_subset):
    arrays, classes, resized, _ = load_imagefolder(cifar_subset, limit=0)
    assert len(classes) == 10 and classes == sorted(classes)
    assert arrays["x_train"].shape == (200, 32, 32, 3) and arrays["x_train"].dtype == np.uint8
    assert arrays["x_test"].shape == (100, 32, 32, 3)
    assert np.bincount(arrays["y_train"]).tolist() == [20] * 10
    assert np.bincount(arrays["y_test"]).tolist() == [10] * 10
    assert resized == 0


def copied_from_a_mac(source: Path, target: Path) -> int:
    """A copy of an image folder as macOS leaves it on a foreign disk: an AppleDouble
    ``._NAME`` (metadata, not an image, same suffix) beside every file and a ``.DS_Store`` in
    every class folder; the number of hidden files added to class folders."""
    shutil.copytree(source, target)
    added = 0
    for class_dir in sorted(p for p in target.glob("*/*") if p.is_dir()):
        for image in sorted(class_dir.iterdir()):
            (class_dir / f"._{image.name}").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
            added += 1
        (class_dir / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        added += 1
    (target / "train" / ".DS_Store").write_bytes(b"Bud1")  # beside the class folders too
    return added


def test_build_dataset_skips_and_counts_hidden_files_from_a_mac(cifar_subset, tmp_path):
    added = copied_from_a_mac(cifar_subset, tmp_path / "from-mac")
    clean_arrays, clean = build_dataset(DataConfig(dataset=f"imagefolder:{cifar_subset}", limit=0))
    mac_arrays, mac = build_dataset(DataConfig(dataset=f"imagefolder:{tmp_path / 'from-mac'}", limit=0))
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(mac_arrays[key], clean_arrays[key])
    assert mac["sha256"] == clean["sha256"]
    assert added == 300 + 20  # one ._ per image (200 train + 100 test), one .DS_Store per class folder
    assert mac["hidden_files_skipped"] == added
    assert clean["hidden_files_skipped"] == 0


def test_load_imagefolder_hidden_files_beyond_limit_are_counted_not_read(tmp_path):
    root = make_folder(tmp_path / "imgs", TWO_CLASSES)
    (root / "train" / "cat" / "._0000.png").write_bytes(b"not an image")
    (root / "test" / "ant" / ".0001.png.swp").write_bytes(b"vim swap")
    arrays, _, _, skipped = load_imagefolder(root, limit=1)
    assert skipped == 2
    assert np.bincount(arrays["y_train"]).tolist() == [1, 1]
