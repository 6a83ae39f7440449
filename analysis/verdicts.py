"""What a run's numbers say, decided once, where they are computed: the verdicts metrics.json
stores for the report to read.

Not run on its own. ``analysis.classify`` passes the metrics it builds through ``judge``
before writing them; ``report.facts`` only reads what it adds, and computes no test, no
correction and no best of its own:

* ``comparisons``: each family of paired tests (``FAMILIES``: every VAE feature set against
  the pixel baselines; mean & std against .sample()) is Holm-corrected on its own at
  ``analysis.stats.ALPHA`` (``stats.judge_family``), so every comparison holds its raw
  ``p_value``, ``family``, ``family_size``, ``p_adjusted``, ``significant`` and
  ``raw_significant``;
* ``tests``: the level, the correction, and each family's size (0 when the run has none);
* ``best``: the highest accuracy of a real classifier on the VAE feature sets, the earlier
  model (then feature set) on ties, with ``ties``, every other pair at that accuracy;
  ``best_by_feature_set``: the same for each feature set on its own, baselines included;
* ``weak_rivals``: the pixel PCAs a classifier makes little of: its 95% interval on one holds
  chance, or lies wholly below its interval on the narrower pooled pixels (a latent's lead
  over such a rival says more about the rival than about the latent);
* ``most_confused``: the class pairs the best result mixes up most, in either direction.
"""

from __future__ import annotations

from analysis.autoencoders import MEAN_STD_VS_SAMPLE, PIXEL_COMPARISONS, POOLED, is_real_model
from analysis.runs import sets_of_kind
from analysis.stats import ALPHA, chance, judge_family

# Families of paired tests, each Holm-corrected on its own.
FAMILIES = {"vae_vs_pixels": tuple(PIXEL_COMPARISONS), "mean_std_vs_sample": (MEAN_STD_VS_SAMPLE,)}
TOP_CONFUSED = 3  # class pairs named as the best result's most confused


def judged_comparisons(comparisons: dict) -> dict:
    """model -> name -> comparison, each given its family's Holm verdict (stats.judge_family)."""
    out = {m: dict(per) for m, per in comparisons.items()}
    for family, names in FAMILIES.items():
        members = [(m, n) for m, per in comparisons.items() for n in per if n in names]
        for (m, n), test in zip(members, judge_family([comparisons[m][n] for m, n in members])):
            out[m][n] = test | {"family": family}
    return out


def best(metrics: dict, sets: list[str]) -> dict:
    """The highest accuracy of a real classifier over ``sets``: the earliest model in the
    tables' order, then feature set, with ``ties`` (model, feature set) in feature-set order."""
    models = [m for m in metrics["model_order"] if is_real_model(m)]
    scores = [(m, fs) for fs in sets for m in models]
    top = max(metrics["results"][m][fs]["accuracy"] for m, fs in scores)
    tied = [s for s in scores if metrics["results"][s[0]][s[1]]["accuracy"] == top]
    first = min(tied, key=lambda s: (models.index(s[0]), sets.index(s[1])))
    return {"model": first[0], "feature_set": first[1], "accuracy": top,
            "ties": [{"model": m, "feature_set": fs} for m, fs in tied if (m, fs) != first]}


def weak_rivals(metrics: dict, comparisons: dict) -> list[dict]:
    """Every weak pixel rival (see the module docstring), classifier by classifier in the tables' order; a
    PCA shown twice (two widths capped alike) is named once. ``n_leads``: the VAE feature
    sets' significant leads over it in the VAE-vs-pixels family."""
    guess = chance(metrics["classes"])
    out, seen = [], set()
    for model in (m for m in metrics["model_order"] if is_real_model(m)):
        per = metrics["results"][model]
        pooled_ci = per.get(POOLED, {}).get("accuracy_ci")
        for fs in sets_of_kind(metrics, "baseline"):
            if fs == POOLED or fs not in per or not per[fs].get("accuracy_ci"):
                continue
            ci, accuracy = per[fs]["accuracy_ci"], per[fs]["accuracy"]
            at_chance, below = ci[0] <= guess, pooled_ci is not None and ci[1] < pooled_ci[0]
            same = (model, metrics["feature_sets"][fs]["n_features"], accuracy)
            if not (at_chance or below) or same in seen:
                continue
            seen.add(same)
            leads = sum(c["b"] == fs and c.get("family") == "vae_vs_pixels" and c["significant"]
                        and c["delta"] > 0 for c in comparisons.get(model, {}).values())
            out.append({"model": model, "feature_set": fs, "at_chance": at_chance,
                        "below_pooled": below, "n_leads": leads})
    return out


def confused_pairs(confusion: list[list[int]], classes: list[str], top: int = TOP_CONFUSED) -> list[dict]:
    """Class pairs with the most mistakes in either direction, most first (ties by name)."""
    pairs = []
    for i in range(len(classes)):
        for j in range(i + 1, len(classes)):
            n = confusion[i][j] + confusion[j][i]
            pairs.append({"a": classes[i], "b": classes[j], "count": n,
                          "a_as_b": confusion[i][j], "b_as_a": confusion[j][i]})
    pairs.sort(key=lambda p: (-p["count"], p["a"], p["b"]))
    return [p for p in pairs[:top] if p["count"] > 0]


def judge(metrics: dict) -> dict:
    """``metrics`` (classify.build_metrics: results, comparisons with raw p-values) with the
    verdicts of this module's docstring added; nothing it holds is changed."""
    comparisons = judged_comparisons(metrics.get("comparisons") or {})
    top = best(metrics, sets_of_kind(metrics, "vae"))
    sizes = {family: sum(c.get("family") == family for per in comparisons.values() for c in per.values())
             for family in FAMILIES}
    return metrics | {
        "comparisons": comparisons,
        "tests": {"alpha": ALPHA, "correction": "holm", "families": sizes},
        "best": top,
        "best_by_feature_set": {fs: best(metrics, [fs]) for fs in metrics["feature_set_order"]},
        "weak_rivals": weak_rivals(metrics, comparisons),
        "most_confused": confused_pairs(metrics["results"][top["model"]][top["feature_set"]]["confusion"],
                                        metrics["classes"]),
    }
