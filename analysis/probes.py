"""Stage 3b: where the class information sits in the latent.

Run:
    python -m analysis.probes build/runs/NAME/latents.npz build/runs/NAME/probes.json \
        --cache build/cache

One fast model (``PROBE_MODEL``: logistic regression, as in the main table) is trained on
parts of the run's primary latent (``.sample()`` for a KL autoencoder, the latent of a
deterministic one; shape (N, C, h, w), e.g. (N, 4, 4, 4) for SD VAEs at 32 px):
* ``channels``: each channel alone, (N, h*w) features: 4 scores for SD VAEs, 16 for FLUX.1's
  VAE, 32 for DC-AE;
* ``positions``: each spatial position alone, all channels there, (N, C) features: a 4x4 map
  for SD VAEs at 32 px, a single cell for DC-AE's 1x1 latent;
* ``without_channel``: all channels but one, (N, (C-1)*h*w), and the drop against all of
  them, with a paired bootstrap interval over test images (none when C = 1).
Every score is on the full test set with a seeded 95% bootstrap interval. ``all`` is the
model on the whole latent (the reference the drops are measured from).

Results are cached under ``--cache`` as ``probes-KEY.json`` (analysis.cache: sealed with a
checksum, refitted when damaged), keyed by the latents' checksum, the seed and the code this
stage runs, so a variant whose encoder another shares fits nothing. Writes OUT,
``timings-probes.json`` next to it (seconds; the only non-deterministic output) and
``OUT.d``, the modules this stage runs, for make (analysis.deps).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np

from analysis import cache, deps, runs, stats, threads
from analysis.autoencoders import FEATURE_SETS, feature_set_keys
from analysis.common import copy_file, file_lock, progress, run_main, sha256_file, write_json
from analysis.models import check_latents, code_checksum, fit_predict, read_run

PROBE_MODEL = "logreg"
ROUND = 4


def channel_features(x: np.ndarray, c: int) -> np.ndarray:
    """(N, C, h, w) -> channel ``c`` alone, (N, h*w)."""
    return x[:, c].reshape(len(x), -1)


def position_features(x: np.ndarray, i: int, j: int) -> np.ndarray:
    """(N, C, h, w) -> every channel at row ``i``, column ``j``, (N, C)."""
    return x[:, :, i, j]


def without_channel(x: np.ndarray, c: int) -> np.ndarray:
    """(N, C, h, w) -> every channel but ``c``, (N, (C-1)*h*w)."""
    return np.delete(x, c, axis=1).reshape(len(x), -1)


def probe_plan(shape: tuple[int, int, int]) -> list[tuple[str, tuple[int, ...]]]:
    """The fits for a latent of ``shape`` (C, h, w): ("all", ()), ("channel", (c,)),
    ("position", (i, j)), ("without", (c,)); parts equal to the whole latent (one channel,
    one position) are not fitted again."""
    c, h, w = shape
    plan = [("all", ())]
    if c > 1:
        plan += [("channel", (k,)) for k in range(c)]
        plan += [("without", (k,)) for k in range(c)]
    if h * w > 1:
        plan += [("position", (i, j)) for i in range(h) for j in range(w)]
    return plan


def features_for(kind: str, where: tuple[int, ...], x: np.ndarray) -> np.ndarray:
    if kind == "all":
        return x.reshape(len(x), -1)
    if kind == "channel":
        return channel_features(x, *where)
    if kind == "position":
        return position_features(x, *where)
    return without_channel(x, *where)


def scored(correct: np.ndarray, seed: int, n_features: int) -> dict:
    low, high = stats.accuracy_ci(correct, seed)
    return {"accuracy": round(float(np.mean(correct)), ROUND), "ci": [round(low, ROUND), round(high, ROUND)],
            "n_features": int(n_features)}


def probe(train: np.ndarray, test: np.ndarray, y_train: np.ndarray, y_test: np.ndarray,
          seed: int) -> tuple[dict, float]:
    """Fit PROBE_MODEL on the parts of (N, C, h, w) latents: (result, seconds of the fits).

    result: ``all``, ``channels`` (C entries), ``positions`` (h rows of w entries) and
    ``without_channel`` (C entries, each with ``drop`` = acc(all) - acc(without) and its
    paired ``drop_ci``; empty when C = 1). A single channel or position is the whole latent.
    """
    shape = tuple(int(s) for s in train.shape[1:])
    plan = probe_plan(shape)
    correct: dict[tuple, np.ndarray] = {}
    scores: dict[tuple, dict] = {}
    seconds = 0.0
    bar = progress(len(plan), "probes", "fit")
    for kind, where in plan:
        x_train, x_test = features_for(kind, where, train), features_for(kind, where, test)
        y_pred, fit_s, predict_s = fit_predict(PROBE_MODEL, seed, x_train, y_train, x_test)
        seconds += fit_s + predict_s
        correct[kind, where] = y_pred == y_test
        scores[kind, where] = scored(correct[kind, where], seed, x_train.shape[1])
        bar.update(1)
    bar.close()
    c, h, w = shape
    whole = scores["all", ()]

    def part(kind: str, where: tuple[int, ...]) -> dict:
        return scores.get((kind, where), whole)

    without = []
    for k in range(c if c > 1 else 0):
        low, high = stats.delta_ci(correct["without", (k,)], correct["all", ()], seed)
        drop = float(np.mean(correct["all", ()]) - np.mean(correct["without", (k,)]))
        without.append(part("without", (k,)) | {"channel": k, "drop": round(drop, ROUND),
                                                 "drop_ci": [round(low, ROUND), round(high, ROUND)]})
    result = {"model": PROBE_MODEL, "shape": list(shape), "all": whole,
              "channels": [part("channel", (k,)) | {"channel": k} for k in range(c)],
              "positions": [[part("position", (i, j)) | {"row": i, "column": j} for j in range(w)]
                            for i in range(h)],
              "without_channel": without}
    return result, seconds


def cache_key(latents_file: Path, seed: int) -> str:
    """The probes' cache key: the latents, the seed and the code this stage runs."""
    return cache.key({"latents_sha256": sha256_file(latents_file), "seed": seed},
                     code_checksum(__file__))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Where the class information sits in the latent")
    parser.add_argument("latents", type=Path, help="latents.npz from analysis.encode")
    parser.add_argument("out", type=Path, help="probes.json to write")
    parser.add_argument("--cache", type=Path, default=None, help="cache directory (none: always fit)")
    args = parser.parse_args(argv)
    threads.apply()
    seed, classes, latents = read_run(args.latents)
    check_latents(latents)
    primary = feature_set_keys(latents)[0]  # .sample() or the latent
    array = FEATURE_SETS[primary].arrays[0]
    key = cache_key(args.latents, seed)
    entry = args.cache / f"probes-{key}.json" if args.cache is not None else None
    seconds = None
    with file_lock(args.cache / f"probes-{key}.lock") if entry else contextlib.nullcontext():
        if cache.reusable(entry):
            print(f"probes: latents, seed and code as in {entry.name}; reusing it", file=sys.stderr)
        else:
            t0 = time.perf_counter()
            result, seconds = probe(latents[f"train_{array}"], latents[f"test_{array}"],
                                    latents["y_train"], latents["y_test"], seed)
            result = {"feature_set": primary, "label": FEATURE_SETS[primary].label, "seed": seed,
                      "classes": classes, "n_train": int(len(latents["y_train"])),
                      "n_test": int(len(latents["y_test"]))} | result
            write_json(entry or args.out, result)
            if entry is not None:
                cache.seal(entry)
            print(f"probes: {len(probe_plan(tuple(result['shape'])))} fits of {PROBE_MODEL} in "
                  f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    write_json(args.out.parent / runs.timings_file("probes"),
               {} if seconds is None else {"fit_predict_seconds": round(seconds, 3)})
    if entry is not None:
        copy_file(entry, args.out)
    deps.write(args.out, __file__)


if __name__ == "__main__":
    run_main(main)
