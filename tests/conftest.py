"""Shared fixtures: a tiny saved AutoencoderKL, synthetic image folders, CIFAR-10 JPEG subsets,
the shared pretrained TAESD checkpoints.

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
TAESD_DIR = ROOT.parent / "shared" / "models" / "taesd"

# Keep tests offline even if a developer's machine has internet.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QUIET", "1")
# pytest-xdist runs several workers, each starting make pipelines whose OpenMP/BLAS/torch pools
# would each be as wide as the machine: threads spinning against each other make tiny fits
# tens of times slower (issue 23's problem, one level up). One thread per process then.
# Results do not depend on it (tests/test_threads.py), and builds compared byte for byte
# are all made in this same environment.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")


@pytest.fixture(scope="session")
def tiny_vae(tmp_path_factory) -> Path:
    """A randomly initialised 4-down-block AutoencoderKL saved with save_pretrained."""
    return save_random_vae(tmp_path_factory.mktemp("models") / "tiny-vae")


@pytest.fixture(scope="session")
def synthetic_images(tmp_path_factory) -> Path:
    """PATH/{train,test}/<class>/NNNN.png, 10 classes x 12 images per split."""
    return save_synthetic_images(tmp_path_factory.mktemp("data") / "images", per_class=12)


def extract_cifar(out: Path, n_train: int, n_test: int) -> Path:
    """The first ``n_train`` train and ``n_test`` test JPEGs per class of the shared CIFAR-10
    JPEG set, as an image folder ``out/{train,test}/<class>/NNNN.jpg``."""
    if not CIFAR_ZIP.is_file():
        pytest.skip(f"CIFAR-10 JPEG set not found at {CIFAR_ZIP}")
    with zipfile.ZipFile(CIFAR_ZIP) as zf:
        for name in zf.namelist():
            parts = name.split("/")  # cifar10-jpeg/<split>/<class>/NNNN.jpg
            if len(parts) != 4 or not parts[3].endswith(".jpg"):
                continue
            split, cls, fname = parts[1], parts[2], parts[3]
            if int(fname[:4]) < (n_train if split == "train" else n_test):
                target = out / split / cls / fname
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    return out


@pytest.fixture(scope="session")
def cifar_subset(tmp_path_factory) -> Path:
    """The first 20 train and 10 test JPEGs per class of the shared CIFAR-10 JPEG set."""
    return extract_cifar(tmp_path_factory.mktemp("cifar") / "cifar10-jpeg", 20, 10)


@pytest.fixture(scope="session")
def taesd_models() -> Path:
    """The shared real TAESD-family checkpoints (taef2_encoder/decoder.pth, taesana_encoder.pth)."""
    if not (TAESD_DIR / "taef2_encoder.pth").is_file():
        pytest.skip(f"pretrained TAESD checkpoints not found in {TAESD_DIR} (see its README)")
    return TAESD_DIR


def run_make(*args: str, check: bool = True, env: dict | None = None, cwd: Path = ROOT):
    """Run make in the repository (or a copy of it, ``cwd``) with the test virtualenv; return
    the CompletedProcess."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    if cwd != ROOT:  # a copy of the sources, run with this checkout's virtualenv
        args = (f"VENV={ROOT / '.venv'}", *args)
    proc = subprocess.run(["make", "--no-print-directory", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"make {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


SOURCES = ("Makefile", "pyproject.toml", "report.toml", "analysis", "report", "templates")


@pytest.fixture
def source_copy(tmp_path) -> Path:
    """The sources the Makefile builds from, copied with their modification times: a test
    may touch files there without making builds in other tests (pytest-xdist workers) stale."""
    out = tmp_path / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, out / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, out / name)
    return out


def make_vars(build: Path, vae: Path, images: Path, limit: int) -> list[str]:
    return [f"BUILD={build}", f"VAE={vae}", f"DATASET=imagefolder:{images}", f"LIMIT={limit}",
            "SOURCE_DATE_EPOCH=1767225600"]


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory, tiny_vae, synthetic_images) -> Path:
    """One `make report` on the tiny VAE and synthetic images; its build folder."""
    build = tmp_path_factory.mktemp("build")
    run_make("report", *make_vars(build, tiny_vae, synthetic_images, 6))
    return build


# ---- added for the stage tests (test_data, test_encode, test_errors) -------------------------


@pytest.fixture(scope="session")
def small_dataset(synthetic_images, tmp_path_factory) -> Path:
    """dataset.npz (+ dataset.json) from the synthetic images with LIMIT=3: 30 train / 30 test."""
    from analysis import config, data

    out = tmp_path_factory.mktemp("dataset")
    config.main(["data", "--dataset", f"imagefolder:{synthetic_images}", "--limit", "3",
                 "--data-root", str(out / "unused"), "--out", str(out / "config.json")])
    data.main([str(out / "config.json"), str(out / "dataset.npz")])
    return out / "dataset.npz"


@pytest.fixture
def write_run_config(tmp_path):
    """Write a run config.json with analysis.config.main; returns its path."""
    from analysis import config

    def write(vae: Path | str, seed: int = 0, precision: str = "fp32", batch_size: int = 8,
              run_dir: Path | None = None, compile: str = "auto") -> Path:
        out = (run_dir or tmp_path / "run") / "config.json"
        config.main(["run", "--vae", str(vae), "--seed", str(seed), "--device", "cpu",
                     "--precision", precision, "--batch-size", str(batch_size),
                     "--compile", compile, "--out", str(out)])
        return out

    return write


@pytest.fixture(scope="module")
def one_thread():
    """Run OpenMP/BLAS (torch, HistGradientBoosting, LightGBM, XGBoost) on one thread.

    Results do not depend on it; it only keeps the tests fast on a small, busy machine, where
    spinning OpenMP threads can slow tiny workloads down by orders of magnitude.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


# ---- the author's own text (report.notes) ------------------------------------------------

# An author section holding every construct the notes support, raw HTML among them.
DISCUSSION_NOTE = """\
<!-- Dropped before parsing, placeholders included: {{ no_such_placeholder }} -->
# What the numbers say

SVC on mean & std reaches {{ accuracy svc mean_std }} {{ ci svc mean_std }}; @fig:confusion
shows where it goes wrong[^1].

| Model | Accuracy |
|---|--:|
| SVC | {{ accuracy svc mean_std }} |

- code stays literal: `{{ accuracy svc mean_std }}`
- @sec:conclusions says the same

> VAE minus pixels: {{ delta mean_std pixels_pca_mean_std svc }} points.

<script>alert("notes")</script> and <img src=x onerror=alert(1)>

[^1]: On {{ n_test }} test images.
"""
RESULTS_NOTE = "Text of my own after the Results, citing @tab:accuracy.\n"


def write_notes(folder: Path) -> Path:
    """folder/report.toml naming an appended note and an author section; returns it."""
    (folder / "notes").mkdir(parents=True, exist_ok=True)
    (folder / "notes/discussion.md").write_text(DISCUSSION_NOTE, encoding="utf-8")
    (folder / "notes/results.md").write_text(RESULTS_NOTE, encoding="utf-8")
    meta = folder / "report.toml"
    meta.write_text('title = "With notes"\n\n[notes]\nresults = "notes/results.md"\n\n'
                    '[[notes.sections]]\ntitle = "Answers to the lab questions"\nlabel = "answers"\nfile = "notes/discussion.md"\n'
                    'after = "conclusions"\n', encoding="utf-8")
    return meta


@pytest.fixture(scope="session")
def notes_report(demo_build, tmp_path_factory) -> Path:
    """demo_build's run rendered in-process with write_notes' notes; its report.html."""
    from report import render

    out = tmp_path_factory.mktemp("notes-report")
    meta = write_notes(out)
    render.main(["html", str(demo_build / "runs/tiny-vae"), str(out / "report.html"),
                 "--data", str(demo_build / "data"), "--metadata", str(meta)])
    return out / "report.html"
