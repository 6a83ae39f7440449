"""The path every real user takes, offline: hub ids through the Hugging Face cache, CIFAR-10
through torchvision's own loader.

A hub cache is laid out as ``huggingface_hub`` leaves it (``tests/hubcache.py``) with tiny
random AutoencoderKLs under the Makefile's three default ids, and checked with the client's
own API, so the fixture cannot drift from what the client recognises. Then the default
``make report`` (no VAE/VAES) runs on it with ``HF_HUB_OFFLINE=1``. CIFAR-10 gets a tiny
``cifar-10-batches-py`` in torchvision's pickle format; only torchvision's expected md5 sums
are replaced by the fixture's (the integrity check itself still runs).

Run:
    .venv/bin/python -m pytest -q tests/test_hub.py
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pickle
import re
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from analysis.common import VaelabError
from helpers import run_make
from hubcache import (HUB_ENV_OVERRIDES, WEIGHTS, HubCache, blob_name, makefile_default_vaes,
                      make_env, repo_folder, write_hub_repo)

pytestmark = pytest.mark.usefixtures("one_thread")

SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH=1767225600"


# ---- the hub cache fixture (tests/hubcache.py; conftest's session fixture hub_cache) ----------

@pytest.fixture
def offline_hub(hub_cache, monkeypatch, tmp_path) -> HubCache:
    """In-process: huggingface_hub reads the fixture cache, offline; cwd holds no such folders."""
    from huggingface_hub import constants

    for var in HUB_ENV_OVERRIDES:
        monkeypatch.delenv(var, raising=False)
    for key, value in hub_cache.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache.hub))
    monkeypatch.chdir(tmp_path)
    return hub_cache


def test_hub_cache_fixture_covers_the_makefile_default_ids(hub_cache):
    assert sorted(hub_cache.commits) == sorted(makefile_default_vaes())
    assert all(re.fullmatch(r"[0-9a-f]{40}", c) for c in hub_cache.commits.values())
    assert len(set(hub_cache.commits.values())) == 3


def test_hub_cache_fixture_layout_is_the_clients(hub_cache):
    """refs/main names the commit; snapshot files are relative symlinks to blobs named by
    sha256 (LFS weights) or git blob sha1 (config.json)."""
    from huggingface_hub.utils.sha import git_hash

    for repo_id, commit in hub_cache.commits.items():
        storage = repo_folder(hub_cache.hub, repo_id)
        assert storage.name == "models--" + repo_id.replace("/", "--")
        assert (storage / "refs" / "main").read_text() == commit  # no newline, like the client
        snapshot = storage / "snapshots" / commit
        for name in ("config.json", WEIGHTS):
            link = snapshot / name
            assert link.is_symlink()
            target = os.readlink(link)
            assert not os.path.isabs(target) and target.startswith("../../blobs/")
            data = link.read_bytes()
            expected = hashlib.sha256(data).hexdigest() if name == WEIGHTS else git_hash(data)
            assert Path(target).name == expected == blob_name(name, data)[0]
        assert not (snapshot / "diffusion_pytorch_model.bin").exists()  # listed, not downloaded


def test_hub_cache_fixture_recognised_by_scan_cache_dir(hub_cache):
    from huggingface_hub import scan_cache_dir

    info = scan_cache_dir(hub_cache.hub)
    assert info.warnings == []
    repos = {repo.repo_id: repo for repo in info.repos}
    assert sorted(repos) == sorted(hub_cache.commits)
    for repo_id, repo in repos.items():
        assert repo.repo_type == "model"
        (revision,) = repo.revisions
        assert revision.commit_hash == hub_cache.commits[repo_id]
        assert set(revision.refs) == {"main"}
        files = {f.file_name: f for f in revision.files}
        assert {"config.json", WEIGHTS} <= set(files)
        weights = files[WEIGHTS]
        assert weights.blob_path.name == hashlib.sha256(weights.file_path.read_bytes()).hexdigest()


def test_hub_cache_helper_nested_file_links_up_to_blobs(tmp_path, monkeypatch):
    """A pipeline repo's vae/config.json links to ../../../blobs/ and is found by the client."""
    from huggingface_hub import constants, scan_cache_dir, snapshot_download

    hub = tmp_path / "hub"
    files = {"model_index.json": b'{"_class_name": "StableDiffusionPipeline"}',
             "vae/config.json": b'{"_class_name": "AutoencoderKL"}', f"vae/{WEIGHTS}": b"w" * 32}
    snapshot = write_hub_repo(hub, "org/pipe", files)
    assert os.readlink(snapshot / "vae" / "config.json").startswith("../../../blobs/")
    assert {p: (snapshot / p).read_bytes() for p in files} == files
    (repo,) = scan_cache_dir(hub).repos
    (revision,) = repo.revisions
    assert {f.file_path.relative_to(snapshot).as_posix() for f in revision.files} == set(files)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    found = snapshot_download("org/pipe", cache_dir=hub, allow_patterns=["vae/*"])
    assert Path(found) == snapshot.resolve()


@pytest.mark.parametrize("repo_id", makefile_default_vaes())
def test_hub_cache_fixture_found_by_snapshot_download_offline(offline_hub, repo_id):
    from huggingface_hub import hf_hub_download, snapshot_download, try_to_load_from_cache

    from huggingface_hub.errors import IncompleteSnapshotError

    snapshot = offline_hub.snapshots[repo_id]
    commit = offline_hub.commits[repo_id]
    # The client reads the cached tree listing: the whole repo was not downloaded...
    with pytest.raises(IncompleteSnapshotError, match="diffusion_pytorch_model.bin"):
        snapshot_download(repo_id, local_files_only=True)
    # ...but what analysis.vae asks for is (the branch or the commit, two files only).
    assert Path(snapshot_download(repo_id, local_files_only=True,
                                  allow_patterns=["config.json", WEIGHTS])) == snapshot.resolve()
    for revision in (None, "main", commit):
        found = snapshot_download(repo_id, revision=revision, allow_patterns=["config.json", WEIGHTS])
        assert Path(found) == snapshot.resolve()
    assert Path(hf_hub_download(repo_id, WEIGHTS)).resolve() == (snapshot / WEIGHTS).resolve()
    assert Path(try_to_load_from_cache(repo_id, "config.json")) == snapshot / "config.json"


# ---- analysis.vae.resolve_model on the cache ---------------------------------------------------

@pytest.mark.parametrize("revision", ["", "main", "commit"])
@pytest.mark.parametrize("repo_id", makefile_default_vaes())
def test_resolve_model_hub_id_gives_snapshot_and_commit(offline_hub, repo_id, revision):
    from analysis.vae import resolve_model

    commit = offline_hub.commits[repo_id]
    model = resolve_model(repo_id, commit if revision == "commit" else revision)
    assert model.name == repo_id
    assert model.revision == commit
    assert Path(model.path) == offline_hub.snapshots[repo_id].resolve()
    assert model.weights_file == WEIGHTS
    # LFS blobs are named by their sha256: the recorded checksum is the cache's blob name.
    blob = Path(os.readlink(offline_hub.snapshots[repo_id] / WEIGHTS)).name
    assert model.weights_sha256 == blob
    assert model.untrained and "randomly initialised" in model.untrained_note


def test_resolve_model_hub_ids_ema_and_mse_share_encoder_checksum(offline_hub):
    from analysis.vae import resolve_model

    ema, mse, sdxl = (resolve_model(r) for r in makefile_default_vaes())
    assert ema.weights_sha256 != mse.weights_sha256
    assert ema.encoder_sha256 == mse.encoder_sha256 != sdxl.encoder_sha256


@pytest.mark.parametrize("revision", ["0123456789abcdef0123456789abcdef01234567", "v2-not-cached"])
def test_resolve_model_revision_not_in_cache_offline_one_line_error(offline_hub, revision):
    importlib.import_module("huggingface_hub")  # imported before the clock starts
    from analysis.vae import resolve_model

    repo_id = "stabilityai/sd-vae-ft-ema"
    started = time.perf_counter()
    with pytest.raises(VaelabError) as err:
        resolve_model(repo_id, revision)
    assert time.perf_counter() - started < 10  # offline: no network wait
    message = str(err.value)
    assert "\n" not in message
    assert repo_id in message and "offline" in message
    assert str(offline_hub.hub) in message  # where it looked
    assert "VAE=DIR" in message


# ---- the default `make report` through the cache ------------------------------------------------

@pytest.fixture(scope="module")
def default_report(variants_build) -> Path:
    """`make report` with no VAE/VAES: the three default hub ids, from the cache, offline
    (conftest's variants_build)."""
    return variants_build


def run_names() -> list[str]:
    return [repo_id.split("/")[1] for repo_id in makefile_default_vaes()]


def test_make_report_default_runs_every_default_hub_id(default_report):
    assert (default_report / "report.html").is_file() and (default_report / "report.pdf").is_file()
    inputs = json.loads((default_report / "report-inputs.json").read_text())
    assert [Path(r).name for r in inputs["runs"]] == run_names()
    for name in run_names():
        assert (default_report / "runs" / name / "metrics.json").is_file()
    assert (default_report / "compare" / "reconstructions.png").is_file()


def test_make_report_default_encode_json_records_snapshot_commit(default_report, hub_cache):
    for repo_id, name in zip(makefile_default_vaes(), run_names()):
        model = json.loads((default_report / "runs" / name / "encode.json").read_text())["model"]
        assert model["name"] == repo_id
        assert model["revision"] == hub_cache.commits[repo_id]
        assert Path(model["path"]) == hub_cache.snapshots[repo_id].resolve()
        assert model["weights_sha256"] == Path(os.readlink(hub_cache.snapshots[repo_id] / WEIGHTS)).name
        assert model["untrained"] is True
        config = json.loads((default_report / "runs" / name / "config.json").read_text())
        assert config["vae"] == repo_id and config["revision"] == ""


def test_make_report_default_provenance_records_snapshot_commit(default_report, hub_cache):
    for repo_id, name in zip(makefile_default_vaes(), run_names()):
        provenance = json.loads((default_report / "runs" / name / "provenance.json").read_text())
        assert provenance["model"]["name"] == repo_id
        assert provenance["model"]["revision"] == hub_cache.commits[repo_id]
        assert provenance["variables"]["VAES"] == " ".join(makefile_default_vaes())
        assert provenance["variables"]["REVISION"] == ""


def test_make_report_default_html_shows_snapshot_commit(default_report, hub_cache):
    html = (default_report / "report.html").read_text()
    primary = makefile_default_vaes()[0]
    assert primary in html
    assert hub_cache.commits[primary] in html
    assert 'id="untrained-warning"' in html  # random weights are labelled as such


def test_make_report_default_ema_and_mse_share_encoder(default_report):
    ema, mse, sdxl = (json.loads((default_report / "runs" / n / "encode.json").read_text())
                      for n in run_names())
    assert ema["encoder_sha256"] == mse["encoder_sha256"] != sdxl["encoder_sha256"]
    assert ema["cache_key"] == mse["cache_key"]
    assert sdxl["vae_config"]["scaling_factor"] == 0.13025


def test_make_report_default_leaves_the_hub_cache_untouched(default_report):
    """Offline, the cache is only read: a shared read-only HF cache works."""
    before, after = (json.loads((default_report.parent / f"hub-{when}.json").read_text())
                     for when in ("before", "after"))
    assert before and after == before


@pytest.mark.e2e
def test_make_encode_revision_commit_pins_snapshot(hub_cache, synthetic_images, tmp_path):
    """REVISION=<commit> with one hub id: the encode stage resolves that snapshot."""
    repo_id = makefile_default_vaes()[0]
    commit = hub_cache.commits[repo_id]
    build = tmp_path / "b"
    run = build / "runs" / repo_id.split("/")[1]
    with make_env(hub_cache):
        run_make(str(run / "latents.npz"), f"BUILD={build}", f"VAE={repo_id}", f"REVISION={commit}",
                 f"DATASET=imagefolder:{synthetic_images}", "LIMIT=3", SOURCE_DATE_EPOCH)
    assert json.loads((run / "config.json").read_text())["revision"] == commit
    model = json.loads((run / "encode.json").read_text())["model"]
    assert model["revision"] == commit
    assert Path(model["path"]) == hub_cache.snapshots[repo_id].resolve()


@pytest.mark.e2e
def test_make_report_revision_not_in_cache_one_line_error(hub_cache, synthetic_images, tmp_path):
    bogus = "0123456789abcdef0123456789abcdef01234567"
    build = tmp_path / "b"
    with make_env(hub_cache):
        proc = run_make("report", f"BUILD={build}", f"DATASET=imagefolder:{synthetic_images}",
                        "LIMIT=3", f"REVISION={bogus}", SOURCE_DATE_EPOCH, check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("vaelab: error:")]
    assert len(errors) == 1, proc.stderr
    assert "stabilityai/sd-vae-ft-ema" in errors[0] and str(hub_cache.hub) in errors[0]
    assert "Traceback" not in proc.stderr
    assert not list(build.glob("runs/*/latents.npz")) and not (build / "report.html").exists()


# ---- CIFAR-10 through torchvision's loader -----------------------------------------------------

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]
CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_cifar10_batches(root: Path, train_per_class_per_batch: int = 1, test_per_class: int = 2,
                          seed: int = 0) -> dict[str, np.ndarray]:
    """root/cifar-10-batches-py in the official pickle format; returns the images it holds.

    Each batch: {"batch_label", "labels", "data" (N, 3072) uint8 as R, G, B planes of 32x32,
    "filenames"}; batches.meta: {"label_names", "num_cases_per_batch", "num_vis"}. Labels
    are shuffled within a batch, as in the real files.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    xs: dict[str, list] = {"train": [], "test": []}
    ys: dict[str, list] = {"train": [], "test": []}
    for batch in CIFAR_BATCHES:
        split = "test" if batch == "test_batch" else "train"
        per_class = test_per_class if split == "test" else train_per_class_per_batch
        labels = rng.permutation(np.repeat(np.arange(10), per_class))
        images = rng.integers(0, 256, size=(len(labels), 32, 32, 3), dtype=np.uint8)  # HWC
        entry = {"batch_label": f"{batch} (vaelab test stand-in)", "labels": labels.tolist(),
                 "data": images.transpose(0, 3, 1, 2).reshape(len(labels), 3072),
                 "filenames": [f"img_{batch}_{i}.png" for i in range(len(labels))]}
        (folder / batch).write_bytes(pickle.dumps(entry, protocol=2))
        xs[split].append(images)
        ys[split].append(labels)
    (folder / "batches.meta").write_bytes(pickle.dumps(
        {"label_names": CIFAR_CLASSES, "num_cases_per_batch": 10 * train_per_class_per_batch,
         "num_vis": 3072}, protocol=2))
    return {f"x_{s}": np.concatenate(xs[s]) for s in xs} | \
           {f"y_{s}": np.concatenate(ys[s]).astype(np.int64) for s in ys}


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def no_network(monkeypatch):
    """torchvision's downloader gets URLError at once, as on a machine without network."""
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)


@pytest.fixture
def cifar_root(tmp_path, monkeypatch, no_network) -> tuple[Path, dict[str, np.ndarray]]:
    """DATA_ROOT with a tiny cifar-10-batches-py (5 train and 2 test images per class).

    torchvision's expected md5 sums are replaced by the fixture files' own: its integrity
    check still runs on every file, and only the official checksums are bypassed.
    """
    from torchvision.datasets import CIFAR10

    root = tmp_path / "data-root"
    expected = write_cifar10_batches(root)
    folder = root / CIFAR10.base_folder
    monkeypatch.setattr(CIFAR10, "train_list", [[n, md5(folder / n)] for n, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [[n, md5(folder / n)] for n, _ in CIFAR10.test_list])
    monkeypatch.setattr(CIFAR10, "meta", CIFAR10.meta | {"md5": md5(folder / "batches.meta")})
    return root, expected


def test_load_cifar10_reads_batches_py_images_labels_classes(cifar_root):
    from analysis.data import CIFAR10_CLASSES, load_cifar10

    root, expected = cifar_root
    arrays, classes = load_cifar10(root, limit=0)
    assert classes == CIFAR10_CLASSES == CIFAR_CLASSES
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert arrays[key].dtype == expected[key].dtype
        np.testing.assert_array_equal(arrays[key], expected[key])
    assert arrays["x_train"].shape == (50, 32, 32, 3) and arrays["x_test"].shape == (20, 32, 32, 3)
    assert np.bincount(arrays["y_train"]).tolist() == [5] * 10


def test_load_cifar10_limit_keeps_first_per_class_in_official_order(cifar_root):
    from analysis.data import load_cifar10

    root, expected = cifar_root
    arrays, _ = load_cifar10(root, limit=2)
    for split in ("train", "test"):
        y = expected[f"y_{split}"]
        keep = sorted(i for c in range(10) for i in np.flatnonzero(y == c)[:2])
        np.testing.assert_array_equal(arrays[f"x_{split}"], expected[f"x_{split}"][keep])
        np.testing.assert_array_equal(arrays[f"y_{split}"], y[keep])
    assert np.bincount(arrays["y_train"]).tolist() == [2] * 10


def test_data_main_cifar10_from_data_root(cifar_root, tmp_path):
    """The stage as `make` runs it (DATASET=cifar10 DATA_ROOT=...), in-process."""
    from analysis import config, data
    from analysis.common import load_npz

    root, expected = cifar_root
    out = tmp_path / "build" / "data"
    config.main(["data", "--dataset", "cifar10", "--limit", "3", "--data-root", str(root),
                 "--out", str(out / "config.json")])
    data.main([str(out / "config.json"), str(out / "dataset.npz")])
    info = json.loads((out / "dataset.json").read_text())
    assert info["classes"] == CIFAR_CLASSES
    assert info["source"] == "CIFAR-10 (torchvision.datasets.CIFAR10)"
    assert (info["n_train"], info["n_test"]) == (30, 20)
    assert info["train_per_class"] == [3] * 10 and info["test_per_class"] == [2] * 10
    arrays = load_npz(out / "dataset.npz", "dataset", ("x_train", "y_train", "x_test", "y_test"))
    assert info["sha256"] == data.images_checksum(arrays)
    np.testing.assert_array_equal(arrays["x_test"], expected["x_test"])


def test_load_cifar10_from_tarball_in_data_root_offline(cifar_root, monkeypatch, tmp_path):
    """README: put cifar-10-python.tar.gz in DATA_ROOT; it is extracted, nothing downloaded."""
    from torchvision.datasets import CIFAR10

    from analysis.data import load_cifar10

    root, expected = cifar_root
    data_root = tmp_path / "with-tarball"
    data_root.mkdir()
    tarball = data_root / CIFAR10.filename
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(root / CIFAR10.base_folder, arcname=CIFAR10.base_folder)
    monkeypatch.setattr(CIFAR10, "tgz_md5", md5(tarball))
    arrays, classes = load_cifar10(data_root, limit=0)
    assert classes == CIFAR_CLASSES
    np.testing.assert_array_equal(arrays["x_train"], expected["x_train"])
    assert (data_root / CIFAR10.base_folder / "test_batch").is_file()


@pytest.mark.parametrize("damage", ["missing", "truncated_batch", "missing_meta"])
def test_load_cifar10_absent_or_damaged_offline_one_line_error(cifar_root, damage, tmp_path):
    """Nothing usable in DATA_ROOT and no network: the one-line error saying where it looked."""
    from analysis.data import load_cifar10

    root, _ = cifar_root
    folder = root / "cifar-10-batches-py"
    if damage == "missing":
        root = tmp_path / "empty-data-root"
    elif damage == "truncated_batch":
        (folder / "data_batch_3").write_bytes((folder / "data_batch_3").read_bytes()[:100])
    else:
        (folder / "batches.meta").unlink()
    started = time.perf_counter()
    with pytest.raises(VaelabError) as err:
        load_cifar10(root, limit=0)
    assert time.perf_counter() - started < 10
    message = str(err.value)
    assert "\n" not in message
    # Without the files torchvision tries the download, which fails at once offline.
    assert ("RuntimeError" if damage == "missing_meta" else "URLError") in message
    assert f"{root}/cifar-10-batches-py" in message
    assert "cifar-10-python.tar.gz" in message and "DATASET=imagefolder:PATH" in message
