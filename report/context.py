"""Everything the report template shows, assembled from one build's files.

Not run on its own; ``report.render`` calls ``build_context``. This module only assembles:
``analysis.runs`` reads the run's files (every file name and default), ``report.metadata``
the title block, ``report.tables`` builds the tables' rows, ``report.facts`` computes what the
numbers say, ``report.sentences`` writes it as prose, and ``report.formatting`` writes
numbers (also as the templates' Jinja filters).

Where a sentence lives (the rule, also in ``report.sentences``): a sentence whose wording
depends on the run's results is built in Python, in ``report.sentences`` and nowhere else;
fixed text, and text that only inserts a value or shows a passage on a setting or a flag,
is template text. Nothing is typed in except the original study's reported figures
(``report.facts.ORIGINAL_ACCURACY``), shown as such. Wall-clock times (timings-*.json) are
left out on purpose: they differ between identical runs, and the report is byte-identical
across them (``report.timings`` gathers them).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from analysis import runs
from analysis.autoencoders import CLASSES
from analysis.common import VaelabError
from analysis.devices import PRECISION_NAMES
from report import facts as F
from report import sentences as S
from report import tables as T
from report.compare import build_compare
from report.facts import BASELINE_COMPARISONS, ORIGINAL_ACCURACY, ORIGINAL_BEST, sets_of_kind
from report.labels import float_numbers
from report.metadata import load_metadata


# Figure numbers when every figure is shown: what conclusions() cites without the report's own.
EVERY_FIGURE = float_numbers({"curves": True, "has_decoder": True})


def conclusions(metrics: dict, pairs: list[dict], untrained: bool,
                probes: dict | None = None, number: dict[str, str] | None = None,
                overall: F.Overall | None = None, seeds: F.Seeds | None = None,
                tuned: F.Tuning | None = None, behaves_untrained: bool = False) -> list[str]:
    """The Conclusions, one paragraph per fact (report.sentences renders each). ``number``:
    the report's figure numbers (report.labels.float_numbers), which move when a figure is
    left out; without it, those of a report that has every figure. ``overall``: a report of
    several variants, which the first paragraph names after the first variant's best.
    ``seeds``, ``tuned``: what several seeds and tuning measured (SEEDS, TUNE), when they ran.
    ``behaves_untrained``: analysis.weights' verdict on weights not known to be untrained."""
    number = number or EVERY_FIGURE
    best = F.best_of(metrics)
    out = [S.best_sentence(best) + (" " + S.overall_sentence(overall) if overall else "")]
    mine = [v for v in (F.versus(metrics, metrics["best"]["model"], n) for n in BASELINE_COMPARISONS)
            if v is not None]
    tally = F.pixel_tally(metrics)
    robust = S.robustness_sentence(seeds, tuned)
    if mine or tally:
        out.append(" ".join([S.versus_sentence(v) for v in mine] + ([robust] if robust else [])
                            + ([S.pixel_tally_sentence(tally)] if tally else [])))
    curves = F.curves(metrics)
    if curves:
        out.append(" ".join(S.curve_sentences(curves, number["fig:learning-curves"])))
    probed = F.probes(probes)
    if probed:
        out.append(" ".join(S.probes_sentences(probed, number["fig:probes"])))
    svm = F.sample_vs_mean_std(metrics)
    if svm:
        out.append(" ".join(S.sample_vs_mean_std_sentences(svm)))
    confused = S.confused_sentence(best.top.model, pairs, metrics["classes"], number["fig:confusion"],
                                   untrained or behaves_untrained)
    if confused:
        out.append(confused)
    out.append(S.latent_share_sentence(F.latent_share(metrics), untrained, behaves_untrained))
    return out


def summary_sentences(metrics: dict, enc: F.Encoder, dataset: dict, n_baselines: int,
                      overall: F.Overall | None = None) -> list[str]:
    """The Summary (report.sentences renders its fact)."""
    return S.summary_sentences(replace(F.summary(metrics, enc, dataset, n_baselines), overall=overall))


def figure(path: Path, html_dir: Path) -> str:
    if not path.is_file():
        raise VaelabError(f"figure {path} is missing; run `make report` to build it")
    return os.path.relpath(path, html_dir)


def weights_warning(run_dirs: list[Path]) -> dict | None:
    """The runs whose weights behave as untrained (analysis.weights), each with why; None when
    none does. Runs on vaelab's own random weights are left out: their label says so already."""
    flagged = [(run, runs.read_weights(run)) for run in run_dirs
               if not runs.read_encode(run)["model"]["untrained"]]
    flagged = [(run, check) for run, check in flagged if check["behaves_untrained"]]
    if not flagged:
        return None
    return {"all": len(flagged) == len(run_dirs), "rule": flagged[0][1]["rule"],
            "sentences": [S.untrained_behaviour(run.name, check) for run, check in flagged]}


def repeats(run_dir: Path, seeds: bool, tuned: bool) -> tuple[dict | None, dict | None]:
    """The run's seeds.json and tuned.json when the build ran several seeds or tuning (None
    otherwise); one made from other results than the run's current ones is an error."""
    over = runs.current_seeds(run_dir) if seeds else None
    if seeds and over is None:
        raise VaelabError(f"{run_dir / runs.SEEDS} is missing or was made from other results; "
                          "rerun `make report`")
    tuning = runs.current_tuned(run_dir) if tuned else None
    if tuned and tuning is None:
        raise VaelabError(f"{run_dir / runs.TUNED} is missing or was made from other results; "
                          "rerun `make report`")
    return over, tuning


def build_context(data_dir: Path, run_dirs: list[Path], html_path: Path, metadata_file: Path | None,
                  seeds: bool = False, tuned: bool = False) -> dict:
    """Everything the report templates read, from the runs' files; ``run_dirs``: primary first,
    more than one for a report comparing variants (its ``compare``, report.compare). ``seeds``,
    ``tuned``: the build ran several seeds (SEEDS) or tuning (TUNE); the report then reads the
    primary run's seeds.json or tuned.json."""
    html_dir = html_path.parent
    run_dir = run_dirs[0]
    compare = build_compare(run_dirs, html_dir / "compare", html_dir) if len(run_dirs) > 1 else None
    overall = compare["overall"] if compare else None
    dataset = runs.read_dataset(data_dir)
    run_config = runs.read_config(run_dir)
    encode = runs.read_encode(run_dir)
    metrics = runs.read_metrics(run_dir)
    over_seeds, tuning = repeats(run_dir, seeds, tuned)
    seeds_fact = F.seeds(metrics, over_seeds) if over_seeds else None
    tuning_fact = F.tuning(metrics, tuning) if tuning else None
    figures_info = runs.read_figures_info(run_dir)
    meta = load_metadata(metadata_file)
    best = metrics["best"]
    best_res = metrics["results"][best["model"]][best["feature_set"]]
    pairs = metrics["most_confused"]  # of the best result (analysis.verdicts)
    untrained = bool(encode["model"]["untrained"])
    figures = {name: figure(runs.figure_file(run_dir, name), html_dir)
               for name in (Path(f).stem for f in runs.FIGURES)}
    probes = runs.read_probes(run_dir)
    probes["model_label"] = metrics["models"].get(probes["model"], {}).get("label", probes["model"])
    cells = [cell["accuracy"] for row in probes["positions"] for cell in row]
    probes["position_range"] = [min(cells), max(cells)]
    decoder = runs.has_decoder(encode)  # False: encoder only, no reconstructions (Figure 9 left out)
    if not decoder:
        figures["reconstructions"] = None
    recon = runs.read_reconstructions(run_dir, ("mse", "psnr", "originals")) if decoder else None
    recon_mse = float(recon["mse"][0]) if decoder else None
    enc = F.encoder(encode, metrics, meta.pop("pretrained_weights_sha256", ""),
                    runs.read_weights(run_dir)["behaves_untrained"])
    if not meta["title"]:
        meta["title"] = S.default_title(dataset["dataset"], enc.cls)
    cls = CLASSES.get(enc.cls)
    vae_sets, baseline_sets = sets_of_kind(metrics, "vae"), sets_of_kind(metrics, "baseline")
    gap = F.Gap(F.best_of(metrics), ORIGINAL_BEST, enc, dataset["n_train"], dataset["n_test"],
                dataset["dataset"], dataset.get("limit"), overall)
    limits = F.Limits(
        seed=int(run_config["seed"]), stochastic=enc.stochastic, n_test=dataset["n_test"],
        resolution=enc.resolution, sample_size=enc.sample_size, widths=F.widths(metrics),
        mean_std_confound=F.sample_vs_mean_std(metrics) is not None,
        curves=bool(metrics.get("learning_curves")), probes=bool(probes), untrained=untrained,
        limit=dataset.get("limit"), n_train=dataset["n_train"], seeds=seeds_fact, tuning=tuning_fact)
    tally, rivals = F.pixel_tally(metrics), F.weak_rivals(metrics)
    context = {
        "meta": meta,
        "untrained": untrained,
        "untrained_note": encode["model"]["untrained_note"],
        "dataset": dataset,
        "dataset_name": S.dataset_name(dataset["dataset"]),
        "Dataset_name": S.capitalised(S.dataset_name(dataset["dataset"])),
        "run_config": run_config,
        "encode": encode,
        "precision_name": PRECISION_NAMES[encode["precision"]],
        "encoder": enc,
        "weights_text": S.weights(enc.source),
        "enc_word": S.encoder_word(enc.cls),
        "Enc_word": S.capitalised(S.encoder_word(enc.cls)),
        # The array reconstructions decode: "mean" (KL) or "latent" (deterministic).
        "decoded": cls.decoded if cls else "mean",
        "metrics": metrics,
        "feature_sets": [metrics["feature_sets"][fs] | {"key": fs} for fs in vae_sets],
        "baselines": [metrics["feature_sets"][fs] | {"key": fs} for fs in baseline_sets],
        # The first VAE feature set: .sample() for a KL autoencoder, else the latent itself.
        "primary": metrics["feature_sets"][vae_sets[0]],
        "baseline_columns": T.baseline_columns(metrics),
        "repeated_baselines": len(baseline_sets) - len(T.shown_baselines(metrics)),
        "results_rows": T.results_rows(metrics, over_seeds),
        "comparisons": T.comparison_tables(metrics, over_seeds),
        "weak_rivals_text": S.weak_rivals_sentence(rivals, tally.n_higher if tally else None) if rivals else "",
        "baselines_text": S.baselines_sentence(F.baselines(metrics, dataset["n_train"])),
        "summary": summary_sentences(metrics, enc, dataset, len(baseline_sets), overall),
        "bootstrap": metrics.get("bootstrap"),
        "alpha": metrics["tests"]["alpha"],
        "prf": T.prf_table(metrics),
        "best": best | {"label": metrics["models"][best["model"]]["label"],
                        "fs_label": metrics["feature_sets"][best["feature_set"]]["label"],
                        "fs_on": S.on(metrics["feature_sets"][best["feature_set"]]["label"]),
                        "ci": best_res.get("accuracy_ci")},
        "per_class": [{"name": name, **vals} for name, vals in best_res["per_class"].items()],
        "pairs": pairs,
        "discussion": S.discussion_sentences(gap, tally, untrained) + S.repeats_discussion(seeds_fact, tuning_fact),
        "limitations": S.limitation_items(limits),
        "original_like": enc.like_original,
        "original_encoder": F.ORIGINAL_ENCODER,
        "curves": metrics.get("learning_curves"),
        "probes": probes,
        "figures": figures,
        "pca": figures_info.get("pca", {}),
        "lda": figures_info.get("lda", {}),
        "lda_few_train": F.few_for_lda(dataset["n_train"], metrics),
        "lda_images_per_feature": F.LDA_IMAGES_PER_FEATURE,
        "separability": S.separability(F.separability(figures_info, len(metrics["classes"]),
                                                      dataset["n_test"], vae_sets[0])),
        "recon_mse": recon_mse,
        # The sample the error is over (every decoded test image) and the images shown.
        "recon_images": len(recon["psnr"]) if decoder else 0,
        "recon_shown": len(recon["originals"]) if decoder else 0,
        "has_decoder": decoder,
        "original_accuracy": ORIGINAL_ACCURACY,
        "provenance": runs.read_provenance(run_dir),
        # SEEDS and TUNE (none: the report reads as without them, byte for byte).
        "seeds": over_seeds,
        "seeds_varied": S.seeds_varied(seeds_fact) if seeds_fact else "",
        "tuned": tuning,
        "tuned_rows": T.tuned_rows(metrics, tuning) if tuning else [],
        "tuned_labels": [metrics["models"][m]["label"] for m in tuning["models"]] if tuning else [],
        "tuned_settings": T.tuned_settings(metrics, tuning) if tuning else [],
    }
    # Figure and table numbers (report.labels): the template and the conclusions cite them.
    context["number"] = float_numbers(context)
    context["seeds_text"] = S.seeds_sentences(seeds_fact, context["number"]["tab:vae-vs-pixels"]) \
        if seeds_fact and context["comparisons"] else []
    context["tuned_text"] = S.tuning_sentences(tuning_fact, "Appendix B") if tuning_fact else []
    context["conclusions"] = conclusions(metrics, pairs, untrained, probes, context["number"], overall,
                                         seeds_fact, tuning_fact, enc.source.behaves_untrained)
    context["weights_warning"] = weights_warning(run_dirs)
    context["compare"] = compare
    return context
