"""Stage 3f (TUNE): hyperparameters chosen by cross-validation on the training images, for the
VAE feature sets and their equal-width pixel PCAs alike, and whether Table 4's verdicts
change under them.

Run:
    python -m analysis.tune build/runs/NAME build/data/dataset.npz build/runs/NAME/tuned.json \
        --config build/runs/NAME/tune-config.json --cache build/cache

``--config`` (analysis.config ``TuneConfig``, from ``TUNE=1`` or ``TUNE="svc lightgbm"``)
names the models. For each of them and each feature set the search sees (the run's VAE
feature sets and, for each, the pixel PCA as wide as it, the baseline its Table 4 column sets
it against), ``search`` runs scikit-learn's ``HalvingGridSearchCV`` over that model's
``SPACES`` grid (which holds the default settings of analysis.models): stratified, shuffled
3-fold cross-validation seeded with the run's seed, accuracy as the score, successive halving
by training rows (every grid's first round on ``TuneConfig.max_rows`` / 9 rows, ``first_rows``;
a third of the candidates go on, on three times the rows, at most ``max_rows``; a last round
of one candidate, which chooses nothing, is not run: ``last_rows``), on the training images
only. The chosen settings are
then refitted on every training image and scored on the test images; when they are the
defaults, the default fit's predictions are taken as they are (the same model).

On 5,000 training rows or more (``PARALLEL_MIN_ROWS``), the boosted trees' and libsvm's searches
run side by side in worker processes, one thread each, a whole search and its refit per
worker (``run_searches``); the others follow in this process on the stage's threads.

Each search is a cache entry ``tuned-KEY/`` (search.json, predictions.npz; analysis.cache),
keyed by the features (the latents' checksum and feature set, or the dataset's checksum and the
pixel PCA's components), the model, its grid, the search settings, the seed, the SVC library
for SVC and this stage's code: variants that share an encoder, or a PCA width, search once.

The tuned models' comparisons (each VAE feature set against its pixel PCA, on the same test
images: analysis.stats.paired) are one Holm family, judged by analysis.verdicts.under_tuning
beside the default verdict of the same comparison in metrics.json. Writes ``OUT``
(tuned.json: the grids, the search, every chosen setting with its cross-validated accuracy and
the rounds, tuned and default test accuracies, the judged comparisons),
``timings-tune.json`` and ``OUT.d`` (analysis.deps) beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analysis import baselines as pixel_baselines
from analysis import cache, deps, stats, threads, verdicts
from analysis.autoencoders import feature_set_keys, feature_sets, pca_baseline, versus
from analysis.common import (VaelabError, file_lock, load_npz, read_json, run_main, save_npz,
                             sha256_file, write_json)
from analysis.config import TuneConfig, load_tune_config
from analysis.models import (PARALLEL_MIN_ROWS, ROUND, check_latents, code_checksum, make_model,
                             read_run, run_svc)
from analysis.runs import (BASELINE, BASELINES, CLASSIFY, LATENTS, PREDICTIONS_NPZ, SEARCH, read_metrics,
                           read_predictions, timings_file)

TUNE_VERSION = 3  # 2: no last round of a single candidate; 3: every grid starts on max_rows / 9
# The grids, on the final estimator's parameters; each holds the setting analysis.models uses
# (DEFAULTS), so a search never does worse in cross-validation than the default did there.
# Small on purpose: every candidate costs fits, and the costly settings (more trees) are not
# searched. SVC's gamma is in multiples of its default, gamma='scale' (on standardised
# features, 1 / the number of non-constant features).
SPACES: dict[str, dict[str, tuple]] = {
    "logreg": {"C": (0.01, 0.1, 1.0, 10.0)},
    "rf": {"max_features": ("sqrt", "log2"), "min_samples_leaf": (1, 2, 4)},
    "knn": {"n_neighbors": (5, 10, 25, 50), "weights": ("uniform", "distance")},
    "svc": {"C": (0.3, 1.0, 3.0, 10.0), "gamma": (0.5, 1.0, 2.0)},
    "histgb": {"learning_rate": (0.05, 0.1, 0.2), "max_leaf_nodes": (15, 31, 63)},
    "lightgbm": {"learning_rate": (0.05, 0.1, 0.2), "num_leaves": (15, 31, 63)},
    "xgboost": {"learning_rate": (0.1, 0.3), "max_depth": (4, 6, 8)},
}
DEFAULTS: dict[str, dict] = {
    "logreg": {"C": 1.0}, "rf": {"max_features": "sqrt", "min_samples_leaf": 1},
    "knn": {"n_neighbors": 25, "weights": "uniform"}, "svc": {"C": 1.0, "gamma": 1.0},
    "histgb": {"learning_rate": 0.1, "max_leaf_nodes": 31},
    "lightgbm": {"learning_rate": 0.1, "num_leaves": 31},
    "xgboost": {"learning_rate": 0.3, "max_depth": 6},
}
BOOSTED = ("histgb", "lightgbm", "xgboost")
# HistGradientBoostingClassifier(early_stopping='auto') stops early on more rows than this
# (scikit-learn's documented rule).
HISTGB_EARLY_STOPPING_ROWS = 10_000
# The order run_searches starts its side-by-side searches in, longest first so that the
# workers end together: features x this weight, about a job's one-thread search + refit
# seconds per feature at 50,000 rows on a Zen 3 (docs/benchmarks.md): HistGB 2.0, LightGBM 3.6,
# XGBoost 2.0 (defaults kept) to 3.9 (max_depth=8 refitted), libsvm's SVC 4.5.
SEARCH_WEIGHT = {"histgb": 2, "lightgbm": 4, "xgboost": 3, "svc": 4}
# How the report writes a searched value whose meaning is not plain (SVC's gamma multiples).
UNITS = {("svc", "gamma"): "× scale"}


def step_name(model) -> str | None:
    """The pipeline step holding the classifier ('svc' in StandardScaler -> SVC), or None."""
    return model.steps[-1][0] if hasattr(model, "steps") else None


def estimator_params(key: str, params: dict, x_train: np.ndarray, model) -> dict:
    """``params`` as SPACES writes them -> the estimator's own (SVC's gamma multiples made
    values: the default, 1, stays gamma='scale'), prefixed with the pipeline step."""
    out = dict(params)
    if key == "svc":
        m = out["gamma"]
        out["gamma"] = "scale" if m == 1.0 else m * scale_gamma(x_train)
    step = step_name(model)
    return {f"{step}__{k}" if step else k: v for k, v in out.items()}


def scale_gamma(x_train: np.ndarray) -> float:
    """gamma='scale' of an SVC on standardised ``x_train``: 1 / (features x their variance),
    which is 1 / the number of non-constant features (each standardised column has variance 1,
    a constant one 0)."""
    return 1.0 / max(int(np.count_nonzero(x_train.std(axis=0) > 0)), 1)


def tuned_model(key: str, params: dict, seed: int, x_train: np.ndarray, svc: str):
    """analysis.models.make_model's estimator for ``key`` with ``params`` (SPACES' form)."""
    model = make_model(key, seed, len(x_train), svc)
    return model.set_params(**estimator_params(key, params, x_train, model))


def search_estimator(key: str, seed: int, n_train: int, svc: str):
    """The estimator the search clones for its candidates: make_model's for the whole training
    set, so that the search scores the model it will refit. HistGradientBoosting's
    early_stopping='auto' decides on the rows it is given, which would stop early on more than
    10,000 training rows but never on the search's smaller folds: it is fixed to the refit's
    choice, so the candidates stop early where the refit will (and then cost a fraction of
    their 100 rounds)."""
    model = make_model(key, seed, n_train, svc)
    if key == "histgb":
        model.set_params(early_stopping=n_train > HISTGB_EARLY_STOPPING_ROWS)
    return model


def first_rows(n_train: int, n_classes: int, config: TuneConfig) -> int:
    """The rows of the search's first round: max_rows / factor² (1,111 of 10,000) for every
    grid, at least folds x 2 x classes (so every fold sees every class), capped at the training
    set (then one round of every candidate on every row).

    scikit-learn's min_resources='exhaust' would start each grid so that its last round ends
    on max_rows: a 6-candidate grid on 3,333 rows, ending on 2 candidates at 10,000, where a
    9-candidate grid starts on 1,111 and ends (last_rows) on 3 at 3,333, so the smaller grid
    cost the more. One start for all makes the rows a search ends on depend on its grid's size
    the other way round, and fits on thousands of rows are what a search pays for
    (docs/benchmarks.md)."""
    top = min(n_train, config.max_rows)
    return min(top, max(config.folds * 2 * n_classes, top // config.factor ** 2))


def last_rows(n_train: int, n_classes: int, n_candidates: int, config: TuneConfig) -> int:
    """The rows of the search's last round. HalvingGridSearchCV would end, on 9 candidates and
    factor 3, with a round of 1 candidate on the most rows (9, 3, 1): a round that chooses
    nothing (its one candidate is the best of the round before) and, for the boosted trees,
    whose fits cost nearly as much on 1,000 rows as on 10,000, an eighth of the search. So
    where the last round would hold one candidate the search stops a round earlier: the same
    choice, its cross-validated accuracy from that round."""
    first = first_rows(n_train, n_classes, config)
    top = min(n_train, config.max_rows)
    rounds = 1 + math.floor(math.log(max(top // first, 1), config.factor))  # as scikit-learn counts them
    rounds = min(rounds, 1 + math.floor(math.log(n_candidates, config.factor)))
    if rounds > 1 and math.ceil(n_candidates / config.factor ** (rounds - 1)) == 1:
        return first * config.factor ** (rounds - 2)
    return top


def grid(key: str, n_train: int, n_classes: int, config: TuneConfig) -> dict[str, list]:
    """SPACES[key] as lists, less the KNN neighbour counts larger than the first round's
    training folds hold (k must not exceed the training rows)."""
    space = {name: list(values) for name, values in SPACES[key].items()}
    if key == "knn":
        fold = first_rows(n_train, n_classes, config) * (config.folds - 1) // config.folds
        space["n_neighbors"] = [k for k in SPACES[key]["n_neighbors"] if k <= fold] or [max(1, min(5, fold))]
    return space


def search(key: str, x_train: np.ndarray, y_train: np.ndarray, seed: int, svc: str,
           config: TuneConfig, n_jobs: int = 1, one_thread: bool = False) -> dict:
    """One successive-halving grid search on the training rows: the chosen settings
    (SPACES' form), whether they are the defaults, their mean cross-validated accuracy in the
    last round, and each round's candidates and rows. ``n_jobs``: worker processes for the
    candidates' fits, one thread each; ``one_thread``: LightGBM and XGBoost fit on one thread
    (the search runs in a worker of run_searches)."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV, StratifiedKFold

    counts = np.bincount(y_train)
    if counts[counts > 0].min() < config.folds:
        raise VaelabError(f"TUNE needs at least {config.folds} training images per class for its "
                          f"{config.folds}-fold cross-validation; use more images (LIMIT)")
    n_classes = int(np.count_nonzero(counts))
    space = grid(key, len(y_train), n_classes, config)
    candidates = [dict(zip(space, values)) for values in itertools.product(*space.values())]
    model = single_threaded(key, search_estimator(key, seed, len(y_train), svc), one_thread or n_jobs > 1)
    settings = [estimator_params(key, c, x_train, model) for c in candidates]
    last = last_rows(len(y_train), n_classes, len(candidates), config)
    halving = HalvingGridSearchCV(
        model, [{k: [v] for k, v in c.items()} for c in settings], factor=config.factor,
        resource="n_samples", max_resources=last,
        min_resources=first_rows(len(y_train), n_classes, config),
        cv=StratifiedKFold(config.folds, shuffle=True, random_state=seed), scoring="accuracy",
        refit=False, error_score="raise", random_state=seed, n_jobs=n_jobs)
    halving.fit(x_train, y_train)
    shortened = last < min(len(y_train), config.max_rows)
    best = next_round_pick(halving.cv_results_) if shortened else halving.best_index_
    chosen = candidates[settings.index(halving.cv_results_["params"][best])]
    return {"params": chosen, "default": chosen == DEFAULTS[key],
            "cv_accuracy": round(float(halving.cv_results_["mean_test_score"][best]), ROUND),
            "candidates": len(candidates),
            "rounds": [{"candidates": int(c), "rows": int(r)}
                       for c, r in zip(halving.n_candidates_, halving.n_resources_)]}


def next_round_pick(results: dict) -> int:
    """The index (in cv_results_) of the last round's candidate that scikit-learn would send
    on to a round of one, as its _top_k picks it (highest mean score; among ties the later in
    the round's order): the choice of the search that last_rows shortened."""
    last = np.flatnonzero(np.asarray(results["iter"]) == np.max(results["iter"]))
    scores = np.asarray(results["mean_test_score"])[last]
    order = np.roll(np.argsort(scores), np.count_nonzero(np.isnan(scores)))
    return int(last[order[-1]])


def single_threaded(key: str, model, one: bool):
    """``model``, on one thread where ``one`` and it sets its own (LightGBM, XGBoost; in joblib's
    worker processes OpenMP, HistGradientBoosting's, already runs on cores / workers threads).
    LightGBM (deterministic=True) and HistGradientBoosting grow the same trees on any thread
    count, and the tests find the same search result for XGBoost."""
    if one and key in ("lightgbm", "xgboost"):
        model.set_params(n_jobs=1)
    return model


def pooled(key: str, svc: str) -> bool:
    """Whether ``key``'s searches go side by side in worker processes (run_searches): libsvm's
    SVC, single-threaded, and the boosted trees, whose fits on a few thousand rows use a second
    thread poorly (docs/benchmarks.md)."""
    return (key == "svc" and svc == "libsvm") or key in BOOSTED


def searched(key: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int,
             svc: str, config: TuneConfig, default_predictions: np.ndarray, n_jobs: int = 1,
             one_thread: bool = False) -> tuple[dict, np.ndarray, dict]:
    """``search``, then the chosen settings refitted on every training row and their test
    predictions; the defaults' predictions when it chose them. (search record, predictions,
    seconds.)"""
    t0 = time.perf_counter()
    found = search(key, x_train, y_train, seed, svc, config, n_jobs, one_thread)
    t1 = time.perf_counter()
    if found["default"]:
        predictions = default_predictions
    else:
        model = single_threaded(key, tuned_model(key, found["params"], seed, x_train, svc), one_thread)
        model.fit(x_train, y_train)
        predictions = np.asarray(model.predict(x_test)).astype(np.int64)
    t2 = time.perf_counter()
    return found, predictions, {"search_seconds": round(t1 - t0, 3), "refit_seconds": round(t2 - t1, 3)}


def run_searches(jobs: list[tuple[str, str]], features: dict[str, tuple[np.ndarray, np.ndarray]],
                 y_train: np.ndarray, defaults: dict, seed: int, svc: str, config: TuneConfig,
                 workers: int, done: Callable[[tuple[str, str], tuple], None] | None = None,
                 ) -> dict[tuple[str, str], tuple[dict, np.ndarray, dict]]:
    """``searched`` for each (model, feature set) of ``jobs`` (``features``: set -> (x_train,
    x_test); ``defaults``: job -> the default fit's test predictions), as analysis.models.fit_all
    schedules libsvm: on at least PARALLEL_MIN_ROWS training rows, the ``pooled`` models'
    searches go to ``workers`` processes, the longest first (SEARCH_WEIGHT), each search and its
    refit in one process on one thread. So no core waits at the end of a round of halving for the other's
    last fit (a round of 9 fits on two cores leaves one idle for the ninth), and the refits run
    side by side on one thread each. The rest follow in this process on the stage's threads
    (oneDAL's SVC and RF thread themselves; LogReg and KNN through BLAS, whose thread count
    changes their last bits). A single pooled search keeps the workers for its candidates.
    ``done(job, result)`` is called as each search ends (the cache seals it then, so an
    interrupted stage keeps what it finished). {job: (search record, predictions, seconds)}."""
    from joblib import Parallel, delayed

    big = len(y_train) >= PARALLEL_MIN_ROWS and workers > 1
    side_by_side = sorted((job for job in jobs if big and pooled(job[0], svc)),
                          key=lambda job: -features[job[1]][0].shape[1] * SEARCH_WEIGHT[job[0]])
    if len(side_by_side) < 2:
        side_by_side = []
    in_process = [job for job in jobs if job not in side_by_side]

    def arguments(job: tuple[str, str]) -> tuple:
        key, fs = job
        x_train, x_test = features[fs]
        return key, x_train, y_train, x_test, seed, svc, config, defaults[job]

    out: dict = {}

    def finished(job: tuple[str, str], result: tuple) -> None:
        out[job] = result
        if done is not None:
            done(job, result)

    if side_by_side:
        print(f"tune: {len(side_by_side)} searches side by side in {min(workers, len(side_by_side))} "
              f"processes: {', '.join(f'{key} on {fs}' for key, fs in side_by_side)}", file=sys.stderr)
        for job, result in Parallel(n_jobs=min(workers, len(side_by_side)), batch_size=1,
                                    return_as="generator_unordered")(
                delayed(job_searched)(job, *arguments(job)) for job in side_by_side):
            finished(job, result)
    for job in in_process:
        key, fs = job
        print(f"tune: {key} on {fs} ({features[fs][0].shape[1]} features)", file=sys.stderr)
        finished(job, searched(*arguments(job), n_jobs=workers if big and pooled(key, svc) else 1))
    return {job: out[job] for job in jobs}


def job_searched(job: tuple[str, str], *arguments) -> tuple[tuple[str, str], tuple]:
    """(job, ``searched(*arguments)`` on one thread, its seconds marked side_by_side): a worker's
    result, named, as they come back in the order they end."""
    found, predictions, seconds = searched(*arguments, one_thread=True)
    return job, (found, predictions, seconds | {"side_by_side": True})


def cached_searches(jobs: list[tuple[str, str]], keys: dict, cache_dir: Path | None,
                    compute: Callable) -> dict[tuple[str, str], tuple[dict, np.ndarray, dict]]:
    """Each job's (search record, predictions, seconds). ``keys``: job -> its cache entry's key;
    jobs with one key (two pixel PCAs capped at the same width) share one search, counted once
    in the seconds. Entries sealed in ``cache_dir`` are read; the rest go to
    ``compute(pending jobs, done)``, each under its entry's lock and sealed as it ends. An entry
    another stage holds the lock of (make -j: two variants, one encoder, or a shared PCA) is
    waited for after this stage's own searches, then read, or searched where that stage stopped
    short."""
    firsts: dict = {}
    for job in jobs:
        firsts.setdefault(keys[job], job)
    found: dict = {}

    def entry(k: str) -> Path:
        return cache_dir / f"tuned-{k}"

    def read(k: str) -> tuple:
        return (read_json(entry(k) / SEARCH, "tuning search"),
                load_npz(entry(k) / PREDICTIONS_NPZ, "tuned predictions", ("y_pred",))["y_pred"],
                {"search_seconds": 0.0, "refit_seconds": 0.0, "from_cache": True})

    def seal(job: tuple[str, str], result: tuple) -> None:
        found[keys[job]] = result
        if cache_dir is not None:
            write_json(entry(keys[job]) / SEARCH, result[0])
            save_npz(entry(keys[job]) / PREDICTIONS_NPZ, y_pred=result[1])
            cache.seal(entry(keys[job]))  # last: the entry is complete

    theirs = []
    with contextlib.ExitStack() as held:
        mine = []
        for k, job in firsts.items():
            if cache_dir is None:
                mine.append(job)
            elif cache.reusable(entry(k)):
                found[k] = read(k)
            elif not held.enter_context(file_lock(entry(k).with_suffix(".lock"), wait=False)):
                theirs.append(k)
            elif cache.reusable(entry(k)):  # sealed since the first look
                found[k] = read(k)
            else:
                mine.append(job)
        if mine:
            compute(mine, seal)
    for k in theirs:
        with file_lock(entry(k).with_suffix(".lock")):
            if cache.reusable(entry(k)):
                found[k] = read(k)
            else:
                compute([firsts[k]], seal)
    out = {}
    for job in jobs:
        first = firsts[keys[job]] == job
        out[job] = found[keys[job]] if first else found[keys[job]][:2] + (
            found[keys[job]][2] | {"search_seconds": 0.0, "refit_seconds": 0.0, "same_as": firsts[keys[job]][1]},)
    return out


def entry_key(key: str, features: dict, seed: int, classes: list[str], svc: dict,
              config: TuneConfig) -> str:
    """The cache key of one search: see the module docstring."""
    return cache.key({"tune_version": TUNE_VERSION, "model": key, "features": features, "seed": seed,
                      "classes": classes, "space": {k: list(v) for k, v in SPACES[key].items()},
                      "search": {"folds": config.folds, "factor": config.factor, "max_rows": config.max_rows},
                      **({"svc": svc} if key == "svc" else {})}, code_checksum(__file__))


def tuned_sets(metrics: dict, vae_sets: tuple[str, ...]) -> list[str]:
    """The feature sets the search sees: each VAE feature set, then each pixel PCA as wide as
    one of them (the baselines of Table 4's equal-width columns)."""
    return [*vae_sets, *(pca_baseline(fs) for fs in vae_sets if pca_baseline(fs) in metrics["feature_sets"])]


def tune_run(run: Path, data_file: Path, config: TuneConfig, cache_dir: Path | None) -> tuple[dict, dict]:
    """Every search of the run (cached), the tuned comparisons judged: (tuned.json, timings)."""
    latents_file = run / LATENTS
    seed, classes, latents = read_run(latents_file)
    check_latents(latents)
    svc = run_svc(latents_file)
    metrics, default_columns = read_metrics(run), read_predictions(run)
    record = read_json(run / BASELINES, "baselines record")
    vae_sets = feature_set_keys(latents)
    sets = tuned_sets(metrics, vae_sets)
    y_train, y_test = latents["y_train"], latents["y_test"]
    latents_sha256 = sha256_file(latents_file)
    # What each set's features are made of: the latents, or the training pixels' PCA to this many
    # components (two PCAs capped at the same width are the same features: one search).
    root = run / record["root"]
    features = {fs: {"latents_sha256": latents_sha256, "feature_set": fs} if fs in vae_sets
                else {"pixel_pca": metrics_width(metrics, fs), "seed": seed, "dataset_sha256": read_json(
                    root / record["baselines"][fs] / BASELINE, "pixel baseline")["dataset_sha256"]}
                for fs in sets}
    loaded: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def arrays(fs: str) -> tuple[np.ndarray, np.ndarray]:
        if not loaded:
            loaded.update({k: (v, feature_sets(latents, "test")[k])
                           for k, v in feature_sets(latents, "train").items()})
        if fs not in loaded:  # a pixel PCA: fitted again on the training pixels, as its baseline was
            data = load_npz(data_file, "dataset", ("x_train", "y_train", "x_test", "y_test"))
            loaded[fs] = pixel_baselines.features_of("pca", metrics_width(metrics, fs), data, seed)
        return loaded[fs]

    jobs = [(key, fs) for key in config.models for fs in sets]
    keys = {job: entry_key(job[0], features[job[1]], seed, classes, svc, config) for job in jobs}
    searches = cached_searches(jobs, keys, cache_dir, lambda pending, done: run_searches(
        pending, {fs: arrays(fs) for fs in dict.fromkeys(fs for _, fs in pending)}, y_train,
        {job: np.asarray(default_columns[f"{job[0]}__{job[1]}"], dtype=np.int64) for job in pending},
        seed, svc["implementation"], config, threads.workers(), done))
    results: dict = {}
    predictions: dict[tuple[str, str], np.ndarray] = {}
    timings: dict = {}
    for key, fs in jobs:
        found, pred, seconds = searches[key, fs]
        predictions[key, fs] = pred.astype(np.int64)
        low, high = stats.accuracy_ci(pred == y_test, seed)
        base = metrics["results"][key][fs]
        results.setdefault(key, {})[fs] = found | {
            "accuracy": round(float(np.mean(pred == y_test)), ROUND),
            "accuracy_ci": [round(low, ROUND), round(high, ROUND)],
            "default_accuracy": base["accuracy"], "default_accuracy_ci": base.get("accuracy_ci")}
        timings.setdefault(key, {})[fs] = seconds
    tests: dict = {}
    for key in config.models:
        for fs in vae_sets:
            name, b = versus(fs, pca_baseline(fs)), pca_baseline(fs)
            if (key, b) in predictions and name in (metrics.get("comparisons") or {}).get(key, {}):
                tests.setdefault(key, {})[name] = {"a": fs, "b": b} | stats.paired(
                    predictions[key, fs] == y_test, predictions[key, b] == y_test, seed)
    comparisons, family = verdicts.under_tuning(tests, metrics["comparisons"]) if tests else ({}, {
        "alpha": stats.ALPHA, "correction": "holm", "family_size": 0, "n_changed": 0})
    return {
        "models": list(config.models), "feature_sets": sets, "seed": seed,
        "primary_results_key": read_json(run / CLASSIFY, "classifier record")["results_key"],
        "search": {"method": "HalvingGridSearchCV", "folds": config.folds, "factor": config.factor,
                   "first_rows": first_rows(len(y_train), int(np.count_nonzero(np.bincount(y_train))), config),
                   "max_rows": config.max_rows, "most_rows": min(int(len(y_train)), config.max_rows),
                   "scoring": "accuracy", "resource": "training rows", "cv": "StratifiedKFold(shuffle=True)",
                   "training_rows": int(len(y_train))},
        "spaces": {key: {k: list(v) for k, v in SPACES[key].items()} for key in config.models},
        "defaults": {key: DEFAULTS[key] for key in config.models},
        "units": {key: {p: unit for (m, p), unit in UNITS.items() if m == key} for key in config.models},
        "results": results, "comparisons": comparisons, "tests": family,
    }, timings


def metrics_width(metrics: dict, fs: str) -> int:
    """The width metrics.json gives a feature set (a pixel PCA's components)."""
    return int(metrics["feature_sets"][fs]["n_features"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Tune the run's classifiers by successive-halving CV")
    parser.add_argument("run", type=Path, help="the run folder (build/runs/NAME), classified")
    parser.add_argument("data", type=Path, help="dataset.npz from analysis.data")
    parser.add_argument("out", type=Path, help="tuned.json to write")
    parser.add_argument("--config", type=Path, required=True, help="tune-config.json (analysis.config tune)")
    parser.add_argument("--cache", type=Path, default=None, help="search cache (none: always search)")
    args = parser.parse_args(argv)
    threads.apply()
    started = time.perf_counter()
    config = load_tune_config(args.config)
    unknown = [m for m in config.models if m not in SPACES]
    if unknown:
        raise VaelabError(f"{args.config} names {', '.join(unknown)}, which have no search space; "
                          f"use some of {', '.join(SPACES)}")
    tuned, timings = tune_run(args.run, args.data, config, args.cache)
    write_json(args.out, tuned)
    write_json(args.run / timings_file("tune"),
               {"tune_seconds": round(time.perf_counter() - started, 2), "searches": timings})
    deps.write(args.out, __file__)


if __name__ == "__main__":
    run_main(main)
