"""The "Comparing encoders" section: context built from every variant's run directory.

Not run on its own; ``report.render`` calls ``build_compare`` when a report has more than
one VAE variant. Every number and sentence comes from the runs' files: this module builds
Table C1's rows and assembles the section, ``report.facts`` computes what the variants show
and ``report.sentences`` writes it. A variant is one run: one VAE at one resolution
(RESOLUTION="32 64" gives two per VAE); when the runs differ in resolution, every column and
sentence names both ("sd-vae-ft-ema @ 64 px").
"""

from __future__ import annotations

import os
from pathlib import Path

from analysis.runs import VARIANTS_PANEL, feature_set_kind, read_metrics, read_variant_tests, read_variants
from analysis.autoencoders import is_real_model
from report import facts as F
from report import sentences as S


def vae_feature_sets(metrics: list[dict]) -> dict[str, dict]:
    """Every VAE feature set any of ``metrics`` has (key -> its description), in display
    order: a KL autoencoder's .sample() and mean & std, a deterministic encoder's latent."""
    out: dict[str, dict] = {}
    for m in metrics:
        for fs in m["feature_set_order"]:
            if feature_set_kind(m["feature_sets"][fs]) == "vae":
                out.setdefault(fs, m["feature_sets"][fs])
    return out


def accuracy_table(metrics: list[dict]) -> list[dict]:
    """One row per model and VAE feature set, one accuracy per entry of ``metrics`` (one per
    distinct encoder; empty where that encoder has no such feature set); best per row marked.
    Widths can differ between encoders (a 16-channel VAE's .sample() has 256 features at
    32 px): the row then names each width."""
    first = metrics[0]
    rows = []
    for model in first["model_order"]:
        for fs, info in vae_feature_sets(metrics).items():
            values = [m["results"].get(model, {}).get(fs, {}).get("accuracy") for m in metrics]
            present = [v for v in values if v is not None]
            # A row one encoder alone has compares nothing: no best to mark.
            top = max(present) if len(present) > 1 else None
            widths = sorted({m["feature_sets"][fs]["n_features"] for m in metrics
                             if fs in m["feature_sets"]})
            rows.append({"model": first["models"][model]["label"],
                         "feature_set": info['label'] + (f" ({'/'.join(map(str, widths))})"
                                                         if len(widths) > 1 else ""),
                         "random": not is_real_model(model),
                         "cells": [{"value": v, "best": v == top and is_real_model(model)} for v in values]})
    return rows


def build_compare(run_dirs: list[Path], compare_dir: Path, html_dir: Path) -> dict:
    metrics = [read_metrics(r) for r in run_dirs]
    variants = read_variants(compare_dir)
    tests = read_variant_tests(compare_dir)  # analysis.variants: groups and every ranking's test
    groups = tests["groups"]
    table = accuracy_table([metrics[g[0]] for g in groups])
    resolutions = sorted({v["resolution"] for v in variants})
    upcast = F.upcast(variants, metrics, tests)
    fact = F.variants_fact(variants, metrics, tests, table)
    return {
        "variants": variants,
        # How prose names the primary: a hub id, or a folder's name (its path is in Appendix A).
        "primary_name": F.source({"name": variants[0]["model"], "revision": variants[0]["revision"],
                                  "untrained": variants[0]["untrained"]}).name,
        "labels": [v["label"] for v in variants],
        # Table C1's columns: one per distinct encoder, naming every variant that shares it.
        "columns": [" = ".join(variants[i]["label"] for i in g) for g in groups],
        "n_shared": sum(len(g) > 1 for g in groups),
        "resolutions": resolutions if len(resolutions) > 1 else None,
        "n_vaes": len({v["model"] for v in variants}),
        "table": table,
        # Rows more than one encoder has: only those can mark a best.
        "compared_rows": len(F.compared_rows(table)),
        "shared": [S.shared_encoder_sentence(s, quality=False) for s in F.shared_encoders(variants, groups)],
        # What the Summary and Conclusions say of the variants (report.context adds it there).
        "overall": F.overall(fact, [v["label"] for v in variants]),
        "sentences": (S.variants_sentences(fact)
                      + [S.resolution_sentence(r) for r in F.resolutions(variants, metrics)]),
        "upcast": S.upcast_text(upcast) if upcast else None,
        # Figure C1: only when some variant has a decoder (else its file says there is none).
        "panel": (os.path.relpath(compare_dir / VARIANTS_PANEL, html_dir)
                  if any(v["has_decoder"] for v in variants) else None),
        "decoded": [v for v in variants if v["has_decoder"]],
        "recon_images": max((v["images"] for v in variants), default=0),
        "scaling": [{"name": v["label"], "scaling_factor": v["scaling_factor"]} for v in variants],
    }
