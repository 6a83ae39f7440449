"""Validate rendered reports: W3C HTML, PDF structure, images on disk and in a browser.

Run:
    python -m report.check --html build/report.html --pdf build/report.pdf
    python -m report.check --html build/report.html --html build/diff-A-vs-B/diff.html \
        --pdf build/report.pdf --pdf build/diff-A-vs-B/diff.pdf

Checks (`make check` installs their tools first):
  images    every <img src> of each HTML is a relative path to an existing file
  vnu       each HTML passes the W3C Nu HTML Checker (vnu.jar from the npm package
            vnu-jar, run with the machine's Java; $VNU_JAR overrides where the jar is)
  pdf       `qpdf --check` finds no errors and `pdfinfo` reports at least one page and a
            tagged PDF
  chromium  each HTML, opened from disk in headless Chromium, has no broken images
  axe       each HTML, in that same Chromium, has no violation of the WCAG 2.1 A and AA rules
            of axe-core (the npm package axe-core, injected into the page; $AXE_JS overrides
            where axe.min.js is)

A check whose tool is not installed is SKIPPED with a notice on stderr, the other checks
still run. VAELAB_REQUIRE_CHECKS=1 (CI) counts a skipped check as failed. Exit status:
0 when nothing failed, 1 when a check failed, 2 when the inputs are missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from analysis.common import VaelabError, run_main
from report.formatting import plural

# `make check` installs vnu-jar and axe-core into the virtualenv that runs this module.
VNU_JAR = Path(sys.prefix) / "node" / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
AXE_JS = Path(sys.prefix) / "node" / "node_modules" / "axe-core" / "axe.min.js"
# The rules `make check` enforces: WCAG 2.0 and 2.1, levels A and AA.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# Runs axe in the page; calls back with one {id, impact, help, targets} per violated rule.
AXE_RUN_JS = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: "tag", values: arguments[0]}, resultTypes: ["violations"]})
  .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                            targets: v.nodes.map(n => n.target.join(" "))}))))
  .catch(e => done({error: String(e)}));
"""
TOOL_TIMEOUT = 120  # seconds for one external tool run; they take a few seconds normally
PAGE_TIMEOUT = 30  # seconds for Chromium to load one report with its images
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# Sources of <img> elements that did not load (missing file, unreadable image).
BROKEN_IMAGES_JS = ("return Array.from(document.images)"
                    ".filter(i => !(i.complete && i.naturalWidth > 0))"
                    ".map(i => i.getAttribute('src'))")
APT = "(make check does, as root on Debian/Ubuntu)"


class ToolMissing(Exception):
    """A check's tool is not installed: the check is skipped, not failed."""

    def __init__(self, tool: str, how: str):
        super().__init__(f"{tool} not installed: {how}")
        self.tool = tool


def run_tool(cmd: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise VaelabError(f"{cmd[0]} did not finish within {TOOL_TIMEOUT} s") from None


class ImageSources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs).get("src"))


def check_images_exist(html: Path) -> list[str]:
    parser = ImageSources()
    parser.feed(html.read_text(encoding="utf-8"))
    problems = []
    for src in parser.sources:
        if not src:
            problems.append(f"{html}: <img> without src")
            continue
        url = urlsplit(src)
        # Absolute paths and URLs break as soon as the report is copied or opened offline.
        if url.scheme or url.netloc or url.path.startswith("/"):
            problems.append(f"{html}: image {src} is not a path relative to the HTML")
        elif not (html.parent / unquote(url.path)).is_file():
            problems.append(f"{html}: image {src} does not exist")
    return problems


def vnu_command() -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise ToolMissing("java", f"apt-get install default-jre-headless {APT}")
    jar = Path(os.environ.get("VNU_JAR") or VNU_JAR)
    if not jar.is_file():
        raise ToolMissing("vnu.jar", f"npm install --prefix {Path(sys.prefix) / 'node'} --ignore-scripts "
                                     "vnu-jar (make check does), or set VNU_JAR")
    return [java, "-jar", str(jar)]


def check_vnu(htmls: list[Path]) -> list[str]:
    """All files in one run: the JVM start costs more than checking a report."""
    cmd = vnu_command()
    missing = [f"{h}: not found" for h in htmls if not h.is_file()]
    if missing:  # vnu itself only warns about a missing file
        return missing
    proc = run_tool([*cmd, "--format", "json", "--stdout", *map(str, htmls)])
    try:
        messages = json.loads(proc.stdout)["messages"]
    except (ValueError, KeyError):
        raise VaelabError(f"vnu gave no JSON result (exit {proc.returncode}): "
                          f"{(proc.stderr or proc.stdout).strip()[-300:]}") from None
    # vnu names files by absolute file: URL; report them as they were given.
    given = {os.path.abspath(h): str(h) for h in htmls}
    problems = []
    for msg in messages:
        path = unquote(urlsplit(msg.get("url", "")).path)
        where = given.get(path, path) or "vnu"
        if "lastLine" in msg:
            where += f":{msg['lastLine']}"
        text = f"{where}: {msg.get('message', '').strip()}"
        if msg.get("type") in ("error", "non-document-error"):
            problems.append(text)
        elif msg.get("subType") == "warning":
            # Warnings are advice (e.g. a heading that might be missing), not invalid HTML.
            print(f"vaelab: check: vnu warning: {text}", file=sys.stderr)
    if proc.returncode != 0 and not problems:
        why = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        problems.append(f"vnu exited with status {proc.returncode}: {why}")
    return problems


def check_pdf(pdf: Path) -> list[str]:
    qpdf, pdfinfo = shutil.which("qpdf"), shutil.which("pdfinfo")
    if qpdf is None:
        raise ToolMissing("qpdf", f"apt-get install qpdf {APT}")
    if pdfinfo is None:
        raise ToolMissing("pdfinfo", f"apt-get install poppler-utils {APT}")
    problems = []
    proc = run_tool([qpdf, "--check", str(pdf)])
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode == 3:  # qpdf's "warnings only": the file is usable
        print(f"vaelab: check: qpdf warnings for {pdf}: {output}", file=sys.stderr)
    elif proc.returncode != 0:
        lines = [line for line in output.splitlines() if "error" in line.lower() or "damaged" in line]
        problems.append(f"{pdf}: qpdf --check failed (exit {proc.returncode}): "
                        + "; ".join(lines[:3] or output.splitlines()[-1:]))
    proc = run_tool([pdfinfo, str(pdf)])
    pages = re.search(r"^Pages:\s+(\d+)", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or not pages or int(pages.group(1)) < 1:
        why = (proc.stderr.strip().splitlines() or ["no 'Pages:' line"])[-1]
        problems.append(f"{pdf}: pdfinfo reports no pages (exit {proc.returncode}): {why}")
    elif re.search(r"^Tagged:\s+no", proc.stdout, re.MULTILINE):
        problems.append(f"{pdf}: not a tagged PDF (pdfinfo: Tagged: no); render it with "
                        "`python -m report.render pdf`")
    return problems


def axe_source() -> str:
    path = Path(os.environ.get("AXE_JS") or AXE_JS)
    if not path.is_file():
        raise ToolMissing("axe-core", f"npm install --prefix {Path(sys.prefix) / 'node'} axe-core "
                                      "(make check does), or set AXE_JS")
    return path.read_text(encoding="utf-8")


def axe_problems(html: Path, violations) -> list[str]:
    if isinstance(violations, dict):  # axe.run rejected
        raise VaelabError(f"axe-core failed on {html}: {violations.get('error')}")
    problems = []
    for v in violations:
        where = ", ".join(v["targets"][:3]) + (f" (+{len(v['targets']) - 3} more)" if len(v["targets"]) > 3 else "")
        problems.append(f"{html}: {v['id']} ({v['impact']}): {v['help']} [{where}]")
    return problems


def check_chromium(htmls: list[Path], axe: bool = False) -> list[str] | tuple[list[str], list[str]]:
    """Open each HTML from disk in one headless Chromium; list the images that did not load.

    With ``axe``, also run axe-core's WCAG 2.1 A/AA rules in each page and return
    (image problems, accessibility problems); ToolMissing when axe-core is not installed.
    """
    source = axe_source() if axe else None
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
    except ImportError:
        raise ToolMissing("selenium", "pip install selenium (make check does)") from None
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        raise ToolMissing("chromium" if binary is None else "chromedriver",
                          f"apt-get install chromium chromium-driver {APT}")
    problems, a11y = [], []
    with tempfile.TemporaryDirectory(prefix="vaelab-chromium-") as profile:
        options = webdriver.ChromeOptions()
        # Explicit browser and driver paths: selenium-manager never downloads either.
        options.binary_location = binary
        for arg in CHROMIUM_ARGS:
            options.add_argument(arg)
        options.add_argument(f"--user-data-dir={profile}")  # fresh: no state from other runs
        try:
            driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path),
                                      options=options)
        except WebDriverException as err:
            raise VaelabError(f"headless Chromium did not start: {err.msg or err}") from None
        try:
            driver.set_page_load_timeout(PAGE_TIMEOUT)
            driver.set_script_timeout(PAGE_TIMEOUT)
            for html in htmls:
                # get() returns after the load event, by which time every image has loaded or failed.
                driver.get(html.resolve().as_uri())
                for src in driver.execute_script(BROKEN_IMAGES_JS):
                    problems.append(f"{html}: image {src} did not load in Chromium")
                if source is not None:
                    driver.execute_script(source)
                    a11y += axe_problems(html, driver.execute_async_script(AXE_RUN_JS, AXE_TAGS))
        except WebDriverException as err:
            raise VaelabError(f"headless Chromium failed: {(err.msg or str(err)).splitlines()[0]}") from None
        finally:
            driver.quit()
    return (problems, a11y) if axe else problems


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Validate rendered reports")
    parser.add_argument("--html", type=Path, action="append", default=[], help="report HTML (repeatable)")
    parser.add_argument("--pdf", type=Path, action="append", default=[], help="report PDF (repeatable)")
    args = parser.parse_args(argv)
    if not args.html and not args.pdf:
        raise VaelabError("nothing to check; pass --html FILE and/or --pdf FILE")
    for path in args.html + args.pdf:
        if not path.is_file():
            raise VaelabError(f"{path} not found; run `make report` first")

    checks = []
    if args.html:
        checks += [("images", lambda: [p for h in args.html for p in check_images_exist(h)]),
                   ("vnu", lambda: check_vnu(args.html))]
    if args.pdf:
        checks.append(("pdf", lambda: [p for f in args.pdf for p in check_pdf(f)]))
    if args.html:
        # One Chromium for both: the images check, then axe-core in the same pages. Without
        # axe-core the images are still checked and only the accessibility check is skipped.
        browser: dict = {}

        def chromium() -> list[str]:
            try:
                browser["images"], browser["axe"] = check_chromium(args.html, axe=True)
            except ToolMissing as missing:
                if missing.tool != "axe-core":
                    raise
                browser["axe"] = missing
                browser["images"] = check_chromium(args.html)
            return browser["images"]

        def accessibility() -> list[str]:
            if "axe" not in browser:  # Chromium itself was missing or failed
                raise ToolMissing("chromium", "see the chromium check above")
            if isinstance(browser["axe"], ToolMissing):
                raise browser["axe"]
            return browser["axe"]

        checks += [("chromium", chromium), ("axe", accessibility)]

    require = os.environ.get("VAELAB_REQUIRE_CHECKS") == "1"
    summary, failed = [], []
    for name, check in checks:
        try:
            problems = check()
        except ToolMissing as missing:
            print(f"vaelab: check: SKIPPED {name} ({missing})", file=sys.stderr)
            summary.append(f"{name}: SKIPPED ({missing.tool} not installed)")
            if require:
                failed.append(f"{name} skipped with VAELAB_REQUIRE_CHECKS=1")
            continue
        except VaelabError as err:  # the tool is there but broke (timeout, crash)
            problems = [str(err)]
        for problem in problems:
            print(f"vaelab: check: {name}: {problem}", file=sys.stderr)
        count = plural(len(problems), "problem")
        summary.append(f"{name}: FAILED ({count})" if problems else f"{name}: OK")
        if problems:
            failed.append(f"{name} ({count})")
    for line in summary:
        print(f"check {line}", file=sys.stderr)
    if failed:
        print(f"vaelab: error: report check failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run_main(main)
