"""Same configuration, same machine: the same bytes, documents included.

Two clean builds into two BUILD folders give cmp-identical report.html and report.pdf; for a
three-variant build, the comparison, documents and `make diff` made again from its runs give
the same bytes too. No document names its build folder. Wall-clock times live in timings.json
only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import copy_build, make_variants, make_vars, run_make

DOCUMENTS = ("report.html", "report.pdf")


def deterministic_files(build: Path) -> list[str]:
    run = build / "runs/tiny-vae"
    names = ["metrics.json", "metrics.csv", "predictions.csv", "latents.npz", "encode.json"]
    names += [f"figures/{p.name}" for p in sorted((run / "figures").iterdir())]
    return names


@pytest.fixture(scope="module")
def other(demo_build_j2) -> Path:
    """A second, independent build (own cache) of the same configuration as demo_build (made
    with -j2, which changes nothing either: tests/test_make.py)."""
    return demo_build_j2


def assert_same_bytes(a: Path, b: Path, names) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), \
            f"{name} differs between two identical builds ({a} and {b})"


def assert_no_build_path(build: Path, names) -> None:
    for name in names:
        data = (build / name).read_bytes()
        assert str(build).encode() not in data, f"{name} names its build folder {build}"


def test_two_runs_give_identical_outputs(demo_build, other):
    assert_same_bytes(demo_build / "runs/tiny-vae", other / "runs/tiny-vae",
                      deterministic_files(demo_build))


def test_two_builds_give_byte_identical_documents(demo_build, other):
    assert_same_bytes(demo_build, other, DOCUMENTS)
    for build in (demo_build, other):
        assert_no_build_path(build, DOCUMENTS)
    html = (demo_build / "report.html").read_text()
    assert "appendix-timings" not in html and "Fit (s)" not in html
    assert "timings.json" in html  # the report says where the timings are


def test_timings_gathered_per_run_and_stage(demo_build):
    timings = json.loads((demo_build / "timings.json").read_text())
    assert set(timings["runs"]) == {"tiny-vae"}
    assert {"encode", "classify"} <= set(timings["runs"]["tiny-vae"])
    assert timings["data"]["data"]["seconds"] > 0  # decoding the images takes measurable time
    stage = timings["runs"]["tiny-vae"]["encode"]
    assert stage["seconds"] == stage["record"]["encode_seconds"]
    assert timings["total_seconds"] >= stage["seconds"]


def test_make_report_prints_a_timing_summary(demo_build, tiny_vae, synthetic_images):
    proc = run_make("report", *make_vars(demo_build, tiny_vae, synthetic_images, 6))
    lines = proc.stderr.splitlines()
    assert any(line.startswith("timings: ") and "timings.json" in line for line in lines), proc.stderr
    assert any(line.strip().startswith("tiny-vae: encode") for line in lines), proc.stderr


def test_pdf_is_tagged_with_language_and_title(demo_build):
    from pypdf import PdfReader

    reader = PdfReader(demo_build / "report.pdf")
    root = reader.trailer["/Root"]
    assert root["/MarkInfo"]["/Marked"] and "/StructTreeRoot" in root
    assert root["/Lang"] == "en"
    assert reader.metadata["/Title"] == "Predicting the image folder “images” from VAE latents"
    assert reader.metadata["/CreationDate"] == reader.metadata["/ModDate"]


# ---- two variants and a diff, rendered twice --------------------------------------------------

# What a multi-variant build adds to a one-run build: the comparison stage, the documents that
# read several runs, and the diff. Each run's own stages are deterministic by the tests above
# (two independent builds from scratch); here the multi-run products are made a second time,
# in new processes (their own hash seeds, so set and dict orders differ), from a copy of the runs.
DIFF_DIR = "diff-sd-vae-ft-ema-vs-sdxl-vae"  # conftest.make_variants' diff
MULTI_RUN_PRODUCTS = ("compare", "report.html", "report.pdf", DIFF_DIR)


@pytest.fixture(scope="module")
def variant_builds(tmp_path_factory, variants_build, hub_cache, synthetic_images) -> tuple[Path, Path, str]:
    """The session's variants_build, and a copy of it whose comparison, report and diff were
    deleted and made again."""
    import shutil

    second = copy_build(variants_build, tmp_path_factory.mktemp("variants") / "b")
    for name in MULTI_RUN_PRODUCTS:
        if (second / name).is_dir():
            shutil.rmtree(second / name)
        else:
            (second / name).unlink()
    make_variants(second, hub_cache, synthetic_images)
    assert all((second / name).exists() for name in MULTI_RUN_PRODUCTS)
    return variants_build, second, DIFF_DIR


def test_two_variant_builds_and_diffs_are_byte_identical(variant_builds):
    first, second, diff_dir = variant_builds
    names = [*DOCUMENTS, f"{diff_dir}/diff.html", f"{diff_dir}/diff.pdf"]
    assert 'id="comparing-encoders"' in (first / "report.html").read_text()
    assert_same_bytes(first, second, names)
    for build in (first, second):
        assert_no_build_path(build, names)
    timings = json.loads((first / "timings.json").read_text())
    assert set(timings["runs"]) == {"sd-vae-ft-ema", "sd-vae-ft-mse", "sdxl-vae"}
