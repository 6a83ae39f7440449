"""Table rows: what each of the report's tables shows, one function per table.

Not run on its own. ``report.context`` calls these and hands the rows to the template, which
lays them out; numbers are written by ``report.formatting`` (its functions here, its Jinja
filters there). A row holds values and flags (best, significant), never a sentence.
"""

from __future__ import annotations

from analysis.autoencoders import MEAN_STD_VS_SAMPLE, is_real_model
from report import facts as F
from report.facts import BASELINE_COMPARISONS, ORIGINAL_ACCURACY, sets_of_kind
from report.formatting import acc, ci_text, p_text, pts


def shown_baselines(metrics: dict) -> list[str]:
    """The pixel baselines Table 3 shows: one that repeats an earlier one in every row (two
    PCAs capped at the same number of components are the same features) is shown once."""
    shown: list[str] = []
    for fs in sets_of_kind(metrics, "baseline"):
        def column(key):
            return [(metrics["results"][m][key]["accuracy"], metrics["results"][m][key].get("accuracy_ci"))
                    for m in metrics["model_order"]]
        if not any(F.width(metrics, fs) == F.width(metrics, other) and column(fs) == column(other)
                   for other in shown):
            shown.append(fs)
    return shown


def baseline_columns(metrics: dict) -> list[dict]:
    """Headers of the "Pixel baselines" column group: 'Pooled 48', 'PCA 64', 'PCA 128'."""
    columns = []
    for fs in shown_baselines(metrics):
        info = metrics["feature_sets"][fs]
        short = "PCA" if info.get("matches") else "Pooled"
        columns.append({"key": fs, "label": f"{short} {info['n_features']}", "title": info["label"]})
    return columns


def results_rows(metrics: dict, seeds: dict | None = None) -> list[dict]:
    """The original's table: Model | Accuracy .sample() | Accuracy mean & std (+ original),
    then the pixel baselines; every accuracy with its 95% bootstrap interval and, with
    ``seeds`` (seeds.json), its mean and standard deviation over the seeds (``spread``)."""
    best_per_fs = {fs: best["accuracy"] for fs, best in metrics["best_by_feature_set"].items()}

    def cell(key: str, fs: str) -> dict:
        res = metrics["results"][key][fs]
        over = seeds["results"][key][fs] if seeds else None
        return {"value": acc(res["accuracy"]), "ci": ci_text(res.get("accuracy_ci")),
                "best": is_real_model(key) and res["accuracy"] == best_per_fs[fs],
                "spread": f"{acc(over['mean'])} ± {acc(over['sd'])}" if over else ""}

    rows = []
    for key in metrics["model_order"]:
        rows.append({
            "key": key, "label": metrics["models"][key]["label"], "random": not is_real_model(key),
            "cells": [cell(key, fs) for fs in sets_of_kind(metrics, "vae")],
            "baseline_cells": [cell(key, fs) for fs in shown_baselines(metrics)],
            "original": ORIGINAL_ACCURACY.get(key, "–"),
            "scaled": metrics["models"][key]["scaled"],
            "description": metrics["models"][key]["description"],
        })
    return rows


def comparison_cell(comp: dict, over_seeds: dict | None = None) -> dict:
    lo, hi = comp["ci"]
    return {"delta": pts(comp["delta"]), "ci": f"[{pts(lo)}, {pts(hi)}]",
            "p": p_text(comp["p_value"]), "p_adjusted": p_text(comp["p_adjusted"]),
            "significant": comp["significant"], "only_a": comp["only_a_correct"],
            "only_b": comp["only_b_correct"],
            "sign": "up" if lo > 0 else "down" if hi < 0 else "",
            # With SEEDS: in how many seeds the verdict is this one (seeds.json decided it).
            "seeds": (f"{over_seeds['n_agree']}/{len(over_seeds['verdict'])} seeds" if over_seeds else ""),
            "holds": bool(over_seeds and over_seeds["holds"])}


def comparison_tables(metrics: dict, seeds: dict | None = None) -> dict | None:
    """Rows for the "VAE vs pixels" and "mean & std vs .sample()" tables, or None when the
    run has no comparisons (metrics.json from before the pixel baselines). With ``seeds``
    (seeds.json), each cell also says in how many seeds its verdict holds."""
    comps = metrics.get("comparisons")
    if not comps:
        return None
    keys = [m for m in metrics["model_order"] if m in comps]
    names = [n for n in BASELINE_COMPARISONS if all(n in comps[m] for m in keys)]

    def over(m: str, n: str) -> dict | None:
        return seeds["comparisons"][m][n] if seeds else None

    columns = []
    for name in names:
        first = comps[keys[0]][name]
        a, b = metrics["feature_sets"][first["a"]], metrics["feature_sets"][first["b"]]
        short = "PCA" if b.get("matches") else "pooled"
        columns.append({"name": name, "a": f"{a['label']} {a['n_features']}",
                        "b": f"{short} {b['n_features']}"})
    return {
        "family_sizes": metrics["tests"]["families"],
        "columns": columns,
        "baseline_rows": [{"label": metrics["models"][m]["label"],
                           "cells": [comparison_cell(comps[m][n], over(m, n)) for n in names]} for m in keys],
        "sample_rows": [{"label": metrics["models"][m]["label"],
                         **comparison_cell(comps[m][MEAN_STD_VS_SAMPLE], over(m, MEAN_STD_VS_SAMPLE))}
                        for m in keys if MEAN_STD_VS_SAMPLE in comps[m]],
    }


def prf_table(metrics: dict) -> dict:
    """Table 6: macro precision, recall and F1 per model and VAE feature set. A column that
    repeats another in every row (macro recall is accuracy on balanced test classes) is left
    out, and the table says so."""
    keys = ("accuracy", "precision_macro", "recall_macro", "f1_macro")
    rows = []
    for key in metrics["model_order"]:
        for fs in sets_of_kind(metrics, "vae"):
            res = metrics["results"][key][fs]
            rows.append({"label": metrics["models"][key]["label"],
                         "feature_set": metrics["feature_sets"][fs]["label"],
                         **{k: f"{res[k]:.4f}" for k in keys}})
    recall_is_accuracy = all(r["recall_macro"] == r["accuracy"] for r in rows)
    return {"rows": rows, "recall_is_accuracy": recall_is_accuracy}


# ---- tuned classifiers (tuned.json) -------------------------------------------------------

VERDICT_CELLS = {"higher": "ahead", "lower": "behind", "unclear": "not apart"}


def tuned_rows(metrics: dict, tuned: dict) -> list[dict]:
    """The tuning table: per tuned model and VAE feature set, the latent's and its pixel PCA's
    default and tuned accuracies, the tuned difference with its Holm-adjusted p, and the
    verdict at the default settings and tuned (analysis.verdicts.under_tuning decided both)."""
    rows = []
    for m in tuned["models"]:
        per = tuned["comparisons"].get(m, {})
        for name, c in ((n, per[n]) for n in BASELINE_COMPARISONS if n in per):  # Table 4's order
            a, b = tuned["results"][m][c["a"]], tuned["results"][m][c["b"]]
            fa, fb = metrics["feature_sets"][c["a"]], metrics["feature_sets"][c["b"]]
            rows.append({"label": metrics["models"][m]["label"],
                         "a": f"{fa['label']} {fa['n_features']}", "b": f"PCA {fb['n_features']}",
                         "a_default": acc(a["default_accuracy"]), "a_tuned": acc(a["accuracy"]),
                         "b_default": acc(b["default_accuracy"]), "b_tuned": acc(b["accuracy"]),
                         "delta": pts(c["delta"]), "ci": f"[{pts(c['ci'][0])}, {pts(c['ci'][1])}]",
                         "p_adjusted": p_text(c["p_adjusted"]), "significant": c["significant"],
                         "default_verdict": VERDICT_CELLS[c["default_verdict"]],
                         "verdict": VERDICT_CELLS[c["verdict"]], "changed": c["changed"]})
    return rows


def setting_text(value, unit: str = "") -> str:
    """One searched value as Appendix B prints it: 0.1, 'sqrt', '2 × scale'."""
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{text} {unit}".strip() if unit else text


def tuned_settings(metrics: dict, tuned: dict) -> list[dict]:
    """Appendix B's rows: per tuned model, its grid and defaults, then per feature set the
    chosen settings, their cross-validated accuracy and the search's rounds."""
    out = []
    for m in tuned["models"]:
        units = tuned.get("units", {}).get(m, {})

        def settings(params: dict) -> str:
            return ", ".join(f"{k}={setting_text(v, units.get(k, ''))}" for k, v in params.items())

        grid = "; ".join(f"{k} in {{{', '.join(setting_text(v, units.get(k, '')) for v in values)}}}"
                         for k, values in tuned["spaces"][m].items())
        sets, seen = [], set()
        for fs in tuned["feature_sets"]:
            r, info = tuned["results"][m][fs], metrics["feature_sets"][fs]
            if (info["label"], info["n_features"]) in seen:
                continue  # two pixel PCAs capped alike: the same features, one search
            seen.add((info["label"], info["n_features"]))
            sets.append({"feature_set": info["label"], "width": info["n_features"],
                         "chosen": settings(r["params"]), "default": r["default"],
                         "cv": acc(r["cv_accuracy"]),
                         "rounds": " → ".join(f"{x['candidates']}×{x['rows']:,}" for x in r["rounds"])})
        out.append({"label": metrics["models"][m]["label"], "grid": grid,
                    "defaults": settings(tuned["defaults"][m]), "sets": sets})
    return out
