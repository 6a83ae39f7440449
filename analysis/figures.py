"""Stage 4: draw the report's figures from the latents and the classifier metrics.

Run:
    python -m analysis.figures build/runs/NAME build/data/dataset.npz build/runs/NAME/figures \
        [--seed 0]

Reads ``RUN_DIR/latents.npz``, ``RUN_DIR/encode.json``, ``RUN_DIR/reconstructions.npz`` (when
the run had a decoder), ``RUN_DIR/metrics.json``, ``RUN_DIR/probes.json``,
``DATASET_NPZ`` and the ``dataset.json`` next to it. Writes into OUT_DIR:
* ``examples.png``: the first test image of each class;
* ``confusion_best.png``: the best model's confusion matrix, row-normalised, counts in cells;
* ``confusion_all.png``: one small confusion matrix per model (columns) and feature set (rows);
* ``pca.png``: 2-D PCA of the test latents (PCA fitted on the train latents), by class;
* ``lda.png``: the same latents on their two linear discriminants (LDA fitted on train);
* ``kde.png``: class-wise densities of the first four latent features;
* ``reconstructions.png``: originals above their decoded latent means (an encoder-only run,
  without ``reconstructions.npz``: a one-line figure saying so, which the report leaves out);
* ``learning_curves.png``: accuracy against training-set size (metrics.json's
  ``learning_curves``), VAE feature sets beside their equal-width pixel PCA;
* ``probes.png``: accuracy on each latent channel alone, each spatial position alone, and the
  drop when each channel is left out (``RUN_DIR/probes.json`` from analysis.probes);
* ``figures.json``: the PCA explained-variance ratios and LDA between-class variance ratios
  quoted in the report, and for both 2-D projections the test accuracy of a nearest class
  centroid (centroids of the projected train latents), a plain measure of how far apart the
  classes lie in each plane.

The same inputs give byte-identical files: Agg backend, fixed sizes and dpi, no
"Software" or date metadata in the PNGs, seeded PCA and point order.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display, and the same pixels everywhere

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from analysis import deps  # noqa: E402
from analysis.autoencoders import (FEATURE_SETS, RANDOM, feature_set_keys,  # noqa: E402
                                   feature_sets, load_latents)
from analysis.common import (VaelabError, atomic_path, load_npz, read_json,  # noqa: E402
                             run_main, write_json)
# FIGURES: the one list of a run's figures, kept in analysis.runs (light for report/).
from analysis.runs import (DATASET, ENCODE, FIGURES, FIGURES_INFO, LATENTS, METRICS, PROBES,  # noqa: E402
                           RECONSTRUCTIONS, figure_png, has_decoder)
from analysis.stats import chance  # noqa: E402

DPI = 150
WIDTH = 6.7  # inches: about 17 cm, one A4 text width
# The PDF shows the figures about 16 cm wide, so these sizes read as roughly 7-9 pt.
STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.titlesize": 9,
}
CONFUSION_CMAP = "Blues"
# metrics.json is written with sorted keys (common.write_json), so its dicts come back in
# alphabetical order. Its "model_order"/"feature_set_order" lists give the display order;
# without them these are used. Unknown keys follow in file order, the random baseline last.
MODEL_ORDER = ("logreg", "rf", "knn", "svc", "histgb", "lightgbm", "xgboost")
FEATURE_SET_ORDER = tuple(FEATURE_SETS)
LAST = (RANDOM,)


def class_colours(n: int) -> list:
    """One colour per class: tab10 (colour-blind friendly) up to 10 classes, then tab20."""
    if n <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(n)]
    if n <= 20:
        return [plt.get_cmap("tab20")(i) for i in range(n)]
    return [plt.get_cmap("viridis")(i / (n - 1)) for i in range(n)]


def display_order(keys, preferred) -> list[str]:
    """``keys`` in report order: ``preferred`` first, then the rest, then LAST."""
    keys = list(keys)
    rank = {key: i for i, key in enumerate(preferred)}
    return sorted(keys, key=lambda k: (k in LAST and k not in rank, rank.get(k, len(rank)),
                                       keys.index(k)))


def short_label(label: str, width: int = 11) -> str:
    """Wrap a model name for a narrow panel title; long CamelCase words split at capitals."""
    words = [re.sub(r"(?<=[a-z])(?=[A-Z])", " ", w) if len(w) > width else w for w in label.split()]
    return textwrap.fill(" ".join(words), width, break_long_words=False)


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` as PNG atomically, without metadata that changes between runs."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    finally:
        plt.close(fig)


def row_normalise(confusion) -> np.ndarray:
    """Counts (K, K), rows = true class -> per-row fractions (recall on the diagonal).

    A class with no test images gets a row of zeros instead of 0/0.
    """
    counts = np.asarray(confusion, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def bare(ax) -> None:
    """No ticks and no frame, but keep the axis labels (``axis('off')`` would hide them)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def plot_examples(images: np.ndarray, labels: np.ndarray, classes: list[str], path: Path) -> None:
    """images uint8 (N, 32, 32, 3), labels (N,): the first image of each class, name below."""
    n = len(classes)
    rows = -(-n // 10)  # ceil: at most 10 per row, so 11-20 classes wrap to two rows
    cols = -(-n // rows)
    with plt.rc_context(STYLE):
        cell = WIDTH / max(cols, 10)  # inches per image: 10 across fill the page width
        fig, axes = plt.subplots(rows, cols, figsize=(cols * cell, rows * (cell + 0.25) + 0.1),
                                 squeeze=False, layout="constrained")
        for c, ax in enumerate(axes.flat):
            bare(ax)
            if c >= n:
                ax.set_visible(False)
                continue
            found = np.flatnonzero(labels == c)
            if len(found):
                ax.imshow(images[found[0]], interpolation="nearest")
            else:  # no test image of this class: leave the slot empty but named
                ax.set_aspect("equal")
                ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
            ax.set_xlabel(classes[c], fontsize=7, labelpad=2)
        save_figure(fig, path)


def plot_confusion_best(confusion, classes: list[str], title: str, path: Path) -> None:
    """One confusion matrix (K, K) of counts: colour = row fraction, text = count."""
    counts = np.asarray(confusion, dtype=np.int64)
    fractions = row_normalise(counts)
    k = len(counts)
    labels = list(classes) if len(classes) == k else [str(i) for i in range(k)]
    # Printed at its drawn size (about 12 cm for 10 classes), so its text stays 6-8 pt.
    width = min(WIDTH, 2.2 + 0.25 * k)  # room for the colour bar and class names
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(width, width - 0.6), layout="constrained")
        im = ax.imshow(fractions, cmap=CONFUSION_CMAP, vmin=0, vmax=1, interpolation="nearest")
        if k <= 20:  # beyond that the numbers no longer fit in the cells
            for i in range(k):
                for j in range(k):
                    colour = "white" if fractions[i, j] > 0.5 else "black"
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", color=colour,
                            fontsize=6 if k > 10 else 7)
        ax.set_xticks(range(k), labels, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(k), labels)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of true class (recall on diagonal)")
        save_figure(fig, path)


def plot_confusion_all(metrics: dict[str, Any], path: Path) -> None:
    """Small multiples: rows = VAE feature sets, columns = models, both in metrics order.

    The pixel baselines (feature sets of kind "baseline") are left out: five rows of eight
    tiny matrices no longer read, and the results table carries their accuracies.
    """
    models, feature_sets, results = metrics["models"], metrics["feature_sets"], metrics["results"]
    model_keys = display_order(models, metrics.get("model_order") or MODEL_ORDER)
    fs_keys = [k for k in display_order(feature_sets, metrics.get("feature_set_order")
                                        or FEATURE_SET_ORDER)
               if feature_sets[k].get("kind", "vae") == "vae"]
    n_rows, n_cols = len(fs_keys), len(model_keys)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(n_rows, n_cols, figsize=(WIDTH, 1.15 * n_rows + 0.35),
                                 squeeze=False, layout="constrained")
        im = None
        for r, fs_key in enumerate(fs_keys):
            fs = feature_sets[fs_key]
            for c, model_key in enumerate(model_keys):
                ax = axes[r, c]
                bare(ax)
                label = short_label(models[model_key].get("label", model_key))
                result = results.get(model_key, {}).get(fs_key)
                if result is None:  # model not run on this feature set
                    ax.set_aspect("equal")
                    ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
                    ax.set_title(label, fontsize=6.5)
                else:
                    im = ax.imshow(row_normalise(result["confusion"]), cmap=CONFUSION_CMAP,
                                   vmin=0, vmax=1, interpolation="nearest")
                    ax.set_title(f"{label}\n{result['accuracy']:.1%}", fontsize=6.5)
                if c == 0:
                    ax.set_ylabel(fs.get("label", fs_key))
        if im is not None:
            fig.colorbar(im, ax=axes, shrink=0.8, label="fraction of true class")
        fig.suptitle("Row-normalised confusion matrices (rows: true class, columns: predicted "
                     "class; title: test accuracy)", fontsize=8)
        save_figure(fig, path)


def project_pca(train: np.ndarray, test: np.ndarray,
                seed: int) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """PCA fitted on train (N, D) -> train (N, 2), test (M, 2) and the 2 variance ratios."""
    from sklearn.decomposition import PCA

    if min(train.shape) < 2:
        raise VaelabError(f"PCA needs at least 2 train images and 2 features, got {train.shape}")
    pca = PCA(n_components=2, random_state=seed).fit(train.astype(np.float64))
    # Constant features give 0/0 ratios; report 0 rather than NaN (NaN is not valid JSON).
    ratios = np.nan_to_num(pca.explained_variance_ratio_, nan=0.0)
    return (pca.transform(train.astype(np.float64)), pca.transform(test.astype(np.float64)),
            [round(float(r), 4) for r in ratios])


def fit_pca(train: np.ndarray, test: np.ndarray, seed: int) -> tuple[np.ndarray, list[float]]:
    """PCA fitted on train (N, D), applied to test (M, D) -> test (M, 2) and the 2 ratios."""
    _, points, ratios = project_pca(train, test, seed)
    return points, ratios


def project_lda(train: np.ndarray, y_train: np.ndarray,
                test: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """LDA fitted on train (N, D) with labels (N,) -> train (N, 2), test (M, 2), and the share
    of between-class variance on each discriminant.

    LDA has at most (classes - 1) discriminants: with two classes the second coordinate is 0
    and its ratio 0. The SVD solver needs no covariance inverse, so constant or collinear
    latent features are fine (its collinearity warning is silenced; the projection is valid).
    """
    import warnings

    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    n_classes = len(np.unique(y_train))
    if n_classes < 2 or train.shape[1] < 1:
        raise VaelabError(f"LDA needs at least 2 classes in the train set, got {n_classes}")
    k = min(2, n_classes - 1, train.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        lda = LinearDiscriminantAnalysis(n_components=k, solver="svd").fit(
            train.astype(np.float64), y_train)
        projected = [lda.transform(x.astype(np.float64)) for x in (train, test)]
    pad = [np.pad(p, ((0, 0), (0, 2 - k))) for p in projected]  # (N, k) -> (N, 2)
    ratios = np.zeros(2)
    ratios[:k] = np.nan_to_num(lda.explained_variance_ratio_[:k], nan=0.0)
    return pad[0], pad[1], [round(float(r), 4) for r in ratios]


def centroid_accuracy(train: np.ndarray, y_train: np.ndarray, test: np.ndarray,
                      y_test: np.ndarray) -> float:
    """Test accuracy of the nearest class centroid in a projection: train, test (N, 2).

    Classes absent from the train set have no centroid and are never predicted.
    """
    present = np.unique(y_train)
    centroids = np.stack([train[y_train == c].mean(axis=0) for c in present])  # (K, 2)
    distances = ((test[:, None, :] - centroids[None]) ** 2).sum(axis=-1)  # (M, K)
    return round(float(np.mean(present[distances.argmin(axis=1)] == y_test)), 4)


def plot_pca(panels: dict[str, tuple[str, np.ndarray, list[float]]], labels: np.ndarray,
             classes: list[str], path: Path, seed: int = 0, kind: str = "pca") -> None:
    """panels: key -> (title, projected test points (M, 2), variance ratios per axis).

    ``kind`` "pca": axes are principal components (share of total variance); "lda": linear
    discriminants (share of between-class variance).
    """
    axis, share, what = {
        "pca": ("PC", "of variance", "first two principal components"),
        "lda": ("LD", "of between-class var.", "two linear discriminants"),
    }[kind]
    colours = class_colours(len(classes))
    point_colours = np.array([colours[y] for y in labels]).reshape(-1, 4)
    # Draw points in one shuffled order so that no class is always painted on top.
    order = np.random.default_rng(seed).permutation(len(labels))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(panels), figsize=(WIDTH, 3.9), squeeze=False,
                                 layout="constrained")
        for ax, (title, points, ratios) in zip(axes.flat, panels.values()):
            ax.scatter(points[order, 0], points[order, 1], c=point_colours[order], s=3,
                       alpha=0.5, linewidths=0, rasterized=True)
            ax.set_title(title)
            ax.set_xlabel(f"{axis}1 ({ratios[0]:.1%} {share})")
            ax.set_ylabel(f"{axis}2 ({ratios[1]:.1%} {share})")
        handles = [Line2D([], [], ls="", marker="o", markersize=5, color=colours[c], label=name)
                   for c, name in enumerate(classes)]
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(classes), 5),
                   frameon=False)
        fig.suptitle(f"Test latents projected on the {what} of the train latents")
        save_figure(fig, path)


def plot_kde(features: np.ndarray, labels: np.ndarray, classes: list[str], path: Path,
             feature_names: list[str] | None = None, label: str = ".sample()") -> None:
    """features (N, D): one panel per column 0..3, one density line per class.

    A class with fewer than 2 points or no spread in a column has no density there; its
    line is left out of that panel rather than crashing gaussian_kde.
    """
    from scipy.stats import gaussian_kde

    colours = class_colours(len(classes))
    n_panels = min(4, features.shape[1])
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2, 2, figsize=(WIDTH, 4.9), squeeze=False, layout="constrained")
        for i, ax in enumerate(axes.flat):
            if i >= n_panels:
                ax.set_visible(False)
                continue
            column = features[:, i].astype(np.float64)
            lo, hi = float(column.min()), float(column.max())
            pad = 0.05 * (hi - lo) if hi > lo else 1.0
            grid = np.linspace(lo - pad, hi + pad, 256)
            for c in range(len(classes)):
                values = column[labels == c]
                if len(values) < 2 or np.ptp(values) == 0:
                    continue
                try:
                    density = gaussian_kde(values)(grid)
                except (np.linalg.LinAlgError, ValueError):  # near-singular data
                    continue
                ax.plot(grid, density, color=colours[c], lw=1)
            ax.set_title(feature_names[i] if feature_names else f"feature {i}")
            ax.set_xlabel("latent value")
            ax.set_ylabel("density")
        handles = [Line2D([], [], color=colours[c], lw=1.5, label=name)
                   for c, name in enumerate(classes)]
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(classes), 5),
                   frameon=False)
        fig.suptitle(f"Class-wise density of the first latent features ({label}, test set)")
        save_figure(fig, path)


def plot_reconstructions(originals: np.ndarray, reconstructions: np.ndarray, labels: np.ndarray,
                         classes: list[str], mse: float, path: Path, decoded: str = "the latent mean") -> None:
    """originals, reconstructions uint8 (K, 32, 32, 3): two rows, class name on top."""
    k = len(originals)
    cols = max(k, 1)
    cell = min(WIDTH / max(cols, 8), 0.9)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2, cols, figsize=(min(WIDTH, max(cols * cell + 0.6, 3.6)), 2 * cell + 0.42), squeeze=False,
                                 layout="constrained")
        for j in range(cols):
            for row, images in enumerate((originals, reconstructions)):
                ax = axes[row, j]
                bare(ax)
                if j < k:
                    ax.imshow(images[j], interpolation="nearest")
            if j < k:
                label = int(labels[j])
                axes[0, j].set_title(classes[label] if label < len(classes) else str(label),
                                     fontsize=7)
        axes[0, 0].set_ylabel("original", fontsize=7)
        axes[1, 0].set_ylabel("decoded", fontsize=7)
        sep = " " if cols >= 8 else "\n"  # a narrow figure needs two title lines
        fig.suptitle(f"Reconstructions of {decoded}{sep}(MSE {mse:.4f} in [\u22121, 1] units)")
        save_figure(fig, path)


def plot_no_reconstructions(model: str, path: Path) -> None:
    """An encoder-only run (no decoder file): the product exists, saying why it is empty. The
    report does not show it; it says in a sentence that the run had no decoder."""
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(WIDTH, 0.6))
        fig.text(0.5, 0.5, f"No reconstructions: {model} has no decoder", ha="center", va="center")
        save_figure(fig, path)


def count_label(n: int) -> str:
    """Training-set sizes as axis labels: 300, 1k, 2.5k, 50k."""
    return f"{n / 1000:g}k" if n >= 1000 else str(n)


def plot_learning_curves(curves: dict[str, Any], feature_sets: dict[str, dict], models: dict[str, dict],
                         n_classes: int, path: Path, order: list[str] | None = None) -> None:
    """One panel per curve model: test accuracy (with its 95% bootstrap band) against training
    images on a log axis; each VAE feature set solid, its equal-width pixel PCA dashed in the
    same colour. ``curves``: metrics.json's ``learning_curves``."""
    model_keys = curves["models"]
    vae_keys = [k for k in display_order(curves["curves"], order or FEATURE_SET_ORDER)
                if feature_sets.get(k, {}).get("kind", "vae") == "vae"]
    colours = [plt.get_cmap("tab10")(i) for i in (0, 1, 2, 3, 4)]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(model_keys), figsize=(WIDTH, 3.0), squeeze=False,
                                 sharey=True, layout="constrained")
        handles = []
        for ax, model in zip(axes.flat, model_keys):
            for i, fs in enumerate(vae_keys):
                pixel = next((k for k, v in feature_sets.items() if v.get("matches") == fs
                              and k in curves["curves"]), None)
                for key, style in ((fs, "-"), (pixel, "--")):
                    points = curves["curves"].get(key, {}).get(model) if key else None
                    if not points:
                        continue
                    n = [p["n_train"] for p in points]
                    acc = [p["accuracy"] for p in points]
                    colour = colours[i % len(colours)]
                    ax.fill_between(n, [p["ci"][0] for p in points], [p["ci"][1] for p in points],
                                    color=colour, alpha=0.15 if style == "-" else 0.08, lw=0)
                    line, = ax.plot(n, acc, style, color=colour, marker="o" if style == "-" else "s",
                                    markersize=3, lw=1.2,
                                    label=feature_sets.get(key, {}).get("label", key))
                    if ax is axes.flat[0]:
                        handles.append(line)
            ax.axhline(chance(n_classes), color="grey", lw=0.8, ls=":")
            ax.set_xscale("log")
            ticks = sorted({p["n_train"] for per in curves["curves"].values() for p in per.get(model, [])})
            ax.set_xticks(ticks, [count_label(t) for t in ticks])
            ax.minorticks_off()
            ax.set_title(models.get(model, {}).get("label", model))
            ax.set_xlabel("training images (log scale)")
            ax.grid(True, which="major", lw=0.3, alpha=0.5)
        axes.flat[0].set_ylabel("test accuracy")
        handles.append(Line2D([], [], color="grey", lw=0.8, ls=":", label="chance"))
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5),
                   frameon=False)
        fig.suptitle("Learning curves: VAE features (solid), matched pixel PCA (dashed)")
        save_figure(fig, path)


def plot_probes(probes: dict[str, Any], n_classes: int, path: Path) -> None:
    """Where the class information sits: accuracy on each channel alone (bars), on each
    spatial position alone (a map), and the drop when each channel is left out (bars)."""
    c, h, w = probes["shape"]
    whole = probes["all"]["accuracy"]
    guess = chance(n_classes)

    def bars(ax, entries, key, ci_key, colour):
        values = np.array([e[key] for e in entries])
        low = values - np.array([e[ci_key][0] for e in entries])
        high = np.array([e[ci_key][1] for e in entries]) - values
        ax.bar(range(len(entries)), values, color=colour, yerr=[low, high], capsize=2,
               error_kw={"lw": 0.8})  # 95% bootstrap intervals
        step = 1 if len(entries) <= 16 else 4
        ax.set_xticks(range(0, len(entries), step))
        ax.set_xlabel("latent channel")

    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(WIDTH, 2.7), layout="constrained",
                                 gridspec_kw={"width_ratios": [1.2, 1, 1.2]})
        ax = axes[0]
        bars(ax, probes["channels"], "accuracy", "ci", plt.get_cmap("tab10")(0))
        ax.axhline(whole, color="black", lw=0.8, ls="--")
        ax.axhline(guess, color="grey", lw=0.8, ls=":")
        top = max([whole, guess] + [e["ci"][1] for e in probes["channels"]])
        ax.set_ylim(0, top * 1.1)
        ax.set_ylabel("test accuracy")
        ax.set_title("One channel alone")

        ax = axes[1]
        grid = np.array([[cell["accuracy"] for cell in row] for row in probes["positions"]])
        low, high = min(guess, grid.min()), max(whole, grid.max())
        im = ax.imshow(grid, cmap="viridis", vmin=low, vmax=max(high, low + 1e-3),
                       interpolation="nearest")
        if h * w <= 64:  # cells large enough to print their accuracy in
            for i in range(h):
                for j in range(w):
                    colour = "black" if grid[i, j] > low + 0.6 * (high - low) else "white"
                    ax.text(j, i, f"{100 * grid[i, j]:.0f}", ha="center", va="center",
                            color=colour, fontsize=6 if h * w > 16 else 7)
        else:
            fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set_xticks(range(w))
        ax.set_yticks(range(h))
        ax.set_xlabel("latent column")
        ax.set_ylabel("latent row")
        ax.set_title("One position alone (%)")

        ax = axes[2]
        if probes["without_channel"]:
            bars(ax, probes["without_channel"], "drop", "drop_ci", plt.get_cmap("tab10")(3))
            ax.axhline(0, color="black", lw=0.6)
            ax.set_ylabel("accuracy lost (all - without)")
        else:
            bare(ax)
            ax.text(0.5, 0.5, "one channel:\nnothing to leave out", ha="center", va="center",
                    transform=ax.transAxes)
        ax.set_title("Each channel left out")
        handles = [Line2D([], [], color="black", lw=0.8, ls="--", label=f"all channels ({whole:.1%})"),
                   Line2D([], [], color="grey", lw=0.8, ls=":", label="chance")]
        fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False)
        whole_name = "latent" if probes["label"] == "latent" else f"{probes['label']} latent"
        fig.suptitle(f"{probes['model_label']} on parts of the {whole_name} ({c}x{h}x{w})")
        save_figure(fig, path)


def flat(latents: dict[str, np.ndarray], key: str) -> np.ndarray:
    """(N, C, h, w) -> (N, C*h*w), in C order: channel-major, then row, then column."""
    array = latents[key]
    return array.reshape(len(array), -1)


def feature_names(shape: tuple[int, ...], n: int) -> list[str]:
    """Name flattened columns 0..n-1 of a (C, h, w) latent by channel and position."""
    if len(shape) != 3:
        return [f"feature {i}" for i in range(n)]
    return [f"feature {i} (channel {ch}, row {r}, col {c})"
            for i, (ch, r, c) in enumerate(zip(*np.unravel_index(range(n), shape)))]


def get(metrics: dict, path: Path, *keys: str) -> Any:
    """metrics[k1][k2]...; a missing key is a VaelabError naming the file."""
    value: Any = metrics
    for key in keys:
        try:
            value = value[key]
        except (KeyError, TypeError, IndexError):
            raise VaelabError(f"metrics at {path} lacks {'/'.join(keys)}; delete it and rerun "
                              "`make report`") from None
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Draw the report's figures")
    parser.add_argument("run_dir", type=Path, help="run folder with latents.npz and metrics.json")
    parser.add_argument("data", type=Path, help="dataset.npz from analysis.data")
    parser.add_argument("out", type=Path, help="folder to write the PNGs into")
    parser.add_argument("--seed", type=int, default=0, help="PCA random_state and point order")
    args = parser.parse_args(argv)

    classes = read_json(args.data.with_name(DATASET), "dataset description")["classes"]
    data = load_npz(args.data, "dataset", ("x_test", "y_test"))
    latents = load_latents(args.run_dir / LATENTS)
    vae_sets = feature_set_keys(latents)  # .sample() and mean & std, or the latent
    primary = FEATURE_SETS[vae_sets[0]].arrays[0]  # "sample" or "latent": (N, C, h, w)
    encode_file = args.run_dir / ENCODE  # absent: a run from before encoder-only models
    encode = read_json(encode_file, "encoder description") if encode_file.exists() else {}
    recon = (load_npz(args.run_dir / RECONSTRUCTIONS, "reconstructions",
                      ("originals", "reconstructions", "labels", "mse")) if has_decoder(encode) else None)
    metrics_path = args.run_dir / METRICS
    metrics = read_json(metrics_path, "metrics")
    for key in ("models", "feature_sets", "results"):
        get(metrics, metrics_path, key)
    y_test = latents["y_test"]
    if (len(y_test) != len(latents[f"test_{primary}"])
            or len(latents["y_train"]) != len(latents[f"train_{primary}"])):
        raise VaelabError(f"latents at {args.run_dir / LATENTS} have mismatched label and "
                          "latent counts; delete it and rerun")
    if max(y_test.max(initial=0), latents["y_train"].max(initial=0)) >= len(classes):
        raise VaelabError(f"latents at {args.run_dir} use labels beyond the {len(classes)} classes "
                          f"of {args.data}; the run was encoded from another dataset, delete it")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    plot_examples(data["x_test"], data["y_test"], classes, out / figure_png("examples"))

    best = get(metrics, metrics_path, "best")
    model_key, fs_key = get(best, metrics_path, "model"), get(best, metrics_path, "feature_set")
    result = get(metrics, metrics_path, "results", model_key, fs_key)
    model_label = metrics["models"].get(model_key, {}).get("label", model_key)
    fs_label = metrics["feature_sets"].get(fs_key, {}).get("label", fs_key)
    accuracy = best.get("accuracy", result.get("accuracy"))
    plot_confusion_best(get(result, metrics_path, "confusion"), metrics.get("classes", classes),
                        f"{model_label} on {fs_label} latents: accuracy {accuracy:.1%}",
                        out / figure_png("confusion_best"))
    plot_confusion_all(metrics, out / figure_png("confusion_all"))

    # The feature sets the classifiers saw: .sample() (N, C*h*w) and mean & std (N, 2*C*h*w),
    # or a deterministic encoder's latent (N, C*h*w).
    train_sets, test_sets = feature_sets(latents, "train"), feature_sets(latents, "test")
    features = {fs: (FEATURE_SETS[fs].label, train_sets[fs], test_sets[fs]) for fs in vae_sets}
    y_train = latents["y_train"]
    panels = {"pca": {}, "lda": {}}
    summary: dict[str, dict] = {"pca": {}, "lda": {}}
    for key, (title, train, test) in features.items():
        for kind, (train_points, points, ratios) in (
                ("pca", project_pca(train, test, args.seed)),
                ("lda", project_lda(train, y_train, test))):
            panels[kind][key] = (title, points, ratios)
            summary[kind][key] = {"explained_variance_ratio": ratios,
                                  "centroid_accuracy": centroid_accuracy(train_points, y_train,
                                                                         points, y_test)}
    plot_pca(panels["pca"], y_test, classes, out / figure_png("pca"), args.seed)
    plot_pca(panels["lda"], y_test, classes, out / figure_png("lda"), args.seed, kind="lda")

    test_primary = flat(latents, f"test_{primary}")  # (N, C*h*w)
    plot_kde(test_primary, y_test, classes, out / figure_png("kde"),
             feature_names(latents[f"test_{primary}"].shape[1:], min(4, test_primary.shape[1])),
             FEATURE_SETS[vae_sets[0]].label)

    if recon is None:
        plot_no_reconstructions(Path(encode["model"]["name"]).name, out / figure_png("reconstructions"))
    else:
        mse = float(np.asarray(recon["mse"]).reshape(-1)[0])  # stored as () or (1,)
        # A KL autoencoder decodes its latent mean, a deterministic one its latent.
        plot_reconstructions(recon["originals"], recon["reconstructions"], recon["labels"], classes,
                             mse, out / figure_png("reconstructions"),
                             "the latent mean" if primary == "sample" else "the latent")
    summary["reconstructions"] = recon is not None  # False: the report leaves Figure 9 out
    plot_learning_curves(get(metrics, metrics_path, "learning_curves"), metrics["feature_sets"],
                         metrics["models"], len(classes), out / figure_png("learning_curves"),
                         metrics.get("feature_set_order"))
    probes = read_json(args.run_dir / PROBES, "latent probes")
    model = probes.get("model")
    plot_probes(probes | {"model_label": metrics["models"].get(model, {}).get("label", model)},
                len(classes), out / figure_png("probes"))
    # figures.json last, after every PNG exists.
    write_json(out / FIGURES_INFO, summary)
    print(f"figures: {len(FIGURES)} PNGs -> {out}", file=sys.stderr)
    # Beside the folder, not in it: the folder holds the figures alone.
    deps.write([out / FIGURES_INFO, *(out / name for name in FIGURES)], __file__,
               out.parent / f"{out.name}.d")


if __name__ == "__main__":
    run_main(main)
