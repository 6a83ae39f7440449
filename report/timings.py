"""Wall-clock times of a build, gathered into one file and summarised.

Run:
    python -m report.timings collect build/timings.json --data build/data \
        --run build/runs/A --run build/runs/B --baselines build/baselines
    python -m report.timings summary build/timings.json     # a few lines on stderr

Timings are the only values that differ between two identical runs, so they stay out of the
documents (report.html, report.pdf, diff.html, diff.pdf), which are byte-identical across
identical builds. Each stage writes its own ``timings-*.json`` next to its products
(``data/timings-data.json``, ``runs/<run>/timings-encode.json``, ``timings-classify.json``,
and ``baselines/<name>/timings*.json`` where pixel baselines have their own folder); this
module gathers them into ``timings.json``: per run and stage, the stage's total seconds and
the stage's own record.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.common import VaelabError, read_json, run_main, write_json
from analysis.runs import BASELINE_TIMINGS_GLOB, BASELINES, TIMINGS_GLOB

NOTE = ("Wall-clock seconds of the build that made this folder, per run and stage; the only "
        "values that differ between identical builds, so the reports leave them out.")


def stage_name(path: Path) -> str:
    """timings-encode.json -> encode; timings.json -> the folder's own timings: 'total'."""
    stem = path.stem
    return stem[len("timings-"):] if stem.startswith("timings-") else stem.removeprefix("timings") or "total"


def seconds_of(stage: str, record: object) -> float:
    """A stage's total: its own ``<stage>_seconds`` when it records one (encode_seconds,
    data_seconds), else the sum of every ``*_seconds`` value in it (fit and predict times)."""
    if isinstance(record, dict) and isinstance(record.get(f"{stage}_seconds"), (int, float)):
        return float(record[f"{stage}_seconds"])

    def total(node: object) -> float:
        if isinstance(node, dict):
            return sum(float(v) if k.endswith("_seconds") and isinstance(v, (int, float))
                       and not isinstance(v, bool) else total(v) for k, v in node.items())
        if isinstance(node, list):
            return sum(total(v) for v in node)
        return 0.0

    return total(record)


STAGE_ORDER = ("data", "encode", "classify")  # the summary's order; other stages follow by name


def stages(folder: Path, pattern: str) -> dict[str, dict]:
    out = {}
    for path in sorted(folder.glob(pattern)):
        if path.is_file():
            name = stage_name(path)
            record = read_json(path, f"{name} timings")
            out[name] = {"seconds": round(seconds_of(name, record), 2), "record": record}
    return out


def collect(data_dir: Path | None, runs: list[Path], baselines: Path | None) -> dict:
    result: dict = {"note": NOTE, "data": {}, "runs": {}, "baselines": {}}
    if data_dir is not None:
        result["data"] = stages(data_dir, TIMINGS_GLOB)
    for run in runs:
        if not run.is_dir():
            raise VaelabError(f"run {run} does not exist; run `make report` to build it")
        result["runs"][run.name] = stages(run, TIMINGS_GLOB)
    # The pixel baselines these runs use (each run's baselines.json names them), not others
    # left under the folder by earlier configurations.
    used = set()
    for run in runs:
        if (run / BASELINES).is_file():
            used |= set(read_json(run / BASELINES, "baselines record")["baselines"].values())
    if baselines is not None:
        for name in sorted(used):
            found = stages(baselines / name, BASELINE_TIMINGS_GLOB)
            if found:
                result["baselines"][name] = found
    groups = [result["data"], *result["runs"].values(), *result["baselines"].values()]
    result["total_seconds"] = round(sum(s["seconds"] for g in groups for s in g.values()), 2)
    return result


def summary(timings: dict, path: Path) -> list[str]:
    """A few lines: the total, then one line per group of stages."""

    def order(name: str) -> tuple:
        return (STAGE_ORDER.index(name) if name in STAGE_ORDER else len(STAGE_ORDER), name)

    def line(group: dict) -> str:
        parts = []
        for name in sorted(group, key=order):
            stage = group[name]
            cached = isinstance(stage["record"], dict) and stage["record"].get("from_cache")
            parts.append(f"{name} {stage['seconds']:.1f} s{' (latents from the cache)' if cached else ''}")
        return ", ".join(parts)

    lines = [f"timings: {timings['total_seconds']:.1f} s of wall-clock time in total (details: {path})"]
    if timings.get("data"):
        lines.append(f"  data: {line(timings['data']).removeprefix('data ')}")
    for name, group in timings.get("runs", {}).items():
        lines.append(f"  {name}: {line(group)}")
    for name, group in timings.get("baselines", {}).items():
        lines.append(f"  baseline {name}: {line(group)}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Gather and summarise a build's wall-clock times")
    sub = parser.add_subparsers(dest="what", required=True)
    gather = sub.add_parser("collect", help="write timings.json from the stages' timings-*.json")
    gather.add_argument("out", type=Path, help="timings.json to write")
    gather.add_argument("--run", dest="runs", type=Path, action="append", default=[],
                        help="run directory (repeatable)")
    gather.add_argument("--data", type=Path, default=None, help="data directory")
    gather.add_argument("--baselines", type=Path, default=None,
                        help="folder of pixel-baseline folders (optional)")
    show = sub.add_parser("summary", help="print a short summary of timings.json")
    show.add_argument("timings", type=Path)
    args = parser.parse_args(argv)
    if args.what == "collect":
        write_json(args.out, collect(args.data, args.runs, args.baselines))
    else:
        print("\n".join(summary(read_json(args.timings, "timings"), args.timings)), file=sys.stderr)


if __name__ == "__main__":
    run_main(main)
