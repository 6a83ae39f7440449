"""Stage 5: render the report as HTML (Jinja2) and PDF (WeasyPrint).

Run:
    python -m report.render html build/runs/NAME build/report.html --data build/data \
        --metadata report.toml
    python -m report.render pdf build/report.html build/report.pdf

The HTML references figures by relative path, so it opens from disk with every figure
visible. The PDF is rendered from that HTML with the print stylesheet in templates/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from analysis.common import VaelabError, atomic_path, run_main, write_text
from report.compare import build_compare
from report.context import build_context

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"


def render_template(name: str, context: dict, templates: Path = TEMPLATES) -> str:
    """Render one of templates/ with the shared stylesheet inlined (the HTML stands alone)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["css"] = (templates / "report.css").read_text(encoding="utf-8")
    return env.get_template(name).render(**context)


def render_html(context: dict, templates: Path = TEMPLATES) -> str:
    return render_template("report.html.j2", context, templates)


def render_pdf(html_path: Path, pdf_path: Path) -> None:
    import logging

    import weasyprint

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    if not html_path.is_file():
        raise VaelabError(f"{html_path} not found; run `make report` first")
    document = weasyprint.HTML(filename=str(html_path)).render()
    # Fixed dates from the title block (itself from SOURCE_DATE_EPOCH when set), never "now".
    date = document.metadata.created or dt.date.today().isoformat()
    document.metadata.created = document.metadata.modified = date
    with atomic_path(pdf_path) as tmp:
        document.write_pdf(str(tmp))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Render the lab report")
    sub = parser.add_subparsers(dest="what", required=True)
    html = sub.add_parser("html")
    html.add_argument("runs", type=Path, nargs="+",
                      help="run directories (metrics.json, figures/, ...), primary first")
    html.add_argument("out", type=Path, help="report.html to write")
    html.add_argument("--data", type=Path, required=True, help="data directory (dataset.json)")
    html.add_argument("--metadata", type=Path, default=None, help="title block TOML file")
    pdf = sub.add_parser("pdf")
    pdf.add_argument("html", type=Path)
    pdf.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.what == "html":
        context = build_context(args.data, args.runs[0], args.out, args.metadata)
        context["compare"] = None
        if len(args.runs) > 1:
            context["compare"] = build_compare(args.runs, args.out.parent / "compare", args.out.parent)
        write_text(args.out, render_html(context))
    else:
        render_pdf(args.html, args.out)
    print(f"report: wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    run_main(main)
