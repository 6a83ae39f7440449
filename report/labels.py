"""The report's numbered things, in one list: figures, tables and sections, with their labels.

Not run on its own. ``float_numbers`` gives the number of every figure and table the run
produced (the template prints them: ``Figure {{ number['fig:pca'] }}``), and ``references``
adds the sections, author sections included, for the cross-references of report.notes
(``@fig:pca`` -> "Figure 5"). A figure or table the run did not produce has no number, so
the ones after it move up; the template shows a float exactly when its condition here holds
(the same context key). Sections are numbered by templates/report.css (``h2`` without the
``unnumbered`` class); ``references`` counts them the same way.
"""

from __future__ import annotations

from typing import Callable


def _always(context: dict) -> bool:
    return True


def _has(key: str) -> Callable[[dict], bool]:
    return lambda context: bool(context.get(key))


def _sample_rows(context: dict) -> bool:
    return bool(context.get("comparisons") and context["comparisons"].get("sample_rows"))


# (label, element id, shown when), in document order. Labels are what authors write after
# "@"; README.md lists them.
FIGURES = (
    ("fig:examples", "fig-examples", _always),
    ("fig:learning-curves", "fig-learning-curves", _has("curves")),
    ("fig:confusion", "fig-confusion-best", _always),
    ("fig:confusion-all", "fig-confusion-all", _always),
    ("fig:pca", "fig-pca", _always),
    ("fig:lda", "fig-lda", _always),
    ("fig:kde", "fig-kde", _always),
    ("fig:probes", "fig-probes", _always),
    ("fig:reconstructions", "fig-reconstructions", _has("has_decoder")),
)
TABLES = (
    ("tab:configuration", "configuration-table", _always),
    ("tab:classifiers", "classifiers-table", _always),
    ("tab:accuracy", "results-table", _always),
    ("tab:vae-vs-pixels", "baselines-table", _has("comparisons")),
    ("tab:mean-std-vs-sample", "sample-vs-meanstd-table", _sample_rows),
    ("tab:tuned", "tuned-table", _has("tuned")),
    ("tab:prf", "prf-table", _always),
    ("tab:per-class", "per-class-table", _always),
    ("tab:provenance", "provenance-table", _always),
    ("tab:tuned-grids", "tuned-grids-table", _has("tuned")),
    ("tab:tuned-settings", "tuned-settings-table", _has("tuned")),
)
# The Comparing encoders section (several variants only) numbers its floats C1, C2, ...
COMPARE_FIGURES = (("fig:variant-reconstructions", "fig-variant-reconstructions"),)
COMPARE_TABLES = (("tab:variants", "variants-table"), ("tab:variant-configuration", "variants-config"))
# (key, element id, heading, numbered, shown when). The key is both the label (@sec:KEY) and
# the name report.toml uses to append text to a section or to place one after it.
SECTIONS = (
    ("summary", "summary", "Summary", False, _always),
    ("introduction", "introduction", "Introduction", True, _always),
    ("methodology", "methodology", "Methodology", True, _always),
    ("results", "results", "Results", True, _always),
    ("comparing-encoders", "comparing-encoders", "Comparing encoders", True, _has("compare")),
    ("discussion", "discussion", "Discussion", True, _always),
    ("limitations", "limitations", "Limitations", True, _always),
    ("conclusions", "conclusions", "Conclusions", True, _always),
    ("references", "references", "References", True, _always),
    ("appendix", "appendix-provenance", "Appendix A", False, _always),
    ("appendix-tuning", "appendix-tuning", "Appendix B", False, _has("tuned")),
)
SECTION_KEYS = tuple(key for key, *_ in SECTIONS)
KIND_WORDS = {"fig": "Figure", "tab": "Table", "sec": "Section"}


def float_numbers(context: dict) -> dict[str, str]:
    """{label: number} of every figure and table this report shows: "3", or "C1" in the
    Comparing encoders section."""
    numbers: dict[str, str] = {}
    for floats in (FIGURES, TABLES):
        shown = [label for label, _, shown in floats if shown(context)]
        numbers.update({label: str(i) for i, label in enumerate(shown, 1)})
    if context.get("compare"):
        for floats in (COMPARE_FIGURES, COMPARE_TABLES):
            numbers.update({label: f"C{i}" for i, (label, _) in enumerate(floats, 1)})
    return numbers


def section_order(context: dict, author_sections: list[dict]) -> list[dict]:
    """Every section of the report in document order, the author's own (each a dict with
    "label", "id", "title" and "after", a key of SECTIONS) right after the standard section
    they follow, each given "number" ("5", or None when unnumbered)."""
    order, n = [], 0
    for key, element, title, numbered, shown in SECTIONS:
        mine = [{"label": key, "id": element, "title": title, "numbered": numbered}] if shown(context) else []
        mine += [s | {"numbered": True} for s in author_sections if s["after"] == key]
        for section in mine:
            n += section["numbered"]
            order.append(section | {"number": str(n) if section["numbered"] else None})
    return order


def references(context: dict, author_sections: list[dict]) -> dict[str, dict]:
    """{label: {"text": "Figure 3", "id": "fig-confusion-best"}} for every label the author
    may cite: the figures and tables shown, and every section (unnumbered ones by name)."""
    ids = {label: element for label, element, _ in FIGURES + TABLES}
    ids.update(dict(COMPARE_FIGURES + COMPARE_TABLES))
    refs = {label: {"text": f"{KIND_WORDS[label[:3]]} {number}", "id": ids[label]}
            for label, number in float_numbers(context).items()}
    for section in section_order(context, author_sections):
        text = f"Section {section['number']}" if section["number"] else section["title"]
        refs[f"sec:{section['label']}"] = {"text": text, "id": section["id"]}
    return refs


def all_labels() -> list[str]:
    """Every label a report can have (README lists them), author sections aside."""
    return ([label for label, *_ in FIGURES] + [label for label, _ in COMPARE_FIGURES]
            + [label for label, *_ in TABLES] + [label for label, _ in COMPARE_TABLES]
            + [f"sec:{key}" for key in SECTION_KEYS])


def title_of(key: str) -> str:
    """A standard section's heading: "Comparing encoders"."""
    return next(title for k, _, title, *_ in SECTIONS if k == key)
