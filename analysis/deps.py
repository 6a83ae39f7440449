"""The project modules a stage runs: for make's dependency files and for cache keys.

Not run on its own. Each stage ends its ``main`` with ``write(product, __file__)``, which
writes ``product.d`` beside the product, as a compiler's ``-MD`` does:

    VAELAB_D := $(dir $(lastword $(MAKEFILE_LIST)))
    $(VAELAB_D)metrics.json: analysis/__init__.py analysis/classify.py ...
    analysis/__init__.py:
    ...

The Makefile includes these files, so a product depends on exactly the code its stage
imported, not on a list someone keeps; the empty rules (``-MP``) let a module be deleted or
renamed without make stopping at "No rule to make target". The same list makes the code
part of a cache key (``checksum``), so an edit anywhere in that code refits the results.

Why the import graph is read from the sources (``ast``), not from ``sys.modules``: the list
must be the same in every process that computes a key, and a process can hold more modules
than the stage imports (a test session, a second stage run in-process), or fewer (an import
inside a function not called yet). Reading the sources gives every project import a stage
can make, wherever it sits in the file; tests/test_deps.py checks it covers what importing
the stage actually loads (``imported``).
"""

from __future__ import annotations

import ast
import os
import sys
from importlib import metadata
from pathlib import Path

from analysis.common import atomic_path, sha256_file, sha256_json

ROOT = Path(__file__).resolve().parent.parent  # the repository (a source copy in tests)


def packages(root: Path = ROOT) -> set[str]:
    """The project's top-level packages: folders at the root holding an __init__.py."""
    return {p.parent.name for p in root.glob("*/__init__.py")}


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The source file of project module ``name`` ('analysis.stats'), or None."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path, root: Path = ROOT) -> str:
    """'analysis/stats.py' -> 'analysis.stats'; a package's __init__.py -> the package."""
    parts = list(path.resolve().relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path = ROOT) -> set[str]:
    """Project modules that the source ``path`` imports anywhere in it (top level or inside
    functions), with the packages on their way ('analysis.a.b' also imports 'analysis.a')."""
    own = packages(root)
    here = module_name(path, root)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x / from .y import z
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names.add(base)
            # from analysis import stats: 'analysis.stats' is a module; from x import name: not.
            names.update(f"{base}.{alias.name}" for alias in node.names)
    found = set()
    for name in names:
        if name.split(".")[0] not in own:
            continue
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # the packages on the way, then the module
            if module_file(".".join(parts[:i]), root):
                found.add(".".join(parts[:i]))
    return found


def modules(script: str | os.PathLike, root: Path = ROOT) -> list[str]:
    """The project source files ``script`` runs, itself included: its imports, theirs and
    so on; paths relative to ``root``, sorted ('analysis/__init__.py', ...)."""
    start = Path(script).resolve()
    seen: set[Path] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo.extend(module_file(name, root).resolve() for name in imports_of(path, root))
    return sorted(p.relative_to(root).as_posix() for p in seen)


def imported(loaded: dict | None = None, root: Path = ROOT) -> list[str]:
    """The project source files among the modules loaded in this process (``sys.modules``),
    relative to ``root``, sorted; installed packages are left out, even under the root."""
    loaded = sys.modules if loaded is None else loaded
    out = set()
    for module in list(loaded.values()):
        file = getattr(module, "__file__", None)
        if not file:
            continue
        path = Path(file).resolve()
        if not path.is_relative_to(root) or path.suffix != ".py":
            continue
        relative = path.relative_to(root)
        if relative.parts[0] in packages(root) and "site-packages" not in relative.parts:
            out.add(relative.as_posix())
    return sorted(out)


# Libraries whose versions decide fitted results as much as the code does.
FIT_PACKAGES = ("scikit-learn", "lightgbm", "xgboost", "numpy", "scipy", "statsmodels")


def checksum(script: str | os.PathLike, packages_: tuple[str, ...] = FIT_PACKAGES) -> str:
    """sha256 of the code ``script`` runs (``modules``) and of the library versions: the
    "code" of a cache key, so that a cached result is refitted when either changes."""
    return sha256_json({"files": {name: sha256_file(ROOT / name) for name in modules(script)},
                        "packages": {name: metadata.version(name) for name in packages_}})


def escape(path: str) -> str:
    """A path as make reads it in a rule: '$' doubled, '#', ':' and spaces escaped."""
    return path.replace("$", "$$").replace("#", r"\#").replace(" ", r"\ ").replace(":", r"\:")


# Set at the top of every dependency file: the folder make read it from, as make spells it
# (``$(BUILD)/runs/X/``), so the targets below match the Makefile's own names wherever the
# build folder is, copied or moved included.
HERE = "VAELAB_D := $(dir $(lastword $(MAKEFILE_LIST)))"


def write(targets: str | os.PathLike | list, script: str | os.PathLike,
          path: str | os.PathLike | None = None) -> Path:
    """Write ``path`` (default ``<first target>.d``): every target depends on the modules
    ``script`` runs, each module with an empty rule of its own. Targets are named from the
    dependency file's own folder (``$(VAELAB_D)metrics.json``), not by the path the stage was
    given, so that a build folder copied elsewhere keeps its dependencies; modules relative to
    the repository, where make runs. An unchanged file is left as it is (its date too)."""
    targets = [targets] if isinstance(targets, (str, os.PathLike)) else list(targets)
    path = Path(path or f"{targets[0]}.d")
    deps = modules(script)
    names = [os.path.relpath(t, path.parent) for t in targets]
    if any(n.startswith("..") for n in names):
        raise ValueError(f"targets {targets} are not all under {path.parent}")
    lines = [HERE, " ".join("$(VAELAB_D)" + escape(n) for n in names) + ": " + " ".join(escape(d) for d in deps)]
    lines += [f"{escape(d)}:" for d in deps]
    text = "\n".join(lines) + "\n"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return path
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
