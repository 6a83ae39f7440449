"""Negative numbers are typeset with U+2212 MINUS SIGN: the one formatter, and the rendered report.

Code, file names and configuration values keep ASCII; what the reader reads as a number
(prose, tables, captions, figure descriptions) has no hyphen-minus before its digits.
"""

from __future__ import annotations

import re

import pytest

from helpers import page_text
from report import facts as F
from report import sentences as S
from report.formatting import MINUS, ci_text, number, pts, unsigned

# A hyphen-minus right before a digit, not inside a word, a date, a version or a path
# ("CIFAR-10", "2026-12-03", "Linux-6.18", "--seed-1"): a negative number written in ASCII.
ASCII_NEGATIVE = re.compile(r"(?<![\w/.:=_-])-\d")


def reader_text(page: str) -> str:
    """What the reader reads as text: code and preformatted text (file names, paths,
    commands, config values) keep ASCII and are left out."""
    return page_text(page, code=False)


def ascii_negatives(text: str) -> list[str]:
    return [text[max(m.start() - 30, 0):m.end() + 10] for m in ASCII_NEGATIVE.finditer(text)]


@pytest.mark.parametrize("x, spec, text", [(-0.17, "+.2f", "−0.17"), (0.17, "+.2f", "+0.17"),
                                           (-3, "d", "−3"), (0.5, ".1f", "0.5")])
def test_number_writes_the_minus_sign(x, spec, text):
    assert number(x, spec) == text


def test_signed_formatters_share_the_minus_sign():
    assert (pts(-0.013), unsigned(-0.013), ci_text((-0.0123, 0.2))) == \
        ("−1.3", "−1.3", "[−0.012, 0.200]")
    assert "-" not in pts(-0.5) + unsigned(-0.5) + ci_text((-0.5, -0.1))


def test_checker_finds_ascii_negatives_and_leaves_words_dates_and_ranges():
    assert ascii_negatives("scaled to [-1, 1] and by -0.17 dB")
    assert not ascii_negatives("CIFAR-10, AVX-512, 2026-12-03, Linux-6.18, 0.44–0.47, "
                               f"[{MINUS}1, 1], pca-64, sd-vae-ft-ema")
    assert reader_text('<p>by <code>--seed -1</code> x</p><img alt="drop -0.3 points">').count("-") == 1


def test_upcast_psnr_gap_is_typeset():
    u = F.Upcast("sdxl-vae", "ema", "float32", True, -0.17, 0.04, 0.02, 0.008, any_close=False,
                 accuracy_p=0.4, psnr_ci=(-0.36, 0.02))
    text = S.upcast_text(u)
    assert "by −0.17 dB" in text and "CI −0.36 to +0.02" in text and not ascii_negatives(text)


def test_demo_report_writes_no_negative_number_in_ascii(demo_build):
    from pypdf import PdfReader

    page = (demo_build / "report.html").read_text(encoding="utf-8")
    assert f"[{MINUS}1, 1]" in reader_text(page)
    assert ascii_negatives(reader_text(page)) == []
    # The PDF as printed, code included: its paths and versions pass the rule above.
    pdf = "\n".join(p.extract_text() for p in PdfReader(demo_build / "report.pdf").pages)
    assert ascii_negatives(pdf) == []
