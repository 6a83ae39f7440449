"""The author's own text (report.notes): Markdown in the report, numbers from the run,
cross-references, errors with file and line, the build graph.

Run: .venv/bin/python -m pytest -n 0 tests/test_notes.py

Most tests render in-process (conftest's notes_report: demo_build's run with an author
section); one runs make on a copy of demo_build to see what a note edit rebuilds.
`make check` on the same report is in test_check.py (one vnu and one Chromium for all).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from analysis.common import VaelabError
from analysis.verdicts import judge
from helpers import ROOT, make_vars, run_make, write_notes
from report import labels, notes


class Sections(HTMLParser):
    """The report's h2 sections in order (id, class, heading text), and per element id the
    first caption text inside it; the author section's tags and text."""

    def __init__(self):
        super().__init__()
        self.sections: list[dict] = []
        self.captions: dict[str, str] = {}
        self.author: list[tuple[str, dict]] = []  # (tag, attrs) inside #sec-answers
        self.author_text: list[str] = []
        self._stack: list[tuple[str, str | None]] = []
        self._caption: list[str] | None = None
        self._heading: list[str] | None = None
        self._in_author = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("br", "img", "meta", "hr", "link", "input"):
            return
        self._stack.append((tag, attrs.get("id")))
        if attrs.get("id") == "sec-answers":
            self._in_author = len(self._stack)
        if self._in_author:
            self.author.append((tag, attrs))
        if tag == "section":
            self.sections.append({"id": attrs.get("id"), "numbered": None, "title": ""})
        elif tag == "h2":
            self.sections[-1]["numbered"] = "unnumbered" not in (attrs.get("class") or "")
            self._heading = []
        elif tag in ("caption", "figcaption"):
            self._caption = []

    def handle_endtag(self, tag):
        if tag in ("caption", "figcaption") and self._caption is not None:
            owner = next(i for _, i in reversed(self._stack[:-1]) if i)
            self.captions.setdefault(owner, "".join(self._caption).strip())
            self._caption = None
        if tag == "h2" and self._heading is not None:
            self.sections[-1]["title"] = "".join(self._heading).strip()
            self._heading = None
        if self._stack and self._stack[-1][0] == tag:
            if self._in_author == len(self._stack):
                self._in_author = 0
            self._stack.pop()

    def handle_data(self, data):
        for sink in (self._caption, self._heading):
            if sink is not None:
                sink.append(data)
        if self._in_author:
            self.author_text.append(data)


def parse(html: Path) -> Sections:
    s = Sections()
    s.feed(html.read_text(encoding="utf-8"))
    return s


def author_html(html: Path) -> str:
    text = html.read_text(encoding="utf-8")
    return text[text.index('<section id="sec-answers"'):].split("</section>")[0]


# ---- the rendered report --------------------------------------------------------------------

def test_notes_author_section_renders_markdown_with_run_numbers(notes_report, demo_build):
    from report.formatting import pts

    metrics = json.loads((demo_build / "runs/tiny-vae/metrics.json").read_text())
    svc = metrics["results"]["svc"]["mean_std"]
    part = author_html(notes_report)
    s = parse(notes_report)
    tags = [t for t, _ in s.author]
    # Headings nested under the section's h2; a table whose header cells have scopes; a list,
    # a block quote and a footnote.
    assert "h3" in tags and "h1" not in tags and tags.count("h2") == 1
    ths = [a for t, a in s.author if t == "th"]
    assert len(ths) == 2 and all(a.get("scope") == "col" for a in ths)
    assert {"table", "ul", "li", "blockquote", "code"} <= set(tags)
    assert 'id="fn-answers-1"' in part and 'href="#fn-answers-1"' in part
    # Numbers from metrics.json, formatted as the report formats them.
    text = " ".join(s.author_text)
    low, high = svc["accuracy_ci"]
    assert f"{svc['accuracy']:.4f} [{low:.3f}, {high:.3f}]" in text
    assert f"<td style=\"text-align:right\">{svc['accuracy']:.4f}</td>" in part
    delta = metrics["comparisons"]["svc"]["mean_std_vs_pixels_pca_mean_std"]["delta"]
    assert f"VAE minus pixels: {pts(delta)} points." in text
    assert f"On {metrics['n_test']} test images." in text
    assert "<code>{{ accuracy svc mean_std }}</code>" in part  # code is never resolved
    assert "no_such_placeholder" not in notes_report.read_text()  # comments are dropped
    # Raw HTML is text: escaped, never an element.
    assert "&lt;script&gt;alert(&quot;notes&quot;)&lt;/script&gt;" in part
    assert "&lt;img src=x onerror=alert(1)&gt;" in part
    assert "<script" not in notes_report.read_text() and "script" not in tags


def test_notes_cross_references_link_the_numbers_the_report_shows(notes_report):
    s = parse(notes_report)
    part = author_html(notes_report)
    # The link says the number the figure's own caption gives it.
    number = re.match(r"Figure (\d+)\.", s.captions["fig-confusion-best"]).group(1)
    assert f'<a href="#fig-confusion-best">Figure {number}</a>' in part
    # Sections: numbered as templates/report.css numbers them (h2 without "unnumbered").
    numbered = [sec["id"] for sec in s.sections if sec["numbered"]]
    assert numbered[-3:] == ["conclusions", "sec-answers", "references"]
    assert f'<a href="#conclusions">Section {numbered.index("conclusions") + 1}</a>' in part
    results = notes_report.read_text().split('<section id="results">')[1].split("</section>")[0]
    table = re.match(r"Table (\d+)\.", s.captions["results-table"]).group(1)
    assert f'citing <a href="#results-table">Table {table}</a>.' in results


def test_labels_match_every_caption_of_the_report(notes_report):
    """The one list of report.labels and the captions of the template agree, float by float,
    and the floats are numbered 1, 2, 3, ... in document order."""
    s = parse(notes_report)
    shown = {"curves": True, "has_decoder": True, "comparisons": {"sample_rows": [1]}}  # this report: no TUNE
    refs = labels.references(shown, [])
    floats = [(label, element) for label, element, when in labels.FIGURES + labels.TABLES if when(shown)]
    for label, element in floats:
        assert s.captions[element].startswith(refs[label]["text"] + "."), (label, s.captions[element])
    absent = [element for _, element, when in labels.FIGURES + labels.TABLES if not when(shown)]
    assert absent and not any(element in s.captions for element in absent)
    for word in ("Figure", "Table"):
        shown = [int(m.group(1)) for c in s.captions.values() if (m := re.match(rf"{word} (\d+)\.", c))]
        assert sorted(shown) == list(range(1, len(shown) + 1)), (word, shown)


def test_notes_appendix_lists_files_and_builds_are_identical(notes_report, demo_build):
    from report import render

    appendix = notes_report.read_text().split('id="appendix-provenance"')[1]
    for name in ("notes/results.md", "notes/discussion.md"):
        digest = hashlib.sha256((notes_report.parent / name).read_bytes()).hexdigest()
        assert f"<code>{name}</code> sha256 <code class=\"hash\">{digest}</code>" in appendix
    again = notes_report.with_name("again.html")  # same folder: same figure paths
    render.main(["html", str(demo_build / "runs/tiny-vae"), str(again), "--data", str(demo_build / "data"),
                 "--metadata", str(notes_report.parent / "report.toml")])
    assert again.read_bytes() == notes_report.read_bytes()


# ---- errors: one line with file and line ------------------------------------------------------

METRICS = judge({
    "model_order": ["logreg", "svc", "random"],
    "feature_set_order": ["sample", "mean_std", "pixels_pca_mean_std"],
    "models": {k: {"label": k.upper()} for k in ("logreg", "svc", "random")},
    "feature_sets": {k: {"label": k} for k in ("sample", "mean_std", "pixels_pca_mean_std")},
    "results": {m: {fs: {"accuracy": 0.5, "accuracy_ci": [0.4, 0.6], "precision_macro": 0.5,
                         "recall_macro": 0.5, "f1_macro": 0.5, "confusion": [[5, 0], [0, 5]]}
                    for fs in ("sample", "mean_std", "pixels_pca_mean_std")}
                for m in ("logreg", "svc", "random")},
    "comparisons": {"svc": {"mean_std_vs_pixels_pca_mean_std": {
        "a": "mean_std", "b": "pixels_pca_mean_std", "delta": 0.052, "ci": [0.031, 0.07],
        "p_value": 0.0004, "only_a_correct": 9, "only_b_correct": 2}}},
    "classes": ["a", "b"], "n_train": 20, "n_test": 10,
})
ENCODE = {"model": {"name": "tiny"}, "device": "cpu", "precision": "fp32"}
REFS = labels.references({"curves": True}, [])


def render(text: str) -> str:
    return notes.render_note(text, "notes/x.md", "x", notes.Values(METRICS, ENCODE), REFS)


@pytest.mark.parametrize("text, message, nearest", [
    ("one\n\ntwo\nthree {{ accuracy svm mean_std }}", "notes/x.md:4: unknown model 'svm'", "svc"),
    ("| a |\n|---|\n| {{ ci svc mean_sdt }} |", "notes/x.md:3: unknown feature set 'mean_sdt'", "mean_std"),
    ("{{ acuracy svc sample }}", "notes/x.md:1: unknown placeholder 'acuracy'", "accuracy"),
    ("x\n\n- {{ delta sample mean_std svc }}", "notes/x.md:3: metrics.json has no paired test",
     "tested pairs: mean_std pixels_pca_mean_std"),
    ("{{ accuracy svc }}", "notes/x.md:1: {{ accuracy svc }} takes 2 word(s) after accuracy",
     "{{ accuracy MODEL SET }}"),
])
def test_notes_wrong_placeholder_names_file_line_and_nearest(text, message, nearest):
    with pytest.raises(VaelabError) as err:
        render(text)
    line = str(err.value)
    assert line.startswith(message) and "\n" not in line, line
    assert (f"nearest: {nearest}" if "unknown" in message else nearest) in line, line


def test_notes_unknown_label_lists_the_labels():
    with pytest.raises(VaelabError) as err:
        render("See\n@fig:confusoin.")
    line = str(err.value)
    assert line.startswith("notes/x.md:2: unknown label @fig:confusoin; nearest: fig:confusion")
    assert all(f"@{label}" in line for label in REFS) and "\n" not in line


def test_notes_placeholders_are_not_a_template_engine():
    for text in ('{{ __import__("os").system("echo hi") }}', "{{ metrics.best }}", "{{ 1 + 1 }}"):
        with pytest.raises(VaelabError, match="is not a placeholder"):
            render(text)
    html = render("{% for x in y %}{{ n_train }}{% endfor %} {# c #}")
    assert html == "<p>{% for x in y %}20{% endfor %} {# c #}</p>\n"
    assert render("{{ delta pixels_pca_mean_std mean_std svc }}, {{ p mean_std pixels_pca_mean_std svc }}") \
        == "<p>−5.2, &lt; 0.001</p>\n"  # either way round; p as the tables give it


def test_notes_headings_nest_under_the_section_in_order():
    html = render("# A\n\n### B\n\n## C\n\n###### D")
    assert re.findall(r"<(h\d)>", html) == ["h3", "h4", "h4", "h5"]
    with pytest.raises(VaelabError, match="images are not supported"):
        render("![a cat](cat.png)")
    assert 'href="#fn-x-1"' in render("A[^n].\n\n[^n]: note")
    assert render("[x](javascript:alert(1)) a@fig:x.org") == "<p>[x](javascript:alert(1)) a@fig:x.org</p>\n"


def test_labels_numbers_follow_what_the_run_shows():
    full = labels.float_numbers({"curves": True, "has_decoder": True, "comparisons": {"sample_rows": [1]}})
    assert (full["fig:confusion"], full["tab:prf"]) == ("3", "6")
    bare = labels.float_numbers({"curves": None, "has_decoder": True, "comparisons": {"sample_rows": []}})
    assert "fig:learning-curves" not in bare and "tab:mean-std-vs-sample" not in bare
    assert (bare["fig:confusion"], bare["fig:reconstructions"], bare["tab:prf"]) == ("2", "8", "5")
    mine = [{"label": "answers", "id": "sec-answers", "title": "Answers", "after": "introduction"}]
    refs = labels.references({}, mine)
    assert refs["sec:answers"]["text"] == "Section 2" and refs["sec:conclusions"]["text"] == "Section 7"
    assert refs["sec:summary"]["text"] == "Summary" and "sec:comparing-encoders" not in refs


@pytest.mark.parametrize("toml, message", [
    ('[notes]\nresults = "notes/nope.md"\n', "notes/nope.md (named in"),
    ('[notes]\nresultz = "a.md"\n', "no standard section 'resultz'; nearest: results"),
    ('[[notes.sections]]\ntitle = "D"\nfile = "a.md"\nafter = "conclusion"\n',
     "after = 'conclusion' is not a standard section; nearest: conclusions"),
    ('[[notes.sections]]\ntitle = "Results"\nfile = "a.md"\nafter = "results"\n', "label 'results' is taken"),
])
def test_notes_config_errors_are_one_line(tmp_path, toml, message):
    (tmp_path / "a.md").write_text("x")
    meta = tmp_path / "report.toml"
    meta.write_text(toml)
    with pytest.raises(VaelabError, match=re.escape(message)):
        notes.load_notes(meta)


# ---- build graph and starting point -----------------------------------------------------------

def test_make_note_edit_rerenders_only_the_document(demo_build, tiny_vae, synthetic_images, tmp_path):
    from helpers import steps_run
    from test_make import product_times

    build = tmp_path / "b"
    shutil.copytree(demo_build, build)  # mtimes kept: the copy is as current as the original
    meta = write_notes(tmp_path)
    args = [*make_vars(build, tiny_vae, synthetic_images, 6), f"METADATA={meta}"]
    target = str(build / "report.html")
    assert steps_run(run_make(target, *args)) == {"report.render html"}  # another METADATA
    assert steps_run(run_make(target, *args)) == set()
    before = product_times(build)
    with open(tmp_path / "notes/discussion.md", "a", encoding="utf-8") as fh:
        fh.write("\nAn edit of mine.\n")
    assert steps_run(run_make(target, *args)) == {"report.render html"}
    after = product_times(build)
    changed = {p for p in after if after[p] != before.get(p)}
    assert changed == {"report.html"}, changed  # metrics.json and every figure untouched
    assert "An edit of mine." in (build / "report.html").read_text()
    (tmp_path / "notes/results.md").unlink()
    proc = run_make(target, *args, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("vaelab: error:")]
    assert proc.returncode != 0 and len(errors) == 1 and "Traceback" not in proc.stderr
    assert str(tmp_path / "notes/results.md") in errors[0] and "not found" in errors[0]
    assert product_times(build)["report.html"] == after["report.html"]


def test_make_notes_writes_starters_that_render(source_copy, demo_build):
    from report.context import build_context

    run_make("notes", cwd=source_copy)
    written = sorted(p.name for p in (source_copy / "notes").iterdir())
    assert written == sorted(f"{k}.md" for k in notes.APPEND_TO)
    mine = source_copy / "notes/results.md"
    mine.write_text("my own words\n")
    meta = (source_copy / "report.toml").read_text()
    proc = run_make("notes", cwd=source_copy)
    assert mine.read_text() == "my own words\n"  # kept
    assert (source_copy / "report.toml").read_text() == meta and "already has a [notes]" in proc.stderr
    assert '[notes]\nsummary = "notes/summary.md"' in meta and meta.startswith('# Title block')
    # Every starter resolves against a real run (the comparing-encoders one is not shown).
    context = build_context(demo_build / "data", [demo_build / "runs/tiny-vae"],
                            source_copy / "report.html", source_copy / "report.toml")
    shown = notes.attach(context | {"compare": None}, source_copy / "report.toml")["notes"]
    assert sorted(shown["append"]) == sorted(k for k in notes.APPEND_TO if k != "comparing-encoders")
    assert "{{" not in "".join(h for hs in shown["append"].values() for h in hs)


def test_readme_lists_every_label_and_placeholder():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Adding your own text")[1].split("\n## ")[0]
    for label in labels.all_labels():
        assert f"`@{label}`" in section, label
    for name in notes.PLACEHOLDERS:
        assert f"`{{{{ {name}" in section, name
