"""The one cache recipe (analysis.cache), and each stage's damaged entry computed again.

Run:
    .venv/bin/python -m pytest -p no:xdist -o addopts= -q tests/test_cache.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis import baselines, cache, classify, encode, probes
from analysis.common import load_npz, save_npz, sha256_file, sha256_json, write_json, write_text

pytestmark = pytest.mark.usefixtures("one_thread")


def flip(path: Path, at: int | None = None) -> None:
    """Change one byte of ``path`` (a digit for a digit, so a JSON file still parses)."""
    blob = bytearray(path.read_bytes())
    if at is None:
        at = next(i for i in range(len(blob) // 2, len(blob)) if chr(blob[i]).isdigit())
    blob[at] = ord("1") if blob[at] != ord("1") else ord("2")
    path.write_bytes(bytes(blob))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


# ---- the module -----------------------------------------------------------------------------

def test_cache_key_is_the_inputs_digest_and_changes_with_the_code():
    fields = {"seed": 0, "dataset_sha256": "ab"}
    # Without code it is the encode stage's key as it always was: users' caches stay valid.
    assert cache.key(fields) == sha256_json(fields)[:24]
    assert cache.key(fields, "code-1") == cache.key(dict(fields), "code-1")
    assert cache.key(fields, "code-1") != cache.key(fields, "code-2")
    assert cache.key(fields | {"seed": 1}, "code-1") != cache.key(fields, "code-1")


def test_cache_sealed_file_is_reusable_and_a_flipped_byte_is_not(tmp_path, capsys):
    entry = tmp_path / "latents-abc.npz"
    save_npz(entry, x=np.arange(10))
    assert not cache.reusable(entry)  # not sealed yet: never finished
    cache.seal(entry)
    assert (tmp_path / "latents-abc.sha256").read_text() == sha256_file(entry) + "\n"
    capsys.readouterr()
    assert cache.reusable(entry)
    assert capsys.readouterr().err == ""
    flip(entry, at=entry.stat().st_size - 30)
    assert not cache.reusable(entry)
    assert "fails its checksum" in capsys.readouterr().err


def test_cache_folder_entry_checks_every_file(tmp_path, capsys):
    entry = tmp_path / "results-abc"
    write_json(entry / "metrics.json", {"accuracy": 0.5})
    write_text(entry / "metrics.csv", "model,accuracy\nsvc,0.5000\n")
    cache.seal(entry)
    assert cache.reusable(entry)
    write_text(entry / "stray.txt", "left by someone")  # files the checksum does not name
    assert cache.reusable(entry)
    truncate(entry / "metrics.csv")
    assert not cache.reusable(entry)
    (entry / "metrics.csv").unlink()
    assert not cache.reusable(entry)
    assert capsys.readouterr().err.count("vaelab: notice: cache entry") == 2


def test_cache_missing_entry_is_not_reusable_and_says_nothing(tmp_path, capsys):
    assert not cache.reusable(tmp_path / "probes-abc.json")
    assert not cache.reusable(None)
    assert capsys.readouterr().err == ""


# ---- every stage refits a damaged entry -------------------------------------------------------

def tiny_run(root: Path) -> Path:
    """run/{latents.npz,config.json,encode.json} (a deterministic latent, 3 classes) and
    data/dataset.npz with the same labels; the run's latents.npz."""
    rng = np.random.default_rng(0)
    arrays, images = {}, {}
    for split, per_class in (("train", 8), ("test", 4)):
        y = np.repeat(np.arange(3), per_class)
        x = rng.normal(size=(len(y), 2, 2, 2)).astype(np.float32)
        x[:, 0, 0, 0] += 4.0 * y
        arrays |= {f"{split}_latent": x, f"y_{split}": y}
        base = (40 + 60 * y)[:, None, None, None]
        images |= {f"x_{split}": (base + rng.integers(0, 50, (len(y), 32, 32, 3))).astype(np.uint8),
                   f"y_{split}": y}
    run = root / "run"
    save_npz(run / "latents.npz", **arrays)
    write_json(run / "config.json", {"seed": 0, "svc": "libsvm"})
    write_json(run / "encode.json", {"classes": ["a", "b", "c"]})
    save_npz(root / "data" / "dataset.npz", **images)
    return run / "latents.npz"


def test_baselines_and_classify_refit_damaged_entries(tmp_path, capsys):
    latents = tiny_run(tmp_path)
    run, data, pixel_root = latents.parent, tmp_path / "data/dataset.npz", tmp_path / "baselines"
    stage_args = [str(data), str(pixel_root), str(run / "baselines.json"), "--latents", str(latents)]
    classify_args = [str(latents), str(data), str(run / "metrics.json"),
                     "--baselines", str(run / "baselines.json"), "--cache", str(tmp_path / "cache")]
    baselines.main(stage_args)
    classify.main(classify_args)
    first = (run / "metrics.json").read_bytes()
    folders = json.loads((run / "baselines.json").read_text())["baselines"]

    # A digit flipped in a baseline's scores: the folder is fitted again, the others reused.
    flip(pixel_root / folders["pixels_pooled"] / "baseline.json")
    capsys.readouterr()
    baselines.main(stage_args)
    err = capsys.readouterr().err
    assert "vaelab: notice: cache entry" in err and f"fitted {folders['pixels_pooled']} ->" in err
    assert cache.reusable(pixel_root / folders["pixels_pooled"])

    # A digit flipped in the cached metrics.json: the results are fitted again, not copied.
    entry = tmp_path / "cache" / f"results-{json.loads((run / 'classify.json').read_text())['results_key']}"
    flip(entry / "metrics.json")
    classify.main(classify_args)
    assert "vaelab: notice: cache entry" in capsys.readouterr().err
    assert json.loads((run / "classify.json").read_text())["from_cache"] is False
    assert (run / "metrics.json").read_bytes() == first
    truncate(entry / "predictions.csv")
    classify.main(classify_args)
    assert json.loads((run / "classify.json").read_text())["from_cache"] is False
    classify.main(classify_args)  # and sealed again: the next run reuses it
    assert json.loads((run / "classify.json").read_text())["from_cache"] is True
    assert (run / "metrics.json").read_bytes() == first


def test_baselines_interrupted_in_their_curves_keep_the_fits(tmp_path, monkeypatch, capsys):
    latents = tiny_run(tmp_path)
    run, data, pixel_root = latents.parent, tmp_path / "data/dataset.npz", tmp_path / "baselines"
    stage_args = [str(data), str(pixel_root), str(run / "baselines.json"), "--latents", str(latents)]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    real_curves = baselines.learning_curves
    monkeypatch.setattr(baselines, "learning_curves", interrupted)
    with pytest.raises(KeyboardInterrupt):
        baselines.main(stage_args)
    folders = sorted(p for p in pixel_root.iterdir() if p.is_dir())
    assert folders and all(cache.reusable(folder) for folder in folders)  # the fits are sealed
    pca = [folder for folder in folders if folder.name.startswith("pca-")]
    assert pca and not any(cache.reusable(baselines.curves_entry(folder)) for folder in pca)
    fitted = {folder: (folder / "baseline.json").read_bytes() for folder in folders}

    monkeypatch.setattr(baselines, "learning_curves", real_curves)
    capsys.readouterr()
    baselines.main(stage_args)
    err = capsys.readouterr().err
    assert "baselines: fitting" not in err and "baselines: learning curves of" in err
    assert {folder: (folder / "baseline.json").read_bytes() for folder in folders} == fitted
    for folder in pca:
        curves = json.loads(baselines.curves_entry(folder).read_text())["curves"]
        assert cache.reusable(baselines.curves_entry(folder)) and curves["logreg"][-1]["n_train"] == 24
    # A damaged curves entry is drawn again; the fits stay.
    flip(baselines.curves_entry(pca[0]))
    baselines.main(stage_args)
    err = capsys.readouterr().err
    assert "vaelab: notice: cache entry" in err and "baselines: fitting" not in err
    assert f"learning curves of {pca[0].name}\n" in err


def test_probes_refit_a_flipped_entry_that_still_parses(tmp_path, capsys):
    latents = tiny_run(tmp_path)
    out = latents.parent / "probes.json"
    args = [str(latents), str(out), "--cache", str(tmp_path / "cache")]
    probes.main(args)
    first = out.read_bytes()
    entry = next((tmp_path / "cache").glob("probes-*.json"))
    flip(entry)
    json.loads(entry.read_text())  # still valid JSON: only the checksum can tell
    capsys.readouterr()
    probes.main(args)
    err = capsys.readouterr().err
    assert "vaelab: notice: cache entry" in err and "reusing" not in err
    assert out.read_bytes() == first and entry.read_bytes() == first


def test_encode_refits_damaged_latents_and_reconstructions(tiny_vae, small_dataset, tmp_path, capsys):
    from analysis import config

    cfg = tmp_path / "run" / "config.json"
    config.main(["run", "--vae", str(tiny_vae), "--seed", "0", "--device", "cpu", "--precision",
                 "fp32", "--batch-size", "8", "--out", str(cfg)])
    out, cache_dir = tmp_path / "run" / "latents.npz", tmp_path / "cache"
    args = [str(cfg), str(small_dataset), str(out), "--cache", str(cache_dir)]
    encode.main(args)
    first = load_npz(out, "latents")
    info = json.loads((tmp_path / "run" / "encode.json").read_text())
    truncate(cache_dir / f"latents-{info['cache_key']}.npz")
    flip(cache_dir / f"recon-{info['recon_cache_key']}.npz", at=200)
    capsys.readouterr()
    encode.main(args)
    assert capsys.readouterr().err.count("fails its checksum") == 2
    timings = json.loads((tmp_path / "run" / "timings-encode.json").read_text())
    assert timings["from_cache"] is False and timings["reconstructions_from_cache"] is False
    again = load_npz(out, "latents")
    assert sorted(again) == sorted(first)
    for name in first:
        np.testing.assert_array_equal(again[name], first[name])
    assert json.loads((tmp_path / "run" / "encode.json").read_text())["cache_key"] == info["cache_key"]
