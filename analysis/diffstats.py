"""The statistics of ``make diff``: two runs' classifiers compared on the same test images.

Not run on its own; ``report.diff`` calls ``compare`` and words what it returns. For every
model and VAE feature set whose predictions both runs hold (pixel baselines do not depend on
the encoder, so they are left out) a row gives both accuracies, the delta (B - A) with its
paired 95% bootstrap interval and McNemar's exact p-value (analysis.stats.paired). The rows
are one family of tests: Holm-adjusted over the table and judged at analysis.stats.ALPHA by
the same ``stats.judge_family`` as metrics.json's families (analysis.verdicts), so a diff
and a report never decide a test differently.

Between two runs made with several seeds (SEEDS), ``across_seeds`` repeats the table for each
seed both have (each seed's rows their own family) and says, per row, whether its verdict
holds for every seed.
"""

from __future__ import annotations

import numpy as np

from analysis.runs import sets_of_kind
from analysis.stats import ROUND, judge_family, paired, spread
from analysis.verdicts import verdict


def compare(metrics_a: dict, metrics_b: dict, predictions_a: dict[str, np.ndarray],
            predictions_b: dict[str, np.ndarray], seed: int) -> list[dict]:
    """Rows in A's table order (its ``model_order``, then feature sets), keyed by ``model``
    and ``feature_set``; ``predictions_*``: "y_true" and "model__feature_set" -> (M,) labels
    on the same test images. ``only_a``/``only_b``: images only that run gets right."""
    ya, yb = predictions_a["y_true"], predictions_b["y_true"]
    vae_sets = set(sets_of_kind(metrics_a, "vae")) & set(sets_of_kind(metrics_b, "vae"))
    rows = []
    for model in metrics_a["model_order"]:
        for fs in (f for f in metrics_a["feature_set_order"] if f in vae_sets):
            column = f"{model}__{fs}"
            if column not in predictions_a or column not in predictions_b:
                continue
            correct_a, correct_b = predictions_a[column] == ya, predictions_b[column] == yb
            test = paired(correct_b, correct_a, seed)  # B against A: delta = acc(B) - acc(A)
            rows.append({"model": model, "feature_set": fs,
                         "acc_a": round(float(correct_a.mean()), ROUND),
                         "acc_b": round(float(correct_b.mean()), ROUND),
                         "delta": test["delta"], "ci": test["ci"], "p_value": test["p_value"],
                         "only_a": test["only_b_correct"], "only_b": test["only_a_correct"]})
    return judge_family(rows)


def across_seeds(by_seed: dict[int, tuple[dict, dict, dict, dict]]) -> dict | None:
    """``make diff`` between two runs made with the same several seeds (SEEDS): ``by_seed``
    maps each seed both runs have, the first seed first, to (metrics A, metrics B, predictions
    A, predictions B) of that seed. Each seed's rows are ``compare``d and judged as that seed's
    family; per row (keyed "model__feature_set") the ``delta`` (B - A) and ``verdict``
    (analysis.verdicts.verdict: "higher" is B ahead) of each seed, the deltas' spread
    (``mean_delta``, ``sd_delta``), ``n_agree`` (seeds with the first seed's verdict) and
    ``holds``. None with fewer than two common seeds."""
    if len(by_seed) < 2:
        return None
    rows: dict[str, dict] = {}
    for seed, (ma, mb, pa, pb) in by_seed.items():
        for row in compare(ma, mb, pa, pb, seed):
            rows.setdefault(f"{row['model']}__{row['feature_set']}", []).append(row)
    out = {}
    for key, per_seed in rows.items():
        if len(per_seed) != len(by_seed):
            continue  # a row not every seed has
        said = [verdict(r) for r in per_seed]
        deltas = [r["delta"] for r in per_seed]
        s = spread(deltas)
        out[key] = {"delta": deltas, "verdict": said, "mean_delta": s["mean"], "sd_delta": s["sd"],
                    "n_agree": sum(v == said[0] for v in said), "holds": all(v == said[0] for v in said)}
    return {"seeds": list(by_seed), "rows": out}
