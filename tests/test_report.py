"""The rendered report: HTML structure, figures that resolve, PDF content, derived claims."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from helpers import page_text
from report.context import conclusions
from analysis.verdicts import confused_pairs, judge
from report.metadata import load_metadata
from report.tables import results_rows


class Collector(HTMLParser):
    """Collects <img src>, table rows per table id, and ids of sections."""

    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.ids: set[str] = set()
        self.rows: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "table":
            self._table = attrs.get("id", "")
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.setdefault(self._table, []).append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def reader_text(build: Path) -> str:
    return page_text((build / "report.html").read_text(encoding="utf-8"))


def parse(build: Path) -> Collector:
    collector = Collector()
    collector.feed((build / "report.html").read_text(encoding="utf-8"))
    return collector


def test_report_html_results_table_matches_metrics(demo_build):
    metrics = json.loads((demo_build / "runs/tiny-vae/metrics.json").read_text())
    rows = parse(demo_build).rows["results-table"]
    # Two header rows: the column groups, then the accuracy columns under "VAE latents".
    assert rows[0] == ["Model", "VAE latents", "Original", "Pixel baselines"]
    assert rows[1][:2] == ["Accuracy .sample()", "Accuracy mean & std"]
    body = rows[2:]
    assert [r[0] for r in body] == [metrics["models"][k]["label"] for k in metrics["model_order"]]
    assert body[-1][0] == "Random predictor"
    for key, row in zip(metrics["model_order"], body):
        # Each accuracy cell: the value, then its 95% interval.
        for cell, fs in zip(row[1:3], ("sample", "mean_std")):
            res = metrics["results"][key][fs]
            low, high = res["accuracy_ci"]
            assert cell.split()[0] == f"{res['accuracy']:.4f}"
            assert cell.endswith(f"[{low:.3f}, {high:.3f}]")


def test_report_html_shows_pixel_baselines_and_comparisons(demo_build):
    metrics = json.loads((demo_build / "runs/tiny-vae/metrics.json").read_text())
    collector = parse(demo_build)
    rows = collector.rows["results-table"]
    baselines = [fs for fs in metrics["feature_set_order"]
                 if metrics["feature_sets"][fs]["kind"] == "baseline"]
    n = {fs: metrics["feature_sets"][fs]["n_features"] for fs in baselines}
    # Both PCAs capped at the same number of components (as many as training images) are the
    # same features: Table 3 shows them once.
    shown = [fs for fs in baselines
             if fs != "pixels_pca_mean_std" or n["pixels_pca_mean_std"] != n["pixels_pca_sample"]]
    assert rows[1][2:] == [f"{'PCA' if 'pca' in fs else 'Pooled'} {n[fs]}" for fs in shown]
    for key, row in zip(metrics["model_order"], rows[2:]):
        assert len(row) == 1 + 2 + 1 + len(shown)
        for cell, fs in zip(row[4:], shown):
            assert cell.split()[0] == f"{metrics['results'][key][fs]['accuracy']:.4f}"
    real = [k for k in metrics["model_order"] if k != "random"]
    assert [r[0] for r in collector.rows["baselines-table"][2:]] == \
        [metrics["models"][k]["label"] for k in real]
    assert len(collector.rows["sample-vs-meanstd-table"]) == 1 + len(real)
    assert {"fig-lda", "fig-pca"} <= collector.ids
    conclusions = (demo_build / "report.html").read_text().split('id="conclusions"')[1]
    assert "Table 4 holds" in conclusions and "Holm-adjusted McNemar p" in conclusions


def test_report_html_figures_resolve(demo_build):
    images = parse(demo_build).images
    from analysis.figures import FIGURES

    assert sorted(Path(src).name for src in images) == sorted(FIGURES)  # each figure once
    for src in images:
        assert not src.startswith(("/", "http")), src
        assert (demo_build / src).is_file(), src


def test_report_html_has_every_section(demo_build):
    ids = parse(demo_build).ids
    assert {"introduction", "methodology", "results", "conclusions", "references",
            "appendix-provenance", "untrained-warning"} <= ids
    assert "appendix-timings" not in ids  # wall-clock times are in timings.json only


def test_report_pdf_opens_and_contains_table_values(demo_build):
    from pypdf import PdfReader

    reader = PdfReader(demo_build / "report.pdf")
    assert len(reader.pages) >= 3
    text = "\n".join(page.extract_text() for page in reader.pages)
    metrics = json.loads((demo_build / "runs/tiny-vae/metrics.json").read_text())
    for key in metrics["model_order"]:
        assert f"{metrics['results'][key]['mean_std']['accuracy']:.4f}" in text
    assert "Page 1 of" in reader.pages[0].extract_text()


def test_report_untrained_warning_on_first_pdf_page(demo_build):
    from pypdf import PdfReader

    first = PdfReader(demo_build / "report.pdf").pages[0].extract_text()
    assert "Untrained encoder" in first


def test_report_pdf_dates_come_from_source_date_epoch(demo_build):
    from pypdf import PdfReader

    info = PdfReader(demo_build / "report.pdf").metadata
    assert info["/CreationDate"].startswith("D:20260101")
    assert "2026-01-01" in (demo_build / "report.html").read_text()


def test_confused_pairs_sums_both_directions():
    confusion = [[5, 3, 0],
                 [4, 6, 1],
                 [0, 2, 9]]
    pairs = confused_pairs(confusion, ["a", "b", "c"])
    assert pairs[0] == {"a": "a", "b": "b", "count": 7, "a_as_b": 3, "b_as_a": 4}
    assert pairs[1]["count"] == 3 and (pairs[1]["a"], pairs[1]["b"]) == ("b", "c")
    assert len(pairs) == 2  # the a/c pair has no mistakes and is left out


def fake_metrics(acc: dict[str, tuple[float, float]]) -> dict:
    classes = ["cat", "dog", "truck"]
    confusion = [[8, 2, 0], [3, 7, 0], [0, 0, 10]]
    return judge({
        "classes": classes, "model_order": list(acc), "feature_set_order": ["sample", "mean_std"],
        "feature_sets": {"sample": {"label": ".sample()", "n_features": 64},
                         "mean_std": {"label": "mean & std", "n_features": 128}},
        "models": {k: {"label": k.upper(), "scaled": False, "description": ""} for k in acc},
        "results": {k: {"sample": {"accuracy": a, "confusion": confusion},
                        "mean_std": {"accuracy": b, "confusion": confusion}}
                    for k, (a, b) in acc.items()},
    })


def test_conclusions_are_derived_from_the_numbers():
    metrics = fake_metrics({"logreg": (0.4, 0.5), "svc": (0.6, 0.7), "random": (0.3, 0.33)})
    pairs = confused_pairs(metrics["results"]["svc"]["mean_std"]["confusion"], metrics["classes"])
    text = " ".join(conclusions(metrics, pairs, untrained=False))
    assert "The best classifier is SVC on mean & std, with a test accuracy of 0.7000" in text
    assert "is ahead for every classifier by the point estimates: higher for 2 of 2 classifiers" in text
    # Not CIFAR-10's classes: nothing is set against the original study's confused pairs.
    assert "cat/dog" in text and "original study" not in text
    worse = fake_metrics({"logreg": (0.5, 0.4), "svc": (0.8, 0.7), "random": (0.3, 0.33)})
    assert "is behind for every classifier" in " ".join(conclusions(worse, pairs, untrained=False))
    mixed = fake_metrics({"logreg": (0.5, 0.4), "rf": (0.4, 0.45), "svc": (0.8, 0.7), "random": (0.3, 0.33)})
    assert "is behind for most classifiers" in " ".join(conclusions(mixed, pairs, untrained=False))


def test_conclusions_cite_the_figure_numbers_the_report_gives():
    from report.labels import float_numbers

    metrics = fake_metrics({"logreg": (0.4, 0.5), "svc": (0.6, 0.7), "random": (0.3, 0.33)})
    pairs = confused_pairs(metrics["results"]["svc"]["mean_std"]["confusion"], metrics["classes"])
    assert "(counts in Figure 3)" in " ".join(conclusions(metrics, pairs, untrained=False))
    # Without learning curves every later figure moves up by one, and the sentences with them.
    number = float_numbers({"has_decoder": True})
    assert number["fig:confusion"] == "2"
    text = " ".join(conclusions(metrics, pairs, untrained=False, number=number))
    assert "(counts in Figure 2)" in text and "Figure 3" not in text


def test_confused_pairs_are_set_against_the_original_on_cifar10_classes():
    from report.sentences import confused_sentence

    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    text = confused_sentence("SVC", [{"a": "cat", "b": "dog", "count": 1200},
                                     {"a": "automobile", "b": "ship", "count": 900}], classes, "3")
    assert "the most confused class pairs are cat/dog and automobile/ship (counts in Figure 3)" in text
    assert "As in the original study (Hidalgo Pujol, 2024), cat/dog is among them." in text


def test_conclusions_flag_untrained_encoder():
    metrics = fake_metrics({"svc": (0.6, 0.7), "random": (0.3, 0.33)})
    assert "untrained" in conclusions(metrics, [], untrained=True)[-1]


def test_results_rows_mark_best_per_column_ignoring_random():
    metrics = fake_metrics({"logreg": (0.4, 0.75), "svc": (0.6, 0.7), "random": (0.9, 0.9)})
    rows = {r["key"]: r for r in results_rows(metrics)}
    assert [c["best"] for c in rows["svc"]["cells"]] == [True, False]
    assert [c["best"] for c in rows["logreg"]["cells"]] == [False, True]
    assert not any(c["best"] for c in rows["random"]["cells"])


def test_metadata_date_from_source_date_epoch(tmp_path, monkeypatch):
    meta_file = tmp_path / "meta.toml"
    meta_file.write_text('author = "Ada"\ndate = "1999-01-01"\n')
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    meta = load_metadata(meta_file)
    assert meta["author"] == "Ada" and meta["date"] == "1970-01-02"
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert load_metadata(meta_file)["date"] == "1999-01-01"


def test_metadata_says_when_the_date_is_the_build_day(tmp_path, monkeypatch):
    """Issue 36: "reproducible byte for byte" holds only for a fixed date."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert load_metadata(None)["date_is_build_day"] is True
    (tmp_path / "meta.toml").write_text('date = "1999-01-01"\n')
    assert load_metadata(tmp_path / "meta.toml")["date_is_build_day"] is False
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    assert load_metadata(None)["date_is_build_day"] is False


def test_report_states_the_condition_of_byte_for_byte(demo_build):
    text = reader_text(demo_build)
    assert "reproducible byte for byte as long as its date stays the same: this one's date is set by SOURCE_DATE_EPOCH" in text


def test_report_introduction_says_a_limited_run_encodes_only_the_first_images(demo_build):
    """Seen at LIMIT=1000: 'Here every image of the image folder is encoded' when 10,000 of
    50,000 training images were."""
    text = reader_text(demo_build)
    assert "Here every image of" not in text
    assert re.search(r"Here the first \d+ images per class and split of .+ are encoded with", text)


def test_report_reconstruction_error_names_its_sample(demo_build):
    """Issue 36: the error is over every decoded test image, not the ones the figure shows."""
    text = reader_text(demo_build)
    assert "decodes the latent mean of one test image per class (10 images)." in text
    assert "Over every test image decoded (60, the sample the PSNR and SSIM are measured on)" in text


def test_report_lda_caveat_names_the_few_training_images(demo_build):
    text = reader_text(demo_build)
    assert "with 60 training images for up to 128 features, fewer than 10 per feature, they can separate" in text


def test_metadata_bad_toml_is_a_clear_error(tmp_path):
    from analysis.common import VaelabError

    bad = tmp_path / "meta.toml"
    bad.write_text("title = \n")
    with pytest.raises(VaelabError, match="not valid TOML"):
        load_metadata(bad)


def test_provenance_records_model_data_and_software(demo_build, tiny_vae):
    from analysis.common import sha256_file

    prov = json.loads((demo_build / "runs/tiny-vae/provenance.json").read_text())
    assert prov["model"]["weights_sha256"] == sha256_file(tiny_vae / "diffusion_pytorch_model.safetensors")
    assert prov["model"]["untrained"] is True
    dataset = json.loads((demo_build / "data/dataset.json").read_text())
    assert prov["dataset"]["sha256"] == dataset["sha256"]
    assert prov["variables"]["LIMIT"] == "6" and prov["variables"]["VAES"] == str(tiny_vae)
    assert {"python", "torch", "diffusers", "scikit-learn"} <= set(prov["software"])
    assert len(prov["vaelab"]["commit"]) == 40 or prov["vaelab"]["commit"].startswith("unknown")
    html = (demo_build / "report.html").read_text()
    assert prov["model"]["weights_sha256"] in html and prov["dataset"]["sha256"] in html
    # What the encoder checksum covers, as the KL class says: its encoder and quant_conv tensors.
    assert prov["model"]["encoder_tensors"] == ["encoder.", "quant_conv."]
    assert "<code>encoder.*</code>, <code>quant_conv.*</code> and its config" in html


# ---- accessibility and layout ------------------------------------------------------------------

class Structure(HTMLParser):
    """Headings in order, header cells, images with their alt text, the html lang."""

    def __init__(self):
        super().__init__()
        self.lang = None
        self.headings: list[int] = []
        self.th: list[dict] = []
        self.images: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.lang = attrs.get("lang")
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.headings.append(int(tag[1]))
        elif tag == "th":
            self.th.append(attrs)
        elif tag == "img":
            self.images.append(attrs)


def assert_accessible_html(html: Path) -> None:
    s = Structure()
    s.feed(html.read_text(encoding="utf-8"))
    assert s.lang == "en"
    assert s.headings.count(1) == 1 and s.headings[0] == 1, s.headings
    for before, after in zip(s.headings, s.headings[1:]):
        assert after <= before + 1, f"heading level jumps from h{before} to h{after}"
    assert s.th and all(th.get("scope") in ("col", "row", "colgroup", "rowgroup") for th in s.th)
    for img in s.images:
        alt = img.get("alt", "")
        assert len(alt.split()) >= 8, f"alt text of {img['src']} says too little: {alt!r}"
        assert Path(img["src"]).name not in alt and ".png" not in alt


def test_report_html_is_accessible(demo_build):
    assert_accessible_html(demo_build / "report.html")


def page_fill(pdf: Path) -> list[float]:
    """How far down each page's text area its content reaches (0-1), from a 30 dpi raster."""
    import shutil
    import subprocess
    import tempfile

    import numpy as np
    from PIL import Image

    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) not installed")
    fills = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["pdftoppm", "-gray", "-r", "30", str(pdf), f"{tmp}/p"], check=True)
        for page in sorted(Path(tmp).glob("p-*.pgm")):
            a = np.asarray(Image.open(page))
            # The text area of templates/report.css: 2 cm top margin, 2.2 cm bottom (footer).
            top, bottom = round(a.shape[0] * 2 / 29.7), round(a.shape[0] * 27.5 / 29.7)
            rows = np.flatnonzero((a[top:bottom] < 200).any(axis=1))
            fills.append(0.0 if len(rows) == 0 else (rows[-1] + 1) / (bottom - top))
    return fills


def test_report_pdf_pages_at_least_a_quarter_full(demo_build):
    fills = page_fill(demo_build / "report.pdf")
    assert all(f >= 0.25 for f in fills[:-1]), fills


def test_report_pdf_keeps_captions_with_their_tables_and_figures(demo_build):
    """Table captions sit above their table, figure captions below their figure: no page
    ends with a table's caption, and a page whose text starts with a figure's caption shows
    that figure above it (figures are images: their own text is not extracted)."""
    import re

    from pypdf import PdfReader

    for number, page in enumerate(PdfReader(demo_build / "report.pdf").pages, 1):
        lines = [line for line in page.extract_text().splitlines()
                 if line.strip() and not line.startswith("Page ")]
        assert not re.match(r"Table [A-Z]?\d+\.", lines[-1]), f"page {number} ends with {lines[-1]!r}"
        if re.match(r"Figure [A-Z]?\d+\.", lines[0]):
            draws_image = b" Do" in page.get_contents().get_data()  # the XObject operator
            assert draws_image, f"page {number} starts with {lines[0]!r} but shows no figure"


def test_figures_are_drawn_at_print_size(demo_build):
    """At 150 dpi no figure is wider than the 17 cm text width, so the PDF shows each at its
    drawn size and its text at the 6-9 pt it was drawn at."""
    from PIL import Image

    for png in (demo_build / "runs/tiny-vae/figures").glob("*.png"):
        with Image.open(png) as im:
            assert im.width <= round(6.7 * 150) + 1, (png.name, im.size)


# ---- bad input: one line, non-zero exit, no document ------------------------------------------

def run_module(*args: str, env: dict | None = None):
    import os
    import subprocess
    import sys

    from helpers import ROOT

    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def assert_one_line_error(proc, *words: str) -> None:
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("vaelab: error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in errors[0], errors[0]


@pytest.mark.parametrize("epoch", ["yesterday", "1.5", "-3", "99999999999999999999"])
def test_bad_source_date_epoch_is_a_one_line_error_and_no_document(demo_build, tmp_path, epoch):
    out = tmp_path / "report.html"
    proc = run_module("report.render", "html", str(demo_build / "runs/tiny-vae"), str(out),
                      "--data", str(demo_build / "data"), env={"SOURCE_DATE_EPOCH": epoch})
    assert_one_line_error(proc, "SOURCE_DATE_EPOCH")
    assert list(tmp_path.iterdir()) == []
    proc = run_module("analysis.config", "report", "--data", str(demo_build / "data"),
                      "--out", str(tmp_path / "inputs.json"), env={"SOURCE_DATE_EPOCH": epoch})
    assert_one_line_error(proc, "SOURCE_DATE_EPOCH")  # make checks it before any slow step
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["missing", "directory", "binary", "unreadable"])
def test_unreadable_metadata_is_a_one_line_error_and_no_document(demo_build, tmp_path, kind):
    import os

    meta = tmp_path / "meta.toml"
    if kind == "directory":
        meta.mkdir()
    elif kind == "binary":
        meta.write_bytes(b"\xff\xfe title = 1")
    elif kind == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        meta.write_text('title = "x"\n')
        meta.chmod(0)
    out = tmp_path / "out" / "report.html"
    proc = run_module("report.render", "html", str(demo_build / "runs/tiny-vae"), str(out),
                      "--data", str(demo_build / "data"), "--metadata", str(meta))
    assert_one_line_error(proc, str(meta))
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


@pytest.mark.parametrize("skipped, words", [(0, None), (1, "1 hidden file was skipped"),
                                             (60000, "60,000 hidden files were skipped")])
def test_report_data_paragraph_states_hidden_files_skipped(demo_build, tmp_path, skipped, words):
    import json
    import shutil

    from report import render

    data = tmp_path / "data"
    shutil.copytree(demo_build / "data", data)
    info = json.loads((data / "dataset.json").read_text())
    (data / "dataset.json").write_text(json.dumps({**info, "hidden_files_skipped": skipped}))
    out = tmp_path / "report.html"
    render.main(["html", str(demo_build / "runs/tiny-vae"), str(out), "--data", str(data)])
    text = " ".join(out.read_text().split())
    if words is None:
        assert "hidden file" not in text
    else:
        assert words in text


def test_templates_are_a_short_skeleton_and_short_lines():
    """report.html.j2 includes one file per section (templates/sections/); no template line is
    over 160 characters, so each reads without scrolling."""
    from report.render import TEMPLATES

    skeleton = (TEMPLATES / "report.html.j2").read_text(encoding="utf-8")
    sections = sorted(p.name for p in (TEMPLATES / "sections").glob("*.html.j2"))
    assert [f'{{% include "sections/{name}" %}}' in skeleton for name in sections] == [True] * len(sections)
    assert "<section" not in skeleton and len(skeleton.splitlines()) < 100
    long = [f"{p.name}:{n}" for p in TEMPLATES.rglob("*.j2")
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if len(line) > 160]
    assert not long, long

