"""Stage 3e (SEEDS): the run's classifiers again under each further seed, and what holds
over all of them.

Run:
    python -m analysis.seeds build/runs/NAME build/data/dataset.npz build/runs/NAME/seeds.json \
        --config build/runs/NAME/seeds-config.json --baselines build/baselines --cache build/cache

``--config`` (analysis.config ``SeedsConfig``, written from ``SEEDS="0 1 2"``) names the
seeds; the first is the run's own (config.json), whose results the classify stage made. Each
further seed reruns only what a seed changes, and reuses everything else:

* the latents: a deterministic encoder's are the same for every seed, and a KL autoencoder's
  mean and std too; only its ``.sample()`` is drawn again (``derive``: mean + std * eps, eps
  from ``analysis.encode.draw_noise(seed)``, the very bytes an encode with that seed writes),
  so nothing is encoded or decoded again;
* the pixel baselines: fitted once per dataset, seed and width (analysis.baselines, shared by
  every run under ``--baselines``), here without their learning curves;
* the classifiers (every model's ``random_state``) and the bootstrap: refitted and redrawn
  with the seed, without learning curves or probes (the report draws those for the run's own
  seed only), cached as ``results-KEY/`` like the classify stage's (analysis.classify,
  analysis.cache).

Writes ``RUN/seeds/seed-S/`` for each further seed (metrics.json, metrics.csv,
predictions.csv, classify.json and baselines.json, as the run folder holds its own seed's:
``make diff`` reads them), then ``OUT`` (seeds.json): analysis.verdicts.across_seeds over every
seed (each accuracy's mean and spread, and whether each comparison's verdict holds for every
seed), which parts the seed varies, and ``primary_results_key``, the run's own classify.json
key it was made from; ``timings-seeds.json`` and ``OUT.d`` (analysis.deps) beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from analysis import baselines as pixel_baselines
from analysis import cache, deps, threads, verdicts
from analysis.autoencoders import feature_sets
from analysis.classify import check_baselines, fit_cached, results_key
from analysis.common import VaelabError, read_json, run_main, write_json
from analysis.config import load_seeds_config
from analysis.encode import draw_noise
from analysis.models import check_latents, code_checksum, read_run, run_svc
from analysis.runs import (BASELINES, CLASSIFY, CONFIG, LATENTS, METRICS, has_decoder, read_classify,
                           read_encode, read_metrics, seed_dir, timings_file)

SPLITS = ("train", "test")


def derive(latents: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """The latents an encode with ``seed`` writes, from those of any other seed: a KL
    autoencoder's ``{split}_sample`` drawn again as mean + std * eps with eps from
    ``draw_noise(seed)`` (mean and std do not depend on the seed); a deterministic encoder's
    latents unchanged."""
    if not all(f"{split}_sample" in latents for split in SPLITS):
        return latents
    noise = draw_noise(seed, {split: latents[f"{split}_mean"].shape for split in SPLITS})
    return latents | {f"{split}_sample": latents[f"{split}_mean"] + latents[f"{split}_std"] * noise[split]
                      for split in SPLITS}


def varies(stochastic: bool) -> dict[str, bool]:
    """What a seed changes in this run (True) and what every seed shares (False); the report
    names both."""
    return {"sample_draw": stochastic, "classifiers": True, "pixel_pca": True, "bootstrap": True,
            "latents": False, "decoded_images": False, "learning_curves_and_probes": False}


def seed_results(run: Path, latents: dict[str, np.ndarray], data_file: Path, baselines_root: Path,
                 seed: int, classes: list[str], svc: dict, cache_dir: Path | None) -> tuple[dict, dict]:
    """Fit (or reuse) one further seed: its pixel baselines, then its classifiers on the derived
    latents, into ``seed_dir(run, seed)``. (Its judged metrics, its record for seeds.json.)"""
    out_dir = seed_dir(run, seed)
    widths = {fs: feats.shape[1] for fs, feats in feature_sets(latents, "test").items()}
    folders, fitted = pixel_baselines.ensure(data_file, baselines_root, widths, seed, classes, svc,
                                             with_curves=False)
    record_file = out_dir / BASELINES
    write_json(record_file, {"root": os.path.relpath(baselines_root, out_dir), "seed": seed,
                             "widths": widths, "baselines": folders})
    baselines = pixel_baselines.load(record_file, with_curves=False)
    latents_file = run / LATENTS
    check_baselines(baselines, len(latents["y_test"]), seed, svc, latents_file)
    _, fields = results_key(latents_file, seed, classes, baselines, svc)
    # The seed's latents are derived from the run's file, not stored: its checksum and this
    # seed name them. Without learning curves: never the entry of a run made with this seed.
    fields |= {"derived_from_seed": read_json(run / CONFIG, "run configuration")["seed"],
               "learning_curves": False, "code": code_checksum(__file__)}
    key = cache.key(fields)
    reused, timings = fit_cached(derive(latents, seed), classes, seed, baselines, svc, key, fields,
                                 cache_dir, out_dir, out_dir / METRICS, with_curves=False)
    return read_metrics(out_dir), {"results_key": key, "from_cache": reused,
                                   "baselines_fitted": fitted, "timings": timings["classify"]}


def summarise(by_seed: dict[int, dict], stochastic: bool, decoder: bool, primary_key: str,
              records: dict[int, dict]) -> dict:
    """seeds.json: analysis.verdicts.across_seeds over ``by_seed`` (the run's own seed first),
    what the seed varies, and where each further seed's results are."""
    return verdicts.across_seeds(by_seed) | {
        "varies": varies(stochastic), "has_decoder": decoder, "primary_results_key": primary_key,
        "tests": {"alpha": by_seed[next(iter(by_seed))]["tests"]["alpha"], "correction": "holm",
                  "per_seed": True},
        "per_seed": {str(s): {"folder": f"seed-{s}", **{k: r[k] for k in ("results_key", "from_cache")}}
                     for s, r in records.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rerun a run's classifiers under each further seed of SEEDS")
    parser.add_argument("run", type=Path, help="the run folder (build/runs/NAME), classified")
    parser.add_argument("data", type=Path, help="dataset.npz from analysis.data")
    parser.add_argument("out", type=Path, help="seeds.json to write")
    parser.add_argument("--config", type=Path, required=True, help="seeds-config.json (analysis.config seeds)")
    parser.add_argument("--baselines", type=Path, required=True, help="folder of every pixel baseline")
    parser.add_argument("--cache", type=Path, default=None, help="results cache (none: always fit)")
    args = parser.parse_args(argv)
    threads.apply()
    started = time.perf_counter()
    seeds = load_seeds_config(args.config).seeds
    latents_file = args.run / LATENTS
    seed, classes, latents = read_run(latents_file)
    if seeds[0] != seed:
        raise VaelabError(f"SEEDS starts with {seeds[0]} but {args.run} was made with SEED={seed}; "
                          "rerun `make report`")
    check_latents(latents)
    svc = run_svc(latents_file)
    if not (args.run / CLASSIFY).is_file():
        raise VaelabError(f"{args.run} has no {CLASSIFY}; run `make report` to classify it first")
    by_seed, records, seconds = {seed: read_metrics(args.run)}, {}, {}
    for s in seeds[1:]:
        t0 = time.perf_counter()
        print(f"seeds: seed {s} of {', '.join(map(str, seeds))}", file=sys.stderr)
        by_seed[s], records[s] = seed_results(args.run, latents, args.data, args.baselines, s,
                                              classes, svc, args.cache)
        seconds[str(s)] = {"seed_seconds": round(time.perf_counter() - t0, 2), **records[s]}
    encode = read_encode(args.run)
    write_json(args.out, summarise(by_seed, bool(encode["stochastic"]), has_decoder(encode),
                                   read_classify(args.run)["results_key"], records))
    write_json(args.run / timings_file("seeds"),
               {"seeds_seconds": round(time.perf_counter() - started, 2), "per_seed": seconds})
    deps.write(args.out, __file__)


if __name__ == "__main__":
    run_main(main)
