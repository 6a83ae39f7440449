"""The report's title block: report.toml read once, with one-line errors, and the date.

Not run on its own. ``report.context`` calls ``load_metadata``; ``report.notes`` reads the
same file's [notes] table with ``read_toml``; ``report.render`` dates the PDF with
``source_date``.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from pathlib import Path

from analysis.common import VaelabError

# The title block; an empty title is made from the run: "Predicting CIFAR-10 from VAE latents".
# pretrained_weights_sha256: the sha256 of a local weights file the author vouches for as
# pretrained (the report then calls it so; it cannot tell on its own).
DEFAULT_META = {"title": "", "subtitle": "Lab 10 report, reproduced with vaelab",
                "author": "", "affiliation": "", "course": "", "date": "",
                "pretrained_weights_sha256": ""}


def source_date() -> str | None:
    """SOURCE_DATE_EPOCH (reproducible-builds.org) as an ISO date in UTC, or None when unset."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch:
        return None
    try:
        if not (epoch.isascii() and epoch.isdigit()):
            raise ValueError(epoch)
        return dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc).date().isoformat()
    except (ValueError, OverflowError, OSError):
        raise VaelabError(f"SOURCE_DATE_EPOCH={epoch!r} is not a Unix timestamp (whole seconds "
                          "since 1970-01-01 UTC, e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct))") from None


def read_toml(path: Path) -> dict:
    """report.toml (METADATA=) as a dict; any problem reading it is one line saying which."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise VaelabError(f"report metadata file {path} not found; create it or set METADATA=") from None
    except IsADirectoryError:
        raise VaelabError(f"report metadata file {path} is a directory; point METADATA at a TOML file") from None
    except PermissionError:
        raise VaelabError(f"report metadata file {path} cannot be read (permission denied)") from None
    except UnicodeDecodeError:
        raise VaelabError(f"report metadata file {path} is not UTF-8 text; save it as UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as err:
        raise VaelabError(f"report metadata file {path} is not valid TOML ({err})") from None
    except OSError as err:
        raise VaelabError(f"report metadata file {path} cannot be read ({err})") from None


def load_metadata(path: Path | None) -> dict:
    """Title block from a small TOML file; the date from SOURCE_DATE_EPOCH when set."""
    meta = dict(DEFAULT_META)
    date = source_date()  # checked first: a bad value fails before anything is read
    if path is not None:
        meta.update({k: str(v) for k, v in read_toml(path).items() if k in DEFAULT_META})
    # date_is_build_day: neither SOURCE_DATE_EPOCH nor report.toml dates it, so the title
    # date (and the PDF's creation date, report.render) change with the day of the build.
    meta["date_is_build_day"] = not (date or meta["date"])
    if date:
        meta["date"] = date
    elif not meta["date"]:
        meta["date"] = dt.date.today().isoformat()
    return meta
