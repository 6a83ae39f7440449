"""Rankings of variants are stated only where their tests support them (issue 36, items 1, 6
and 7): analysis.variants decides on made-up per-image results, report.facts and
report.sentences word what it stored.

Run: .venv/bin/python -m pytest -n 0 -q tests/test_rankings.py
"""

from __future__ import annotations

import numpy as np

from analysis import variants as V
from helpers import kl_metrics
from report import facts as F
from report import sentences as S

M = 400  # test images
MODELS = ("logreg", "rf", "knn", "svc", "histgb", "lightgbm", "xgboost")  # 7 x 2 sets = 14 rows


def correct_vector(n_right: int, rng: np.random.Generator) -> np.ndarray:
    """(M,) bool with ``n_right`` True at random places."""
    out = np.zeros(M, dtype=bool)
    out[rng.choice(M, n_right, replace=False)] = True
    return out


def shifted(base: np.ndarray, gain: int) -> np.ndarray:
    """``base`` with ``gain`` more images right (or -gain fewer): the paired test sees exactly
    that many discordant images."""
    out = base.copy()
    idx = np.flatnonzero(~out if gain > 0 else out)[:abs(gain)]
    out[idx] = gain > 0
    return out


def encoder_runs(gains: dict[tuple[str, str], int], seed: int = 0):
    """Two encoders (A, B) over the same M test images: B equals A but for ``gains`` (model,
    feature set) -> images B gets right beyond A. Returns (metrics, predictions) per encoder,
    each metrics made by the real verdicts (helpers.kl_metrics -> analysis.verdicts.judge)."""
    rng = np.random.default_rng(seed)
    y = np.arange(M) % 10
    runs = []
    for who in ("a", "b"):
        rng_run = np.random.default_rng(seed)  # the same base vectors for both encoders
        correct = {(m, fs): correct_vector(120, rng_run) for m in MODELS for fs in ("sample", "mean_std")}
        if who == "b":
            correct = {k: shifted(c, gains.get(k, 0)) for k, c in correct.items()}
        preds = {"y_true": y.tolist()} | {f"{m}__{fs}": np.where(c, y, (y + 1) % 10).tolist()
                                          for (m, fs), c in correct.items()}
        metrics = kl_metrics({m: (float(correct[(m, "sample")].mean()), float(correct[(m, "mean_std")].mean()))
                              for m in MODELS})
        runs.append((metrics, preds))
    del rng
    return runs


def variant_rows(names: list[str], psnr: list[float] | None = None) -> list[dict]:
    """variants.json rows: one encoder per name (distinct latents), each with a decoder."""
    return [{"name": n, "label": n, "latents_sha256": f"{i:064x}", "has_decoder": True, "images": 50,
             "psnr_mean": (psnr or [10.0] * len(names))[i], "ssim_mean": 0.04, "resolution": 32}
            for i, n in enumerate(names)]


def decided(gains: dict, scores: dict | None = None, names=("ema", "sdxl")) -> tuple[list[dict], list[dict], dict]:
    runs = encoder_runs(gains)
    metrics, preds = [r[0] for r in runs], [r[1] for r in runs]
    stats = variant_rows(list(names), [float(np.mean(scores["psnr"][i])) for i in range(2)] if scores else None)
    if scores:
        for i, s in enumerate(stats):
            s["ssim_mean"] = float(np.mean(scores["ssim"][i]))
    return stats, metrics, V.decide(stats, metrics, preds, scores or {"psnr": {}, "ssim": {}}, seed=0)


def fact(stats, metrics, tests) -> F.Variants:
    table = [{"random": False, "cells": [{"value": 0.3, "best": True}, {"value": 0.3, "best": True}]}]
    return F.variants_fact(stats, metrics, tests, table)


def test_rankings_rows_count_higher_tied_lower_and_none_significant():
    """The issue's case: ahead in 7 rows, tied in 1, behind in 6, no difference significant."""
    keys = [(m, fs) for m in MODELS for fs in ("sample", "mean_std")]
    gains = {k: 3 for k in keys[:7]} | {k: -2 for k in keys[8:]}  # keys[7]: tied
    stats, metrics, tests = decided(gains)
    assert tests["leader"] == 1  # sdxl has the higher best accuracy
    rival = tests["rows"]["rivals"][0]
    assert (rival["higher"], rival["tied"], rival["lower"]) == (7, 1, 6)
    assert rival["higher_significant"] == rival["lower_significant"] == 0
    assert tests["rows"]["family_size"] == 14 and tests["rows"]["random_rows"] == 2
    text = " ".join(S.variants_sentences(fact(stats, metrics, tests)))
    assert "sdxl is higher than ema in 7 of the 14 rows they share, tied in 1 and lower in 6" in text
    assert "supports none of these differences" in text
    assert "Left out: the 2 random-predictor rows" in text
    assert "highest accuracy in" not in text  # the old count of "wins", ties included


def test_rankings_rows_count_what_the_test_supports():
    keys = [(m, fs) for m in MODELS for fs in ("sample", "mean_std")]
    gains = {keys[0]: 80} | {k: 1 for k in keys[1:5]}
    stats, metrics, tests = decided(gains)
    rival = tests["rows"]["rivals"][0]
    assert (rival["higher"], rival["higher_significant"], rival["lower"]) == (5, 1, 0)
    text = " ".join(S.variants_sentences(fact(stats, metrics, tests)))
    assert "supports 1 of the 5 higher" in text and "differ at all" not in text  # the counts say it


def test_rankings_best_against_best_states_its_test():
    stats, metrics, tests = decided({("svc", "mean_std"): 3})
    (best,) = tests["best"]
    assert best["delta"] < 0 and not best["significant"]  # B (sdxl) ahead by 3 of 400 images
    text = " ".join(S.variants_sentences(fact(stats, metrics, tests)))
    assert "Best against best, sdxl's" in text and "0.8 points above ema's" in text
    assert "not a significant difference" in text
    stats, metrics, tests = decided({("svc", "mean_std"): 90})
    assert tests["best"][0]["significant"]
    assert "a significant difference" in " ".join(S.variants_sentences(fact(stats, metrics, tests)))


def scores(psnr_gap: float, ssim_gap: float, noise: float, seed: int = 1) -> dict:
    """Per-image PSNR and SSIM of two decoders over 50 images: the first ahead by the gaps."""
    rng = np.random.default_rng(seed)
    base_p, base_s = rng.normal(10, 1, 50), rng.normal(0.04, 0.01, 50)
    return {"psnr": {0: base_p + psnr_gap + rng.normal(0, noise, 50), 1: base_p},
            "ssim": {0: base_s + ssim_gap + rng.normal(0, noise / 100, 50), 1: base_s}}


def test_rankings_psnr_lead_inside_its_interval_is_no_ranking():
    """The issue's case: +0.17 dB with an interval holding zero: neither 'reconstructs best' nor
    'the two measures disagree'."""
    stats, metrics, tests = decided({}, scores(0.17, -0.004, 0.7))
    psnr = tests["reconstruction"]["psnr"]
    (pair,) = psnr["pairs"]
    assert not pair["established"] and pair["ci"][0] < 0 < pair["ci"][1] and psnr["best"] == [0, 1]
    text = S.recon_sentence(F.recon(stats, tests))
    assert "By PSNR ema has the highest mean" in text and "indistinguishable on this sample from sdxl" in text
    assert "ema reconstructs best" not in text and "disagree" not in text


def test_rankings_psnr_and_ssim_established_apart_disagree():
    stats, metrics, tests = decided({}, scores(1.0, -0.01, 0.1))
    text = S.recon_sentence(F.recon(stats, tests))
    assert "By PSNR ema reconstructs best (" in text and "by SSIM sdxl reconstructs best" in text
    assert "The two measures disagree" in text


def test_rankings_one_decoder_best_by_both_is_named_once():
    stats, metrics, tests = decided({}, scores(1.0, 0.01, 0.1))
    text = S.recon_sentence(F.recon(stats, tests))
    assert "ema reconstructs best by both measures" in text and "disagree" not in text


def test_rankings_summary_names_every_variant_and_the_best_over_all():
    """The issue's case 7: the primary is not the best; the Summary says whose best is."""
    stats, metrics, tests = decided({("svc", "mean_std"): 3})
    v = fact(stats, metrics, tests)
    text = S.overall_sentence(F.overall(v, ["ema", "sdxl"]))
    assert "compares 2 variants, ema and sdxl" in text and "those of the first, ema" in text
    assert "The best accuracy over all of them is sdxl's" in text and "not significant" in text


def test_rankings_upcast_gaps_carry_their_tests():
    stats, metrics, tests = decided({("svc", "mean_std"): 3}, scores(0.17, 0.0, 0.7), names=("ema", "sdxl-vae"))
    for s, model in zip(stats, ("m/ema", "m/sdxl-vae")):
        s |= {"model": model, "precision": "fp32", "force_upcast": True}
    u = F.upcast(stats, metrics, tests)
    assert u.accuracy_p is not None and not u.accuracy_significant
    text = S.upcast_text(u)
    assert "(not significant: McNemar p" in text or "(not significant: Holm-adjusted McNemar p" in text
    assert "paired bootstrap 95% CI" in text and "no difference established on these images" in text
