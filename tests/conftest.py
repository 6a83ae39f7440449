"""Shared fixtures: a tiny saved AutoencoderKL, synthetic image folders, CIFAR-10 JPEG subsets,
the shared pretrained TAESD checkpoints, and the end-to-end `make report` builds.

Nothing here touches the network: the VAE is built from a config, saved with
``save_pretrained`` and loaded back through the same ``from_pretrained`` path as a hub model.

Each end-to-end build is made once per session, whatever the number of pytest-xdist workers:
`shared` builds it under a file lock in the session's common temporary folder, and every
worker reads that one copy. A test that would change a shared build works on `copy_build`'s
copy. Tests that run make, or use a build, are marked ``e2e``: ``pytest -m "not e2e"`` is the
quick unit run.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from analysis.common import file_lock
from analysis.demo import save_random_vae, save_synthetic_images
from helpers import (BIG_BUILD_JOBS, CIFAR_ZIP, ROOT, cifar_vars, classify_run, extract_cifar, make_variants,
                     make_vars, run_make, tiny_run, write_notes)
from hubcache import HubCache, cache_listing, default_hub_cache, write_default_hub_cache

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


# Fixtures whose tests are end-to-end (they run make or read what it built); see pytest_collection_modifyitems.
E2E_FIXTURES = {"demo_build", "demo_build_j2", "variants_build", "cifar_build", "notes_report"}


def pytest_collection_modifyitems(items):
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


def shared(tmp_path_factory, name: str, make) -> Path:
    """``make(folder)`` run once per session for every xdist worker; the folder.

    The first worker to get here builds under a lock in the folder all workers share (the
    parent of each worker's base temp, as pytest-xdist's docs show); the others wait and
    read it. A build that failed is not retried by each worker: its error is raised again.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder = root / "shared" / name
    done, failed = folder.with_name(f"{name}.done"), folder.with_name(f"{name}.failed")
    with file_lock(folder.with_name(f"{name}.lock")):
        if failed.exists():
            raise AssertionError(f"shared build {name} failed in another worker:\n{failed.read_text()}")
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            try:
                make(folder)
            except BaseException as err:
                failed.write_text(str(err))
                raise
            done.touch()
    return folder


@pytest.fixture(scope="session")
def tiny_vae(tmp_path_factory) -> Path:
    """A randomly initialised 4-down-block AutoencoderKL saved with save_pretrained."""
    return shared(tmp_path_factory, "models", lambda out: save_random_vae(out / "tiny-vae")) / "tiny-vae"


@pytest.fixture(scope="session")
def synthetic_images(tmp_path_factory) -> Path:
    """PATH/{train,test}/<class>/NNNN.png, 10 classes x 12 images per split."""
    return shared(tmp_path_factory, "data",
                  lambda out: save_synthetic_images(out / "images", per_class=12)) / "images"


@pytest.fixture(scope="session")
def cifar_subset(tmp_path_factory) -> Path:
    """The first 20 train and 10 test JPEGs per class of the shared CIFAR-10 JPEG set."""
    if not CIFAR_ZIP.is_file():
        pytest.skip(f"CIFAR-10 JPEG set not found at {CIFAR_ZIP}")
    return shared(tmp_path_factory, "cifar",
                  lambda out: extract_cifar(out / "cifar10-jpeg", 20, 10)) / "cifar10-jpeg"


@pytest.fixture(scope="session")
def taesd_models() -> Path:
    """The shared real TAESD-family checkpoints (taef2_encoder/decoder.pth, taesana_encoder.pth)."""
    if not (TAESD_DIR / "taef2_encoder.pth").is_file():
        pytest.skip(f"pretrained TAESD checkpoints not found in {TAESD_DIR} (see its README)")
    return TAESD_DIR


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


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory, tiny_vae, synthetic_images) -> Path:
    """One `make report` on the tiny VAE and synthetic images; its build folder."""
    return shared(tmp_path_factory, "build",
                  lambda build: run_make("report", *make_vars(build, tiny_vae, synthetic_images, 6)))


@pytest.fixture(scope="session")
def demo_build_j2(tmp_path_factory, tiny_vae, synthetic_images) -> Path:
    """demo_build's configuration built again, independently (own cache), with `make -j2`."""
    return shared(tmp_path_factory, "build-j2",
                  lambda build: run_make("-j2", "report", *make_vars(build, tiny_vae, synthetic_images, 6)))


# analysis.demo's tiny configs of the other autoencoder classes (and the 16-channel KL layout
# of SD3/FLUX.1); "tiny" (AutoencoderKL, 4 channels) is tiny_vae.
CLASS_ARCHS = ("tiny-kl16", "tiny-taesd", "tiny-dc")


@pytest.fixture(scope="session")
def class_vaes(tmp_path_factory) -> dict[str, Path]:
    """One random tiny model folder per architecture of CLASS_ARCHS."""
    root = shared(tmp_path_factory, "class-vaes",
                  lambda out: [save_random_vae(out / arch, seed=3, arch=arch) for arch in CLASS_ARCHS])
    return {arch: root / arch for arch in CLASS_ARCHS}


@pytest.fixture(scope="session")
def cifar_build(tmp_path_factory, tiny_vae, taesd_models, class_vaes, cifar_subset) -> Path:
    """`make report` on real images, the CIFAR-10 JPEG subset at LIMIT=10 (100 train and 100
    test images), with every class of encoder vaelab reads: the tiny VAE folder first
    (AutoencoderKL), two real TAESD checkpoint files, TAEF2 (its decoder beside it) and
    TAESana (an encoder only), then one random folder each of AutoencoderTiny and
    AutoencoderDC. Then `make diff A=tiny-vae B=tiny-taesd` (two encoders with no feature set
    in common).

    The 16-channel AutoencoderKL of CLASS_ARCHS is not among them: past encoding (which
    tests/test_autoencoders.py runs for it) it takes tiny-vae's code, and its run here cost
    the suite a minute for no path of its own."""
    vaes = " ".join(map(str, (tiny_vae, taesd_models / "taef2_encoder.pth", taesd_models / "taesana_encoder.pth",
                              class_vaes["tiny-taesd"], class_vaes["tiny-dc"])))

    def make(build: Path) -> None:
        run_make(BIG_BUILD_JOBS, "report", *cifar_vars(build, vaes, cifar_subset))
        run_make("diff", *cifar_vars(build, vaes, cifar_subset), "A=tiny-vae", "B=tiny-taesd")

    return shared(tmp_path_factory, "cifar-build", make)


@pytest.fixture(scope="session")
def variant_vaes(tmp_path_factory) -> dict[str, Path]:
    """Tiny VAE folders: a and b share an encoder (b's decoder drawn anew); c has its own."""
    def make(root: Path) -> None:
        save_random_vae(root / "vae-a", seed=1)
        save_random_vae(root / "vae-b", seed=1, decoder_seed=9)
        save_random_vae(root / "vae-c", seed=4)  # not 2: the sdxl-vae stand-in (tests/hubcache.py)

    root = shared(tmp_path_factory, "variant-vaes", make)
    return {"a": root / "vae-a", "b": root / "vae-b", "c": root / "vae-c"}


@pytest.fixture(scope="session")
def hub_cache(tmp_path_factory) -> HubCache:
    """HF_HOME holding tiny stand-ins under the Makefile's three default hub ids
    (tests/hubcache.py): sd-vae-ft-ema and sd-vae-ft-mse share an encoder, sdxl-vae has its own."""
    return default_hub_cache(shared(tmp_path_factory, "hub-cache", write_default_hub_cache))


@pytest.fixture(scope="session")
def variants_build(tmp_path_factory, hub_cache, synthetic_images) -> Path:
    """The default `make report` (no VAE/VAES: the three default hub ids, offline from
    hub_cache; two of them share an encoder) and `make diff A=sd-vae-ft-ema B=sdxl-vae`: the
    hub, comparison, shared-encoder and multi-variant determinism tests read it.
    ``hub-before.json`` and ``hub-after.json`` beside it list the hub cache around the build."""
    def make(folder: Path) -> None:
        (folder / "hub-before.json").write_text(json.dumps(cache_listing(hub_cache.hub)))
        make_variants(folder / "build", hub_cache, synthetic_images)
        (folder / "hub-after.json").write_text(json.dumps(cache_listing(hub_cache.hub)))

    return shared(tmp_path_factory, "variants", make) / "build"


# ---- added for the stage tests (test_data, test_encode, test_errors) -------------------------


@pytest.fixture(scope="session")
def tiny_classified(tmp_path_factory) -> Path:
    """helpers.tiny_run's made-up run (3 classes, 36 training images), its pixel baselines and
    classifiers fitted as the Makefile runs them (no cache): ROOT/run, ROOT/data, ROOT/baselines.
    Read only; a test that adds to it works on a copy of ROOT."""
    return shared(tmp_path_factory, "tiny-classified", lambda root: classify_run(tiny_run(root))) / "run"


@pytest.fixture(scope="session")
def small_dataset(synthetic_images, tmp_path_factory) -> Path:
    """dataset.npz (+ dataset.json) from the synthetic images with LIMIT=3: 30 train / 30 test."""
    from analysis import config, data

    def make(out: Path) -> None:
        config.main(["data", "--dataset", f"imagefolder:{synthetic_images}", "--limit", "3",
                     "--data-root", str(out / "unused"), "--out", str(out / "config.json")])
        data.main([str(out / "config.json"), str(out / "dataset.npz")])

    return shared(tmp_path_factory, "dataset", make) / "dataset.npz"


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


@pytest.fixture(scope="session")
def notes_report(demo_build, tmp_path_factory) -> Path:
    """demo_build's run rendered in-process with write_notes' notes; its report.html."""
    from report import render

    def make(out: Path) -> None:
        meta = write_notes(out)
        render.main(["html", str(demo_build / "runs/tiny-vae"), str(out / "report.html"),
                     "--data", str(demo_build / "data"), "--metadata", str(meta)])

    return shared(tmp_path_factory, "notes-report", make) / "report.html"
