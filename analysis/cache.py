"""The one cache recipe of the stages: a key, an integrity check, and the decision to reuse.

Not run on its own. encode (``latents-KEY.npz``, ``recon-KEY.npz``), baselines (a folder
per baseline), classify (``results-KEY/``) and probes (``probes-KEY.json``) all use it:

* ``key(inputs, code)``: the first 24 hex digits of the sha256 of the named inputs (stable
  JSON, analysis.common.sha256_json), plus ``code`` (analysis.deps.checksum of the code the
  stage runs) when given;
* an entry is a file or a folder of files, each written atomically; ``seal(entry)`` then
  writes its checksum file ``<entry>.sha256`` beside it (a file's sha256, or for a folder
  one ``sha256  name`` line per file, as sha256sum prints them). The checksum file comes
  last, so an entry without one was never finished;
* ``reusable(entry)``: True only when the entry and its checksum file agree. A damaged,
  truncated or half-written entry is never trusted: it gets a one-line notice and the stage
  computes it again, replacing it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from analysis.common import sha256_file, sha256_json, write_text

KEY_LENGTH = 24  # hex digits: 96 bits, no collision among a cache's entries


def key(inputs: dict, code: str | None = None) -> str:
    """The key of an entry made from ``inputs`` (name -> JSON-able value) by ``code``."""
    return sha256_json(inputs if code is None else inputs | {"code": code})[:KEY_LENGTH]


def checksum_file(entry: Path) -> Path:
    """``latents-KEY.npz`` -> ``latents-KEY.sha256``; ``results-KEY`` -> ``results-KEY.sha256``."""
    return entry.with_suffix(".sha256")


def digest(entry: Path, names: list[str] | None = None) -> str:
    """The checksum file's text: a file's sha256, or one 'sha256  name' line per file of a
    folder (``names``, or every file in it, sorted)."""
    if entry.is_file():
        return sha256_file(entry) + "\n"
    if names is None:
        names = sorted(p.name for p in entry.iterdir() if p.is_file())
    return "".join(f"{sha256_file(entry / name)}  {name}\n" for name in names)


def seal(entry: Path, names: list[str] | None = None) -> str:
    """Write ``entry``'s checksum file, once every file of it is written; its text. ``names``:
    a folder's files that make the entry (default: all), when more are written into it later."""
    text = digest(entry, names)
    write_text(checksum_file(entry), text)
    return text


def reusable(entry: Path | None) -> bool:
    """Whether ``entry`` can be reused: it and its checksum file exist and agree. An entry
    that does not is computed again; when it exists, a one-line notice says why."""
    if entry is None or not entry.exists():
        return False
    sums = checksum_file(entry)
    try:
        expected = sums.read_text(encoding="utf-8")
        if entry.is_file():
            ok = digest(entry) == expected
        else:
            names = [line.split("  ", 1)[1] for line in expected.splitlines()]
            ok = bool(names) and digest(entry, names) == expected
    except (OSError, UnicodeDecodeError, IndexError):
        ok = False  # no checksum file (never finished), a file of the folder gone, garbage
    if not ok:
        print(f"vaelab: notice: cache entry {entry} is incomplete or fails its checksum; "
              "computing it again", file=sys.stderr)
    return ok
