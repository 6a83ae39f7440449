"""End-to-end: `make report` on the tiny VAE, and the Makefile's incremental behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import copy_build, make_vars, run_make, steps_run

EXPECTED_FILES = sorted([
    "cache/latents-{key}.npz", "cache/latents-{key}.sha256", "cache/latents-{key}.lock",
    "cache/latents-{key}.encoding.json",  # how the latents were made: batch and why
    "cache/recon-{recon}.npz", "cache/recon-{recon}.sha256", "cache/results-{results}.lock",
    *[f"cache/results-{{results}}/{n}" for n in ("metrics.json", "metrics.csv", "predictions.csv")],
    "cache/results-{results}.sha256",
    "baselines/.lock",
    *[f"baselines/{{{b}}}/{n}" for b in ("pixels_pooled", "pixels_pca_sample", "pixels_pca_mean_std")
      for n in ("baseline.json", "predictions.npz", "timings-baseline.json")],
    # the PCA baselines' learning curves, their own cache entry inside the folder
    *[f"baselines/{{{b}}}/{n}" for b in ("pixels_pca_sample", "pixels_pca_mean_std")
      for n in ("curves.json", "curves.sha256", "timings-curves.json")],
    *[f"baselines/{{{b}}}.sha256" for b in ("pixels_pooled", "pixels_pca_sample", "pixels_pca_mean_std")],
    "cache/probes-{probes}.json", "cache/probes-{probes}.lock", "cache/probes-{probes}.sha256",
    # PRECISION=auto's one measurement of this machine's convolution rates (analysis.devices)
    "cache/probe-conv-rates-{conv}.json", "cache/probe-conv-rates-{conv}.lock",
    # make's dependency files (analysis.deps), beside the products
    *[f"runs/tiny-vae/{n}.d" for n in ("latents.npz", "baselines.json", "metrics.json", "probes.json",
                                       "weights.json", "provenance.json", "figures")],
    "report.html.d", "report.pdf.d",
    "runs/tiny-vae/baselines.json", "runs/tiny-vae/classify.json",
    "data/config.json", "data/dataset.json", "data/dataset.npz", "data/timings-data.json",
    "plan.mk", "report-inputs.json", "report-notes.mk", "report.html", "report.pdf", "timings.json",
    "runs/tiny-vae/config.json",
    "runs/tiny-vae/encode.json", "runs/tiny-vae/latents.npz", "runs/tiny-vae/metrics.csv",
    "runs/tiny-vae/metrics.json", "runs/tiny-vae/predictions.csv", "runs/tiny-vae/provenance.json",
    "runs/tiny-vae/reconstructions.npz", "runs/tiny-vae/timings-classify.json",
    "runs/tiny-vae/probes.json", "runs/tiny-vae/weights.json", "runs/tiny-vae/timings-curves.json", "runs/tiny-vae/timings-probes.json",
    "runs/tiny-vae/timings-encode.json",
    *[f"runs/tiny-vae/figures/{n}.png" for n in
      ("examples", "confusion_best", "confusion_all", "pca", "lda", "kde", "reconstructions",
       "learning_curves", "probes")],
    "runs/tiny-vae/figures/figures.json",
])


def product_times(build: Path) -> dict[str, float]:
    return {str(p.relative_to(build)): p.stat().st_mtime_ns for p in build.rglob("*") if p.is_file()}


def probes_key(run: Path) -> str:
    """The probes cache key of a run, recomputed the way analysis.probes makes it."""
    import json

    from analysis.probes import cache_key

    return cache_key(run / "latents.npz", json.loads((run / "config.json").read_text())["seed"])


def one_probe_key(cache: Path, what: str) -> str:
    (probe,) = cache.glob(f"probe-{what}-*.json")
    return probe.stem.removeprefix(f"probe-{what}-")


def test_make_report_produces_exactly_the_expected_files(demo_build):
    import json

    run = demo_build / "runs/tiny-vae"
    encode = json.loads((run / "encode.json").read_text())
    keys = {"key": encode["cache_key"], "recon": encode["recon_cache_key"],
            "results": json.loads((run / "classify.json").read_text())["results_key"],
            "probes": probes_key(run),
            # keyed by this machine (CPU, torch, threads): the one measurement there is
            "conv": one_probe_key(demo_build / "cache", "conv-rates"),
            **json.loads((run / "baselines.json").read_text())["baselines"]}
    expected = sorted({f.format(**keys) for f in EXPECTED_FILES})
    assert sorted(product_times(demo_build)) == expected


def test_make_report_unchanged_does_nothing(demo_build, tiny_vae, synthetic_images):
    before = product_times(demo_build)
    proc = run_make("report", *make_vars(demo_build, tiny_vae, synthetic_images, 6))
    assert steps_run(proc) == set()
    assert product_times(demo_build) == before


def test_make_changed_seed_reencodes(demo_build, tiny_vae, synthetic_images, tmp_path):
    import json

    import numpy as np

    build = copy_build(demo_build, tmp_path / "b")
    first = np.load(build / "runs/tiny-vae/latents.npz")["test_sample"]
    # Up to the latents: what a new SEED re-encodes, not all that follows it.
    proc = run_make(str(build / "runs/tiny-vae/latents.npz"),
                    *make_vars(build, tiny_vae, synthetic_images, 6), "SEED=7")
    assert "analysis.encode" in steps_run(proc)
    assert "analysis.data" not in steps_run(proc)
    second = np.load(build / "runs/tiny-vae/latents.npz")
    assert not np.array_equal(first, second["test_sample"])
    assert json.loads((build / "runs/tiny-vae/config.json").read_text())["seed"] == 7


@pytest.mark.e2e
def test_make_bad_variable_fails_with_one_line_and_no_outputs(tmp_path, tiny_vae, synthetic_images):
    build = tmp_path / "b"
    proc = run_make("report", *make_vars(build, tiny_vae, synthetic_images, 3), "SEED=abc",
                    check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("vaelab: error:")]
    assert len(errors) == 1 and "SEED" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not (build / "report.html").exists() and not (build / "runs/tiny-vae/latents.npz").exists()


def test_make_report_on_cifar10_jpeg_subset(cifar_build):
    import json

    build = cifar_build
    dataset = json.loads((build / "data/dataset.json").read_text())
    assert dataset["classes"][:3] == ["airplane", "automobile", "bird"]
    assert (dataset["n_train"], dataset["n_test"]) == (100, 100)
    html = (build / "report.html").read_text()
    for section in ("introduction", "methodology", "results", "conclusions", "references",
                    "appendix-provenance", "results-table", "baselines-table",
                    "sample-vs-meanstd-table", "fig-lda"):
        assert f'id="{section}"' in html
    assert "Pixel baselines" in html and "figures/lda.png" in html
    metrics = json.loads((build / "runs/tiny-vae/metrics.json").read_text())
    # 100 training images: PCA-64 fits, PCA-128 is capped at 100 components.
    assert [metrics["feature_sets"][fs]["n_features"] for fs in
            ("pixels_pooled", "pixels_pca_sample", "pixels_pca_mean_std")] == [48, 64, 100]
    for per_fs in metrics["results"].values():
        for res in per_fs.values():
            assert res["accuracy_ci"][0] <= res["accuracy"] <= res["accuracy_ci"][1]
    assert (build / "report.pdf").stat().st_size > 10_000


@pytest.mark.e2e
def test_make_help_is_default_goal():
    proc = run_make()
    assert "make report" in proc.stdout and "make test" in proc.stdout


def test_make_j2_products_equal_the_serial_ones(demo_build, demo_build_j2):
    """`make -j2 report` (stages side by side, each on its share of the cores) writes the same
    files, byte for byte, as the serial `make report` of the demo_build fixture; only the
    wall-clock timings may differ."""
    build = demo_build_j2

    def products(root: Path) -> dict[str, bytes]:
        # Not compared: wall-clock timings, and the checksum file of each baseline folder,
        # which covers the timings in it; the machine's measured convolution rates (a timing
        # too: only the choice made from them must agree); report-inputs.json, which names
        # the build folder; classify.json, the stage's run record (whether it came from the cache).
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and not p.name.startswith(("timings", "probe-"))
                and not (p.suffix == ".sha256" and p.parent.name == "baselines")
                and p.name not in ("report-inputs.json", "classify.json")}

    serial, parallel = products(demo_build), products(build)
    assert sorted(parallel) == sorted(serial)
    differing = [name for name in serial if parallel[name] != serial[name]]
    assert differing == [], json_differences(demo_build, build, differing)


def json_differences(a: Path, b: Path, names: list[str]) -> str:
    """The top-level fields that differ in the JSON files among ``names``: what a failure says."""
    import json

    lines = []
    for name in (n for n in names if n.endswith(".json")):
        first, second = (json.loads((root / name).read_text()) for root in (a, b))
        lines += [f"{name}: {k}: {first.get(k)!r} != {second.get(k)!r}"
                  for k in sorted(set(first) | set(second)) if first.get(k) != second.get(k)]
    return "\n".join(lines)
