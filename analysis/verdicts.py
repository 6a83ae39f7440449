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

Over several runs of the same comparisons it decides, for analysis.seeds and analysis.tune:

* ``verdict``: one judged comparison as "higher" (significantly ahead), "lower" (significantly
  behind) or "unclear";
* ``across_seeds``: each accuracy's mean and spread over the seeds of SEEDS
  (``stats.spread``), and whether each comparison's verdict holds for every seed (each seed's
  tests Holm-corrected within that seed, as its own metrics.json is);
* ``under_tuning``: the tuned comparisons judged as one family, each with the verdict of the
  same comparison at the default settings and whether tuning changed it.
"""

from __future__ import annotations

from analysis.autoencoders import MEAN_STD_VS_SAMPLE, PIXEL_COMPARISONS, POOLED, is_real_model
from analysis.runs import sets_of_kind
from analysis.stats import ALPHA, chance, judge_family, spread

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


# ---- several runs of the same comparisons: seeds (analysis.seeds), tuning (analysis.tune) ----

VERDICTS = ("higher", "lower", "unclear")


def verdict(comp: dict) -> str:
    """A judged comparison (a ``significant`` flag and a ``delta`` of A minus B): "higher" when
    A is significantly ahead, "lower" when significantly behind, else "unclear"."""
    if not comp.get("significant") or comp["delta"] == 0:
        return "unclear"
    return "higher" if comp["delta"] > 0 else "lower"


def across_seeds(by_seed: dict[int, dict]) -> dict:
    """``by_seed``: seed -> that seed's judged metrics (``judge``'s output), the run's own seed
    first. Returns, with the seeds in that order:

    * ``results``: model -> feature set -> the accuracy of each seed (``accuracy``) and its
      ``stats.spread`` (n, mean, sd, min, max);
    * ``comparisons``: model -> comparison -> the ``delta`` and ``verdict`` of each seed, the
      spread of the deltas (``mean_delta``, ``sd_delta``), ``n_agree`` (seeds whose verdict is
      the first seed's) and ``holds`` (every seed's is);
    * ``families``: per family of ``FAMILIES``, ``n_tests`` and ``n_hold``;
    * ``best``: the best result of each seed and whether it is the same model and feature set
      in every seed (``same``).
    """
    seeds = list(by_seed)
    first = by_seed[seeds[0]]
    results: dict = {}
    for model in first["model_order"]:
        for fs in first["feature_set_order"]:
            values = [by_seed[s]["results"][model][fs]["accuracy"] for s in seeds]
            results.setdefault(model, {})[fs] = {"accuracy": values} | spread(values)
    comparisons: dict = {}
    for model, per in (first.get("comparisons") or {}).items():
        for name, comp in per.items():
            runs = [by_seed[s]["comparisons"][model][name] for s in seeds]
            said = [verdict(c) for c in runs]
            deltas = [c["delta"] for c in runs]
            delta_spread = spread(deltas)
            comparisons.setdefault(model, {})[name] = {
                "a": comp["a"], "b": comp["b"], "family": comp.get("family"), "delta": deltas,
                "verdict": said, "mean_delta": delta_spread["mean"], "sd_delta": delta_spread["sd"],
                "n_agree": sum(v == said[0] for v in said), "holds": all(v == said[0] for v in said)}
    families = {family: {"n_tests": sum(c["family"] == family for per in comparisons.values() for c in per.values()),
                         "n_hold": sum(c["family"] == family and c["holds"]
                                       for per in comparisons.values() for c in per.values())}
                for family in FAMILIES}
    bests = [{k: by_seed[s]["best"][k] for k in ("model", "feature_set", "accuracy")} for s in seeds]
    return {"seeds": seeds, "results": results, "comparisons": comparisons, "families": families,
            "best": {"per_seed": bests,
                     "same": all((b["model"], b["feature_set"]) == (bests[0]["model"], bests[0]["feature_set"])
                                 for b in bests)}}


def under_tuning(tuned: dict, default: dict) -> tuple[dict, dict]:
    """``tuned``: model -> comparison -> the paired test of the tuned models (stats.paired, with
    ``a`` and ``b``); ``default``: the run's judged comparisons (metrics.json). The tuned tests
    are one family (``tuned_vae_vs_pixels``), Holm-corrected as the run's own; each gets its
    ``verdict``, the default's (``default_verdict``, from the run's family, with its ``delta``
    and ``p_adjusted``) and ``changed``. Returns (comparisons, tests: the family's size and
    how many verdicts changed)."""
    members = [(m, n) for m, per in tuned.items() for n in per]
    out: dict = {}
    for (m, n), test in zip(members, judge_family([tuned[m][n] for m, n in members])):
        before = default[m][n]
        now = verdict(test)
        out.setdefault(m, {})[n] = test | {
            "family": "tuned_vae_vs_pixels", "verdict": now, "default_verdict": verdict(before),
            "default_delta": before["delta"], "default_p_adjusted": before["p_adjusted"],
            "changed": now != verdict(before)}
    changed = sum(c["changed"] for per in out.values() for c in per.values())
    return out, {"alpha": ALPHA, "correction": "holm", "family_size": len(members), "n_changed": changed}
