"""vaelab report: Jinja2 context, HTML and WeasyPrint PDF rendering."""
