"""Same configuration, same machine: the same bytes (timings appendix aside)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import make_vars, run_make

TIMINGS = re.compile(r'<section id="appendix-timings".*?</section>', re.S)


def deterministic_files(build: Path) -> list[str]:
    run = build / "runs/tiny-vae"
    names = ["metrics.json", "metrics.csv", "predictions.csv", "latents.npz", "encode.json"]
    names += [f"figures/{p.name}" for p in sorted((run / "figures").iterdir())]
    return names


@pytest.fixture(scope="module")
def other(tmp_path_factory, tiny_vae, synthetic_images) -> Path:
    """A second, independent build (own cache) of the same configuration as demo_build."""
    build = tmp_path_factory.mktemp("again")
    run_make("report", *make_vars(build, tiny_vae, synthetic_images, 6))
    return build


def test_two_runs_give_identical_outputs(demo_build, other):
    for name in deterministic_files(demo_build):
        a = (demo_build / "runs/tiny-vae" / name).read_bytes()
        b = (other / "runs/tiny-vae" / name).read_bytes()
        assert a == b, f"{name} differs between two identical runs"
    html_a = (demo_build / "report.html").read_text()
    html_b = (other / "report.html").read_text()
    assert TIMINGS.search(html_a), "the timings appendix must be marked"
    assert TIMINGS.sub("", html_a) == TIMINGS.sub("", html_b)


def test_pdf_identical_except_timings_page(demo_build, other):
    from pypdf import PdfReader

    a, b = PdfReader(demo_build / "report.pdf"), PdfReader(other / "report.pdf")
    assert a.metadata == b.metadata
    assert len(a.pages) == len(b.pages)
    for page_a, page_b in zip(a.pages, b.pages):
        text_a, text_b = page_a.extract_text(), page_b.extract_text()
        if "Appendix B. Timings" in text_a or "Predict (s)" in text_a:
            continue
        assert text_a == text_b
