"""The "Comparing encoders" section: context built from every variant's run directory.

Not run on its own; ``report.render`` calls ``build_compare`` when a report has more than
one VAE variant. Every number and sentence comes from the runs' files. A variant is one run:
one VAE at one resolution (RESOLUTION="32 64" gives two per VAE); when the runs differ in
resolution, every column and sentence names both ("sd-vae-ft-ema @ 64 px").
"""

from __future__ import annotations

import os
from pathlib import Path

from analysis.common import read_json
from analysis.autoencoders import is_real_model
from analysis.vae import PRECISION_NAMES
from report import facts as F
from report import sentences as S
from report.formatting import joined


def encoder_groups(variants: list[dict]) -> list[list[int]]:
    """Variant indices grouped by identical latents (one encoder, same settings), in order.

    Such variants have the same classifier results by construction (analysis.classify
    reuses them), so the report shows those once; only their decoders differ."""
    groups: dict[str, list[int]] = {}
    for i, v in enumerate(variants):
        groups.setdefault(v.get("latents_sha256") or f"run:{v['name']}", []).append(i)
    return list(groups.values())


def vae_feature_sets(metrics: list[dict]) -> dict[str, dict]:
    """Every VAE feature set any of ``metrics`` has (key -> its description), in display
    order: a KL autoencoder's .sample() and mean & std, a deterministic encoder's latent."""
    out: dict[str, dict] = {}
    for m in metrics:
        for fs in m["feature_set_order"]:
            if m["feature_sets"][fs].get("kind", "vae") == "vae":
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
                         "feature_set": info["label"] + (f" ({'/'.join(map(str, widths))})"
                                                         if len(widths) > 1 else ""),
                         "random": not is_real_model(model),
                         "cells": [{"value": v, "best": v == top and is_real_model(model)} for v in values]})
    return rows


def wins(table: list[dict], n: int) -> list[int]:
    counts = [0] * n
    for row in table:
        if not row["random"]:
            for i, cell in enumerate(row["cells"]):
                counts[i] += cell["best"]
    return counts


def resolution(variant: dict) -> int:
    return int(variant.get("resolution", 32))  # variants.json from before RESOLUTION: 32 px


def label(variant: dict) -> str:
    """How the section names a run; variants.json from before RESOLUTION has no label."""
    return variant.get("label", variant["name"])


def variant_sentences(variants: list[dict], metrics: list[dict], groups: list[list[int]],
                      table: list[dict]) -> list[str]:
    """Accuracy per distinct encoder (``table`` has one column per group) and reconstruction
    quality per variant."""
    names = [joined([label(variants[i]) for i in g]) for g in groups]
    best = [metrics[g[0]]["best"] for g in groups]
    counts = wins(table, len(groups))
    ranked = sorted(range(len(groups)), key=lambda i: -best[i]["accuracy"])
    per = "encoder and resolution" if len({resolution(v) for v in variants}) > 1 else "encoder"
    out = [
        f"Best accuracy per {per}: " + "; ".join(
            f"{names[i]} {best[i]['accuracy']:.4f} "
            f"({metrics[groups[i][0]]['models'][best[i]['model']]['label']})" for i in ranked) + ". "
    ]
    if len(groups) > 1:
        shared = [r for r in table if not r["random"] and sum(c["value"] is not None for c in r["cells"]) > 1]
        tied = sum(sum(c["best"] for c in r["cells"]) > 1 for r in shared)
        if not shared:
            out[0] += ("The encoders share no feature set, so no row of Table C1 sets them side by "
                       "side; their best accuracies above come from different feature sets.")
        else:
            out[0] += (f"{names[ranked[0]]} gives the highest accuracy in {counts[ranked[0]]} of "
                       f"the {len(shared)} model/feature-set rows of Table C1 that more than one "
                       "encoder has" + (f" ({tied} of them tied)." if tied else "."))
    decoded = [v for v in variants if v.get("has_decoder", True)]
    if len(decoded) > 1:  # one decoder alone has nothing to be compared with (Table C2 has it)
        out.append(S.recon_sentence(F.recon(decoded, [label(v) for v in decoded])))
    out += no_decoder_sentences(variants)
    return out


def no_decoder_sentences(variants: list[dict]) -> list[str]:
    """One sentence naming the encoder-only variants (a TAESD checkpoint without its decoder
    file): they have no reconstructions, PSNR or SSIM."""
    missing = [label(v) for v in variants if not v.get("has_decoder", True)]
    if not missing:
        return []
    one = len(missing) == 1
    return [f"{joined(missing)} {'has' if one else 'have'} no decoder (no decoder file came with "
            f"{'its' if one else 'their'} encoder), so {'it has' if one else 'they have'} no "
            "reconstructions, PSNR or SSIM (a dash in Table C2, no row in Figure C1)."]


def recon_quality(v: dict) -> str:
    if not v.get("has_decoder", True):
        return f"{label(v)} has no decoder"
    return f"{label(v)} PSNR {v['psnr_mean']:.2f} dB, SSIM {v['ssim_mean']:.3f}"


def shared_encoder_sentences(variants: list[dict], groups: list[list[int]],
                             quality: bool = True) -> list[str]:
    """One sentence per group of variants that share an encoder: what is the same, what differs.
    ``quality``: name each decoder's PSNR and SSIM (the report has them in Table C2 instead)."""
    out = []
    for group in groups:
        if len(group) < 2:
            continue
        members = [variants[i] for i in group]
        checksum = members[0].get("encoder_sha256") or "unknown"
        out.append(
            f"{joined([label(v) for v in members])} share one encoder (encoder checksum "
            f"{checksum[:12]}…, sha256 over its weights and config): their latents are "
            "bit-for-bit identical, so they were encoded and classified once and Table C1 shows "
            "their results in one column. Only their decoders differ" + (": " + "; ".join(
                recon_quality(v) for v in members) + "." if quality else " (their PSNR and SSIM are in Table C2)."))
    return out


def resolution_sentences(variants: list[dict], metrics: list[dict]) -> list[str]:
    """One sentence per VAE run at several resolutions: its best accuracy at each."""
    groups: dict[str, list[int]] = {}
    for i, v in enumerate(variants):
        groups.setdefault(v["model"], []).append(i)
    out = []
    for runs in groups.values():
        runs = sorted(runs, key=lambda i: resolution(variants[i]))
        if len({resolution(variants[i]) for i in runs}) < 2:
            continue
        parts = []
        for i in runs:
            best, fs = metrics[i]["best"], metrics[i]["feature_sets"][metrics[i]["best"]["feature_set"]]
            parts.append(f"{best['accuracy']:.4f} at {resolution(variants[i])} px "
                         f"({metrics[i]['models'][best['model']]['label']}, {fs['label']}, "
                         f"{fs['n_features']} features)")
        low, high = runs[0], runs[-1]
        change = metrics[high]["best"]["accuracy"] - metrics[low]["best"]["accuracy"]
        verdict = ("the same best accuracy" if change == 0 else
                   f"a best accuracy {100 * abs(change):.1f} points "
                   f"{'higher' if change > 0 else 'lower'}")
        cost = (resolution(variants[high]) / resolution(variants[low])) ** 2
        out.append(f"Resolution, for {variants[low].get('vae_name', variants[low]['model'])}: best "
                   f"accuracy " + "; ".join(parts) + f". Encoding at {resolution(variants[high])} "
                   f"instead of {resolution(variants[low])} px gives {verdict}, for about "
                   f"{cost:.0f} times the encoder's work per image.")
    return out


def upcast_paragraph(variants: list[dict], metrics: list[dict]) -> str | None:
    """Whether the original sdxl-vae problem (broken reconstructions) shows up in this run."""
    suspects = [i for i, v in enumerate(variants) if "sdxl" in v["model"].lower()]
    if not suspects:
        return None
    i = suspects[0]
    v, primary = variants[i], variants[0]
    if not (v.get("has_decoder", True) and primary.get("has_decoder", True)):
        return None  # the problem is about reconstructions: nothing to compare without them
    precision = PRECISION_NAMES[v["precision"]]
    return S.upcast_text(F.Upcast(
        label(v), label(primary), precision, v["force_upcast"], v["psnr_mean"] - primary["psnr_mean"],
        v["ssim_mean"], primary["ssim_mean"],
        metrics[i]["best"]["accuracy"] - metrics[0]["best"]["accuracy"],
        max(x["ssim_mean"] for x in variants) > F.CLOSE_SSIM))


def build_compare(run_dirs: list[Path], compare_dir: Path, html_dir: Path) -> dict:
    metrics = [read_json(r / "metrics.json", "metrics") for r in run_dirs]
    variants = read_json(compare_dir / "variants.json", "variant summary")
    groups = encoder_groups(variants)
    table = accuracy_table([metrics[g[0]] for g in groups])
    resolutions = sorted({resolution(v) for v in variants})
    return {
        "variants": variants,
        # How prose names the primary: a hub id, or a folder's name (its path is in Appendix A).
        "primary_name": F.source({"name": variants[0]["model"], "revision": variants[0].get("revision"),
                                  "untrained": variants[0].get("untrained")}).name,
        "labels": [label(v) for v in variants],
        # Table C1's columns: one per distinct encoder, naming every variant that shares it.
        "columns": [" = ".join(label(variants[i]) for i in g) for g in groups],
        "n_shared": sum(len(g) > 1 for g in groups),
        "resolutions": resolutions if len(resolutions) > 1 else None,
        "n_vaes": len({v["model"] for v in variants}),
        "table": table,
        # Rows more than one encoder has: only those can mark a best.
        "compared_rows": sum(not r["random"] and sum(c["value"] is not None for c in r["cells"]) > 1
                             for r in table),
        "shared": shared_encoder_sentences(variants, groups, quality=False),
        "sentences": (variant_sentences(variants, metrics, groups, table)
                      + resolution_sentences(variants, metrics)),
        "upcast": upcast_paragraph(variants, metrics),
        # Figure C1: only when some variant has a decoder (else its file says there is none).
        "panel": (os.path.relpath(compare_dir / "reconstructions.png", html_dir)
                  if any(v.get("has_decoder", True) for v in variants) else None),
        "decoded": [{**v, "label": label(v)} for v in variants if v.get("has_decoder", True)],
        "recon_images": max((v["images"] for v in variants), default=0),
        "scaling": [{"name": label(v), "scaling_factor": v["scaling_factor"]} for v in variants],
    }
