"""report.check: every validator passes on real reports and catches what it is there for.

Run: .venv/bin/python -m pytest tests/test_check.py

The reports are demo_build's, the same run with the author's own text (conftest's
notes_report) and, made from copies of its run, a two-variant report and a diff, so that
every template is validated. A test whose tool is not installed is skipped
with the reason (`make test` installs the tools); VAELAB_REQUIRE_CHECKS=1 fails it instead.
vnu (a JVM) and Chromium start once per module for all files, good and broken together.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from report import check


def run_check(fn, *args):
    try:
        return fn(*args)
    except check.ToolMissing as missing:
        if os.environ.get("VAELAB_REQUIRE_CHECKS") == "1":
            pytest.fail(f"{missing} (VAELAB_REQUIRE_CHECKS=1)")
        pytest.skip(str(missing))


@pytest.fixture(scope="module")
def variant_build(demo_build, tmp_path_factory) -> Path:
    """A two-variant report.html and a diff.html, rendered from copies of demo_build's run."""
    from analysis import variants
    from report import diff, render

    build = tmp_path_factory.mktemp("check-variants")
    shutil.copytree(demo_build / "data", build / "data")
    a, b = build / "runs/tiny-vae", build / "runs/sdxl-vae"
    shutil.copytree(demo_build / "runs/tiny-vae", a)
    shutil.copytree(a, b)
    # B differs in one setting and one figure, so the diff has a config table and a figure pair;
    # named sdxl-vae at 64 px, it brings in the report's sdxl and resolution paragraphs too.
    config = json.loads((b / "config.json").read_text())
    config["seed"] = 1
    (b / "config.json").write_text(json.dumps(config))
    encode = json.loads((b / "encode.json").read_text())
    encode["model"]["name"], encode["resolution"] = "stabilityai/sdxl-vae", 64
    (b / "encode.json").write_text(json.dumps(encode))
    shutil.copyfile(b / "figures/pca.png", b / "figures/lda.png")
    variants.main([str(build / "compare/reconstructions.png"), str(a), str(b)])
    render.main(["html", str(a), str(b), str(build / "report.html"), "--data", str(build / "data")])
    diff.main([str(a), str(b), str(build / "diff-tiny-vae-vs-sdxl-vae/diff.html")])
    return build


@pytest.fixture(scope="module")
def good_htmls(demo_build, variant_build, notes_report) -> list[Path]:
    htmls = [demo_build / "report.html", variant_build / "report.html",
             variant_build / "diff-tiny-vae-vs-sdxl-vae/diff.html", notes_report]
    assert 'id="sdxl-paragraph"' in htmls[1].read_text() and "@ 64 px" in htmls[1].read_text()
    assert 'class="wide pair"' in htmls[2].read_text()
    return htmls


@pytest.fixture(scope="module")
def broken_dir(demo_build, tmp_path_factory) -> Path:
    """A copy of the demo report whose first figure is missing, and HTML that is not valid."""
    out = tmp_path_factory.mktemp("check-broken")
    shutil.copytree(demo_build / "runs/tiny-vae/figures", out / "runs/tiny-vae/figures")
    shutil.copyfile(demo_build / "report.html", out / "report.html")
    (out / "runs/tiny-vae/figures/examples.png").unlink()
    (out / "invalid.html").write_text(
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>x</title></head>\n'
        "<body>\n<p><div>block inside a paragraph</div></p>\n<img>\n</body>\n</html>\n")
    # Valid HTML that fails WCAG: no lang, an image without alt text, grey on white.
    (out / "inaccessible.html").write_text(
        '<!DOCTYPE html>\n<html>\n<head><meta charset="utf-8"><title>x</title></head>\n<body>\n'
        '<h1>x</h1>\n<p style="color: #aaa">too faint</p>\n'
        '<img src="runs/tiny-vae/figures/pca.png">\n</body>\n</html>\n')
    return out


@pytest.fixture(scope="module")
def vnu_problems(good_htmls, broken_dir) -> list[str]:
    return run_check(check.check_vnu, [*good_htmls, broken_dir / "invalid.html"])


@pytest.fixture(scope="module")
def chromium_results(good_htmls, broken_dir) -> tuple[list[str], list[str] | None]:
    """(image problems, axe-core problems or None when axe-core is not installed), from one
    Chromium run over the good pages, the broken copy and an inaccessible page."""
    pages = [*good_htmls, broken_dir / "report.html", broken_dir / "inaccessible.html"]
    try:
        return run_check(check.check_chromium, pages, True)
    except pytest.skip.Exception:
        if os.environ.get("VAELAB_REQUIRE_CHECKS") == "1":
            raise
        return run_check(check.check_chromium, pages), None  # axe-core alone missing


@pytest.fixture(scope="module")
def chromium_problems(chromium_results) -> list[str]:
    return chromium_results[0]


@pytest.fixture
def axe_problems(chromium_results) -> list[str]:
    if chromium_results[1] is None:
        pytest.skip("axe-core not installed (make check installs it with npm)")
    return chromium_results[1]


def test_check_images_exist(good_htmls):
    for html in good_htmls:
        assert check.check_images_exist(html) == []


def test_check_images_exist_reports_missing_and_absolute(broken_dir, tmp_path):
    assert check.check_images_exist(broken_dir / "report.html") == [
        f"{broken_dir / 'report.html'}: image runs/tiny-vae/figures/examples.png does not exist"]
    page = tmp_path / "page.html"
    page.write_text('<img src="/etc/a.png" alt=""><img src="https://example.org/b.png" alt=""><img alt="">')
    problems = check.check_images_exist(page)
    assert len(problems) == 3
    assert "/etc/a.png is not a path relative" in problems[0] and "without src" in problems[2]


def test_check_vnu_passes(vnu_problems, broken_dir):
    assert [p for p in vnu_problems if not p.startswith(str(broken_dir))] == []


def test_check_vnu_reports_invalid_html(vnu_problems, broken_dir):
    invalid = [p for p in vnu_problems if p.startswith(f"{broken_dir / 'invalid.html'}:")]
    assert any(":5:" in p and "end tag" in p for p in invalid), invalid  # stray </p>
    assert any(":6:" in p and "alt" in p for p in invalid), invalid


def test_check_pdf_passes(demo_build):
    assert run_check(check.check_pdf, demo_build / "report.pdf") == []


def test_check_pdf_passes_with_author_text(notes_report):
    from report import render

    pdf = notes_report.with_suffix(".pdf")
    render.main(["pdf", str(notes_report), str(pdf)])
    assert run_check(check.check_pdf, pdf) == []


def test_check_pdf_reports_truncated_pdf(demo_build, tmp_path):
    data = (demo_build / "report.pdf").read_bytes()
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(data[: len(data) // 2])
    problems = run_check(check.check_pdf, truncated)
    assert any("qpdf --check failed" in p for p in problems), problems
    assert any("pdfinfo reports no pages" in p for p in problems), problems


def test_check_chromium_no_broken_images(chromium_problems, broken_dir):
    assert [p for p in chromium_problems if not p.startswith(str(broken_dir))] == []


def test_check_chromium_reports_broken_image(chromium_problems, broken_dir):
    assert [p for p in chromium_problems if p.startswith(str(broken_dir))] == [
        f"{broken_dir / 'report.html'}: image runs/tiny-vae/figures/examples.png did not load in Chromium"]


def test_check_axe_passes_on_reports_and_diff(axe_problems, broken_dir):
    """WCAG 2.1 A/AA: the demo report, with author text too, the two-variant report and the diff."""
    assert [p for p in axe_problems if not p.startswith(str(broken_dir))] == []


def test_check_axe_reports_wcag_violations(axe_problems, broken_dir):
    found = {p.split(": ")[1].split(" ")[0] for p in axe_problems
             if p.startswith(f"{broken_dir / 'inaccessible.html'}:")}
    assert {"html-has-lang", "image-alt", "color-contrast"} <= found, axe_problems


def test_check_main_skips_missing_tools_visibly(demo_build, monkeypatch, capsys):
    def missing(*args, **kwargs):
        raise check.ToolMissing("chromium", "apt-get install chromium")

    # Only the tool-free image check runs for real; the others are stand-ins.
    monkeypatch.setattr(check, "check_vnu", lambda htmls: [])
    monkeypatch.setattr(check, "check_pdf", lambda pdf: [])
    monkeypatch.setattr(check, "check_chromium", missing)
    monkeypatch.delenv("VAELAB_REQUIRE_CHECKS", raising=False)
    argv = ["--html", str(demo_build / "report.html"), "--pdf", str(demo_build / "report.pdf")]
    check.main(argv)
    err = capsys.readouterr().err
    assert "vaelab: check: SKIPPED chromium (chromium not installed: apt-get install chromium)" in err
    assert "check images: OK" in err and "check chromium: SKIPPED" in err

    monkeypatch.setenv("VAELAB_REQUIRE_CHECKS", "1")
    with pytest.raises(SystemExit) as exit_info:
        check.main(argv)
    assert exit_info.value.code == 1
    assert "vaelab: error: report check failed: chromium skipped" in capsys.readouterr().err


def test_check_main_fails_on_problems(demo_build, monkeypatch, capsys):
    monkeypatch.setattr(check, "check_vnu", lambda htmls: ["report.html:3: Stray end tag"])
    monkeypatch.setattr(check, "check_chromium", lambda htmls, axe=False: ([], []) if axe else [])
    with pytest.raises(SystemExit) as exit_info:
        check.main(["--html", str(demo_build / "report.html")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "vaelab: check: vnu: report.html:3: Stray end tag" in err
    assert err.strip().splitlines()[-1] == "vaelab: error: report check failed: vnu (1 problem)"
