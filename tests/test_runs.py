"""The one run-file reader (analysis.runs): its defaults, its one-line errors, and that the
report and analysis.variants read through it."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

from analysis import runs
from analysis.common import VaelabError, save_npz
from analysis.runs import filled
from helpers import predictions_for

ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def current_encode() -> dict:
    """An encode.json as analysis.encode writes it now: every field present."""
    return {"resolution": 64, "downsampling": 32, "stochastic": False,
            "autoencoder_class": "AutoencoderDC", "compile_requested": "no", "precision": "bf16",
            "precision_reason": "asked for", "batch_reason": "asked for", "encoder_sha256": "e" * 64,
            "latents_sha256": "l" * 64,
            "vae_config": {"latent_channels": 32, "scaling_factor": 0.4, "shift_factor": None,
                           "force_upcast": False, "sample_size": 512},
            "model": {"name": "mit-han-lab/dc-ae", "autoencoder_class": "AutoencoderDC",
                      "revision": "f" * 40, "untrained": False, "weights_sha256": "w" * 64,
                      "has_decoder": False, "layout": "", "decoder_file": "", "decoder_sha256": "",
                      "untrained_note": ""}}


def test_read_encode_fills_what_older_files_lack(tmp_path):
    write(tmp_path / "encode.json", {"precision": "fp32", "vae_config": {"scaling_factor": 0.18},
                                     "model": {"name": "stabilityai/sd-vae-ft-ema", "untrained": False}})
    encode = runs.read_encode(tmp_path)
    assert (encode["resolution"], encode["downsampling"], encode["stochastic"]) == (32, 8, True)
    assert encode["autoencoder_class"] == encode["model"]["autoencoder_class"] == "AutoencoderKL"
    assert (encode["model"]["revision"], encode["model"]["has_decoder"]) == ("local", True)
    assert encode["vae_config"] == {"scaling_factor": 0.18, "latent_channels": 4, "shift_factor": None,
                                    "force_upcast": None, "sample_size": None}
    assert encode["latents_sha256"] is None and runs.has_decoder(encode)


def test_read_encode_keeps_every_field_of_a_current_file(tmp_path):
    write(tmp_path / "encode.json", current_encode())
    assert runs.read_encode(tmp_path) == current_encode()
    assert not runs.has_decoder(runs.read_encode(tmp_path))


def test_read_config_defaults_resolution_and_seed(tmp_path):
    write(tmp_path / "config.json", {"vae": "x"})
    assert runs.read_config(tmp_path) == {"vae": "x", "resolution": 32, "seed": 0}
    write(tmp_path / "config.json", {"vae": "x", "resolution": 64, "seed": 3})
    assert runs.read_config(tmp_path) == {"vae": "x", "resolution": 64, "seed": 3}


def test_read_variants_labels_a_row_by_its_run_name(tmp_path):
    write(tmp_path / "variants.json", [{"name": "a"}, {"name": "b", "label": "b @ 64 px",
                                                        "resolution": 64, "has_decoder": False}])
    old, new = runs.read_variants(tmp_path)
    assert (old["label"], old["resolution"], old["has_decoder"], old["revision"]) == ("a", 32, True, "local")
    assert (new["label"], new["resolution"], new["has_decoder"]) == ("b @ 64 px", 64, False)


def test_feature_sets_without_kind_are_vae_feature_sets():
    metrics = {"feature_set_order": ["sample", "pixels_pooled", "mean_std"],
               "feature_sets": {"sample": {}, "mean_std": {"kind": "vae"},
                                "pixels_pooled": {"kind": "baseline"}}}
    assert runs.sets_of_kind(metrics, "vae") == ["sample", "mean_std"]
    assert runs.sets_of_kind(metrics, "baseline") == ["pixels_pooled"]


def test_filled_leaves_its_input_alone():
    record = {"model": {"name": "m"}}
    runs.filled("encode", record)
    assert record == {"model": {"name": "m"}}


@pytest.mark.parametrize("reader,name", [(runs.read_encode, "encode.json"), (runs.read_config, "config.json"),
                                         (runs.read_metrics, "metrics.json"), (runs.read_probes, "probes.json"),
                                         (runs.read_provenance, "provenance.json"), (runs.read_weights, "weights.json"),
                                         (runs.read_figures_info, "figures/figures.json")])
def test_missing_or_corrupt_run_file_is_one_line_naming_it(tmp_path, reader, name):
    with pytest.raises(VaelabError, match=f"not found at {tmp_path / name}; run `make report`"):
        reader(tmp_path)
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text("{not json")
    with pytest.raises(VaelabError, match="is corrupt .*; delete it and rerun") as err:
        reader(tmp_path)
    assert "\n" not in str(err.value)


def test_read_predictions_gives_integer_columns(tmp_path):
    (tmp_path / "predictions.csv").write_text("y_true,svc__sample\n1,1\n0,2\n")
    assert runs.read_predictions(tmp_path) == {"y_true": [1, 0], "svc__sample": [1, 2]}


@pytest.mark.parametrize("text", ["", "y_true,svc__sample\n1,x\n", "y_true,svc__sample\n1\n"])
def test_corrupt_predictions_are_one_line(tmp_path, text):
    (tmp_path / "predictions.csv").write_text(text)
    with pytest.raises(VaelabError, match="predictions at .* are corrupt .*; delete them and rerun"):
        runs.read_predictions(tmp_path)


def test_missing_predictions_ask_for_a_finished_run(tmp_path):
    with pytest.raises(VaelabError, match="is .* a finished run directory"):
        runs.read_predictions(tmp_path)


def test_reconstructions_lacking_an_array_are_one_line(tmp_path):
    save_npz(tmp_path / "reconstructions.npz", psnr=np.zeros(2))
    assert runs.read_reconstructions(tmp_path, ("psnr",))["psnr"].shape == (2,)
    with pytest.raises(VaelabError, match="lacks ssim; delete it and rerun"):
        runs.read_reconstructions(tmp_path, ("psnr", "ssim"))


def test_figure_list_is_one_list():
    from analysis import figures

    assert figures.FIGURES is runs.FIGURES
    assert all(name.endswith(".png") for name in runs.FIGURES)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_reader_imports_only_common_and_the_standard_library():
    import sys

    project = {m for m in imported_modules(ROOT / "analysis/runs.py")
               if m.split(".")[0] not in sys.stdlib_module_names and m != "__future__"}
    assert project == {"analysis.common"}


@pytest.mark.parametrize("module", ["report/context.py", "report/compare.py", "report/diff.py",
                                    "report/provenance.py", "analysis/variants.py"])
def test_run_files_are_read_only_through_the_reader(module):
    """No other module names a run file or calls read_json / load_npz on one."""
    text = (ROOT / module).read_text(encoding="utf-8")
    assert "read_json" not in text and "load_npz" not in text
    for name in ("config.json", "encode.json", "metrics.json", "probes.json", "figures.json",
                 "provenance.json", "variants.json", "dataset.json", "predictions.csv", "weights.json"):
        assert f'"{name}"' not in text, f"{module} names {name}"



def run_file_names() -> set[str]:
    """The values of analysis.runs' "file names" block that are file names (with a suffix; the
    folder names FIGURES_DIR and SEEDS_DIR are ordinary words), FIGURES' names included."""
    source = (ROOT / "analysis/runs.py").read_text(encoding="utf-8")
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines, 1) if line.startswith("# ---- file names"))
    stop = next(i for i, line in enumerate(lines, 1) if line.startswith("# ---- defaults"))
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and start < node.lineno < stop and node.targets[0].id.isupper():
            values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            names |= {v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)}
    return {name for name in names if "." in name}


# config.json is a run file and also the file diffusers keeps in a model folder (beside
# model_index.json): these modules name the model folder's, which no run writes.
MODEL_FOLDER_FILES = {"config.json": {"analysis/vae.py", "analysis/bench.py", "analysis/demo.py"}}


def spelled_run_files(root: Path) -> list[str]:
    """Every quoted run-file name, or timings-STAGE.json, in root's analysis/ and report/
    outside analysis/runs.py, as "module: name"."""
    names = run_file_names()
    assert {"metrics.json", "latents.npz", "baselines.json", "config.json", "pca.png"} <= names
    found = []
    for path in sorted([*root.glob("analysis/*.py"), *root.glob("report/*.py")]):
        module = path.relative_to(root).as_posix()
        if module == "analysis/runs.py":
            continue
        text = path.read_text(encoding="utf-8")
        found += [f"{module}: {name}" for name in sorted(names)
                  if module not in MODEL_FOLDER_FILES.get(name, ())
                  and (f'"{name}"' in text or f"'{name}'" in text)]
        found += [f"{module}: {m}" for m in re.findall(r"""f?["']timings-[^"'*]*\.json["']""", text)]
    return found


def test_runs_file_names_are_spelled_only_in_the_reader():
    """Writers too: every stage names a run file through analysis.runs (runs.METRICS,
    runs.timings_file("encode"), ...), so a name changes in one place."""
    assert spelled_run_files(ROOT) == []


def made_up_metrics(accuracy: float) -> dict:
    """A metrics.json of one classifier on .sample(), from before feature-set kinds."""
    return {"model_order": ["svc", "random"], "feature_set_order": ["sample"],
            "feature_sets": {"sample": {"label": ".sample()", "n_features": 64}},
            "models": {"svc": {"label": "SVC"}, "random": {"label": "Random"}},
            "results": {"svc": {"sample": {"accuracy": accuracy}}, "random": {"sample": {"accuracy": 0.1}}},
            "best": {"model": "svc", "feature_set": "sample", "accuracy": accuracy}}


def write_compare(folder: Path, rows: list[dict], metrics: list[dict], scores: dict | None = None) -> None:
    """compare/variants.json as written before labels, each run's metrics.json, and the
    variant tests analysis.variants decides from them (predictions made from the accuracies)."""
    from analysis import variants

    write(folder / "compare/variants.json", rows)
    for row, m in zip(rows, metrics):
        write(folder / "runs" / row["name"] / "metrics.json", m)
    stats = [filled("variant", r) | {"label": r["name"]} for r in rows]
    write(folder / "compare/variant-tests.json",
          variants.decide(stats, metrics, [predictions_for(m) for m in metrics], scores or {"psnr": {}, "ssim": {}}, 0))


def test_compare_section_reads_a_variants_json_from_before_labels(tmp_path):
    from report.compare import build_compare

    row = {"model": "m/vae-a", "precision": "fp32", "untrained": False, "force_upcast": False,
           "scaling_factor": 0.18, "psnr_mean": 20.0, "ssim_mean": 0.6, "images": 10}
    rows = [row | {"name": "vae-a"}, row | {"name": "vae-b", "model": "m/vae-b", "ssim_mean": 0.7}]
    ten = np.linspace(19, 21, 10)
    write_compare(tmp_path, rows, [made_up_metrics(0.5), made_up_metrics(0.6)],
                  {"psnr": {0: ten, 1: ten[::-1]}, "ssim": {0: ten / 33, 1: ten / 33 + 0.1}})
    compare = build_compare([tmp_path / "runs/vae-a", tmp_path / "runs/vae-b"], tmp_path / "compare", tmp_path)
    assert compare["labels"] == ["vae-a", "vae-b"] and compare["resolutions"] is None
    assert compare["sentences"][0] == "Best accuracy per encoder: vae-b 0.6000 (SVC); vae-a 0.5000 (SVC)."
    assert "vae-b is higher than vae-a in 1 of the 1 rows they share" in compare["sentences"][1]
    assert "By PSNR vae-a has the highest mean (20.00 dB), but it is indistinguishable" in compare["sentences"][-1]
    assert "by SSIM vae-b reconstructs best" in compare["sentences"][-1]


def test_compare_section_names_encoder_only_variants(tmp_path):
    from report.compare import build_compare

    row = {"model": "m/taesd", "precision": "fp32", "untrained": False, "force_upcast": False,
           "scaling_factor": 1.0, "psnr_mean": None, "ssim_mean": None, "images": 0, "has_decoder": False}
    write_compare(tmp_path, [row | {"name": "taef2", "encoder_sha256": "ab" * 32, "latents_sha256": "cd" * 32},
                             row | {"name": "taesana"}], [made_up_metrics(0.5)] * 2)
    compare = build_compare([tmp_path / "runs/taef2", tmp_path / "runs/taesana"], tmp_path / "compare", tmp_path)
    assert compare["panel"] is None and compare["decoded"] == []
    assert compare["sentences"][-1].startswith("taef2 and taesana have no decoder (no decoder file came "
                                               "with their encoder), so they have no reconstructions")


def test_upcast_fact_leaves_encoder_only_variants_out():
    from report import facts

    row = {"precision": "fp32", "force_upcast": True, "has_decoder": True}
    variants = [row | {"model": "m/ema", "label": "ema", "psnr_mean": 25.0, "ssim_mean": 0.8},
                row | {"model": "m/sdxl-vae", "label": "sdxl", "psnr_mean": 20.0, "ssim_mean": 0.7},
                row | {"model": "m/taesd", "label": "taesd", "psnr_mean": None, "ssim_mean": None,
                       "has_decoder": False}]
    metrics = [made_up_metrics(0.5), made_up_metrics(0.45), made_up_metrics(0.4)]
    from analysis import variants as V

    stats = [v | {"name": v["label"], "latents_sha256": v["label"], "images": 3} for v in variants]
    tests = V.decide(stats, metrics, [predictions_for(m) for m in metrics],
                     {"psnr": {0: np.array([25.0, 24, 26]), 1: np.array([20.0, 19, 21])},
                      "ssim": {0: np.array([0.8, 0.7, 0.9]), 1: np.array([0.7, 0.6, 0.8])}}, 0)
    upcast = facts.upcast(variants, metrics, tests)
    assert (upcast.name, upcast.psnr_gap, upcast.any_close) == ("sdxl", -5.0, True)
    assert upcast.psnr_ci == (-5.0, -5.0) and not upcast.accuracy_significant
