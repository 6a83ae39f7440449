"""Test helpers: a Hugging Face hub cache laid out on disk the way ``huggingface_hub`` leaves it.

Layout of one model repository under ``HF_HOME/hub`` (``HF_HUB_CACHE``)::

    models--<org>--<name>/
        refs/main                          the commit hash (40 hex, no newline)
        blobs/<git blob sha1>              small files (config.json, README.md, ...)
        blobs/<sha256>                     LFS files (*.safetensors, *.bin): named by their sha256
        snapshots/<commit>/<path>          relative symlinks -> ../../blobs/<hash>
        trees/<commit>.json                the repo's file listing at that commit (written by
                                           huggingface_hub >= 1.x; lists files not downloaded too)
    .locks/models--<org>--<name>/<hash>.lock   left behind by the client's file locks

Blob names come from the client's own hash helpers (``huggingface_hub.utils.sha``), so what a
download would name a blob and what this writes cannot drift apart. Nothing here uses the
network.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Stored with git LFS on the hub (the .gitattributes of every diffusers repository).
LFS_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".h5", ".onnx")


def commit_for(repo_id: str, salt: str = "") -> str:
    """A deterministic 40-hex commit hash for a test repository."""
    return hashlib.sha1(f"vaelab-test-commit|{repo_id}|{salt}".encode()).hexdigest()


def repo_folder(hub: Path, repo_id: str) -> Path:
    return Path(hub) / f"models--{repo_id.replace('/', '--')}"


def blob_name(path: str, data: bytes) -> tuple[str, bool]:
    """(blob file name, is LFS): sha256 for LFS files, the git blob sha1 for the others."""
    from huggingface_hub.utils.sha import git_hash, sha_fileobj

    if path.endswith(LFS_SUFFIXES):
        return sha_fileobj(io.BytesIO(data)).hex(), True
    return git_hash(data), False


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git LFS pointer file git stores for an LFS file (its git blob id is the tree's blob_id)."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def write_hub_repo(hub: Path, repo_id: str, files: dict[str, bytes], commit: str | None = None,
                   ref: str = "main", listed_only: dict[str, bytes] | None = None) -> Path:
    """Lay ``files`` (repo path -> content) out as one cached snapshot of ``repo_id``.

    ``listed_only``: files the repository has at that commit but that were not downloaded
    (they appear in ``trees/<commit>.json`` only, as after ``allow_patterns``).
    Returns the snapshot folder ``snapshots/<commit>``.
    """
    commit = commit or commit_for(repo_id)
    storage = repo_folder(hub, repo_id)
    snapshot = storage / "snapshots" / commit
    locks = Path(hub) / ".locks" / storage.name
    tree: dict[str, dict] = {}
    for path, data in sorted({**(listed_only or {}), **files}.items()):
        name, lfs = blob_name(path, data)
        entry = {"size": len(data), "blob_id": name}
        if lfs:
            from huggingface_hub.utils.sha import git_hash

            entry["blob_id"] = git_hash(lfs_pointer(name, len(data)))
            entry |= {"lfs_sha256": name, "lfs_size": len(data)}
        tree[path] = entry
        if path not in files:
            continue
        blob = storage / "blobs" / name
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        pointer = snapshot / path
        pointer.parent.mkdir(parents=True, exist_ok=True)
        # Relative, like huggingface_hub's _create_symlink: ../../blobs/<hash> (one more ../
        # per folder level of the file inside the repository).
        pointer.symlink_to(os.path.relpath(blob, pointer.parent))
        locks.mkdir(parents=True, exist_ok=True)
        (locks / f"{name}.lock").touch()
    (storage / "refs").mkdir(parents=True, exist_ok=True)
    (storage / "refs" / ref).write_text(commit)
    (storage / "trees").mkdir(parents=True, exist_ok=True)
    (storage / "trees" / f"{commit}.json").write_text(
        json.dumps({"format_version": 1, "files": tree}, indent=1))
    return snapshot


def write_hub_model_dir(hub: Path, repo_id: str, model_dir: Path, commit: str | None = None,
                        listed_only: dict[str, bytes] | None = None) -> Path:
    """Cache every file of a saved diffusers model folder as ``repo_id``; the snapshot folder."""
    files = {str(p.relative_to(model_dir)): p.read_bytes()
             for p in sorted(Path(model_dir).rglob("*")) if p.is_file()}
    return write_hub_repo(hub, repo_id, files, commit, listed_only=listed_only)


# ---- the default models' stand-ins -------------------------------------------------------------

def makefile_default_vaes() -> list[str]:
    """The Makefile's default VAES (ORIGINAL_VAES), read from the Makefile itself."""
    match = re.search(r"^ORIGINAL_VAES\s*:=\s*(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "ORIGINAL_VAES not found in the Makefile"
    return match.group(1).split()


def tiny_models() -> dict[str, dict]:
    """Tiny stand-ins with the real repos' relation: ema and mse share an encoder (only the
    decoder was fine-tuned), sdxl-vae is another encoder with its own scaling factor and
    force_upcast. Repo id -> save_random_vae arguments."""
    from analysis.demo import TINY_CONFIG

    return {
        "stabilityai/sd-vae-ft-ema": dict(seed=0, config=TINY_CONFIG | {"scaling_factor": 0.18215}),
        "stabilityai/sd-vae-ft-mse": dict(seed=0, decoder_seed=1,
                                          config=TINY_CONFIG | {"scaling_factor": 0.18215}),
        "stabilityai/sdxl-vae": dict(seed=2, config=TINY_CONFIG | {"scaling_factor": 0.13025,
                                                                   "force_upcast": True}),
    }


WEIGHTS = "diffusion_pytorch_model.safetensors"
# Environment that would point the hub client (or the Makefile) elsewhere than the fixture.
HUB_ENV_OVERRIDES = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT", "VAE", "VAES",
                     "REVISION", "VERBOSE")


@dataclass(frozen=True)
class HubCache:
    hf_home: Path
    hub: Path  # HF_HOME/hub
    commits: dict[str, str]  # repo id -> snapshot commit
    snapshots: dict[str, Path]

    def env(self) -> dict[str, str]:
        return {"HF_HOME": str(self.hf_home), "HF_HUB_OFFLINE": "1", "QUIET": "1"}


def default_hub_cache(root: Path) -> HubCache:
    """The HubCache that write_default_hub_cache(root) writes (commits are deterministic)."""
    hf_home = Path(root) / "hf-home"
    commits = {repo_id: commit_for(repo_id) for repo_id in tiny_models()}
    snapshots = {repo_id: repo_folder(hf_home / "hub", repo_id) / "snapshots" / commit
                 for repo_id, commit in commits.items()}
    return HubCache(hf_home=hf_home, hub=hf_home / "hub", commits=commits, snapshots=snapshots)


def write_default_hub_cache(root: Path) -> HubCache:
    """root/hf-home with hub/models--stabilityai--*/ holding tiny models under the three default ids.

    Each snapshot holds what a full download of such a repo would: config.json, the
    safetensors weights and vaelab's untrained marker (so the report says the weights are
    random). The repo's tree listing also names files that were not downloaded (a .bin copy,
    README.md, .gitattributes), as after a download with allow_patterns.
    """
    from analysis.demo import save_random_vae

    cache = default_hub_cache(root)
    for repo_id, spec in tiny_models().items():
        saved = save_random_vae(Path(root) / "saved" / repo_id.split("/")[1], seed=spec["seed"],
                                config=spec["config"], decoder_seed=spec.get("decoder_seed"))
        not_downloaded = {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
                                            b"*.bin filter=lfs diff=lfs merge=lfs -text\n",
                          "README.md": f"# {repo_id} (test stand-in)\n".encode(),
                          "diffusion_pytorch_model.bin": b"\x00" * 64}
        write_hub_model_dir(cache.hub, repo_id, saved, cache.commits[repo_id], listed_only=not_downloaded)
    return cache


def cache_listing(hub: Path) -> dict[str, str]:
    """Every path under the hub cache: symlink target, or file size and mtime."""
    return {str(p.relative_to(hub)): (os.readlink(p) if p.is_symlink() else
                                      f"{p.stat().st_size}@{p.stat().st_mtime_ns}" if p.is_file() else "dir")
            for p in sorted(Path(hub).rglob("*"))}


@contextmanager
def make_env(cache: HubCache):
    """os.environ for a `make` subprocess: the fixture cache offline, no VAE/VAES/REVISION."""
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        for var in HUB_ENV_OVERRIDES:
            mp.delenv(var, raising=False)
        for key, value in cache.env().items():
            mp.setenv(key, value)
        yield
