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
from pathlib import Path

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
