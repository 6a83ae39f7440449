"""Shared helpers: the one error type users see, atomic file writes, stable JSON.

Not run on its own. Every stage module imports from here so that all of them fail the
same way (one line, non-zero exit) and never leave a half-written file behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np


class VaelabError(Exception):
    """A problem the user can fix; printed as one line, without a traceback."""


def run_main(main: Callable[[list[str] | None], None]) -> None:
    """Run a stage's ``main``, turning VaelabError into a one-line message and exit 2.

    Set VERBOSE=1 to see the traceback as well.
    """
    try:
        main(None)
    except VaelabError as err:
        if os.environ.get("VERBOSE") == "1":
            raise
        print(f"vaelab: error: {err}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:  # disk full, permissions, read-only folders
        if os.environ.get("VERBOSE") == "1":
            raise
        where = f" ({err.filename})" if err.filename else ""
        print(f"vaelab: error: {err.strerror or err}{where}; fix that (free disk space, "
              "permissions) and rerun: finished steps are kept", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("vaelab: interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)


def progress(total: int, desc: str, unit: str):
    """A tqdm bar with rate and ETA; hidden off a TTY (logs, CI) and when QUIET=1."""
    from tqdm.auto import tqdm

    quiet = os.environ.get("QUIET") == "1" or None  # None: tqdm hides itself off a TTY
    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, dynamic_ncols=True, file=sys.stderr)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only on success.

    Readers therefore see either the old file or the complete new one, never a partial
    write (interrupted run, disk full, exception while writing).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block; yields
    True. ``wait=False``: where another process holds it, yield False at once, holding nothing.

    Two processes that would compute the same cached product (``make -j``, two variants
    with one encoder) take turns: the second then finds the product made.
    """
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def dumps_json(obj: Any) -> str:
    """Stable JSON: sorted keys, two-space indent, one value per line (diff-friendly)."""
    return json.dumps(to_jsonable(obj), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, dumps_json(obj))


def read_json(path: str | os.PathLike, what: str) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VaelabError(f"{what} not found at {path}; run `make report` to build it") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise VaelabError(f"{what} at {path} is corrupt ({err}); delete it and rerun") from None


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write arrays as an .npz that is byte-identical for identical arrays.

    ``np.savez`` stamps the current time into the zip entries; this fixes it to 1980-01-01
    so that reruns give the same bytes (and the same checksum).
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    write_bytes(path, buf.getvalue())


def load_npz(path: str | os.PathLike, what: str, keys: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Load every array of an .npz; a missing, truncated or incomplete file is a VaelabError."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise VaelabError(f"{what} not found at {path}; run `make report` to build it") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise VaelabError(f"{what} at {path} is unreadable ({err}); delete it and rerun") from None
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise VaelabError(f"{what} at {path} lacks {', '.join(missing)}; delete it and rerun")
    return arrays


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(dumps_json(obj).encode("utf-8")).hexdigest()
