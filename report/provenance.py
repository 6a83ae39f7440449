"""Provenance of one run: code, model, data, settings, machine and software that made it.

Run:
    python -m report.provenance build/runs/NAME build/data build/runs/NAME/provenance.json \
        --variable VAES=... --variable SEED=0 ...

Everything comes from files the earlier stages wrote (config.json, encode.json,
classify.json: which SVC library and version, dataset.json) plus the git checkout and the installed package versions; the report's
Appendix A shows the same record.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from analysis import deps
from analysis.autoencoders import CLASSES
from analysis.common import run_main, write_json
from analysis.runs import read_classify, read_config, read_dataset, read_encode

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("torch", "torchvision", "diffusers", "huggingface_hub", "safetensors", "numpy",
            "scipy", "pandas", "scikit-learn", "scikit-image", "statsmodels", "lightgbm",
            "xgboost", "scikit-learn-intelex", "matplotlib", "pillow", "jinja2", "markdown-it-py",
            "mdit-py-plugins", "weasyprint")


def git_state(repo: Path = ROOT) -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=True, timeout=60).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown (not a git checkout)", "dirty": False}


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_provenance(run_dir: Path, data_dir: Path, variables: dict[str, str]) -> dict:
    config, encode, classify = read_config(run_dir), read_encode(run_dir), read_classify(run_dir)
    dataset = read_dataset(data_dir)
    return {
        "vaelab": git_state(),
        "model": {k: encode["model"].get(k) for k in ("name", "revision", "weights_file",
                                                      "weights_sha256", "encoder_sha256",
                                                      "untrained", "layout", "decoder_file",
                                                      "decoder_sha256", "has_decoder")}
        # what the encoder checksum covers: this class's encoder tensors (KL adds quant_conv)
        | {"encoder_tensors": list(CLASSES[encode["autoencoder_class"]].encoder_tensors)},
        "dataset": {k: dataset[k] for k in ("dataset", "source", "limit", "n_train", "n_test",
                                            "sha256")},
        "seed": config["seed"],
        "precision": encode["precision"],
        "device": encode["device"],
        "svc": classify["key_fields"]["svc"],  # libsvm or oneDAL, its version (and threads)
        "hardware": {"device_name": encode["device_name"], "cpu_count": os.cpu_count(),
                     "machine": platform.machine(), "system": platform.platform()},
        "software": package_versions(),
        "variables": variables,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a run's provenance record")
    parser.add_argument("run", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--variable", action="append", default=[], help="NAME=value (repeatable)")
    args = parser.parse_args(argv)
    variables = dict(v.split("=", 1) for v in args.variable if "=" in v)
    write_json(args.out, build_provenance(args.run, args.data, variables))
    deps.write(args.out, __file__)  # OUT.d: the modules this runs, for make


if __name__ == "__main__":
    run_main(main)
