"""Compare two runs on the same test images: paired statistics, config and figure changes.

Run:
    python -m report.diff build/runs/A build/runs/B build/diff-A-vs-B/diff.html
    python -m report.diff build/runs/A build/runs/B --table      # plain table on stdout
    python -m report.render pdf build/diff-A-vs-B/diff.html build/diff-A-vs-B/diff.pdf

A run is a run directory (``build/runs/<name>``: config.json, encode.json, metrics.json,
predictions.csv, figures/). For every model and feature set present in both runs it gives
the two accuracies, the delta (B - A), a 95% paired bootstrap interval of the delta over
the same test images and McNemar's exact p-value on the paired predictions, Holm-adjusted
over the table; analysis.diffstats computes and judges these, this module only words them.
Runs on different test sets are refused: paired tests need the same images in the same order.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import numpy as np

from analysis.common import VaelabError, run_main, write_text
from analysis.runs import (FIGURES_DIR, current_seeds, figure_png, filled, has_decoder, read_config,
                           read_encode, read_metrics, read_predictions, seed_dir)
from analysis import diffstats
from analysis.stats import ALPHA  # the level diffstats judged the rows at
from report import facts as F
from report import sentences as S

CONFIG_KEYS = ("vae", "revision", "seed", "device", "precision", "batch_size", "compile", "resolution")
ENCODE_KEYS = ("device", "device_name", "precision", "compiled", "dataset_sha256", "parameters", "cache_key")


def load_run(run: Path) -> dict:
    if not run.is_dir():
        raise VaelabError(f"run {run} does not exist; pass a run name under build/runs/ or a run directory")
    over = current_seeds(run)  # SEEDS: the seeds.json of the run's current results, if any
    return {"dir": run, "name": run.name, "config": read_config(run), "encode": read_encode(run),
            "metrics": read_metrics(run),
            "predictions": predictions_of(run),
            "seeds": over["seeds"] if over else [int(read_config(run)["seed"])]}


def predictions_of(folder: Path) -> dict[str, np.ndarray]:
    return {name: np.asarray(column, dtype=np.int64) for name, column in read_predictions(folder).items()}


def seed_results(run: dict, seed: int) -> tuple[dict, dict]:
    """(metrics, predictions) of one seed of a run: its own, or a further one of SEEDS."""
    if seed == run["seeds"][0]:
        return run["metrics"], run["predictions"]
    folder = seed_dir(run["dir"], seed)
    return read_metrics(folder), predictions_of(folder)


def over_seeds(a: dict, b: dict) -> dict | None:
    """The diff repeated for each seed both runs have (analysis.diffstats.across_seeds), when
    they share two or more; None otherwise."""
    common = [s for s in a["seeds"] if s in b["seeds"]]
    if len(common) < 2:
        return None
    return diffstats.across_seeds({s: (*(seed_results(a, s)[0], seed_results(b, s)[0]),
                                       seed_results(a, s)[1], seed_results(b, s)[1]) for s in common})


def config_differences(a: dict, b: dict) -> list[dict]:
    rows = []
    for source, keys in (("config", CONFIG_KEYS), ("encode", ENCODE_KEYS)):
        for key in keys:
            va, vb = a[source].get(key), b[source].get(key)
            if va != vb:
                rows.append({"key": key, "a": va, "b": vb})
    for key in ("autoencoder_class", "revision", "weights_sha256", "untrained"):
        va, vb = a["encode"]["model"].get(key), b["encode"]["model"].get(key)
        if va != vb:
            rows.append({"key": f"model {key}", "a": va, "b": vb})
    return rows


def compare(a: dict, b: dict, seed: int = 0) -> list[dict]:
    """The table's rows (analysis.diffstats computes and judges them), labelled for display:
    a feature set whose width differs between the runs shows both widths."""
    ya, yb = a["predictions"]["y_true"], b["predictions"]["y_true"]
    if a["encode"].get("dataset_sha256") != b["encode"].get("dataset_sha256") or not np.array_equal(ya, yb):
        raise VaelabError(f"runs {a['name']} and {b['name']} used different test sets; paired "
                          "comparisons need the same images (same DATASET and LIMIT)")
    ma, mb = a["metrics"], b["metrics"]
    seeds = over_seeds(a, b) if "seeds" in a and "seeds" in b else None
    rows = []
    for row in diffstats.compare(ma, mb, a["predictions"], b["predictions"], seed):
        fs = row["feature_set"]
        widths = [m["feature_sets"][fs]["n_features"] for m in (ma, mb)]
        repeat = seeds["rows"].get(f"{row['model']}__{fs}") if seeds else None
        rows.append(row | {"model": ma["models"][row["model"]]["label"],
                           "feature_set": ma["feature_sets"][fs]["label"]
                           + (f" ({widths[0]}/{widths[1]})" if widths[0] != widths[1] else ""),
                           "seeds": repeat and repeat | {"of": len(seeds["seeds"])}})
    return rows


def feature_set_notes(a: dict, b: dict) -> list[str]:
    return S.sets_diff_sentences(F.sets_diff(a, b))


def decoder_notes(a: dict, b: dict) -> list[str]:
    return S.diff_decoder_sentences([run["name"] for run in (a, b) if not has_decoder(run["encode"])])


def changed_figures(a: dict, b: dict, out_dir: Path) -> list[dict]:
    """Figures whose bytes differ, copied next to the diff so that it is self-contained."""
    rows = []
    fig_a, fig_b = a["dir"] / FIGURES_DIR, b["dir"] / FIGURES_DIR
    if not fig_a.is_dir() or not fig_b.is_dir():
        return rows
    # An encoder-only run has no reconstructions to compare (its figure only says so).
    both_decode = has_decoder(a["encode"]) and has_decoder(b["encode"])
    for path in sorted(fig_a.glob("*.png")):
        if path.name == figure_png("reconstructions") and not both_decode:
            continue
        other = fig_b / path.name
        if other.is_file() and path.read_bytes() != other.read_bytes():
            names = []
            for side, src in (("a", path), ("b", other)):
                dst = out_dir / "figures" / f"{side}-{path.name}"
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                names.append(os.path.relpath(dst, out_dir))
            rows.append({"name": path.stem, "a": names[0], "b": names[1]})
    return rows


def format_table(a: dict, b: dict, rows: list[dict]) -> str:
    # Columns as wide as their longest entry: run names and feature sets are never cut.
    wm = max([len("model"), *(len(r["model"]) for r in rows)])
    wf = max([len("features"), *(len(r["feature_set"]) for r in rows)])
    wa, wb = max(len(a["name"]), 7), max(len(b["name"]), 7)
    seeds = any(r.get("seeds") for r in rows)
    head = f"{'model':{wm}s} {'features':{wf}s} {a['name']:>{wa}s} {b['name']:>{wb}s} " \
           f"{'delta':>8s} {'95% CI':>19s} {'McNemar p':>10s} {'Holm p':>10s}" \
           + (f" {'seeds: mean delta':>19s} {'same':>6s}" if seeds else "")
    # Run names and models, never the run directories: the output names no build folder.
    lines = [f"A = {a['name']} ({a['encode']['model']['name']})",
             f"B = {b['name']} ({b['encode']['model']['name']})"]
    if not rows:
        return "\n".join(lines + ["No feature set in common: no paired comparison."]) + "\n"
    lines += [head, "-" * len(head)]
    for r in rows:
        over = r.get("seeds")
        lines.append(f"{r['model']:{wm}s} {r['feature_set']:{wf}s} {r['acc_a']:{wa}.4f} "
                     f"{r['acc_b']:{wb}.4f} {r['delta']:+8.4f} [{r['ci'][0]:+.4f}, {r['ci'][1]:+.4f}] "
                     f"{r['p_value']:10.4g} {r['p_adjusted']:10.4g}{' *' if r['significant'] else '  ' if over else ''}"
                     + (f" {over['mean_delta']:+10.4f} ± {over['sd_delta']:.4f} {over['n_agree']:>3d}/{over['of']:<2d}"
                        if over else ""))
    lines.append(f"* Holm-adjusted p < {ALPHA} (over the {len(rows)} rows: one family of tests); "
                 "delta = B - A")
    if seeds:
        n = next(r["seeds"]["of"] for r in rows if r.get("seeds"))
        lines.append(f"seeds: the mean and standard deviation of delta over the {n} seeds both runs "
                     "have, and in how many the verdict (B significantly ahead, behind, or neither; "
                     "each seed's rows Holm-corrected on their own) is the first seed's")
    return "\n".join(lines) + "\n"


def shared_encoder(a: dict, b: dict) -> list[str]:
    """The comparison section's sentence when A and B share an encoder (identical latents:
    every row below is then zero), else nothing."""
    from analysis.variants import encoder_groups, summarise

    variants = [filled("variant", summarise(run["dir"])) for run in (a, b)]
    return [S.shared_encoder_sentence(s) for s in F.shared_encoders(variants, encoder_groups(variants))]


def render_diff(a: dict, b: dict, rows: list[dict], out: Path, shared: list[str]) -> str:
    from report.render import render_template

    return render_template("diff.html.j2", {
        "a": a, "b": b, "rows": rows, "shared": shared, "config_rows": config_differences(a, b),
        "notes": feature_set_notes(a, b) + decoder_notes(a, b),
        "figures": changed_figures(a, b, out.parent),
        "n_test": len(a["predictions"]["y_true"]),
        "n_significant": sum(r["significant"] for r in rows),
        "n_raw_significant": sum(r["raw_significant"] for r in rows), "alpha": ALPHA,
        # SEEDS on both sides: how many seeds the rows' "seeds" columns are over (0: none).
        "n_seeds": next((r["seeds"]["of"] for r in rows if r.get("seeds")), 0)})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Compare two runs")
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("out", type=Path, nargs="?", help="diff.html to write")
    parser.add_argument("--table", action="store_true", help="print the comparison table")
    args = parser.parse_args(argv)
    a, b = load_run(args.a), load_run(args.b)
    rows = compare(a, b, seed=int(a["config"].get("seed", 0)))
    shared = shared_encoder(a, b)
    if args.table or args.out is None:
        print(format_table(a, b, rows), end="")
        print("".join(f"\n{sentence}\n" for sentence in shared + feature_set_notes(a, b)
                      + decoder_notes(a, b)), end="")
    if args.out is not None:
        write_text(args.out, render_diff(a, b, rows, args.out, shared))


if __name__ == "__main__":
    run_main(main)
