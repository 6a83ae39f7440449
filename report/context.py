"""Everything the report template shows, derived from one build's files.

Not run on its own; ``report.render`` calls ``build_context``. Every number and every
sentence of the conclusions comes from this run's outputs (metrics.json, encode.json,
dataset.json, figures.json); nothing here is typed in except the original study's reported
figures, which the report shows as such for comparison. Wall-clock times (timings-*.json)
are left out on purpose: they differ between identical runs, and the report is
byte-identical across them (``report.timings`` gathers them into timings.json instead).
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from pathlib import Path

from analysis.autoencoders import FEATURE_SETS
from analysis.common import VaelabError, load_npz, read_json
from analysis.stats import holm
from report.labels import float_numbers

# Accuracies reported by the original "Predicting CIFAR-10 using VAEs" study (test set).
ORIGINAL_ACCURACY = {
    "logreg": "0.44–0.46", "rf": "0.44–0.47", "knn": "0.53", "svc": "0.61",
    "histgb": "0.57", "lightgbm": "0.57–0.58", "xgboost": "0.55–0.56", "random": "≈0.10",
}
ORIGINAL_BEST = 0.61
ORIGINAL_CONFUSED = [("cat", "dog"), ("automobile", "truck")]
ALPHA = 0.05  # significance level the conclusions use for McNemar's test
# metrics.json "comparisons" that pit a VAE feature set against its equal-size pixel baseline
# (a run has those its encoder class yields: analysis.autoencoders), in display order.
BASELINE_COMPARISONS = ("sample_vs_pixels_pooled", "latent_vs_pixels_pooled",
                        *(f"{fs}_vs_pixels_pca_{fs}" for fs in FEATURE_SETS))
DEFAULT_META = {"title": "Predicting CIFAR-10 from Stable Diffusion VAE latents",
                "subtitle": "Lab 10 report, reproduced with vaelab",
                "author": "", "affiliation": "", "course": "", "date": ""}


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


def load_metadata(path: Path | None) -> dict:
    """Title block from a small TOML file; the date from SOURCE_DATE_EPOCH when set."""
    meta = dict(DEFAULT_META)
    date = source_date()  # checked first: a bad value fails before anything is read
    if path is not None:
        try:
            with open(path, "rb") as fh:
                meta.update({k: str(v) for k, v in tomllib.load(fh).items() if k in DEFAULT_META})
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
    if date:
        meta["date"] = date
    elif not meta["date"]:
        meta["date"] = dt.date.today().isoformat()
    return meta


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


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


def sets_of_kind(metrics: dict, kind: str) -> list[str]:
    """Feature sets of one kind ("vae" or "baseline") in display order; older metrics.json
    files without "kind" hold VAE feature sets only."""
    return [fs for fs in metrics["feature_set_order"]
            if metrics["feature_sets"][fs].get("kind", "vae") == kind]


def ci_text(ci: list[float] | None, digits: int = 3) -> str:
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else ""


def pts(x: float) -> str:
    """An accuracy difference in percentage points, signed: 0.0523 -> '+5.2'."""
    return f"{100 * x:+.1f}".replace("-", "−")


def unsigned(x: float) -> str:
    """Accuracy points, signed only when negative: 0.0523 -> '5.2', -0.013 -> '−1.3'."""
    return f"{100 * x:.1f}".replace("-", "−")


def p_text(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def baseline_columns(metrics: dict) -> list[dict]:
    """Headers of the "Pixel baselines" column group: 'Pooled 48', 'PCA 64', 'PCA 128'."""
    columns = []
    for fs in sets_of_kind(metrics, "baseline"):
        info = metrics["feature_sets"][fs]
        short = "PCA" if info.get("matches") else "Pooled"
        columns.append({"key": fs, "label": f"{short} {info['n_features']}", "title": info["label"]})
    return columns


def results_rows(metrics: dict) -> list[dict]:
    """The original's table: Model | Accuracy .sample() | Accuracy mean & std (+ original),
    then the pixel baselines; every accuracy with its 95% bootstrap interval."""
    fs_order = metrics["feature_set_order"]
    best_per_fs = {fs: max(metrics["results"][m][fs]["accuracy"] for m in metrics["model_order"]
                           if m != "random") for fs in fs_order}

    def cell(key: str, fs: str) -> dict:
        res = metrics["results"][key][fs]
        return {"value": f"{res['accuracy']:.4f}", "ci": ci_text(res.get("accuracy_ci")),
                "best": key != "random" and res["accuracy"] == best_per_fs[fs]}

    rows = []
    for key in metrics["model_order"]:
        rows.append({
            "key": key, "label": metrics["models"][key]["label"],
            "cells": [cell(key, fs) for fs in sets_of_kind(metrics, "vae")],
            "baseline_cells": [cell(key, fs) for fs in sets_of_kind(metrics, "baseline")],
            "original": ORIGINAL_ACCURACY.get(key, "–"),
            "scaled": metrics["models"][key]["scaled"],
            "description": metrics["models"][key]["description"],
        })
    return rows


def fs_prose(metrics: dict, fs: str) -> str:
    """A feature set as the conclusions name it: '.sample() latents (64 features)'."""
    info = metrics["feature_sets"][fs]
    if info.get("kind", "vae") == "vae":
        return f"{info['label']} latents ({info['n_features']} features)"
    if info.get("matches"):
        return f"pixel PCA ({info['n_features']} components)"
    return f"pooled pixels ({info['n_features']} features)"


# Families of paired tests, each Holm-corrected on its own: every classifier's VAE feature
# sets against their equal-size pixel baselines (one question: does the VAE beat pixels?),
# and every classifier's mean & std against its .sample() (another question).
FAMILIES = {"vae_vs_pixels": BASELINE_COMPARISONS, "mean_std_vs_sample": ("mean_std_vs_sample",)}


def with_holm(metrics: dict) -> dict:
    """``metrics`` with every comparison given ``family`` and ``p_adjusted`` (Holm over its
    family, analysis.stats.holm); the report calls a difference significant on that alone.
    metrics.json itself keeps the raw p-values only. Idempotent."""
    comps = metrics.get("comparisons") or {}
    out = {m: dict(per) for m, per in comps.items()}
    for family, names in FAMILIES.items():
        members = [(m, n) for m, per in comps.items() for n in per if n in names]
        for (m, n), p in zip(members, holm([comps[m][n]["p_value"] for m, n in members])):
            out[m][n] = comps[m][n] | {"family": family, "family_size": len(members),
                                       "p_adjusted": float(f"{p:.4g}")}
    return metrics | {"comparisons": out} if comps else metrics


def significant(comp: dict) -> bool:
    """Significant at ALPHA after Holm's correction within the comparison's family."""
    return comp["p_adjusted"] < ALPHA


def comparison_cell(comp: dict) -> dict:
    lo, hi = comp["ci"]
    return {"delta": pts(comp["delta"]), "ci": f"[{pts(lo)}, {pts(hi)}]", "p": p_text(comp["p_value"]),
            "p_adjusted": p_text(comp["p_adjusted"]),
            "significant": significant(comp), "only_a": comp["only_a_correct"],
            "only_b": comp["only_b_correct"],
            "sign": "up" if lo > 0 else "down" if hi < 0 else ""}


def comparison_tables(metrics: dict) -> dict | None:
    """Rows for the "VAE vs pixels" and "mean & std vs .sample()" tables, or None when the
    run has no comparisons (metrics.json from before the pixel baselines)."""
    comps = with_holm(metrics).get("comparisons")
    if not comps:
        return None
    keys = [m for m in metrics["model_order"] if m in comps]
    names = [n for n in BASELINE_COMPARISONS if all(n in comps[m] for m in keys)]
    columns = []
    for name in names:
        first = comps[keys[0]][name]
        a, b = metrics["feature_sets"][first["a"]], metrics["feature_sets"][first["b"]]
        short = "PCA" if b.get("matches") else "pooled"
        columns.append({"name": name, "a": a["label"], "b": f"{short} {b['n_features']}"})
    sizes = {family: sum(c.get("family") == family for per in comps.values() for c in per.values())
             for family in FAMILIES}
    return {
        "family_sizes": sizes,
        "columns": columns,
        "baseline_rows": [{"label": metrics["models"][m]["label"],
                           "cells": [comparison_cell(comps[m][n]) for n in names]} for m in keys],
        "sample_rows": [{"label": metrics["models"][m]["label"],
                         **comparison_cell(comps[m]["mean_std_vs_sample"])}
                        for m in keys if "mean_std_vs_sample" in comps[m]],
    }


def versus(comp: dict, a: str, b: str) -> str:
    """'.sample() latents beat pooled pixels by 5.2 points (95% CI 3.1 to 7.0, McNemar
    p = 0.001, Holm-adjusted p = 0.009)': beat/trail when the Holm-adjusted p is below
    ALPHA, else no clear difference."""
    lo, hi = comp["ci"]

    def p_is(x: float) -> str:
        return f"{'' if x < 0.001 else '= '}{p_text(x)}"

    p = f"McNemar p {p_is(comp['p_value'])}, Holm-adjusted p {p_is(comp['p_adjusted'])}"

    def size(x: float) -> str:
        return f"{100 * abs(x):.1f}"

    if significant(comp) and comp["delta"] > 0:
        return f"{a} beat {b} by {size(comp['delta'])} points (95% CI {size(lo)} to {size(hi)}, {p})"
    if significant(comp) and comp["delta"] < 0:
        return f"{a} trail {b} by {size(comp['delta'])} points (95% CI {size(hi)} to {size(lo)}, {p})"
    return (f"{a} and {b} are not clearly apart: {pts(comp['delta'])} points, 95% CI {pts(lo)} "
            f"to {pts(hi)} ({p})")


def vae_vs_pixels(metrics: dict) -> list[str]:
    """Conclusions on the equal-size pixel baselines, from metrics["comparisons"]."""
    comps = with_holm(metrics).get("comparisons")
    if not comps:
        return []
    best = metrics["best"]
    label = metrics["models"][best["model"]]["label"]
    mine = comps.get(best["model"], {})
    clauses = [versus(mine[n], fs_prose(metrics, mine[n]["a"]), fs_prose(metrics, mine[n]["b"]))
               for n in BASELINE_COMPARISONS if n in mine]
    out = []
    if clauses:
        out.append(f"Does the VAE help? Against pixels reduced to the same number of features, "
                   f"with the same classifier ({label}): " + "; ".join(clauses) + ".")
    tally = [c for m, per in comps.items() for n, c in per.items() if n in BASELINE_COMPARISONS]
    pairings = {n for per in comps.values() for n in per if n in BASELINE_COMPARISONS}
    if tally:
        up = sum(significant(c) and c["delta"] > 0 for c in tally)
        down = sum(significant(c) and c["delta"] < 0 for c in tally)
        raw = sum(c["p_value"] < ALPHA for c in tally)
        out.append(f"Over all {len(comps)} classifiers and the {len(pairings)} "
                   f"pairings ({len(tally)} tests, one family), the VAE features are significantly "
                   f"better than the equal-size pixel baseline in {up}, significantly worse in "
                   f"{down}, and not clearly apart in {len(tally) - up - down}, at Holm-adjusted "
                   f"p < {ALPHA} ({raw} of the {len(tally)} raw p-values are below {ALPHA}).")
    return out


def summary_baseline(metrics: dict) -> dict | None:
    """The best model on the pixel PCA as wide as its VAE feature set, for the summary."""
    best = metrics["best"]
    name = f"{best['feature_set']}_vs_pixels_pca_{best['feature_set']}"
    comp = (metrics.get("comparisons") or {}).get(best["model"], {}).get(name)
    if not comp:
        return None
    lo, hi = comp["ci"]
    return {"label": fs_prose(metrics, comp["b"]),
            "accuracy": metrics["results"][best["model"]][comp["b"]]["accuracy"],
            "delta": pts(comp["delta"]), "ci": f"{pts(lo)} to {pts(hi)}"}


def prf_rows(metrics: dict) -> list[dict]:
    """VAE feature sets only: the pixel baselines' macro scores are in metrics.csv."""
    rows = []
    for key in metrics["model_order"]:
        for fs in sets_of_kind(metrics, "vae"):
            res = metrics["results"][key][fs]
            rows.append({"label": metrics["models"][key]["label"],
                         "feature_set": metrics["feature_sets"][fs]["label"],
                         **{k: f"{res[k]:.4f}" for k in ("accuracy", "precision_macro",
                                                         "recall_macro", "f1_macro")}})
    return rows


def sample_vs_meanstd(metrics: dict) -> dict | None:
    """mean & std against .sample() over the real models; None for an encoder without both
    (a deterministic one has a single feature set)."""
    if not {"sample", "mean_std"} <= set(sets_of_kind(metrics, "vae")):
        return None
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
    tests = [per["mean_std_vs_sample"] for per in (with_holm(metrics).get("comparisons") or {}).values()
             if "mean_std_vs_sample" in per]
    return {"n_models": len(deltas), "n_better": len(better), "n_worse": len(worse),
            "better": better, "worse": worse, "mean_delta": mean_delta,
            "mean_delta_pts": f"{100 * mean_delta:+.1f}",
            "largest": max(deltas, key=lambda t: abs(t[1])),
            "n_tested": len(tests), "n_significant": sum(significant(t) for t in tests),
            "n_raw_significant": sum(t["p_value"] < ALPHA for t in tests)}


def sample_vs_meanstd_sentence(metrics: dict, svm: dict) -> str:
    """The conclusion on mean & std against .sample(), from sample_vs_meanstd."""
    best = metrics["best"]
    best_label = metrics["models"][best["model"]]["label"]
    if svm["n_better"] > svm["n_worse"]:
        verdict = "helps most models"
    elif svm["n_better"] < svm["n_worse"]:
        verdict = "hurts most models"
    else:
        verdict = "makes no consistent difference"
    n_fs = {fs: metrics["feature_sets"][fs]["n_features"] for fs in ("sample", "mean_std")}
    sentence = (
        f"Using the latent mean and standard deviation ({n_fs['mean_std']} features) instead of "
        f"one .sample() ({n_fs['sample']} features) {verdict}: it is better for {svm['n_better']} "
        f"of {svm['n_models']} classifiers and worse for {svm['n_worse']}, by "
        f"{svm['mean_delta_pts']} accuracy points on average (largest change: "
        f"{svm['largest'][0]}, {100 * svm['largest'][1]:+.1f} points)."
    )
    if svm["n_tested"]:
        raw = (f" ({svm['n_raw_significant']} of {svm['n_tested']} before the correction)"
               if svm["n_raw_significant"] != svm["n_significant"] else "")
        if svm["n_significant"] == 0:
            sentence += (f" None of these differences is significant at the {ALPHA} level "
                         f"(McNemar's exact test on the paired test predictions, Holm-corrected over "
                         f"the {svm['n_tested']} classifiers){raw}, so this run cannot tell the two "
                         f"feature sets apart.")
        else:
            sentence += (f" The difference is significant at the {ALPHA} level (McNemar's exact "
                         f"test on the paired test predictions, Holm-corrected over the "
                         f"{svm['n_tested']} classifiers) for {svm['n_significant']} of "
                         f"{svm['n_tested']} classifiers{raw}.")
        comp = with_holm(metrics)["comparisons"].get(best["model"], {}).get("mean_std_vs_sample")
        if comp:
            sentence += (f" For {best_label}: " + versus(comp, fs_prose(metrics, "mean_std"), fs_prose(metrics, "sample")) + ".")
    return sentence

def count_text(n: int) -> str:
    return f"{n:,}"


def curve_summary(metrics: dict) -> dict | None:
    """Facts of metrics.json's learning curves the conclusions state: per VAE feature set
    and model, the gain over the last step (``rising``: the full-size accuracy lies above the
    previous point's 95% band) and the VAE's lead over its equal-width pixel PCA at each size.
    None without curves of two sizes or more."""
    lc = metrics.get("learning_curves")
    if not lc or len(lc.get("sizes", [])) < 2:
        return None
    pixel_of = {info.get("matches"): key for key, info in metrics["feature_sets"].items()
                if info.get("matches") and key in lc["curves"]}
    rows = []
    for fs in sets_of_kind(metrics, "vae"):
        for model in lc["models"]:
            points = lc["curves"].get(fs, {}).get(model)
            if not points or len(points) < 2:
                continue
            prev, last = points[-2], points[-1]
            pixel = {p["n_train"]: p["accuracy"]
                     for p in lc["curves"].get(pixel_of.get(fs), {}).get(model, [])}
            leads = [(p["n_train"], p["accuracy"] - pixel[p["n_train"]]) for p in points
                     if p["n_train"] in pixel]
            rows.append({"fs": fs, "model": model, "prev": prev, "last": last,
                         "gain": last["accuracy"] - prev["accuracy"],
                         "rising": last["accuracy"] > prev["ci"][1],
                         "pixel": pixel_of.get(fs), "leads": leads})
    return {"rows": rows} if rows else None


def lead_text(leads: list[tuple[int, float]]) -> str:
    """Where the VAE leads its pixel baseline along a curve, in words."""
    ahead = [count_text(n) for n, d in leads if d > 0]
    behind = [count_text(n) for n, d in leads if d < 0]
    level = len(leads) - len(ahead) - len(behind)
    if ahead and behind:
        return (f"ahead at {', '.join(ahead)} and behind at {', '.join(behind)} training images: "
                "the curves cross")
    if not ahead and not behind:
        return "level at every size"
    side = "ahead" if ahead else "behind"
    return f"{side} at every size" if not level else f"{side} or level at every size"


def joined(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def learning_curve_sentences(metrics: dict, figure: str | None = None) -> list[str]:
    """Would more training images help, and do VAE and pixels cross? From the curves only.
    ``figure``: the curves' figure number (report.labels)."""
    summary = curve_summary(metrics)
    if summary is None:
        return []
    figure = figure or float_numbers({"curves": True})["fig:learning-curves"]
    rows = summary["rows"]
    models = metrics["models"]

    def name(fs: str) -> str:
        return metrics["feature_sets"][fs]["label"]

    prev_n, last_n = rows[0]["prev"]["n_train"], rows[0]["last"]["n_train"]
    gains = joined([f"{pts(r['gain'])} points for {models[r['model']]['label']} on {name(r['fs'])}"
                    for r in rows])
    rising = sum(r["rising"] for r in rows)
    if rising == len(rows):
        verdict = ("every curve still rises beyond the 95% interval of the smaller size, so these "
                   "accuracies are partly limited by the number of training images: more would help")
    elif rising == 0:
        verdict = ("no curve rises beyond the 95% interval of the smaller size, so at this size the "
                   "features, not the number of training images, limit these models")
    else:
        verdict = (f"{rising} of the {len(rows)} curves still {'rises' if rising == 1 else 'rise'} "
                   "beyond the 95% interval of the smaller size, so more training images would "
                   "help some of these models")
    out = [f"Learning curves (Figure {figure}): from {count_text(prev_n)} to {count_text(last_n)} training "
           f"images, test accuracy changes by {gains}; {verdict}."]
    clauses = []
    for fs in dict.fromkeys(r["fs"] for r in rows if r["pixel"] and r["leads"]):
        mine = [r for r in rows if r["fs"] == fs and r["pixel"] and r["leads"]]
        texts = {r["model"]: lead_text(r["leads"]) for r in mine}
        against = f"{name(fs)} against {fs_prose(metrics, mine[0]['pixel'])}"
        if len(set(texts.values())) == 1:
            clauses.append(f"{against} is {next(iter(texts.values()))} with "
                           f"{joined([models[m]['label'] for m in texts])}")
        else:
            clauses.append(f"{against} is " + joined([f"{t} with {models[m]['label']}"
                                                       for m, t in texts.items()]))
    if clauses:
        out.append("Along the same curves, " + "; ".join(clauses) + ".")
    return out


def probes_sentence(probes: dict | None, figure: str | None = None) -> str | None:
    """Where the class information sits, from probes.json (plus the model's ``model_label``):
    channels alone, positions alone, and the cost of leaving each channel out. ``figure``: the
    probes' figure number (report.labels)."""
    if not probes:
        return None
    figure = figure or float_numbers({"curves": True})["fig:probes"]
    c, h, w = probes["shape"]
    whole = probes["all"]["accuracy"]
    parts = [f"{probes['model_label']} on the whole {probes['label']} latent ({c}x{h}x{w}) reaches "
             f"{pct(whole)}"]
    chance = 1 / len(probes["classes"])
    if probes["all"]["ci"][0] <= chance:  # nothing above chance: nothing to locate
        return (f"Where the information sits (Figure {figure}): {parts[0]}, not clearly above chance "
                f"({pct(chance)}), so there is no class information to locate in its channels or "
                "positions.")
    if c > 1:
        channels = probes["channels"]
        top = max(channels, key=lambda e: e["accuracy"])
        low = min(e["accuracy"] for e in channels)
        parts.append(f"each channel alone reaches {pct(low)} to {pct(top['accuracy'])} "
                     f"(best: channel {top['channel']})")
        without = probes["without_channel"]
        worst = max(without, key=lambda e: e["drop"])
        clear = [e for e in without if e["drop_ci"][0] > 0]
        lo, hi = worst["drop_ci"]
        noise = ("no channel costs accuracy beyond the bootstrap noise when left out, so what "
                 "each carries is largely repeated in the others" if not clear else
                 f"{len(clear)} of the {c} channels cost accuracy beyond the bootstrap noise when "
                 "left out")
        parts.append(f"leaving out channel {worst['channel']} costs most, {unsigned(worst['drop'])} "
                     f"points (95% CI {unsigned(lo)} to {unsigned(hi)}), and {noise}")
    if h * w > 1:
        cells = [cell for row in probes["positions"] for cell in row]
        top = max(cells, key=lambda e: e["accuracy"])
        bottom = min(cells, key=lambda e: e["accuracy"])
        parts.append(f"one spatial position alone reaches {pct(bottom['accuracy'])} (row "
                     f"{bottom['row']}, column {bottom['column']}) to {pct(top['accuracy'])} (row "
                     f"{top['row']}, column {top['column']})")
    return f"Where the information sits (Figure {figure}): " + "; ".join(parts) + "."


def conclusions(metrics: dict, pairs: list[dict], untrained: bool,
                probes: dict | None = None, number: dict | None = None) -> list[str]:
    """Sentences derived from this run's numbers only; ``number``: the figure numbers
    (report.labels.float_numbers of the context)."""
    number = number or float_numbers({"curves": metrics.get("learning_curves")})
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
    out += vae_vs_pixels(metrics)
    out += learning_curve_sentences(metrics, number.get("fig:learning-curves"))
    probed = probes_sentence(probes, number["fig:probes"])
    if probed:
        out.append(probed)
    svm = sample_vs_meanstd(metrics)
    if svm is not None:
        out.append(sample_vs_meanstd_sentence(metrics, svm))
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
        width = metrics["feature_sets"][sets_of_kind(metrics, "vae")[0]]["n_features"]
        out.append(
            f"A latent of {width} numbers per image "
            f"({100 * width / (32 * 32 * 3):.1f}% of "
            f"the pixel values) keeps enough class information for {pct(best['accuracy'])} "
            f"accuracy, {best['accuracy'] / chance:.1f} times chance."
        )
    return out


def separability(figures_info: dict, n_classes: int, primary: str = "sample") -> str | None:
    """Contrast the PCA plane (maximal variance; the template quotes its share of variance)
    with the LDA plane (maximal class separation) by a nearest-centroid test accuracy in each."""
    pca, lda = figures_info.get("pca", {}).get(primary), figures_info.get("lda", {}).get(primary)
    if not pca or not lda or "centroid_accuracy" not in pca or "centroid_accuracy" not in lda:
        return None
    chance = 1 / n_classes
    p_acc, l_acc = pca["centroid_accuracy"], lda["centroid_accuracy"]
    if l_acc > p_acc:
        reading = ("so the classes are better separated along the discriminant directions than "
                   "along the directions of maximal variance: the PCA plot understates what a "
                   "linear classifier can use")
    else:
        reading = ("so the discriminant directions separate the classes no better than the "
                   "directions of maximal variance")
    label = FEATURE_SETS[primary].label if primary in FEATURE_SETS else primary
    return (f"Assigning each {label} test latent to the nearest class centre (centres from the "
            f"projected training latents) gives an accuracy of {p_acc:.4f} "
            f"({p_acc / chance:.1f} times chance) in the PCA plane and {l_acc:.4f} "
            f"({l_acc / chance:.1f} times chance) in the LDA plane, {reading}.")


def figure(path: Path, html_dir: Path) -> str:
    if not path.is_file():
        raise VaelabError(f"figure {path} is missing; run `make report` to build it")
    return os.path.relpath(path, html_dir)


def build_context(data_dir: Path, run_dir: Path, html_path: Path, metadata_file: Path | None) -> dict:
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
    fig_dir = run_dir / "figures"
    figures = {name: figure(fig_dir / f"{name}.png", html_dir) for name in
               ("examples", "confusion_best", "confusion_all", "pca", "lda", "kde",
                "reconstructions", "learning_curves", "probes")}
    probes = read_json(run_dir / "probes.json", "latent probes")
    probes["model_label"] = metrics["models"].get(probes["model"], {}).get("label", probes["model"])
    cells = [cell["accuracy"] for row in probes["positions"] for cell in row]
    probes["position_range"] = [min(cells), max(cells)]
    best_ci = best_res.get("accuracy_ci")
    recon_mse = float(load_npz(run_dir / "reconstructions.npz", "reconstructions", ("mse",))["mse"][0])
    context = {
        "meta": load_metadata(metadata_file),
        "untrained": untrained,
        "untrained_note": encode["model"]["untrained_note"],
        "dataset": dataset,
        "data_config": data_config,
        "run_config": run_config,
        "encode": encode,
        "metrics": metrics,
        "feature_sets": [metrics["feature_sets"][fs] | {"key": fs} for fs in sets_of_kind(metrics, "vae")],
        "baselines": [metrics["feature_sets"][fs] | {"key": fs} for fs in sets_of_kind(metrics, "baseline")],
        # The first VAE feature set: .sample() for a KL autoencoder, else the latent itself.
        "primary": metrics["feature_sets"][sets_of_kind(metrics, "vae")[0]],
        "baseline_columns": baseline_columns(metrics),
        "results_rows": results_rows(metrics),
        "comparisons": comparison_tables(metrics),
        "summary_baseline": summary_baseline(metrics),
        "bootstrap": metrics.get("bootstrap"),
        "alpha": ALPHA,
        "prf_rows": prf_rows(metrics),
        "best": best | {"label": metrics["models"][best["model"]]["label"],
                        "fs_label": metrics["feature_sets"][best["feature_set"]]["label"],
                        "ci": best_ci},
        "per_class": [{"name": name, **vals} for name, vals in best_res["per_class"].items()],
        "pairs": pairs,
        "curves": metrics.get("learning_curves"),
        "probes": probes,
        "figures": figures,
        "pca": figures_info.get("pca", {}),
        "lda": figures_info.get("lda", {}),
        "separability": separability(figures_info, len(metrics["classes"]),
                                     sets_of_kind(metrics, "vae")[0]),
        "recon_mse": recon_mse,
        "original_accuracy": ORIGINAL_ACCURACY,
        "provenance": read_json(run_dir / "provenance.json", "provenance record"),
    }
    # Figure and table numbers (report.labels): the template and the conclusions cite them.
    context["number"] = float_numbers(context)
    context["conclusions"] = conclusions(metrics, pairs, untrained, probes, context["number"])
    return context
