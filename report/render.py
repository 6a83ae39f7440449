"""Stage 5: render the report as HTML (Jinja2) and PDF (WeasyPrint).

Run:
    python -m report.render html build/runs/NAME build/report.html --data build/data \
        --metadata report.toml
    python -m report.render pdf build/report.html build/report.pdf

The HTML references figures by relative path, so it opens from disk with every figure
visible. The PDF is rendered from that HTML with the print stylesheet in templates/, as a
tagged PDF/UA-1 document. Neither holds a wall-clock time or a path inside the build folder,
so two builds of the same configuration give byte-identical files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis import deps
from analysis.common import VaelabError, atomic_path, run_main, write_text
from report.context import build_context
from report.formatting import FILTERS, ngettext
from report.notes import attach

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"


def render_template(name: str, context: dict, templates: Path = TEMPLATES) -> str:
    """Render one of templates/ with the shared stylesheet inlined (the HTML stands alone)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["css"] = (templates / "report.css").read_text(encoding="utf-8")
    env.filters.update(FILTERS)  # numbers as report.formatting writes them: {{ n|count }}
    env.globals["ngettext"] = ngettext  # agreement with a count: {{ ngettext("model", "models", n) }}
    return env.get_template(name).render(**context)


def render_html(context: dict, templates: Path = TEMPLATES) -> str:
    return render_template("report.html.j2", context, templates)


# Print-only rules, kept out of the HTML (browsers do not know image-resolution): figures are
# drawn at their print size in inches at analysis.figures.DPI, so 150 image pixels make one
# inch on paper and the text in them keeps the size it was drawn at.
PRINT_CSS = "figure img { image-resolution: 150dpi; }"


# The PDF names each image after an MD5 of its URL, so the URLs must not hold the build
# folder's path: the HTML is rendered against this fixed base, and local_fetcher maps it
# back to the HTML's folder.
BASE_URL = "file:///vaelab-report/"


def local_fetcher(html_dir: Path):
    """A WeasyPrint URL fetcher that serves BASE_URL/<relative path> from ``html_dir``."""
    import mimetypes
    from urllib.parse import unquote, urlsplit

    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class LocalFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            if not url.startswith(BASE_URL):
                return super().fetch(url, headers)
            path = html_dir / unquote(urlsplit(url).path.removeprefix(urlsplit(BASE_URL).path))
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": content_type})

    return LocalFetcher()


def pdf_date(document) -> str | None:
    """The PDF's creation and modification date: the report date from the HTML's
    dcterms.created (itself from SOURCE_DATE_EPOCH when set), else SOURCE_DATE_EPOCH's day,
    else none at all. Never "now": the same HTML always gives the same PDF bytes."""
    from report.metadata import source_date

    return document.metadata.created or source_date()


def render_pdf(html_path: Path, pdf_path: Path) -> None:
    """A tagged PDF (PDF/UA-1: structure tree, document language, title shown) whose bytes
    depend only on the HTML and the figures it shows."""
    import logging

    import weasyprint

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    if not html_path.is_file():
        raise VaelabError(f"{html_path} not found; run `make report` first")
    html = weasyprint.HTML(string=html_path.read_text(encoding="utf-8"), base_url=BASE_URL,
                           url_fetcher=local_fetcher(html_path.resolve().parent))
    document = html.render(
        stylesheets=[weasyprint.CSS(string=PRINT_CSS)], pdf_variant="pdf/ua-1")
    date = pdf_date(document)
    document.metadata.created = document.metadata.modified = date
    with atomic_path(pdf_path) as tmp:
        # No random file identifier: pydyf then derives none, and the bytes stay the same.
        document.write_pdf(str(tmp), pdf_variant="pdf/ua-1", pdf_identifier=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Render the lab report")
    sub = parser.add_subparsers(dest="what", required=True)
    html = sub.add_parser("html")
    html.add_argument("runs", type=Path, nargs="+",
                      help="run directories (metrics.json, figures/, ...), primary first")
    html.add_argument("out", type=Path, help="report.html to write")
    html.add_argument("--data", type=Path, required=True, help="data directory (dataset.json)")
    html.add_argument("--metadata", type=Path, default=None, help="title block TOML file")
    html.add_argument("--seeds", action="store_true", help="the build ran several seeds (SEEDS)")
    html.add_argument("--tuned", action="store_true", help="the build tuned classifiers (TUNE)")
    pdf = sub.add_parser("pdf")
    pdf.add_argument("html", type=Path)
    pdf.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.what == "html":
        context = build_context(args.data, args.runs, args.out, args.metadata, args.seeds, args.tuned)
        # The author's Markdown (report.toml [notes]) and the numbers it may cite.
        context = attach(context, args.metadata)
        write_text(args.out, render_html(context))
    else:
        render_pdf(args.html, args.out)
    print(f"report: wrote {args.out}", file=sys.stderr)
    deps.write(args.out, __file__)  # OUT.d: the modules this renders with, for make


if __name__ == "__main__":
    run_main(main)
