"""The author's own text: Markdown files named in report.toml, with numbers from the run.

Run:
    python -m report.notes init notes --metadata report.toml    # `make notes`: starter files
    python -m report.notes deps --metadata report.toml --out build/report-notes.mk

report.render calls ``attach`` to render the files into the report. report.toml names them:

    [notes]
    results = "notes/results.md"        # appended to a standard section (SECTION_KEYS)

    [[notes.sections]]                  # a section of the author's own, numbered with the rest
    title = "Answers to the lab questions"
    file = "notes/answers.md"
    after = "conclusions"               # the standard section it follows

Paths are relative to report.toml. The Markdown is CommonMark with tables and footnotes
(markdown-it-py, mdit-py-plugins). Raw HTML is shown as text, never passed through;
``<!-- comments -->`` are dropped. Two additions, resolved here and never by a template
engine (author text reaches no code):

* placeholders, ``{{ accuracy svc mean_std }}``: one name and its words (PLACEHOLDERS), a
  value from the run's metrics.json or encode.json formatted as the report formats it;
* cross-references, ``@fig:confusion``: "Figure 3" linked to it (labels: report.labels).

A wrong name, a missing file or an unknown label stops the build with one line naming the
file and line. Author headings are nested under their section (``#`` becomes ``h3``), author
tables get header scopes, and the report's Appendix A lists every file with its sha256.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from analysis.common import VaelabError, run_main, write_text
from analysis.devices import PRECISION_NAMES
from report import labels
from report.metadata import read_toml

# Sections author text can be appended to (the standard ones with prose of their own) and
# those an author section can follow.
APPEND_TO = ("summary", "introduction", "methodology", "results", "comparing-encoders", "discussion",
             "limitations", "conclusions")
PLACE_AFTER = tuple(k for k in labels.SECTION_KEYS if not k.startswith("appendix"))
WORD = re.compile(r"[A-Za-z0-9_-]+")
REFERENCE = re.compile(r"@((?:fig|tab|sec):[a-z0-9]+(?:-[a-z0-9]+)*)")
COMMENT = re.compile(r"<!--.*?-->", re.S)
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
AUTHOR_TOP = 3  # the shallowest author heading becomes h3: under the section's h2


@dataclass(frozen=True)
class Note:
    """One Markdown file: appended to section ``key``, or (``title`` set) a section of its own."""

    key: str  # the section appended to, or the author section's label (@sec:KEY)
    path: str  # as report.toml names it
    file: Path  # resolved against report.toml's folder
    title: str = ""
    after: str = ""


def nearest(word: str, names) -> str:
    """'; nearest: svc, knn' or, with nothing close, every name."""
    names = list(names)
    close = difflib.get_close_matches(word, names, n=3, cutoff=0.5)
    return f"; nearest: {', '.join(close)}" if close else f"; valid: {', '.join(names)}"


def slug(text: str) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))


def load_notes(metadata: Path | None) -> list[Note]:
    """The [notes] table of report.toml, checked: known sections, files that exist."""
    if metadata is None:
        return []
    table = read_toml(metadata).get("notes", {})
    where = f"{metadata} [notes]"
    if not isinstance(table, dict):
        raise VaelabError(f"{where} must be a table: [notes] then lines like results = \"notes/results.md\"")
    notes = []
    for key, value in table.items():
        if key == "sections":
            continue
        if key not in APPEND_TO:
            raise VaelabError(f"{where}: no standard section {key!r}{nearest(key, APPEND_TO)} "
                              "(a section of your own goes under [[notes.sections]])")
        if not isinstance(value, str):
            raise VaelabError(f"{where}: {key} must be a file name in quotes, e.g. {key} = \"notes/{key}.md\"")
        notes.append(Note(key, value, metadata.parent / value))
    sections = table.get("sections", [])
    if not isinstance(sections, list):
        raise VaelabError(f"{where}: write each section of your own as [[notes.sections]] with title, file and after")
    taken = set(labels.SECTION_KEYS)
    for i, entry in enumerate(sections, 1):
        here = f"{metadata} [[notes.sections]] #{i}"
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) and entry.get(k).strip()
                                                  for k in ("title", "file", "after")):
            raise VaelabError(f"{here} needs title, file and after, each a string, e.g. title = "
                              "\"Answers\", file = \"notes/answers.md\", after = \"conclusions\"")
        unknown = sorted(set(entry) - {"title", "file", "after", "label"})
        if unknown:
            raise VaelabError(f"{here}: unknown key {unknown[0]!r}; a section has title, file, after and label")
        if entry["after"] not in PLACE_AFTER:
            raise VaelabError(f"{here}: after = {entry['after']!r} is not a standard section"
                              f"{nearest(entry['after'], PLACE_AFTER)}")
        label = entry.get("label") or slug(entry["title"])
        if not SLUG.fullmatch(label):
            raise VaelabError(f"{here}: label {label!r} must be lower-case letters, digits and hyphens")
        if label in taken:
            raise VaelabError(f"{here}: label {label!r} is taken (@sec:{label}); give the section "
                              "another title or a label = \"...\"")
        taken.add(label)
        notes.append(Note(label, entry["file"], metadata.parent / entry["file"], entry["title"].strip(),
                          entry["after"]))
    for note in notes:
        if not note.file.is_file():
            raise VaelabError(f"note file {note.file} (named in {metadata} [notes]) not found; create "
                              "it (`make notes` writes starters) or remove it from report.toml")
    return notes


# ---- placeholders -------------------------------------------------------------------------

# Placeholder name -> the words that follow it (README.md, "Adding your own text", lists them).
PLACEHOLDERS = {
    "accuracy": ("model", "set"),  # test accuracy, 4 decimals, as the accuracy table
    "ci": ("model", "set"),  # its 95% bootstrap interval: [0.391, 0.433]
    "precision": ("model", "set"),  # macro scores, 4 decimals
    "recall": ("model", "set"),
    "f1": ("model", "set"),
    "delta": ("set", "set", "model"),  # first minus second, accuracy points: +5.2
    "delta_ci": ("set", "set", "model"),  # its paired 95% interval: [+3.1, +7.0]
    "p": ("set", "set", "model"),  # McNemar's exact p: 0.012, < 0.001
    "p_adj": ("set", "set", "model"),  # the same, Holm-adjusted within its family
    "best_model": (), "best_set": (), "best_accuracy": (), "best_ci": (),
    "n_train": (), "n_test": (), "n_classes": (),
    "vae": (), "device": (), "dtype": (),  # from encode.json
}


class Values:
    """What placeholders resolve to: the run's metrics.json and encode.json, formatted by
    the same functions as the report (report.formatting)."""

    def __init__(self, metrics: dict, encode: dict):
        self.metrics, self.encode = metrics, encode
        self.comparisons = metrics.get("comparisons") or {}  # judged by analysis.verdicts

    def names(self, kind: str) -> list[str]:
        return list(self.metrics["model_order"] if kind == "model" else self.metrics["feature_set_order"])

    def resolve(self, text: str, where: str) -> str:
        from report.formatting import ci_text

        words = text.split()
        if not words or not all(WORD.fullmatch(w) for w in words):
            raise VaelabError(f"{where}: {{{{{text}}}}} is not a placeholder; write a name and its "
                              f"words, e.g. {{{{ accuracy svc {self.names('set')[0]} }}}} (names: "
                              f"{', '.join(PLACEHOLDERS)})")
        name, args = words[0], words[1:]
        if name not in PLACEHOLDERS:
            raise VaelabError(f"{where}: unknown placeholder {name!r} in {{{{{text}}}}}{nearest(name, PLACEHOLDERS)}")
        takes = PLACEHOLDERS[name]
        if len(args) != len(takes):
            usage = " ".join([name, *(w.upper() for w in takes)])
            raise VaelabError(f"{where}: {{{{{text}}}}} takes {len(takes)} word(s) after "
                              f"{name}: {{{{ {usage} }}}}")
        for kind, arg in zip(takes, args):
            if arg not in self.names(kind):
                raise VaelabError(f"{where}: unknown {'model' if kind == 'model' else 'feature set'} "
                                  f"{arg!r} in {{{{{text}}}}}{nearest(arg, self.names(kind))}")
        m, e = self.metrics, self.encode
        best = m["best"]
        if takes == ("model", "set"):
            res = m["results"][args[0]][args[1]]
            key = {"accuracy": "accuracy", "precision": "precision_macro", "recall": "recall_macro",
                   "f1": "f1_macro"}.get(name)
            if key is None:
                return ci_text(res.get("accuracy_ci")) or "(no interval)"
            return f"{res[key]:.4f}"
        if takes == ("set", "set", "model"):
            return self.paired(name, *args, where=where, text=text)
        return {
            "best_model": lambda: m["models"][best["model"]]["label"],
            "best_set": lambda: m["feature_sets"][best["feature_set"]]["label"],
            "best_accuracy": lambda: f"{best['accuracy']:.4f}",
            "best_ci": lambda: ci_text(m["results"][best["model"]][best["feature_set"]].get("accuracy_ci")),
            "n_train": lambda: str(m["n_train"]),
            "n_test": lambda: str(m["n_test"]),
            "n_classes": lambda: str(len(m["classes"])),
            "vae": lambda: e["model"]["name"],
            "device": lambda: e["device"],
            "dtype": lambda: PRECISION_NAMES.get(e["precision"], e["precision"]),
        }[name]()

    def paired(self, name: str, a: str, b: str, model: str, where: str, text: str) -> str:
        """A paired comparison of metrics.json, either way round (a minus b)."""
        from report.formatting import p_text, pts

        per = self.comparisons.get(model, {})
        for comp in per.values():
            if (comp["a"], comp["b"]) in ((a, b), (b, a)):
                sign = 1 if comp["a"] == a else -1
                lo, hi = sorted(sign * x for x in comp["ci"])
                return {"delta": lambda: pts(sign * comp["delta"]),
                        "delta_ci": lambda: f"[{pts(lo)}, {pts(hi)}]",
                        "p": lambda: p_text(comp["p_value"]),
                        "p_adj": lambda: p_text(comp["p_adjusted"])}[name]()
        pairs = [f"{c['a']} {c['b']}" for c in per.values()]
        raise VaelabError(f"{where}: metrics.json has no paired test of {a} and {b} for {model} in "
                          f"{{{{{text}}}}}; tested pairs: {', '.join(pairs) or 'none'}")


# ---- Markdown -----------------------------------------------------------------------------

def markdown():
    """CommonMark with tables and footnotes; raw HTML off (shown as text), images refused."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.footnote import footnote_plugin

    md = MarkdownIt("commonmark", {"html": False, "xhtmlOut": False}).enable("table").use(footnote_plugin)
    md.inline.ruler.after("text", "vaelab_placeholder", placeholder_rule)
    md.inline.ruler.after("vaelab_placeholder", "vaelab_reference", reference_rule)

    def th_open(self, tokens, idx, options, env):
        tokens[idx].attrSet("scope", "col")  # GFM header cells head their column
        return self.renderToken(tokens, idx, options, env)

    def table_open(self, tokens, idx, options, env):
        tokens[idx].attrSet("class", "grid author-table")
        return self.renderToken(tokens, idx, options, env)

    # Footnotes in a <div>, not a heading-less <section>; the way back is named for readers.
    md.add_render_rule("th_open", th_open)
    md.add_render_rule("table_open", table_open)
    md.add_render_rule("footnote_block_open",
                       lambda self, t, i, o, e: '<div class="footnotes">\n<ol class="footnotes-list">\n')
    md.add_render_rule("footnote_block_close", lambda self, t, i, o, e: "</ol>\n</div>\n")

    def footnote_anchor(self, tokens, idx, options, env):
        ident = self.rules["footnote_anchor_name"](tokens, idx, options, env)
        if tokens[idx].meta["subId"] > 0:
            ident += f":{tokens[idx].meta['subId']}"
        return (f' <a href="#fnref{ident}" class="footnote-backref" '
                f'aria-label="Back to the text of footnote {tokens[idx].meta["id"] + 1}">\u21a9\ufe0e</a>')

    md.add_render_rule("footnote_anchor", footnote_anchor)
    return md


def strip_comments(text: str, path: str) -> str:
    """Drop <!-- comments -->, keeping their line breaks so that line numbers stay true."""
    out = COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    if "<!--" in out:
        line = out[:out.index("<!--")].count("\n") + 1
        raise VaelabError(f"{path}:{line}: comment <!-- is never closed with -->")
    return out


def nest_headings(tokens) -> None:
    """The author's shallowest heading becomes h3 (under the section's h2), deeper ones follow,
    and none is more than one level below the heading before it (the order stays valid)."""
    heads = [t for t in tokens if t.type in ("heading_open", "heading_close")]
    if not heads:
        return
    top, previous, level = min(int(t.tag[1]) for t in heads), AUTHOR_TOP - 1, AUTHOR_TOP
    for t in heads:
        if t.type == "heading_open":
            level = min(6, AUTHOR_TOP + int(t.tag[1]) - top, previous + 1)
            previous = level
        t.tag = f"h{level}"


def placeholder_rule(state, silent: bool) -> bool:
    """Inline rule: "{{ ... }}" on one line becomes a vaelab_placeholder token, before emphasis
    can split it (``{{ __import__ }}`` is one token, and refused, not bold text)."""
    pos = state.pos
    if not state.src.startswith("{{", pos):
        return False
    end = state.src.find("}}", pos + 2)
    if end < 0 or "\n" in state.src[pos:end]:
        return False
    if not silent:
        state.push("vaelab_placeholder", "", 0).content = state.src[pos + 2:end]
    state.pos = end + 2
    return True


def reference_rule(state, silent: bool) -> bool:
    """Inline rule: "@fig:confusion" becomes a vaelab_reference token (not after a letter:
    an e-mail address stays text)."""
    pos = state.pos
    if state.src[pos] != "@" or (pos and (state.src[pos - 1].isalnum() or state.src[pos - 1] in "_.@")):
        return False
    m = REFERENCE.match(state.src, pos)
    if not m:
        return False
    if not silent:
        state.push("vaelab_reference", "", 0).content = m.group(1)
    state.pos = m.end()
    return True


def expand(children, first_line: int, path: str, values: Values, refs: dict):
    """Inline tokens with placeholders replaced by text and references by links."""
    from markdown_it.token import Token

    out, line, in_link = [], first_line, 0
    for tok in children:
        where = f"{path}:{line}"
        if tok.type in ("softbreak", "hardbreak"):
            line += 1
        elif tok.type == "image":
            raise VaelabError(f"{where}: images are not supported in author text; describe it "
                              "in words or cite a figure of the report (@fig:...)")
        elif tok.type == "text" and "{{" in tok.content:
            raise VaelabError(f"{where}: {{{{ opens no placeholder ({{{{ NAME WORDS }}}} on one line); "
                              "put literal braces in `code`")
        in_link += {"link_open": 1, "link_close": -1}.get(tok.type, 0)
        if tok.type == "vaelab_placeholder":
            out.append(Token("text", "", 0, content=values.resolve(tok.content, where)))
        elif tok.type == "vaelab_reference":
            label = tok.content
            if label not in refs:
                raise VaelabError(f"{where}: unknown label @{label}{nearest(label, refs)}; labels "
                                  f"in this report: {', '.join('@' + k for k in refs)}")
            ref = refs[label]
            if in_link:  # already inside the author's link: the words alone
                out.append(Token("text", "", 0, content=ref["text"]))
            else:
                out += [Token("link_open", "a", 1, attrs={"href": f"#{ref['id']}"}),
                        Token("text", "", 0, content=ref["text"]), Token("link_close", "a", -1)]
        else:
            out.append(tok)
    return out


def render_note(text: str, path: str, doc_id: str, values: Values, refs: dict) -> str:
    """One Markdown text as HTML: raw HTML escaped, headings nested, placeholders resolved."""
    md = markdown()
    env = {"docId": doc_id}  # footnote ids fn-<doc_id>-1: unique across the author's files
    tokens = md.parse(strip_comments(text, path), env)
    nest_headings(tokens)
    for tok in tokens:
        if tok.type == "inline" and tok.children:
            tok.children = expand(tok.children, (tok.map[0] if tok.map else 0) + 1, path, values, refs)
    return md.renderer.render(tokens, md.options, env)


def read_note(note: Note) -> tuple[str, bytes]:
    try:
        data = note.file.read_bytes()
        return data.decode("utf-8"), data
    except FileNotFoundError:
        raise VaelabError(f"note file {note.file} not found; create it or remove it from report.toml") from None
    except UnicodeDecodeError:
        raise VaelabError(f"note file {note.file} is not UTF-8 text; save it as UTF-8") from None
    except OSError as err:
        raise VaelabError(f"note file {note.file} cannot be read ({err.strerror})") from None


def attach(context: dict, metadata: Path | None) -> dict:
    """``context`` with "number" (figure and table numbers for the template) and "notes":
    the author's text per section ("append"), their own sections ("sections") and the files
    with their sha256 ("files", for Appendix A)."""
    import hashlib

    from markupsafe import Markup

    notes = load_notes(metadata)
    own = [{"label": n.key, "id": f"sec-{n.key}", "title": n.title, "after": n.after}
           for n in notes if n.title]
    refs = labels.references(context, own)
    numbers = {s["label"]: s["number"] for s in labels.section_order(context, own)}
    values = Values(context["metrics"], context["encode"])
    append: dict[str, list] = {}
    sections, files = [], []
    for note in notes:
        text, data = read_note(note)
        if note.key == "comparing-encoders" and not note.title and not context.get("compare"):
            print(f"vaelab: notice: {note.path} is not shown: this report has no Comparing "
                  "encoders section (one variant)", file=sys.stderr)
            continue
        html = Markup(render_note(text, str(note.file), note.key, values, refs))
        files.append({"path": note.path, "sha256": hashlib.sha256(data).hexdigest()})
        if note.title:
            sections.append({"label": note.key, "id": f"sec-{note.key}", "title": note.title,
                             "after": note.after, "number": numbers[note.key], "html": html})
        else:
            append.setdefault(note.key, []).append(html)
    return context | {"number": labels.float_numbers(context),
                      "notes": {"append": append, "sections": sections, "files": files}}


# ---- command line: starter files and make's dependency list ---------------------------------

STARTERS = {
    "summary": ("In three or four sentences: the question, what you did, the main number and "
                "what it means. A marker reads this first.",
                "The best classifier, {{ best_model }} on {{ best_set }}, reaches a test accuracy "
                "of {{ best_accuracy }} {{ best_ci }} on {{ n_test }} test images."),
    "introduction": ("Why the question matters to you and what you expected before running it. "
                     "Cite sources in the References or as footnotes[^1].",
                     "Before running the study I expected ...\n\n"
                     "[^1]: Footnotes like this one go at the end of the text."),
    "methodology": ("What you chose and why: the encoder ({{ vae }}), the data, the seed. Say "
                    "anything you changed from the defaults.",
                    "The encoder ran on {{ device }} in {{ dtype }}, on {{ n_train }} training "
                    "images of {{ n_classes }} classes (@tab:configuration)."),
    "results": ("Read the tables and figures in your own words: which numbers matter, which "
                "surprised you. Cite them (@tab:accuracy, @fig:confusion) rather than retyping "
                "the numbers.",
                "@tab:accuracy shows that {{ best_model }} does best; @fig:confusion shows which "
                "classes it mixes up."),
    "comparing-encoders": ("Only shown when several VAEs run: what differs between them and "
                           "whether it matters for classification.",
                           "@tab:variants gives every model's accuracy on every encoder."),
    "discussion": ("Why your numbers differ from the original study's, in your own words: the "
                   "report's Discussion lists what it can tell; add what you know (your setup, "
                   "what you tried).",
                   "My best, {{ best_accuracy }} with {{ best_model }}, against the original "
                   "study's figures in @tab:accuracy: ..."),
    "limitations": ("What your run cannot tell, and what you would run next to find out (more "
                    "seeds, another resolution, tuning).",
                    "With {{ n_test }} test images the intervals are about {{ best_ci }} wide ..."),
    "conclusions": ("Answer the question in your own words, say how sure you are (the intervals "
                    "and p-values) and what you would try next.",
                    "With {{ best_accuracy }} accuracy against {{ n_classes }} classes, ..."),
}


def write_starters(folder: Path, metadata: Path | None) -> list[Path]:
    """notes/<section>.md for every section text can be appended to, each with a commented
    hint and a line using placeholders; existing files are kept. Returns the files written."""
    written = []
    for key, (hint, example) in STARTERS.items():
        path = folder / f"{key}.md"
        if path.exists():
            continue
        write_text(path, f"<!-- {labels.title_of(key)}: {hint}\n"
                         "     Placeholders such as {{ n_train }} and references such as "
                         "@sec:results are filled in from the run; see README.md, "
                         "\"Adding your own text\". Delete this comment when done. -->\n\n"
                         f"{example}\n")
        written.append(path)
    return written


def notes_table(folder: Path, metadata: Path) -> str:
    """The [notes] lines naming the starter files, relative to report.toml."""
    rel = Path(os.path.relpath(folder.resolve(), metadata.resolve().parent))
    lines = ["", "# Your own text (README.md, \"Adding your own text\"): Markdown appended to a section.",
             "[notes]"]
    lines += [f'{key} = "{(rel / f"{key}.md").as_posix()}"' for key in STARTERS]
    lines += ["", "# A section of your own, numbered with the rest, after a standard section:",
              "# [[notes.sections]]", '# title = "Answers to the lab questions"', f'# file = "{(rel / "answers.md").as_posix()}"',
              '# after = "conclusions"', ""]
    return "\n".join(lines)


def make_deps(notes: list[Note]) -> str:
    """A make fragment: NOTE_FILES, and an empty rule per file so that a file deleted since
    stops the build with report.notes' one-line error, not make's."""
    paths = [str(n.file) for n in notes]
    for p in paths:
        if any(c.isspace() or c in "$#:;%" for c in p):
            raise VaelabError(f"note file {p!r}: make cannot track a path with spaces or $#:;%; rename it")
    text = "# Written by `python -m report.notes deps` from report.toml: the author's Markdown files.\n"
    text += f"NOTE_FILES := {' '.join(paths)}\n"
    return text + (f"{' '.join(paths)}:\n" if paths else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    init = sub.add_parser("init", help="write starter notes (existing files are kept)")
    init.add_argument("folder", type=Path)
    deps = sub.add_parser("deps", help="the note files as a make fragment")
    deps.add_argument("--out", type=Path, required=True)
    for p in (init, deps):
        p.add_argument("--metadata", default="", help="report.toml ('' = none)")
    args = parser.parse_args(argv)
    metadata = Path(args.metadata) if args.metadata else None
    if args.what == "deps":
        text = make_deps(load_notes(metadata))
        if not args.out.is_file() or args.out.read_text(encoding="utf-8") != text:
            write_text(args.out, text)
        return
    written = write_starters(args.folder, metadata)
    print(f"notes: wrote {len(written)} file(s) in {args.folder}/"
          + (f" (kept {len(STARTERS) - len(written)} that exist)" if len(written) < len(STARTERS) else ""),
          file=sys.stderr)
    if metadata is not None and metadata.is_file() and "notes" not in read_toml(metadata):
        # Appended: the title block stays as typed.
        write_text(metadata, metadata.read_text(encoding="utf-8") + notes_table(args.folder, metadata))
        print(f"notes: added a [notes] table naming them to {metadata}", file=sys.stderr)
    elif metadata is not None and metadata.is_file():
        print(f"notes: {metadata} already has a [notes] table; name the files there", file=sys.stderr)


if __name__ == "__main__":
    run_main(main)
