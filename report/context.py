"""Everything the report template shows, derived from one build's files.

Not run on its own; ``report.render`` calls ``build_context``. Every number and every
sentence of the conclusions comes from this run's outputs (metrics.json, encode.json,
dataset.json, figures.json, timings-*.json); nothing here is typed in except the
original study's reported figures, which the report shows as such for comparison.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from analysis.common import VaelabError, load_npz, read_json

# Accuracies reported by the original "Predicting CIFAR-10 using VAEs" study (test set).
ORIGINAL_ACCURACY = {
    "logreg": "0.44–0.46", "rf": "0.44–0.47", "knn": "0.53", "svc": "0.61",
    "histgb": "0.57", "lightgbm": "0.57–0.58", "xgboost": "0.55–0.56", "random": "≈0.10",
}
ORIGINAL_BEST = 0.61
ORIGINAL_CONFUSED = [("cat", "dog"), ("automobile", "truck")]
PACKAGES = ("torch", "torchvision", "diffusers", "huggingface_hub", "safetensors", "numpy",
            "scipy", "pandas", "scikit-learn", "lightgbm", "xgboost", "matplotlib", "pillow",
            "jinja2", "weasyprint")
DEFAULT_META = {"title": "Predicting CIFAR-10 from Stable Diffusion VAE latents",
                "subtitle": "Lab 10 report, reproduced with vaelab",
                "author": "", "affiliation": "", "course": "", "date": ""}


def load_metadata(path: Path | None) -> dict:
    """Title block from a small TOML file; the date from SOURCE_DATE_EPOCH when set."""
    meta = dict(DEFAULT_META)
    if path is not None:
        try:
            with open(path, "rb") as fh:
                meta.update({k: str(v) for k, v in tomllib.load(fh).items() if k in DEFAULT_META})
        except FileNotFoundError:
            raise VaelabError(f"report metadata file {path} not found; create it or set METADATA=") from None
        except tomllib.TOMLDecodeError as err:
            raise VaelabError(f"report metadata file {path} is not valid TOML ({err})") from None
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        try:
            meta["date"] = dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc).date().isoformat()
        except ValueError:
            raise VaelabError(f"SOURCE_DATE_EPOCH={epoch!r} is not a Unix timestamp") from None
    elif not meta["date"]:
        meta["date"] = dt.date.today().isoformat()
    return meta


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def git_state(repo: Path) -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown (not a git checkout)", "dirty": False}


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def confused_pairs(confusion: list[list[int]], classes: list[str], top: int = 3) -> list[dict]:
    """Class pairs with the most mistakes in either direction, most first."""
    pairs = []
    for i in range(len(classes)):
        for j in range(i + 1, len(classes)):
            count = confusion[i][j] + confusion[j][i]
            pairs.append({"a": classes[i], "b": classes[j], "count": count,
                          "a_as_b": confusion[i][j], "b_as_a": confusion[j][i]})
    pairs.sort(key=lambda p: (-p["count"], p["a"], p["b"]))
    return [p for p in pairs[:top] if p["count"] > 0]


def results_rows(metrics: dict) -> list[dict]:
    """The original's table: Model | Accuracy .sample() | Accuracy mean & std (+ original)."""
    fs_order = metrics["feature_set_order"]
    best_per_fs = {fs: max(metrics["results"][m][fs]["accuracy"] for m in metrics["model_order"]
                           if m != "random") for fs in fs_order}
    rows = []
    for key in metrics["model_order"]:
        res = metrics["results"][key]
        rows.append({
            "key": key, "label": metrics["models"][key]["label"],
            "cells": [{"value": f"{res[fs]['accuracy']:.4f}",
                       "best": key != "random" and res[fs]["accuracy"] == best_per_fs[fs]}
                      for fs in fs_order],
            "original": ORIGINAL_ACCURACY.get(key, "–"),
            "scaled": metrics["models"][key]["scaled"],
            "description": metrics["models"][key]["description"],
        })
    return rows


def prf_rows(metrics: dict) -> list[dict]:
    rows = []
    for key in metrics["model_order"]:
        for fs in metrics["feature_set_order"]:
            res = metrics["results"][key][fs]
            rows.append({"label": metrics["models"][key]["label"],
                         "feature_set": metrics["feature_sets"][fs]["label"],
                         **{k: f"{res[k]:.4f}" for k in ("accuracy", "precision_macro",
                                                         "recall_macro", "f1_macro")}})
    return rows


def sample_vs_meanstd(metrics: dict) -> dict:
    deltas = []
    for key in metrics["model_order"]:
        if key == "random":
            continue
        res = metrics["results"][key]
        deltas.append((metrics["models"][key]["label"],
                       res["mean_std"]["accuracy"] - res["sample"]["accuracy"]))
    better = [label for label, d in deltas if d > 0]
    worse = [label for label, d in deltas if d < 0]
    mean_delta = sum(d for _, d in deltas) / len(deltas)
    return {"n_models": len(deltas), "n_better": len(better), "n_worse": len(worse),
            "better": better, "worse": worse, "mean_delta": mean_delta,
            "mean_delta_pts": f"{100 * mean_delta:+.1f}",
            "largest": max(deltas, key=lambda t: abs(t[1]))}


def conclusions(metrics: dict, pairs: list[dict], untrained: bool) -> list[str]:
    """Sentences derived from this run's numbers only."""
    best = metrics["best"]
    best_label = metrics["models"][best["model"]]["label"]
    best_fs = metrics["feature_sets"][best["feature_set"]]["label"]
    random_acc = max(metrics["results"]["random"][fs]["accuracy"] for fs in metrics["feature_set_order"])
    chance = 1 / len(metrics["classes"])
    out = [
        f"The best classifier is {best_label} on the {best_fs} features with a test accuracy of "
        f"{best['accuracy']:.4f} ({pct(best['accuracy'])}), against {chance:.2f} for guessing "
        f"uniformly among {len(metrics['classes'])} classes and {random_acc:.4f} for the random "
        f"predictor. The original study's best was SVC at {ORIGINAL_BEST:.2f}; this run is "
        f"{100 * (best['accuracy'] - ORIGINAL_BEST):+.1f} points from it."
    ]
    svm = sample_vs_meanstd(metrics)
    if svm["n_better"] > svm["n_worse"]:
        verdict = "helps most models"
    elif svm["n_better"] < svm["n_worse"]:
        verdict = "hurts most models"
    else:
        verdict = "makes no consistent difference"
    out.append(
        f"Using the latent mean and standard deviation (128 features) instead of one "
        f".sample() (64 features) {verdict}: it is better for {svm['n_better']} of "
        f"{svm['n_models']} classifiers and worse for {svm['n_worse']}, by "
        f"{svm['mean_delta_pts']} accuracy points on average (largest change: "
        f"{svm['largest'][0]}, {100 * svm['largest'][1]:+.1f} points)."
    )
    if pairs:
        listed = "; ".join(f"{p['a']}/{p['b']} ({p['count']} test images)" for p in pairs)
        found = {frozenset((p["a"], p["b"])) for p in pairs}
        agree = [f"{a}/{b}" for a, b in ORIGINAL_CONFUSED if frozenset((a, b)) in found]
        tail = (f"As in the original study, {' and '.join(agree)} "
                f"{'is' if len(agree) == 1 else 'are'} among them." if agree else
                "The original study's most confused pairs (cat/dog, automobile/truck) are not "
                "among them in this run.")
        out.append(f"For {best_label}, the most confused class pairs are {listed}. {tail}")
    if untrained:
        out.append("These numbers come from an untrained (randomly initialised) encoder. They test "
                   "the pipeline and say nothing about what a pretrained VAE's latents encode.")
    else:
        out.append(
            f"A latent of {metrics['feature_sets']['sample']['n_features']} numbers per image "
            f"({100 * metrics['feature_sets']['sample']['n_features'] / (32 * 32 * 3):.1f}% of "
            f"the pixel values) keeps enough class information for {pct(best['accuracy'])} "
            f"accuracy, {best['accuracy'] / chance:.1f} times chance."
        )
    return out


def figure(path: Path, html_dir: Path) -> str:
    if not path.is_file():
        raise VaelabError(f"figure {path} is missing; run `make report` to build it")
    return os.path.relpath(path, html_dir)


def timing_rows(run_dir: Path, metrics: dict) -> tuple[dict, list[dict]]:
    encode = read_json(run_dir / "timings-encode.json", "encoding timings")
    classify = read_json(run_dir / "timings-classify.json", "classifier timings")
    rows = []
    for key in metrics["model_order"]:
        for fs in metrics["feature_set_order"]:
            t = classify[key][fs]
            rows.append({"label": metrics["models"][key]["label"],
                         "feature_set": metrics["feature_sets"][fs]["label"],
                         "fit": f"{t['fit_seconds']:.2f}", "predict": f"{t['predict_seconds']:.2f}"})
    total = sum(t["fit_seconds"] + t["predict_seconds"] for per in classify.values() for t in per.values())
    return {"encode": encode, "classify_total": round(total, 1)}, rows


def build_context(data_dir: Path, run_dir: Path, html_path: Path, metadata_file: Path | None,
                  repo: Path) -> dict:
    html_dir = html_path.parent
    dataset = read_json(data_dir / "dataset.json", "dataset description")
    data_config = read_json(data_dir / "config.json", "data configuration")
    run_config = read_json(run_dir / "config.json", "run configuration")
    encode = read_json(run_dir / "encode.json", "encoder description")
    metrics = read_json(run_dir / "metrics.json", "metrics")
    figures_info = read_json(run_dir / "figures" / "figures.json", "figure description")
    best = metrics["best"]
    best_res = metrics["results"][best["model"]][best["feature_set"]]
    pairs = confused_pairs(best_res["confusion"], metrics["classes"])
    untrained = bool(encode["model"]["untrained"])
    timings, timing_table = timing_rows(run_dir, metrics)
    fig_dir = run_dir / "figures"
    figures = {name: figure(fig_dir / f"{name}.png", html_dir) for name in
               ("examples", "confusion_best", "confusion_all", "pca", "kde", "reconstructions")}
    recon_mse = float(load_npz(run_dir / "reconstructions.npz", "reconstructions", ("mse",))["mse"][0])
    return {
        "meta": load_metadata(metadata_file),
        "untrained": untrained,
        "untrained_note": encode["model"]["untrained_note"],
        "dataset": dataset,
        "data_config": data_config,
        "run_config": run_config,
        "encode": encode,
        "metrics": metrics,
        "feature_sets": [metrics["feature_sets"][fs] | {"key": fs} for fs in metrics["feature_set_order"]],
        "results_rows": results_rows(metrics),
        "prf_rows": prf_rows(metrics),
        "best": best | {"label": metrics["models"][best["model"]]["label"],
                        "fs_label": metrics["feature_sets"][best["feature_set"]]["label"]},
        "per_class": [{"name": name, **vals} for name, vals in best_res["per_class"].items()],
        "pairs": pairs,
        "conclusions": conclusions(metrics, pairs, untrained),
        "figures": figures,
        "pca": figures_info.get("pca", {}),
        "recon_mse": recon_mse,
        "original_accuracy": ORIGINAL_ACCURACY,
        "versions": package_versions(),
        "git": git_state(repo),
        "platform": {"system": platform.platform(), "machine": platform.machine(),
                     "cpu": encode["device_name"] if encode["device"] == "cpu" else platform.processor(),
                     "cpus": os.cpu_count()},
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "timings": timings,
        "timing_rows": timing_table,
    }
