"""Validated run configuration, written as a stamp file that changes only when it must.

Run:
    python -m analysis.config plan --vaes "stabilityai/sd-vae-ft-ema taef2_encoder.pth" \
        --vae stabilityai/sd-vae-ft-ema --resolution "32 64" --out build/plan.mk
    python -m analysis.config name build/runs/taef2 stabilityai/sd-vae-ft-mse   # -> taef2 sd-vae-ft-mse
    python -m analysis.config data --dataset cifar10 --limit 0 --data-root DIR --out build/data/config.json
    python -m analysis.config run --vae stabilityai/sd-vae-ft-ema --seed 0 --resolution 64 \
        --compile auto --out build/runs/NAME/config.json
    python -m analysis.config seeds --seeds "0 1 2" --out build/runs/NAME/seeds-config.json
    python -m analysis.config tune --models "svc lightgbm" --out build/runs/NAME/tune-config.json

The Makefile calls this on every `make`; the file is rewritten only when its content
changes, so its timestamp tells make exactly when downstream products are stale
(a changed SEED re-encodes, an unchanged command line rebuilds nothing).

`plan` names the runs (one per VAE and resolution) and writes them as make variables in
build/plan.mk, which the Makefile includes: the Makefile holds the pipeline, this module
the naming and the checks. make remakes an included file before anything else and restarts
when it changed, so plan.mk is rewritten only when its content changes (no restart loop).

Every variable a user can type is validated here, before anything slow starts.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path

from analysis import runs
from analysis.common import VaelabError, dumps_json, read_json, run_main, write_text
from analysis.taesd import CHECKPOINT_SUFFIXES

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
COMPILE_MODES = ("auto", "on", "off")
# SVC: auto = oneDAL (scikit-learn-intelex) where it imports, else libsvm (analysis.classify).
SVC_CHOICES = ("auto", "onedal", "libsvm")
DEFAULT_VAE = "stabilityai/sd-vae-ft-ema"
# A hub id: "owner/name" made of the characters the Hugging Face Hub allows.
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
# RESOLUTION: the side images are upsampled to before encoding. The SD VAE halves three
# times, so sides are multiples of 8; 32 is the images' own size (no upsampling).
RESOLUTION_STEP, RESOLUTION_MIN, RESOLUTION_MAX = 8, 32, 512
# SEED seeds numpy, torch, scikit-learn, LightGBM and XGBoost; the narrowest is LightGBM,
# which keeps a seed modulo 2**31 (SEED=2**31 trains the model of SEED=0, silently).
# scikit-learn and numpy's RandomState refuse anything above 2**32 - 1, torch above 2**64 - 1.
SEED_MAX = 2**31 - 1
# TUNE: the classifiers a hyperparameter search can tune (analysis.tune), the real ones of
# analysis.models.MODELS in its order (the random predictor has nothing to tune; a test holds
# the two lists together). TUNE=1 tunes all of them.
TUNABLE_MODELS = ("logreg", "rf", "knn", "svc", "histgb", "lightgbm", "xgboost")


@dataclass(frozen=True)
class DataConfig:
    """What images the study uses. Shared by every VAE variant of one build."""

    dataset: str = "cifar10"  # "cifar10" or "imagefolder:PATH"
    limit: int = 0  # images per class per split; 0 = all
    data_root: str = "~/.cache/vaelab/data"  # where torchvision downloads CIFAR-10


@dataclass(frozen=True)
class RunConfig:
    """How one VAE variant is run over the data."""

    vae: str = DEFAULT_VAE  # hub id or local diffusers directory
    revision: str = ""  # hub branch, tag or commit; "" = the hub default ("main")
    seed: int = 0  # seeds the latent sample, every classifier and the figures
    device: str = "auto"  # auto | cpu | cuda[:N] | mps
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    # None = BATCH=auto: 16 (a batch's activations, 16 x 128 x 32 x 32 floats, 8 MB, stay in
    # a CPU's cache), or on runs large enough to compile, the fastest of a few sizes timed on
    # this machine (analysis.devices.choose_batch).
    batch_size: int | None = None
    resolution: int = 32  # image side fed to the encoder; 32 = as stored, larger = upsampled
    compile: str = "auto"  # torch.compile the encoder: auto (CPU, large runs) | on | off
    svc: str = "auto"  # SVC library: auto (oneDAL where it imports, else libsvm) | onedal | libsvm


@dataclass(frozen=True)
class SeedsConfig:
    """SEEDS: the seeds a run is repeated with (analysis.seeds). The first is the run's own
    SEED (config.json), which drives its tables and figures; each other one reruns only what a
    seed changes."""

    seeds: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class TuneConfig:
    """TUNE: the classifiers whose hyperparameters a successive-halving search chooses on the
    training images (analysis.tune), and how that search runs."""

    models: tuple[str, ...] = ()
    folds: int = 3  # stratified K-fold cross-validation
    factor: int = 3  # successive halving: a third of the candidates go on, on 3x the rows
    # The largest number of training rows the search's last round fits on; the chosen
    # hyperparameters are then refitted on every training image (docs/benchmarks.md: cost).
    max_rows: int = 10_000


def parse_int(name: str, text: str, minimum: int, maximum: int | None = None) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise VaelabError(f"{name}={text!r} is not an integer; set {name} to a whole number") from None
    if maximum is not None and not minimum <= value <= maximum:
        raise VaelabError(f"{name}={value} must be from {minimum} to {maximum}")
    if value < minimum:
        raise VaelabError(f"{name}={value} must be at least {minimum}")
    return value


def parse_batch(text: str) -> int | None:
    """BATCH: "auto" (or empty) lets the encode stage choose; otherwise a positive number."""
    if str(text).strip().lower() in ("", "auto"):
        return None
    return parse_int("BATCH", text, 1)


def parse_limit(text: str) -> int:
    """LIMIT: empty or "all" means every image; otherwise a positive number per class."""
    if str(text).strip().lower() in ("", "all"):
        return 0
    return parse_int("LIMIT", text, 1)


def parse_resolution(text: str) -> int:
    """RESOLUTION: a multiple of 8 from 32 to 512 (empty means 32, no upsampling)."""
    if str(text).strip() == "":
        return RESOLUTION_MIN
    value = parse_int("RESOLUTION", text, 0)
    if not RESOLUTION_MIN <= value <= RESOLUTION_MAX or value % RESOLUTION_STEP:
        raise VaelabError(f"RESOLUTION={value} must be a multiple of {RESOLUTION_STEP} from "
                          f"{RESOLUTION_MIN} to {RESOLUTION_MAX}, e.g. RESOLUTION=64")
    return value


def check_dataset(spec: str) -> str:
    spec = spec.strip()
    if spec == "cifar10":
        return spec
    if spec.startswith("imagefolder:") and spec[len("imagefolder:"):].strip():
        path = Path(spec[len("imagefolder:"):].strip()).expanduser()
        return f"imagefolder:{path.resolve()}"
    raise VaelabError(
        f"DATASET={spec!r} is not understood; use DATASET=cifar10 or DATASET=imagefolder:PATH "
        "with PATH/train/<class>/*.png and PATH/test/<class>/*.png"
    )


def check_vae(vae: str) -> str:
    """Local directories are made absolute (the cache key must not depend on the cwd), without
    following symbolic links: a folder linked under another name keeps the name the user gave
    it, which is also the name of its run (the report names the weights as the variant)."""
    vae = vae.strip()
    if not vae:
        raise VaelabError(f"VAE is empty; set VAE to a hub id such as {DEFAULT_VAE} or a local directory")
    path = Path(vae).expanduser()
    if path.exists():
        return os.path.abspath(path)
    if vae.startswith((".", "/", "~")):
        raise VaelabError(f"VAE={vae!r}: directory {path.resolve()} does not exist; check the path")
    if HUB_ID.match(vae):
        return vae
    raise VaelabError(
        f"VAE={vae!r} is neither an existing directory nor a hub id like {DEFAULT_VAE}; "
        "check the path or the spelling"
    )


def make_data_config(dataset: str, limit: str, data_root: str) -> DataConfig:
    return DataConfig(dataset=check_dataset(dataset), limit=parse_limit(limit),
                      data_root=str(Path(data_root).expanduser()))


def make_run_config(vae: str, revision: str, seed: str, device: str, precision: str,
                    batch_size: str, resolution: str = "32", compile: str = "auto",
                    svc: str = "auto") -> RunConfig:
    device = device.strip() or "auto"
    svc = svc.strip().lower() or "auto"
    if svc not in SVC_CHOICES:
        raise VaelabError(f"SVC={svc!r} is not known; use one of {', '.join(SVC_CHOICES)}")
    precision = precision.strip().lower() or "auto"
    compile = compile.strip().lower() or "auto"
    if compile not in COMPILE_MODES:
        raise VaelabError(f"COMPILE={compile!r} is not known; use one of {', '.join(COMPILE_MODES)}")
    if not DEVICE.match(device):
        raise VaelabError(f"DEVICE={device!r} is not known; use auto, cpu, cuda, cuda:N or mps")
    if precision not in PRECISIONS:
        raise VaelabError(f"PRECISION={precision!r} is not known; use one of {', '.join(PRECISIONS)}")
    return RunConfig(vae=check_vae(vae), revision=revision.strip(), seed=parse_int("SEED", seed, 0, SEED_MAX),
                     device=device, precision=precision,
                     batch_size=parse_batch(batch_size),
                     resolution=parse_resolution(resolution), compile=compile, svc=svc)


def parse_seeds(text: str, seed: str | None = None) -> tuple[int, ...]:
    """SEEDS: distinct whole numbers from 0 to SEED_MAX, separated by spaces ("0 1 2"). With
    ``seed`` (SEED as make has it), the first of them must be that seed: it is the run's own."""
    words = str(text).split()
    if not words:
        raise VaelabError(f"SEEDS={text!r} names no seed; give whole numbers such as SEEDS=\"0 1 2\", "
                          "or leave SEEDS unset for SEED alone")
    values: list[int] = []
    for word in words:
        if not re.fullmatch(r"[+-]?\d+", word):
            raise VaelabError(f"SEEDS={text!r}: {word!r} is not a whole number; give seeds from 0 to "
                              f"{SEED_MAX} separated by spaces, e.g. SEEDS=\"0 1 2\"")
        value = int(word)
        if not 0 <= value <= SEED_MAX:
            raise VaelabError(f"SEEDS={text!r}: {value} must be from 0 to {SEED_MAX}")
        if value in values:
            raise VaelabError(f"SEEDS={text!r} names seed {value} twice; give each seed once")
        values.append(value)
    if seed is not None and parse_int("SEED", seed, 0, SEED_MAX) != values[0]:
        raise VaelabError(f"SEED={str(seed).strip()} and SEEDS={text!r} disagree: the first of SEEDS is the "
                          f"run's seed; leave SEED unset or put {str(seed).strip()} first in SEEDS")
    return tuple(values)


def parse_tune(text: str) -> tuple[str, ...]:
    """TUNE: empty or 0 tunes nothing, 1 every classifier of TUNABLE_MODELS, else a list of
    them ("svc lightgbm"), returned in TUNABLE_MODELS' order."""
    import difflib

    words = str(text).lower().split()
    if words in ([], ["0"]):
        return ()
    if words == ["1"]:
        return TUNABLE_MODELS
    for word in words:
        if word in ("0", "1"):
            raise VaelabError(f"TUNE={text!r}: {word} stands alone (TUNE=1 tunes every classifier, "
                              "TUNE=0 none); otherwise name models, e.g. TUNE=\"svc lightgbm\"")
        if word == "random":
            raise VaelabError(f"TUNE={text!r}: the random predictor has no hyperparameters to tune; "
                              f"use some of {', '.join(TUNABLE_MODELS)}")
        if word not in TUNABLE_MODELS:
            near = difflib.get_close_matches(word, TUNABLE_MODELS, n=1)
            raise VaelabError(f"TUNE={text!r}: unknown model {word!r}"
                              + (f"; nearest: {near[0]}" if near else "")
                              + f"; use TUNE=1 or some of {', '.join(TUNABLE_MODELS)}")
        if words.count(word) > 1:
            raise VaelabError(f"TUNE={text!r} names {word} twice; name each model once")
    return tuple(m for m in TUNABLE_MODELS if m in words)


def write_text_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    write_text(path, text)
    return True


def write_if_changed(path: Path, config: object) -> bool:
    return write_text_if_changed(path, dumps_json(config))


def source_date_epoch() -> str:
    """SOURCE_DATE_EPOCH as given (empty when unset), checked to be whole seconds."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch and not re.fullmatch(r"\d{1,11}", epoch):
        raise VaelabError(f"SOURCE_DATE_EPOCH={epoch!r} is not a Unix timestamp (whole seconds "
                          "since 1970-01-01 UTC, e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct))")
    return epoch


# ---- the run plan (build/plan.mk) ------------------------------------------------------------

# A run name is part of make variable names and targets (RUN_VAE.<name>), where these break.
MAKE_UNSAFE = re.compile(r"[$#:=%\\]")


def run_name(vae: str) -> str:
    """A run's base name: the VAE's last path component; a checkpoint file without its
    suffix and _encoder (taef2_encoder.pth -> taef2)."""
    name = vae.rstrip("/").rsplit("/", 1)[-1]
    if name.endswith(CHECKPOINT_SUFFIXES):
        name = name.rsplit(".", 1)[0]
        name = name[:-len("_encoder")] if name.endswith("_encoder") else name
    return name


def run_at(vae: str, resolution: int) -> str:
    """One VAE at one resolution: NAME at 32 px (the images' own size), NAME-r64 at 64 px."""
    return run_name(vae) if resolution == RESOLUTION_MIN else f"{run_name(vae)}-r{resolution}"


def parse_resolutions(text: str) -> list[int]:
    """RESOLUTION: one side or a list of them ("32 64"); empty means 32."""
    words = str(text).split() or [str(RESOLUTION_MIN)]
    if not all(w.isdigit() for w in words):
        raise VaelabError(f"RESOLUTION={text!r} must be whole numbers of pixels, e.g. RESOLUTION=64 "
                          'or RESOLUTION="32 64"')
    values = [parse_resolution(w) for w in words]
    if len(set(values)) != len(values):
        raise VaelabError(f"RESOLUTION={text!r} names a resolution twice")
    return values


def figure_files() -> list[str]:
    """A run's figure files, from the one list (analysis.runs.FIGURES, which loads no plotting
    library), and the figures.json beside them."""
    return [f"{runs.FIGURES_DIR}/{name}" for name in runs.FIGURES] + [f"{runs.FIGURES_DIR}/{runs.FIGURES_INFO}"]


def make_value(text: str) -> str:
    """Text as make reads it back unchanged on the right of :=."""
    return text.replace("$", "$$").replace("#", r"\#")


def make_plan(vaes: str, vae: str, resolution: str, seeds: str | None = None, seed: str = "0",
              tune: str = "", commit: str = "") -> str:
    """build/plan.mk: the run names, each run's VAE and resolution, the seeds and the models to
    tune (SEEDS, TUNE; ``seeds`` None: SEEDS unset, SEED alone), the figure files and the
    checkout's commit (``commit``, empty outside git). Checks what make needs before anything
    runs."""
    repeats = parse_seeds(seeds, seed) if seeds is not None else ()
    tuned = parse_tune(tune)
    if len(vae.split()) != 1:
        raise VaelabError(f"VAE={vae!r} must be one hub id or one directory without spaces")
    resolutions = parse_resolutions(resolution)
    runs = {}  # run name -> (VAE, resolution), in the order of VAES then RESOLUTION
    for v in vaes.split():
        if MAKE_UNSAFE.search(run_name(v)) or not run_name(v):
            raise VaelabError(f"VAES={vaes!r}: the run name {run_name(v)!r} is empty or holds one of "
                              "$ # : = % \\; rename the file or directory")
        for r in resolutions:
            if run_at(v, r) in runs:
                raise VaelabError(f"VAES={vaes!r} has two models with the same name; rename one directory")
            runs[run_at(v, r)] = (v, r)
    lines = ["# Written by `python -m analysis.config plan` on every make; do not edit.",
             f"RUN_NAMES := {' '.join(runs)}"]
    for name, (v, r) in runs.items():
        lines += [f"RUN_VAE.{name} := {make_value(v)}", f"RUN_RESOLUTION.{name} := {r}"]
    # Under make -jN each stage takes its share of the cores (analysis/threads.py).
    lines += [f"VAELAB_RUNS := {len(runs)}", f"FIGURE_FILES := {' '.join(figure_files())}"]
    # SEEDS (when set) and TUNE (when it tunes a model): the seeds, those past the run's own
    # (none: one seed) and the models to tune. Unset, the plan reads as without them.
    if repeats:
        lines.append(f"SEEDS_LIST := {' '.join(map(str, repeats))}")
    if len(repeats) > 1:
        lines.append(f"EXTRA_SEEDS := {' '.join(map(str, repeats[1:]))}")
    if tuned:
        lines.append(f"TUNE_MODELS := {' '.join(tuned)}")
    # Each run's provenance.json names the commit and depends on the plan: a new commit rewrites
    # the plan, so Appendix A never names a commit that did not build the report.
    if commit:
        lines.append(f"VAELAB_COMMIT := {make_value(commit)}")
    return "\n".join(lines) + "\n"


def load_data_config(path: str | Path) -> DataConfig:
    return DataConfig(**read_json(path, "data configuration"))


def load_run_config(path: str | Path) -> RunConfig:
    return RunConfig(**read_json(path, "run configuration"))


def load_seeds_config(path: str | Path) -> SeedsConfig:
    return SeedsConfig(seeds=tuple(read_json(path, "seeds configuration")["seeds"]))


def load_tune_config(path: str | Path) -> TuneConfig:
    record = read_json(path, "tuning configuration")
    return TuneConfig(**(record | {"models": tuple(record["models"])}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    plan = sub.add_parser("plan", help="name the runs and write them as make variables")
    plan.add_argument("--vaes", default=DEFAULT_VAE, help="the VAES list, as typed")
    plan.add_argument("--vae", default=DEFAULT_VAE, help="VAE, as typed")
    plan.add_argument("--resolution", default="32", help="RESOLUTION, as typed")
    plan.add_argument("--seeds", default=None, help="SEEDS, as typed (leave out when unset)")
    plan.add_argument("--seed", default="0", help="SEED, as make has it")
    plan.add_argument("--tune", default="", help="TUNE, as typed")
    plan.add_argument("--commit", default="", help="the checkout's commit (git rev-parse HEAD)")
    name = sub.add_parser("name", help="print the run name of each VAE or run folder (make diff)")
    name.add_argument("vaes", nargs="*")
    data = sub.add_parser("data")
    data.add_argument("--dataset", default="cifar10")
    data.add_argument("--limit", default="")
    data.add_argument("--data-root", default=DataConfig.data_root)
    run = sub.add_parser("run")
    run.add_argument("--vae", default=DEFAULT_VAE)
    run.add_argument("--revision", default="")
    run.add_argument("--seed", default="0")
    run.add_argument("--device", default="auto")
    run.add_argument("--precision", default="auto")
    run.add_argument("--batch-size", default="auto")
    run.add_argument("--compile", default="auto", help="torch.compile the encoder: auto|on|off")
    run.add_argument("--resolution", default="32", help="image side fed to the encoder (pixels)")
    run.add_argument("--svc", default="auto", help="SVC library: auto|onedal|libsvm")
    report = sub.add_parser("report", help="which runs and data a report is made from")
    report.add_argument("--run", action="append", default=[], help="run directory (repeatable)")
    report.add_argument("--data", required=True)
    report.add_argument("--metadata", default="")
    report.add_argument("--seeds", default="", help="the plan's SEEDS_LIST (empty: one seed)")
    report.add_argument("--tune", default="", help="the plan's TUNE_MODELS (empty: none)")
    seeds = sub.add_parser("seeds", help="a run's seeds (SEEDS), as a stamp for analysis.seeds")
    seeds.add_argument("--seeds", required=True, help="the plan's SEEDS_LIST")
    tune = sub.add_parser("tune", help="the models a run tunes (TUNE), as a stamp for analysis.tune")
    tune.add_argument("--models", required=True, help="the plan's TUNE_MODELS")
    for p in (plan, data, run, report, seeds, tune):
        p.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    if args.kind == "plan":
        write_text_if_changed(args.out, make_plan(args.vaes, args.vae, args.resolution, args.seeds,
                                                  args.seed, args.tune, args.commit.strip()))
        return
    if args.kind == "name":
        print(" ".join(run_name(v) for v in args.vaes))
        return
    if args.kind == "data":
        config: object = make_data_config(args.dataset, args.limit, args.data_root)
    elif args.kind == "report":
        # SOURCE_DATE_EPOCH sets the report date: part of the inputs, so a new value re-renders.
        config = {"runs": [str(Path(r).resolve()) for r in args.run],
                  "data": str(Path(args.data).resolve()), "metadata": args.metadata,
                  "source_date_epoch": source_date_epoch()}
        # Only when set, so that a one-seed, untuned build's inputs read as before.
        config |= ({"seeds": [int(s) for s in args.seeds.split()]} if args.seeds.split() else {}) \
            | ({"tune": args.tune.split()} if args.tune.split() else {})
    elif args.kind == "seeds":
        config = SeedsConfig(seeds=parse_seeds(args.seeds))
    elif args.kind == "tune":
        config = TuneConfig(models=parse_tune(args.models))
    else:
        config = make_run_config(args.vae, args.revision, args.seed, args.device, args.precision,
                                 args.batch_size, args.resolution, args.compile, args.svc)
    write_if_changed(args.out, config)


if __name__ == "__main__":
    run_main(main)
