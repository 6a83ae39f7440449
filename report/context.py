"""Everything the report template shows, derived from one build's files.

Not run on its own; ``report.render`` calls ``build_context``. Layout: this module loads the
run's files (metrics.json, encode.json, dataset.json, figures.json) and builds the tables;
``report.facts`` computes what the numbers say, ``report.sentences`` writes it as prose (its
docstring says which sentences are Python and which are template text), and
``report.formatting`` writes numbers (also as Jinja filters). Nothing is typed in except the
original study's reported figures (``report.facts.ORIGINAL_ACCURACY``), shown as such.
Wall-clock times (timings-*.json) are left out on purpose: they differ between identical
runs, and the report is byte-identical across them (``report.timings`` gathers them).
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from pathlib import Path, PurePath

from analysis.autoencoders import CLASSES, MEAN_STD_VS_SAMPLE, is_real_model, pca_baseline, versus
from analysis.common import VaelabError, load_npz, read_json
from analysis.vae import has_decoder
from report import facts as F
from report import sentences as S
from report.facts import (ALPHA, BASELINE_COMPARISONS, FAMILIES, ORIGINAL_ACCURACY, ORIGINAL_BEST,
                          sets_of_kind, significant, with_holm)
from report.formatting import ci_text, count, p_text, pts
from report.labels import float_numbers

# The title block; an empty title is made from the run: "Predicting CIFAR-10 from VAE latents".
# pretrained_weights_sha256: the sha256 of a local weights file the author vouches for as
# pretrained (the report then calls it so; it cannot tell on its own).
DEFAULT_META = {"title": "", "subtitle": "Lab 10 report, reproduced with vaelab",
                "author": "", "affiliation": "", "course": "", "date": "",
                "pretrained_weights_sha256": ""}
# How a title names each encoder class.
TITLE_FAMILY = {"AutoencoderKL": "VAE", "AutoencoderTiny": "tiny autoencoder (TAESD)",
                "AutoencoderDC": "DC-AE"}


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


def dataset_name(dataset: dict) -> str:
    """The dataset as prose names it: 'CIFAR-10', or 'the image folder NAME' (path: Appendix A)."""
    if dataset.get("dataset") == "cifar10":
        return "CIFAR-10"
    root = str(dataset.get("dataset", "")).removeprefix("imagefolder:")
    return f"the image folder “{PurePath(root.rstrip('/')).name or root}”"


def default_title(dataset: dict, cls: str) -> str:
    return f"Predicting {dataset_name(dataset)} from {TITLE_FAMILY.get(cls, 'autoencoder')} latents"


def confused_pairs(confusion: list[list[int]], classes: list[str], top: int = 3) -> list[dict]:
    """Class pairs with the most mistakes in either direction, most first."""
    pairs = []
    for i in range(len(classes)):
        for j in range(i + 1, len(classes)):
            n = confusion[i][j] + confusion[j][i]
            pairs.append({"a": classes[i], "b": classes[j], "count": n,
                          "a_as_b": confusion[i][j], "b_as_a": confusion[j][i]})
    pairs.sort(key=lambda p: (-p["count"], p["a"], p["b"]))
    return [p for p in pairs[:top] if p["count"] > 0]


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


def results_rows(metrics: dict) -> list[dict]:
    """The original's table: Model | Accuracy .sample() | Accuracy mean & std (+ original),
    then the pixel baselines; every accuracy with its 95% bootstrap interval."""
    fs_order = metrics["feature_set_order"]
    best_per_fs = {fs: max(metrics["results"][m][fs]["accuracy"] for m in metrics["model_order"]
                           if is_real_model(m)) for fs in fs_order}

    def cell(key: str, fs: str) -> dict:
        res = metrics["results"][key][fs]
        return {"value": f"{res['accuracy']:.4f}", "ci": ci_text(res.get("accuracy_ci")),
                "best": is_real_model(key) and res["accuracy"] == best_per_fs[fs]}

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


def comparison_cell(comp: dict) -> dict:
    lo, hi = comp["ci"]
    return {"delta": pts(comp["delta"]), "ci": f"[{pts(lo)}, {pts(hi)}]",
            "p": p_text(comp["p_value"]), "p_adjusted": p_text(comp["p_adjusted"]),
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
        columns.append({"name": name, "a": f"{a['label']} {a['n_features']}",
                        "b": f"{short} {b['n_features']}"})
    sizes = {family: sum(c.get("family") == family for per in comps.values() for c in per.values())
             for family in FAMILIES}
    return {
        "family_sizes": sizes,
        "columns": columns,
        "baseline_rows": [{"label": metrics["models"][m]["label"],
                           "cells": [comparison_cell(comps[m][n]) for n in names]} for m in keys],
        "sample_rows": [{"label": metrics["models"][m]["label"],
                         **comparison_cell(comps[m][MEAN_STD_VS_SAMPLE])}
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


def conclusions(metrics: dict, pairs: list[dict], untrained: bool,
                probes: dict | None = None) -> list[str]:
    """The Conclusions, one paragraph per fact (report.sentences renders each)."""
    best = F.best_of(metrics)
    out = [S.best_sentence(best)]
    mine = [v for v in (F.versus(metrics, metrics["best"]["model"], n) for n in BASELINE_COMPARISONS)
            if v is not None]
    tally = F.pixel_tally(metrics)
    if mine or tally:
        out.append(" ".join([S.versus_sentence(v) for v in mine]
                            + ([S.pixel_tally_sentence(tally)] if tally else [])))
    curves = F.curves(metrics)
    if curves:
        out.append(" ".join(S.curve_sentences(curves)))
    probed = F.probes(probes)
    if probed:
        out.append(" ".join(S.probes_sentences(probed)))
    svm = F.sample_vs_mean_std(metrics)
    if svm:
        out.append(" ".join(S.sample_vs_mean_std_sentences(svm)))
    confused = S.confused_sentence(best.top.model, pairs, metrics["classes"])
    if confused:
        out.append(confused)
    out.append(S.latent_share_sentence(F.latent_share(metrics), untrained))
    return out


def figure(path: Path, html_dir: Path) -> str:
    if not path.is_file():
        raise VaelabError(f"figure {path} is missing; run `make report` to build it")
    return os.path.relpath(path, html_dir)


def summary_sentences(metrics: dict, enc: F.Encoder, dataset: dict, n_baselines: int) -> list[str]:
    """The Summary: the question, what was run, the best result and its equal-width baseline."""
    c, h, w = enc.shape
    sets = S.joined([f"{'the latent itself' if label == 'latent' else label} ({count(n)} features)"
                     for label, n in enc.feature_sets])
    n_models = len(F.real_models(metrics))
    best = F.best_of(metrics)
    out = [f"Can the {c}×{h}×{w} latent of a {enc.family} tell the classes of "
           f"{dataset_name(dataset)} apart?",
           f"This run encoded {count(dataset['n_train'])} training and {count(dataset['n_test'])} "
           f"test images with {S.weights(enc.source)} and trained {n_models} classifiers and a "
           f"random predictor on {'its feature sets' if len(enc.feature_sets) > 1 else 'its one feature set'}, "
           f"{sets}" + (f", and on {n_baselines} pixel baselines for comparison (Table 4 gives their widths)."
                        if n_baselines else ".")]
    out.append(S.best_sentence(best, table=False))
    top = metrics["best"]
    pca = F.versus(metrics, top["model"], versus(top["feature_set"], pca_baseline(top["feature_set"])))
    if pca:
        out.append(S.versus_sentence(pca))
    out.append("The Discussion sets this against the original study's figures.")
    return out


def build_context(data_dir: Path, run_dir: Path, html_path: Path, metadata_file: Path | None) -> dict:
    html_dir = html_path.parent
    dataset = read_json(data_dir / "dataset.json", "dataset description")
    data_config = read_json(data_dir / "config.json", "data configuration")
    run_config = read_json(run_dir / "config.json", "run configuration")
    encode = read_json(run_dir / "encode.json", "encoder description")
    metrics = read_json(run_dir / "metrics.json", "metrics")
    figures_info = read_json(run_dir / "figures" / "figures.json", "figure description")
    meta = load_metadata(metadata_file)
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
    decoder = has_decoder(encode)  # False: encoder only, no reconstructions (Figure 9 left out)
    if not decoder:
        figures["reconstructions"] = None
    recon_mse = (float(load_npz(run_dir / "reconstructions.npz", "reconstructions", ("mse",))["mse"][0])
                 if decoder else None)
    enc = F.encoder(encode, metrics, meta.pop("pretrained_weights_sha256", ""))
    if not meta["title"]:
        meta["title"] = default_title(dataset, enc.cls)
    cls = CLASSES.get(enc.cls)
    gap = F.Gap(F.best_of(metrics), ORIGINAL_BEST, enc, dataset["n_train"], dataset["n_test"],
                dataset.get("dataset", ""), dataset.get("limit"))
    limits = F.Limits(
        seed=int(run_config.get("seed", 0)), stochastic=enc.stochastic, n_test=dataset["n_test"],
        resolution=enc.resolution, sample_size=enc.sample_size, widths=F.widths(metrics),
        mean_std_confound=F.sample_vs_mean_std(metrics) is not None,
        curves=bool(metrics.get("learning_curves")), probes=bool(probes), untrained=untrained,
        limit=dataset.get("limit"), n_train=dataset["n_train"])
    context = {
        "meta": meta,
        "untrained": untrained,
        "untrained_note": encode["model"]["untrained_note"],
        "dataset": dataset,
        "dataset_name": dataset_name(dataset),
        "Dataset_name": dataset_name(dataset)[:1].upper() + dataset_name(dataset)[1:],
        "data_config": data_config,
        "run_config": run_config,
        "encode": encode,
        "encoder": enc,
        "weights_text": S.weights(enc.source),
        # How the template names the encoder: only a KL autoencoder is variational.
        "enc_word": "VAE" if enc.cls == "AutoencoderKL" else "encoder",
        "Enc_word": "VAE" if enc.cls == "AutoencoderKL" else "Encoder",
        # The array reconstructions decode: "mean" (KL) or "latent" (deterministic).
        "decoded": cls.decoded if cls else "mean",
        "metrics": metrics,
        "feature_sets": [metrics["feature_sets"][fs] | {"key": fs} for fs in sets_of_kind(metrics, "vae")],
        "baselines": [metrics["feature_sets"][fs] | {"key": fs} for fs in sets_of_kind(metrics, "baseline")],
        # The first VAE feature set: .sample() for a KL autoencoder, else the latent itself.
        "primary": metrics["feature_sets"][sets_of_kind(metrics, "vae")[0]],
        "baseline_columns": baseline_columns(metrics),
        "repeated_baselines": len(sets_of_kind(metrics, "baseline")) - len(shown_baselines(metrics)),
        "results_rows": results_rows(metrics),
        "comparisons": comparison_tables(metrics),
        "baselines_text": S.baselines_sentence(
            next((width for fs, width in ((fs, F.width(metrics, fs)) for fs in sets_of_kind(metrics, "baseline"))
                  if not metrics["feature_sets"][fs].get("matches")), None),
            [(F.width(metrics, fs), metrics["feature_sets"][metrics["feature_sets"][fs]["matches"]]["label"],
              F.width(metrics, metrics["feature_sets"][fs]["matches"]))
             for fs in sets_of_kind(metrics, "baseline") if metrics["feature_sets"][fs].get("matches")],
            metrics.get("n_train", dataset["n_train"])),
        "summary": summary_sentences(metrics, enc, dataset, len(sets_of_kind(metrics, "baseline"))),
        "bootstrap": metrics.get("bootstrap"),
        "alpha": ALPHA,
        "prf": prf_table(metrics),
        "best": best | {"label": metrics["models"][best["model"]]["label"],
                        "fs_label": metrics["feature_sets"][best["feature_set"]]["label"],
                        "ci": best_ci},
        "per_class": [{"name": name, **vals} for name, vals in best_res["per_class"].items()],
        "pairs": pairs,
        "discussion": S.discussion_sentences(gap, F.pixel_tally(metrics), untrained),
        "limitations": S.limitation_items(limits),
        "original_like": enc.like_original,
        "original_encoder": F.ORIGINAL_ENCODER,
        "curves": metrics.get("learning_curves"),
        "probes": probes,
        "figures": figures,
        "pca": figures_info.get("pca", {}),
        "lda": figures_info.get("lda", {}),
        "separability": S.separability(figures_info, len(metrics["classes"]),
                                     sets_of_kind(metrics, "vae")[0]),
        "recon_mse": recon_mse,
        "has_decoder": decoder,
        "original_accuracy": ORIGINAL_ACCURACY,
        "provenance": read_json(run_dir / "provenance.json", "provenance record"),
    }
    # Figure and table numbers (report.labels): the template and the conclusions cite them.
    context["number"] = float_numbers(context)
    context["conclusions"] = conclusions(metrics, pairs, untrained, probes)
    return context
