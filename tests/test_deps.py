"""The code each product depends on (analysis.deps): the module lists, make's dependency files,
no import circle, and edits of the template, models.py and autoencoders.py rebuilding only
what they feed.

Run:
    .venv/bin/python -m pytest -p no:xdist -o addopts= -q tests/test_deps.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

from analysis import deps
from helpers import ROOT, STEPS, copy_build, make_vars, run_make, steps_run

def test_deps_modules_follow_every_import_of_a_stage():
    probes = deps.modules("analysis/probes.py")
    assert probes == sorted(probes)
    for name in ("analysis/__init__.py", "analysis/probes.py", "analysis/models.py",
                 "analysis/autoencoders.py", "analysis/stats.py", "analysis/common.py"):
        assert name in probes
    # Layers: probes sits beside classify, not on it, and needs no encoder.
    assert "analysis/classify.py" not in probes and "analysis/encode.py" not in probes
    assert "analysis/autoencoders.py" in deps.modules("analysis/classify.py")
    render = deps.modules("report/render.py")
    assert {"report/context.py", "report/facts.py", "analysis/autoencoders.py"} <= set(render)


def test_deps_imported_keeps_project_files_of_sys_modules(tmp_path):
    venv = tmp_path / ".venv/lib/python3/site-packages/numpy"
    loaded = {"a": types.SimpleNamespace(__file__=str(ROOT / "analysis/stats.py")),
              "b": types.SimpleNamespace(__file__=str(ROOT / "report/__init__.py")),
              "c": types.SimpleNamespace(__file__=str(venv / "__init__.py")),
              "d": types.SimpleNamespace(__file__=None), "e": types.SimpleNamespace()}
    assert deps.imported(loaded) == ["analysis/stats.py", "report/__init__.py"]


def test_deps_modules_cover_what_importing_each_stage_loads():
    """The source-read list holds every project module the stage's import really loads."""
    for module in ("analysis.classify", "analysis.probes", "analysis.baselines", "report.render"):
        code = f"import {module}; from analysis import deps; print('\\n'.join(deps.imported()))"
        loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.split()
        script = module.replace(".", "/") + ".py"
        assert set(loaded) <= set(deps.modules(script)), module
        assert script in loaded


def test_deps_no_import_circle_among_project_modules():
    """Imports anywhere in a file count, inside functions too: none may close a circle."""
    files = sorted(p for pkg in deps.packages() for p in (ROOT / pkg).glob("*.py"))
    graph = {deps.module_name(p): deps.imports_of(p) for p in files}
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for dep in sorted(graph.get(name, ())):
            if dep in ("analysis", "report"):  # the packages' empty __init__ files
                continue
            assert state.get(dep) != "open", " -> ".join(path + [dep])
            if dep not in state:
                visit(dep, path + [dep])
        state[name] = "done"

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_deps_write_names_each_target_and_gives_each_module_an_empty_rule(tmp_path):
    out = tmp_path / "b$x" / "metrics.json"
    path = deps.write(out, ROOT / "analysis/probes.py")
    assert path == Path(f"{out}.d")
    lines = path.read_text().splitlines()
    modules = deps.modules(ROOT / "analysis/probes.py")
    assert lines[0] == deps.HERE
    assert lines[1] == "$(VAELAB_D)metrics.json: " + " ".join(modules)
    assert lines[2:] == [f"{m}:" for m in modules]
    two = deps.write([tmp_path / "figures/figures.json", tmp_path / "figures/pca.png"],
                     ROOT / "analysis/figures.py", tmp_path / "figures.d")
    assert two == tmp_path / "figures.d"
    assert two.read_text().splitlines()[1].startswith(
        "$(VAELAB_D)figures/figures.json $(VAELAB_D)figures/pca.png: ")


def test_deps_write_leaves_an_unchanged_file_alone(tmp_path):
    out = tmp_path / "metrics.json"
    path = deps.write(out, ROOT / "analysis/probes.py")
    os.utime(path, ns=(1, 1))
    deps.write(out, ROOT / "analysis/probes.py")
    assert path.stat().st_mtime_ns == 1


def test_deps_file_targets_follow_the_folder_make_reads_it_from(tmp_path):
    """make names the target from where it included the file: a copied build keeps its rules."""
    for folder in ("orig", "copy"):
        deps.write(tmp_path / folder / "x.out", ROOT / "analysis/stats.py")
    (tmp_path / "Makefile").write_text(
        "-include $(wildcard */*.d)\n"
        "%/x.out:\n\t@echo built $@\n")
    for name in deps.modules(ROOT / "analysis/stats.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "copy" / "x.out").write_text("")
    time.sleep(0.01)
    (tmp_path / "analysis/stats.py").write_text("# an edit\n")
    proc = subprocess.run(["make", "-s", "copy/x.out"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.stdout.strip() == "built copy/x.out", proc.stderr


def touch_later(path: Path) -> None:
    """Bump a source file's mtime (content unchanged)."""
    later = time.time_ns() + 2_000_000_000
    os.utime(path, ns=(later, later))


def test_make_source_edits_rerun_only_what_imports_them(
        tmp_path, source_copy, demo_build, tiny_vae, synthetic_images):
    """On a copy of the sources and of a build (touching the checkout's own files would make
    the builds of tests running beside this one stale), one edit after another:
    the template re-renders the document only; models.py is a prerequisite of the stages that
    import it (their .d files); a comment added to analysis/autoencoders.py reruns every stage that imports it
    (encode too, which reuses its cached latents), and the results are fitted again rather
    than taken from the cache. Built once more, nothing is stale."""
    build = copy_build(demo_build, tmp_path / "b")
    args = make_vars(build, tiny_vae, synthetic_images, 6)
    run_make("report", *args, cwd=source_copy)  # the copy re-renders: report-inputs.json names its folder
    assert steps_run(run_make("report", *args, cwd=source_copy)) == set()  # the copy is current
    run = build / "runs" / "tiny-vae"
    assert "analysis/autoencoders.py" in (run / "metrics.json.d").read_text()

    touch_later(source_copy / "templates/report.html.j2")
    assert steps_run(run_make("report", *args, cwd=source_copy)) == {
        "report.render html", "report.render pdf"}
    # The products a models.py edit makes stale directly, read from the .d files make includes
    # (the edit below shows make acting on them): the stages that fit models, never encode.
    # What reads their products (figures, provenance, the report) follows from the Makefile.
    direct = {d.relative_to(build).as_posix() for d in build.rglob("*.d")
              if "analysis/models.py" in d.read_text().splitlines()[1].split()}
    assert direct == {f"runs/tiny-vae/{n}.d" for n in ("baselines.json", "metrics.json", "probes.json")}

    with open(source_copy / "analysis/autoencoders.py", "a", encoding="utf-8") as fh:
        fh.write("# an edit\n")
    proc = run_make("report", *args, cwd=source_copy)
    assert steps_run(proc) == set(STEPS) - {"analysis.data"}
    assert json.loads((run / "classify.json").read_text())["from_cache"] is False
    assert "baselines: fitted" in proc.stderr and "probes: latents, seed and code" not in proc.stderr
    assert json.loads((run / "timings-encode.json").read_text())["from_cache"] is True
    # Not `make -n`: it would list every step, as the FORCE'd config stamps count as remade.
    assert steps_run(run_make("report", *args, cwd=source_copy)) == set()
