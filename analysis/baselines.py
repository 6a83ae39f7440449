"""Stage 3a: pixel baselines, fitted once per dataset, seed and width and shared by every run.

Run:
    python -m analysis.baselines build/data/dataset.npz build/baselines \
        build/runs/NAME/baselines.json --latents build/runs/NAME/latents.npz

"Does the VAE help?" is answered against pixels reduced to as many features as each VAE
feature set, with the same classifiers. Those baselines depend only on the images, the
seed and the width, never on the VAE, so each is fitted once and kept in its own folder
``BASELINES_DIR/<name>-<key>/`` (``pooled-48-…``, ``pca-64-…``, ``pca-128-…``):
``baseline.json`` (every model's scores), ``predictions.npz`` (test predictions, for paired
tests) and ``timings-baseline.json``; a PCA baseline also has its learning curves
(analysis.curves) in ``curves.json`` and ``timings-curves.json``. The key covers the dataset checksum, the seed, the
kind and width, the SVC implementation (analysis.models.svc_implementation: libsvm and
oneDAL results never mix) and the code this stage runs (analysis.models.code_checksum), so adding,
removing or re-encoding a VAE variant refits nothing, while another DATASET, LIMIT or SEED
(or edited classifier code) fits new ones. ``OUT`` (the run's ``baselines.json``) names the
baselines a run is compared with; ``analysis.classify`` reads it. Each folder's fits are a cache
entry (analysis.cache), sealed by ``<folder>.sha256`` once complete and refitted when damaged;
its curves are a second one (``curves.sha256``), so an interrupt inside the curves keeps the fits.
``OUT.d`` lists the modules this stage runs, for make (analysis.deps).

The features, from DATASET_NPZ (uint8 (N, 32, 32, 3), scaled to [0, 1]), fitted on the
training images only:
* ``pixels_pooled``: 8x8 average pooling -> (N, 4, 4, 3) -> (N, 48);
* ``pixels_pca_<fs>``: PCA of the flattened pixels (N, 3072) to as many components as the VAE
  feature set ``fs`` has features (at most the number of training images and of pixels):
  64 and 128 for an SD VAE at 32 px, 32 for DC-AE, 256 and 512 for a 16-channel VAE.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from analysis import cache, deps, runs, threads
from analysis.autoencoders import BASELINES, baseline_label, feature_sets
from analysis.common import (VaelabError, file_lock, load_npz, read_json, run_main, save_npz,
                             sha256_file, write_json)
from analysis.curves import learning_curves
from analysis.models import code_checksum, fit_all, read_run, run_svc, svc_implementation

BASELINE_VERSION = 3  # 2: PCA baselines carry learning curves; 3: in their own entry
FIT_FILES = [runs.BASELINE, runs.PREDICTIONS_NPZ, runs.timings_file("baseline")]  # the fits' entry
POOL = 8  # pixels per side averaged into one pooled feature: 32x32 -> 4x4


def scaled(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0  # (N, H, W, 3) in [0, 1]


def pooled(x: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) -> float32 (N, H/8 * W/8 * C), flattened row, column, channel."""
    n, h, w, c = x.shape
    if h % POOL or w % POOL:
        raise VaelabError(f"pixel baselines need images whose sides are multiples of {POOL}, "
                          f"got {h}x{w}")
    # (N, H, W, C) -> (N, H/8, 8, W/8, 8, C) -> mean over each 8x8 block.
    blocks = scaled(x).reshape(n, h // POOL, POOL, w // POOL, POOL, c)
    return blocks.mean(axis=(2, 4)).reshape(n, -1)


def pca(x_train: np.ndarray, x_test: np.ndarray, width: int,
        seed: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA of the flattened pixels fitted on the training images only: (train, test), each
    float32 (N, k) with k = min(width, N_train, pixels): a PCA cannot have more components."""
    from sklearn.decomposition import PCA

    flat_train = scaled(x_train).reshape(len(x_train), -1)  # (N, 3072)
    flat_test = scaled(x_test).reshape(len(x_test), -1)
    k = min(width, *flat_train.shape)
    model = PCA(n_components=k, random_state=seed).fit(flat_train)  # train pixels only
    return model.transform(flat_train).astype(np.float32), model.transform(flat_test).astype(np.float32)


def pixel_features(x_train: np.ndarray, x_test: np.ndarray, widths: dict[str, int],
                   seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every pixel baseline (train, test): key -> float32 (N, D), fitted on train.

    ``widths``: VAE feature set -> its feature count, the PCA width of the matching baseline.
    """
    train, test = {}, {}
    for key, matches in BASELINES.items():
        if matches is None:
            train[key], test[key] = pooled(x_train), pooled(x_test)
        elif matches in widths:
            train[key], test[key] = pca(x_train, x_test, widths[matches], seed)
    return train, test


def wanted(widths: dict[str, int]) -> dict[str, tuple[str, int]]:
    """The baselines a run needs: metrics key -> (kind, requested width)."""
    return {key: ("pooled", 0) if matches is None else ("pca", widths[matches])
            for key, matches in BASELINES.items() if matches is None or matches in widths}


def features_of(kind: str, width: int, data: dict[str, np.ndarray], seed: int):
    if kind == "pooled":
        return pooled(data["x_train"]), pooled(data["x_test"])
    return pca(data["x_train"], data["x_test"], width, seed)


def folder_name(kind: str, width: int, key: str) -> str:
    """'pca-64-<key>'; pooling's width is fixed by the image size: 'pooled-<key>'."""
    return f"{kind}-{width}-{key}" if width else f"{kind}-{key}"


def curves_entry(folder: Path) -> Path:
    """A PCA baseline's learning curves: ``FOLDER/curves.json``, sealed by ``FOLDER/curves.sha256``."""
    return folder / runs.CURVES


def fit_folders(todo: dict[Path, tuple[str, int]], train: dict, test: dict, data: dict,
                classes: list[str], seed: int, svc: dict, dataset_sha256: str, code: str) -> None:
    """Fit every model on the baselines ``todo`` (folder -> (kind, width)) and seal each folder:
    ``baseline.json``, ``predictions.npz`` and ``timings-baseline.json``."""
    names = [folder.name for folder in todo]
    print(f"baselines: fitting {', '.join(sorted(names))}", file=sys.stderr)
    results, predictions, timings = fit_all({n: train[n] for n in names}, {n: test[n] for n in names},
                                            data["y_train"], data["y_test"], classes, seed,
                                            svc=svc["implementation"])
    for folder, (kind, width) in todo.items():
        curves_entry(folder).unlink(missing_ok=True)  # drawn from the fits being replaced
        n_features = train[folder.name].shape[1]
        preds = {model: predictions[f"{model}__{folder.name}"] for model in results}
        save_npz(folder / runs.PREDICTIONS_NPZ, **preds)
        write_json(folder / runs.timings_file("baseline"),
                   {model: per[folder.name] for model, per in timings.items()})
        write_json(folder / runs.BASELINE, {
            "kind": kind, "requested_width": width, "n_features": n_features,
            "label": baseline_label(kind, n_features), "seed": seed, "svc": svc,
            "dataset_sha256": dataset_sha256, "code": code,
            "n_train": int(len(data["y_train"])), "n_test": int(len(data["y_test"])),
            "results": {model: per[folder.name] for model, per in results.items()},
            "model_order": list(results)})
        cache.seal(folder, FIT_FILES)  # last: the fits are complete


def ensure(data_file: Path, root: Path, widths: dict[str, int], seed: int,
           classes: list[str], svc: dict | None = None,
           with_curves: bool = True) -> tuple[dict[str, str], list[str]]:
    """The baselines for a run with VAE feature sets of these ``widths``, fitting only those
    not already under ``root``: (metrics key -> folder name, folders fitted now). ``svc``:
    the run's analysis.models.svc_implementation() (None: that of SVC=auto). Without
    ``with_curves`` (a further seed of SEEDS, analysis.seeds) the PCA baselines' curves are
    not drawn; a later run of that seed that needs them draws them and keeps the fits."""
    svc = svc or svc_implementation("auto")

    dataset_sha256 = sha256_file(data_file)
    code = code_checksum(__file__)
    needed = wanted(widths)
    folders = {}
    for name, (kind, width) in needed.items():
        key = cache.key({"baseline_version": BASELINE_VERSION, "kind": kind, "width": width,
                         "dataset_sha256": dataset_sha256, "seed": seed, "svc": svc}, code)
        folders[name] = root / folder_name(kind, width, key)
    # One lock for the folder: parallel runs (make -j) fit each baseline once.
    with file_lock(root / ".lock"):
        # A damaged or half-written folder is fitted again (its files replaced atomically).
        stale = {folder for folder in set(folders.values()) if not cache.reusable(folder)}
        # Two metrics keys can need one folder (tiny subsets cap both PCAs alike): fit it once.
        todo = {folder: needed[name] for name, folder in folders.items() if folder in stale}
        # A PCA baseline's curves are their own entry, so that an interrupt inside them keeps
        # the fits; refitted fits redraw them (a curve ends at its main fit).
        redraw = {folder: needed[name] for name, folder in folders.items() if with_curves
                  and needed[name][0] == "pca" and (folder in stale or not cache.reusable(curves_entry(folder)))}
        if todo or redraw:
            data = load_npz(data_file, "dataset", ("x_train", "y_train", "x_test", "y_test"))
            train, test = {}, {}
            for folder, (kind, width) in (todo | redraw).items():
                train[folder.name], test[folder.name] = features_of(kind, width, data, seed)
        if todo:
            fit_folders(todo, train, test, data, classes, seed, svc, dataset_sha256, code)
        if redraw:
            # The curves' last point is the main fit: read back from each folder's baseline.json.
            full: dict = {}
            for folder in redraw:
                for model, result in read_json(folder / runs.BASELINE, "pixel baseline")["results"].items():
                    full.setdefault(model, {})[folder.name] = result
            names = [folder.name for folder in redraw]
            print(f"baselines: learning curves of {', '.join(sorted(names))}", file=sys.stderr)
            curves, curve_timings = learning_curves(
                {name: train[name] for name in names}, {name: test[name] for name in names},
                data["y_train"], data["y_test"], len(classes), seed, full)
            for folder in redraw:
                write_json(folder / runs.timings_file("curves"), curve_timings[folder.name])
                write_json(curves_entry(folder), {"code": code, "curves": curves[folder.name]})
                cache.seal(curves_entry(folder))  # last: the curves are complete
    return {name: folder.name for name, folder in folders.items()}, sorted(f.name for f in todo)


def load(run_file: Path, with_curves: bool = True) -> dict[str, dict]:
    """The baselines a run's ``baselines.json`` names: key -> baseline.json contents plus
    ``predictions`` (model -> (M,) int64), ``matches`` and, with ``with_curves``, a PCA
    baseline's ``curves``."""
    record = read_json(run_file, "baselines record")
    root = run_file.parent / record["root"]
    out = {}
    for name in (b for b in BASELINES if b in record["baselines"]):  # display order, not JSON's
        folder_name = record["baselines"][name]
        folder = root / folder_name
        info = read_json(folder / runs.BASELINE, "pixel baseline")
        preds = load_npz(folder / runs.PREDICTIONS_NPZ, "baseline predictions")
        if info["kind"] == "pca" and with_curves:
            info["curves"] = read_json(curves_entry(folder), "baseline learning curves")["curves"]
        out[name] = info | {"matches": BASELINES[name], "folder": folder_name,
                            "predictions": {m: preds[m].astype(np.int64) for m in info["model_order"]}}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fit (or reuse) the pixel baselines of a run")
    parser.add_argument("data", type=Path, help="dataset.npz from analysis.data")
    parser.add_argument("root", type=Path, help="folder holding every baseline (build/baselines)")
    parser.add_argument("out", type=Path, help="the run's baselines.json to write")
    parser.add_argument("--latents", type=Path, required=True,
                        help="the run's latents.npz: the VAE feature widths to match")
    args = parser.parse_args(argv)
    threads.apply()
    seed, classes, latents = read_run(args.latents)
    widths = {fs: feats.shape[1] for fs, feats in feature_sets(latents, "test").items()}
    baselines, fitted = ensure(args.data, args.root, widths, seed, classes, run_svc(args.latents))
    write_json(args.out, {"root": os.path.relpath(args.root, args.out.parent), "seed": seed,
                          "widths": widths, "baselines": baselines})
    print(f"baselines: {'fitted ' + ', '.join(fitted) if fitted else 'all reused'} -> {args.out}",
          file=sys.stderr)
    deps.write(args.out, __file__)


if __name__ == "__main__":
    run_main(main)
