"""Stage 4b: compare VAE variants: one reconstruction panel, a PSNR/SSIM summary and the
tests behind every ranking of the variants.

Run:
    python -m analysis.variants build/compare/reconstructions.png build/runs/A build/runs/B ...

Writes the panel (originals on top, then one row per variant that has a decoder, the same
test images throughout) and, next to it:

* ``variants.json``: per variant, the mean PSNR and SSIM over the fixed test sample decoded
  by ``analysis.encode`` (scikit-image implementations; None for an encoder-only variant,
  ``has_decoder`` false), its resolution, and the label the report uses for it: the run
  name, or "VAE @ R px" when the runs differ in resolution (RESOLUTION="32 64");
* ``variant-tests.json`` (``variant_tests``): variants grouped by identical latents (one
  encoder), and the paired tests that decide what the report may say of them: the leading
  encoder against each other one, row by row of Table C1 (McNemar, Holm over the rows);
  every pair of encoders' best results (McNemar, Holm over the pairs); and, per PSNR and
  SSIM, the variant with the highest mean against each other decoder (paired bootstrap
  interval of the mean difference over the same images). The report states a ranking only
  where these support it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from analysis.autoencoders import is_real_model
from analysis.common import VaelabError, atomic_path, run_main, write_json
from analysis.runs import (VARIANT_TESTS, VARIANTS, feature_set_kind, has_decoder, read_config, read_encode,
                           read_metrics, read_predictions, read_reconstructions)
from analysis.config import run_name
from analysis.stats import ALPHA, LEVEL, ROUND, delta_ci, judge_family, paired

PRINT_WIDTH = 6.7  # inches: one A4 text width, as analysis.figures.WIDTH


def summarise(run: Path) -> dict:
    """One run's row; PSNR and SSIM are None (and images 0) for an encoder-only run."""
    encode = read_encode(run)
    decoder = has_decoder(encode)
    recon = read_reconstructions(run, ("psnr", "ssim", "originals")) if decoder else None
    return {
        "name": run.name, "model": encode["model"]["name"], "precision": encode["precision"],
        "vae_name": run_name(encode["model"]["name"]),
        "resolution": int(encode["resolution"]),
        "untrained": encode["model"]["untrained"],
        "autoencoder_class": encode["model"]["autoencoder_class"],
        "revision": encode["model"]["revision"],
        # Equal latents checksums: one encoder under the same settings, so the same latents
        # and classifier results (None, in files from before they were recorded: never equal).
        "encoder_sha256": encode["encoder_sha256"],
        "latents_sha256": encode["latents_sha256"],
        "force_upcast": encode["vae_config"]["force_upcast"],
        "scaling_factor": encode["vae_config"]["scaling_factor"],
        "has_decoder": decoder,
        "psnr_mean": round(float(np.mean(recon["psnr"])), 2) if decoder else None,
        "ssim_mean": round(float(np.mean(recon["ssim"])), 4) if decoder else None,
        "images": int(len(recon["psnr"])) if decoder else 0,
    }


def summarise_all(runs: list[Path]) -> list[dict]:
    """summarise() per run, each with its ``label``: "sd-vae-ft-ema @ 64 px" when the runs
    differ in resolution, else the run name."""
    stats = [summarise(r) for r in runs]
    by_resolution = len({s["resolution"] for s in stats}) > 1
    for s in stats:
        s["label"] = f"{s['vae_name']} @ {s['resolution']} px" if by_resolution else s["name"]
    return stats


def encoder_groups(stats: list[dict]) -> list[list[int]]:
    """Variant indices grouped by identical latents (one encoder, same settings), in order.

    Such variants have the same classifier results by construction (analysis.classify
    reuses them), so they are compared, and shown, once; only their decoders differ."""
    groups: dict[str, list[int]] = {}
    for i, v in enumerate(stats):
        groups.setdefault(v["latents_sha256"] or f"run:{v['name']}", []).append(i)
    return list(groups.values())


def vae_sets(metrics: dict) -> list[str]:
    return [fs for fs in metrics["feature_set_order"] if feature_set_kind(metrics["feature_sets"][fs]) == "vae"]


def correct(predictions: dict, model: str, fs: str) -> np.ndarray:
    """(M,) bool: which test images ``model`` on ``fs`` classified right."""
    return np.asarray(predictions[f"{model}__{fs}"]) == np.asarray(predictions["y_true"])


def row_tests(metrics: list[dict], predictions: list[dict], leader: int, seed: int) -> dict:
    """The leading encoder against each other encoder, on every row of Table C1 (a real
    classifier on a VAE feature set) that both have: accuracies, the paired test, and the
    count of higher / tied / lower rows with how many of each a test supports. One family
    (Holm) over all rows of all rivals. ``random_rows``: the random predictor's rows, left out:
    it never reads the features, so it predicts alike for every encoder."""
    lead = metrics[leader]
    tests, where = [], []
    for g, m in enumerate(metrics):
        if g == leader:
            continue
        for model in (k for k in lead["model_order"] if is_real_model(k)):
            for fs in (f for f in vae_sets(lead) if f in vae_sets(m) and model in m["results"]):
                tests.append(paired(correct(predictions[leader], model, fs), correct(predictions[g], model, fs), seed))
                where.append((g, model, fs))
    rivals = {}
    for (g, model, fs), t in zip(where, judge_family(tests)):
        rows = rivals.setdefault(g, [])
        rows.append({"model": model, "feature_set": fs, "leader_accuracy": lead["results"][model][fs]["accuracy"],
                     "rival_accuracy": metrics[g]["results"][model][fs]["accuracy"]} | t)
    out = []
    for g, rows in rivals.items():
        higher = [r for r in rows if r["delta"] > 0]
        lower = [r for r in rows if r["delta"] < 0]
        out.append({"group": g, "rows": rows, "higher": len(higher), "tied": len(rows) - len(higher) - len(lower),
                    "lower": len(lower), "higher_significant": sum(r["significant"] for r in higher),
                    "lower_significant": sum(r["significant"] for r in lower),
                    "min_p_adjusted": min(r["p_adjusted"] for r in rows)})
    random_rows = sum(not is_real_model(k) for k in lead["model_order"]) * len(vae_sets(lead))
    return {"family_size": len(tests), "random_rows": random_rows if out else 0, "rivals": out}


def best_tests(metrics: list[dict], predictions: list[dict], seed: int) -> list[dict]:
    """Every pair of encoders' best results (metrics' ``best``), first minus second, paired
    on the same test images; one family (Holm) over the pairs."""
    pairs = [(a, b) for a in range(len(metrics)) for b in range(a + 1, len(metrics))]
    tests = [paired(*(correct(predictions[g], metrics[g]["best"]["model"], metrics[g]["best"]["feature_set"])
                      for g in (a, b)), seed) for a, b in pairs]
    return [{"a": a, "b": b} | t for (a, b), t in zip(pairs, judge_family(tests))]


def measure_tests(scores: dict[int, np.ndarray], seed: int) -> dict:
    """One measure's per-image scores (variant index -> (M,) array, the same images for all):
    every pair ``a`` < ``b`` (``a`` minus ``b``: the mean difference, its paired bootstrap
    interval, ``established`` when that interval excludes 0); the ``leader`` (highest mean,
    the earlier on ties) and ``best``: the leader and every variant whose difference to it is
    not established (those the sample cannot tell apart from the best)."""
    means = {i: float(np.mean(x)) for i, x in scores.items()}
    order = sorted(scores)
    pairs = []
    for k, a in enumerate(order):
        for b in order[k + 1:]:
            low, high = delta_ci(scores[b], scores[a], seed)
            pairs.append({"a": a, "b": b, "delta": round(means[a] - means[b], ROUND),
                          "ci": [round(low, ROUND), round(high, ROUND)], "established": bool(low > 0 or high < 0)})
    leader = max(order, key=lambda i: (means[i], -i))
    apart = {p["b"] if p["a"] == leader else p["a"] for p in pairs if leader in (p["a"], p["b"]) and p["established"]}
    return {"leader": leader, "best": [i for i in order if i not in apart], "pairs": pairs}


def recon_tests(scores: dict[str, dict[int, np.ndarray]], images: int, seed: int) -> dict:
    """``measure_tests`` of each measure ("psnr", "ssim" -> decoded variant index -> (M,)
    per-image scores over the shared test images); empty with fewer than two decoders."""
    if len(next(iter(scores.values()), {})) < 2:
        return {}
    return {"images": images, "level": LEVEL, **{m: measure_tests(per, seed) for m, per in scores.items()}}


def decide(stats: list[dict], metrics: list[dict], predictions: list[dict], scores: dict, seed: int) -> dict:
    """variant-tests.json from what the runs hold: ``stats`` (variants.json's rows), one
    metrics.json and predictions.csv per encoder group (encoder_groups' order) and the decoded
    variants' per-image ``scores`` (recon_tests). The leading encoder: the highest best
    accuracy, the earlier on ties. Indices are positions in ``stats`` (variants) or in
    ``groups`` (encoders)."""
    groups = encoder_groups(stats)
    leader = max(range(len(groups)), key=lambda g: (metrics[g]["best"]["accuracy"], -g))
    images = max((s["images"] for s in stats), default=0)
    return {"alpha": ALPHA, "groups": groups, "leader": leader,
            "rows": row_tests(metrics, predictions, leader, seed),
            "best": best_tests(metrics, predictions, seed),
            "reconstruction": recon_tests(scores, images, seed)}


def variant_tests(runs: list[Path], stats: list[dict]) -> dict:
    """``decide`` on the runs' files, seeded by the primary run's SEED."""
    groups = encoder_groups(stats)
    metrics = [read_metrics(runs[g[0]]) for g in groups]
    predictions = [read_predictions(runs[g[0]]) for g in groups]
    for g, p in zip(groups, predictions):
        if p["y_true"] != predictions[0]["y_true"]:
            raise VaelabError(f"run {runs[g[0]]} classified other test images than {runs[0]}; rebuild "
                              "both with the same DATASET and LIMIT")
    decoded = {i: read_reconstructions(runs[i], ("psnr", "ssim")) for i, s in enumerate(stats) if s["has_decoder"]}
    scores = {m: {i: rec[m] for i, rec in decoded.items()} for m in ("psnr", "ssim")}
    return decide(stats, metrics, predictions, scores, int(read_config(runs[0])["seed"]))


def plot_panel(runs: list[Path], stats: list[dict], out: Path) -> None:
    """Originals, then one row per run that has a decoder (encoder-only runs have no row; with
    none at all, a one-line figure saying so, which the report leaves out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kept = [(run, s) for run, s in zip(runs, stats) if s["has_decoder"]]
    if not kept:
        fig = plt.figure(figsize=(PRINT_WIDTH, 0.6))
        fig.text(0.5, 0.5, "No reconstructions: no variant has a decoder", ha="center", va="center")
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png", dpi=150, metadata={"Software": None})
        plt.close(fig)
        return
    runs, stats = [run for run, _ in kept], [s for _, s in kept]
    recons = [read_reconstructions(r, ("originals", "reconstructions")) for r in runs]
    originals = recons[0]["originals"]
    for run, rec in zip(runs, recons):
        if not np.array_equal(rec["originals"], originals):
            raise VaelabError(f"run {run} decoded other test images than {runs[0]}; rebuild both "
                              "with the same DATASET and LIMIT")
    rows, cols = len(runs) + 1, len(originals)
    # Drawn at its print size, one text width (17 cm, like analysis.figures), with the row
    # labels in a 1.6-inch margin: the report shows it unscaled, so 7 pt text stays 7 pt.
    width, margin = PRINT_WIDTH, 1.6
    cell = min((width - margin) / max(cols, 1), 0.9)
    fig, axes = plt.subplots(rows, cols, figsize=(width, cell * rows + 0.15), squeeze=False,
                             gridspec_kw={"left": margin / width, "right": 0.995, "top": 0.99,
                                          "bottom": 0.01, "wspace": 0.06, "hspace": 0.06})
    labels = ["original"] + [f"{s['label']}\n{s['psnr_mean']:.1f} dB, SSIM {s['ssim_mean']:.2f}"
                             for s in stats]
    images = [originals] + [rec["reconstructions"] for rec in recons]
    for i, (label, row) in enumerate(zip(labels, images)):
        for j in range(cols):
            ax = axes[i][j]
            ax.imshow(row[j], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
        axes[i][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=150, metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Compare VAE variants")
    parser.add_argument("out", type=Path, help="reconstruction panel PNG to write")
    parser.add_argument("runs", type=Path, nargs="+", help="run directories, primary first")
    args = parser.parse_args(argv)
    stats = summarise_all(args.runs)
    # variants.json and its tests first: make tracks the panel, so it must be the last file written.
    write_json(args.out.with_name(VARIANTS), stats)
    write_json(args.out.with_name(VARIANT_TESTS), variant_tests(args.runs, stats))
    plot_panel(args.runs, stats, args.out)


if __name__ == "__main__":
    run_main(main)
