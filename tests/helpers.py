"""Helpers the tests share: paths, running make, the builds' make variables, the author's
notes, and a real classify run on tiny arrays. Plain functions, imported one way (``from
helpers import ...``: tests/ is on pytest's path, as for hubcache); the fixtures that use
them stay in conftest.py.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from analysis.common import save_npz, write_json
from analysis.verdicts import judge
from hubcache import HubCache, make_env

ROOT = Path(__file__).resolve().parent.parent


CIFAR_ZIP = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.zip"
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


def matches_snapshot(name: str, paragraphs: list[str]) -> bool:
    """Whether ``paragraphs`` (one sentence or item each) read word for word as the reviewed
    tests/snapshots/NAME.txt, one per line. A wording change shows as a failing test and a
    diff to review; VAELAB_UPDATE_SNAPSHOTS=1 writes the new text instead (review it in git)."""
    path = SNAPSHOTS / f"{name}.txt"
    text = "\n".join(paragraphs) + "\n"
    if os.environ.get("VAELAB_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path.read_text(encoding="utf-8") == text


def page_text(page: str, code: bool = True) -> str:
    """An HTML page's text as its reader sees it: tags dropped, image descriptions (alt)
    appended, whitespace runs made one space; without code and preformatted text (file
    names, paths, commands) when ``code`` is False."""
    import html
    import re

    page = re.sub(r"<(style|script)\b[^>]*>.*?</\1>", " ", page, flags=re.S)
    if not code:
        page = re.sub(r"<(code|pre)\b[^>]*>.*?</\1>", " ", page, flags=re.S)
    alts = " ".join(re.findall(r'\balt="([^"]*)"', page))
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page) + " " + alts).split())


def copy_build(build: Path, out: Path) -> Path:
    """A copy of a shared build (modification times kept, so it is as current as the
    original) for a test that changes it."""
    shutil.copytree(build, out, symlinks=True)
    return out


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


# The pipeline's stage modules, as make echoes them ("-m analysis.encode ...").
STEPS = ("analysis.data", "analysis.encode", "analysis.baselines", "analysis.classify",
         "analysis.probes", "analysis.weights", "analysis.figures", "report.provenance", "report.render html",
         "report.render pdf")


def steps_run(proc) -> set[str]:
    """Which pipeline stages make ran (or, under -n, would run), from its echoed commands."""
    return {m for m in STEPS if f"-m {m}" in proc.stdout}


def run_make(*args: str, check: bool = True, env: dict | None = None, cwd: Path = ROOT):
    """Run make in the repository (or a copy of it, ``cwd``) with the test virtualenv; return
    the CompletedProcess."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    if cwd != ROOT:  # a copy of the sources, run with this checkout's virtualenv
        args = (f"VENV={ROOT / '.venv'}", *args)
    # A guard against a hung build, not a budget: the three-variant build takes minutes on an
    # idle 2-core machine, several times that on a busy one.
    proc = subprocess.run(["make", "--no-print-directory", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=1800)
    if check and proc.returncode != 0:
        raise AssertionError(f"make {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


# The session's two biggest builds (cifar_build, variants_build) run two stages at a time.
# Another worker whose test needs one waits for it: its core then works on the build instead
# of idling. Their tests read numbers, never compare them with a serial build's bytes (make
# -j2 on one run gives the serial bytes: tests/test_make.py; on several runs, the last bits
# of latents and oneDAL's SVC may differ, README says).
BIG_BUILD_JOBS = "-j2"


def make_vars(build: Path, vae: Path, images: Path, limit: int) -> list[str]:
    return [f"BUILD={build}", f"VAE={vae}", f"DATASET=imagefolder:{images}", f"LIMIT={limit}",
            "SOURCE_DATE_EPOCH=1767225600"]


def cifar_vars(build: Path, vaes: str, images: Path) -> list[str]:
    """cifar_build's make variables (another VAES for a test that changes it)."""
    return [f"BUILD={build}", f"VAES={vaes}", f"DATASET=imagefolder:{images}", "LIMIT=10",
            "SOURCE_DATE_EPOCH=1767225600"]


def variants_vars(build: Path, images: Path) -> list[str]:
    """variants_build's make variables: the default VAES (from hub_cache), 4 images a class."""
    return [f"BUILD={build}", f"DATASET=imagefolder:{images}", "LIMIT=4", "SOURCE_DATE_EPOCH=1767225600"]


def make_variants(build: Path, cache: HubCache, images: Path) -> Path:
    with make_env(cache):
        run_make(BIG_BUILD_JOBS, "report", *variants_vars(build, images))
        run_make("diff", *variants_vars(build, images), "A=sd-vae-ft-ema", "B=sdxl-vae")
    return build


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


# ---- a real classify run on tiny data (analysis.baselines then analysis.classify) ------

def tiny_run(root: Path, n_classes: int = 3, per_class: int = 12, n_test: int = 8,
             seed: int = 0) -> Path:
    """run/{latents.npz,config.json,encode.json} and data/dataset.npz; weakly separable."""
    rng = np.random.default_rng(seed)
    latents, data = {}, {}
    for split, k in (("train", per_class), ("test", n_test)):
        y = np.repeat(np.arange(n_classes), k).astype(np.int64)
        mean = (0.8 * y[:, None, None, None] + rng.normal(0, 1, (len(y), 4, 4, 4))).astype(np.float32)
        std = rng.uniform(0.1, 0.5, mean.shape).astype(np.float32)
        latents |= {f"{split}_mean": mean, f"{split}_std": std, f"y_{split}": y,
                    f"{split}_sample": (mean + std * rng.normal(size=mean.shape)).astype(np.float32)}
        pixels = 60 * y[:, None, None, None] + rng.integers(0, 120, (len(y), 32, 32, 3))
        data |= {f"x_{split}": pixels.astype(np.uint8), f"y_{split}": y}
    run = root / "run"
    save_npz(run / "latents.npz", **latents)
    save_npz(root / "data" / "dataset.npz", **data)
    write_json(run / "config.json", {"seed": seed})
    write_json(run / "encode.json", {"classes": [f"c{i}" for i in range(n_classes)]})
    return run


def classify_run(run: Path) -> None:
    """analysis.baselines then analysis.classify, as the Makefile runs them."""
    from analysis import baselines, classify

    data = run.parent / "data" / "dataset.npz"
    baselines.main([str(data), str(run.parent / "baselines"), str(run / "baselines.json"),
                    "--latents", str(run / "latents.npz")])
    classify.main([str(run / "latents.npz"), str(data), str(run / "metrics.json"),
                   "--baselines", str(run / "baselines.json")])


# ---- made-up metrics (report tests): chosen accuracies and p-values, judged for real ------
# The report's facts read what analysis.verdicts stores; these dicts go through the same
# judge as classify's, and tests/test_baselines.py checks they hold only fields a real
# metrics.json (build_metrics on tiny arrays) holds, so a schema change shows here too.

CLASSES = [f"c{i}" for i in range(10)]


def comp(a: str, b: str, delta: float, p: float, half: float = 0.02) -> dict:
    return {"a": a, "b": b, "delta": delta, "ci": [delta - half, delta + half], "p_value": p,
            "only_a_correct": 30, "only_b_correct": 20}


def result(accuracy: float, half: float = 0.02, recall: float | None = None) -> dict:
    return {"accuracy": accuracy, "accuracy_ci": [accuracy - half, accuracy + half],
            "precision_macro": accuracy, "recall_macro": accuracy if recall is None else recall,
            "f1_macro": accuracy, "confusion": [[1] * 10 for _ in range(10)]}


def predictions_for(metrics: dict, n: int = 100) -> dict:
    """predictions.csv's columns for made-up ``metrics``: each model on each feature set right on
    its first round(accuracy * n) of ``n`` test images, so a paired test sees the difference of
    two accuracies as that many discordant images."""
    y = [i % 10 for i in range(n)]
    out = {"y_true": y}
    for model, per in metrics["results"].items():
        for fs, res in per.items():
            right = round(res["accuracy"] * n)
            out[f"{model}__{fs}"] = [t if i < right else (t + 1) % 10 for i, t in enumerate(y)]
    return out


def kl_metrics(acc: dict[str, tuple[float, float]], half: float = 0.02, pooled: int = 48,
               comparisons: dict | None = None, pixels: dict[str, dict[str, float]] | None = None) -> dict:
    """A KL run: .sample() (64) and mean & std (128), pooled pixels and two pixel PCAs (each
    at 0.3, or at ``pixels``' model -> baseline -> accuracy)."""
    sets = {"sample": {"label": ".sample()", "n_features": 64, "kind": "vae"},
            "mean_std": {"label": "mean & std", "n_features": 128, "kind": "vae"},
            "pixels_pooled": {"label": "pooled", "n_features": pooled, "kind": "baseline"},
            "pixels_pca_sample": {"label": "PCA-64", "n_features": 64, "kind": "baseline",
                                  "matches": "sample"},
            "pixels_pca_mean_std": {"label": "PCA-128", "n_features": 128, "kind": "baseline",
                                    "matches": "mean_std"}}
    models = [*acc, "random"]
    results = {m: {"sample": result(a, half), "mean_std": result(b, half),
                   "pixels_pooled": result(0.3, half), "pixels_pca_sample": result(0.3, half),
                   "pixels_pca_mean_std": result(0.3, half)} for m, (a, b) in acc.items()}
    for model, per in (pixels or {}).items():
        results[model] |= {fs: result(a, half) for fs, a in per.items()}
    results["random"] = {fs: result(0.1, half) for fs in sets}
    # analysis.verdicts judges them as analysis.classify does: Holm, the best, weak rivals.
    return judge({"classes": CLASSES, "model_order": models, "feature_set_order": list(sets),
                  "feature_sets": sets, "n_train": 50000,
                  "models": {m: {"label": m.upper(), "scaled": False, "description": ""} for m in models},
                  "results": results, **({"comparisons": comparisons} if comparisons else {})})


def latent_metrics(acc: dict[str, float], half: float = 0.02) -> dict:
    """A deterministic run (TAESD, DC-AE): one feature set, the latent."""
    sets = {"latent": {"label": "latent", "n_features": 32, "kind": "vae"},
            "pixels_pooled": {"label": "pooled", "n_features": 48, "kind": "baseline"},
            "pixels_pca_latent": {"label": "PCA-32", "n_features": 32, "kind": "baseline",
                                  "matches": "latent"}}
    models = [*acc, "random"]
    results = {m: {fs: result(a if fs == "latent" else 0.3, half) for fs in sets} for m, a in acc.items()}
    results["random"] = {fs: result(0.1, half) for fs in sets}
    return judge({"classes": CLASSES, "model_order": models, "feature_set_order": list(sets),
                  "feature_sets": sets,
                  "models": {m: {"label": m.upper(), "scaled": False, "description": ""} for m in models},
                  "results": results,
                  "comparisons": {m: {"latent_vs_pixels_pooled": comp("latent", "pixels_pooled", 0.1, 0.001),
                                      "latent_vs_pixels_pca_latent": comp("latent", "pixels_pca_latent", 0.1, 0.001)}
                                  for m in acc}})
