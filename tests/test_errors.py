"""Failure behaviour: atomic writes and unreadable files (analysis.common), and the one-line
error with exit status 2 that every stage prints instead of a traceback (subprocess tests)."""

from __future__ import annotations

import errno
import os
import pathlib
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from analysis import common, config
from analysis.common import (VaelabError, atomic_path, load_npz, read_json, save_npz, write_bytes,
                             write_text)
from helpers import ROOT


def leftovers(folder: Path) -> list[str]:
    """Temporary files atomic_path may have left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ---- save_npz / load_npz ----------------------------------------------------------------------

def test_save_npz_byte_identical_for_equal_arrays(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.array([3, 1, 2], dtype=np.int64)
    save_npz(tmp_path / "one.npz", a=a, b=b)
    save_npz(tmp_path / "two.npz", b=b.copy(), a=a.copy())  # other keyword order
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    b[0] = 4
    save_npz(tmp_path / "three.npz", a=a, b=b)
    assert (tmp_path / "three.npz").read_bytes() != (tmp_path / "one.npz").read_bytes()


def test_save_npz_has_no_wall_clock_timestamp(tmp_path):
    save_npz(tmp_path / "x.npz", a=np.zeros(2))
    with zipfile.ZipFile(tmp_path / "x.npz") as zf:
        assert [i.date_time for i in zf.infolist()] == [(1980, 1, 1, 0, 0, 0)]


def test_save_npz_round_trips_through_load_npz(tmp_path):
    a = np.arange(6, dtype=np.uint8).reshape(2, 3)
    save_npz(tmp_path / "x.npz", a=a, y=np.array([1.5]))
    loaded = load_npz(tmp_path / "x.npz", "thing", ("a", "y"))
    np.testing.assert_array_equal(loaded["a"], a)
    assert loaded["a"].dtype == np.uint8 and loaded["y"].tolist() == [1.5]


def test_load_npz_truncated_file(tmp_path):
    save_npz(tmp_path / "x.npz", a=np.arange(1000))
    data = (tmp_path / "x.npz").read_bytes()
    (tmp_path / "x.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(VaelabError, match=r"latents at .*x\.npz is unreadable.*delete it and rerun"):
        load_npz(tmp_path / "x.npz", "latents")


def test_load_npz_flipped_byte_in_data(tmp_path):
    save_npz(tmp_path / "x.npz", a=np.arange(1000))
    data = bytearray((tmp_path / "x.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the array bytes: only the zip CRC can tell
    (tmp_path / "x.npz").write_bytes(bytes(data))
    with pytest.raises(VaelabError, match="unreadable"):
        load_npz(tmp_path / "x.npz", "latents")


def test_load_npz_missing_file_and_missing_key(tmp_path):
    with pytest.raises(VaelabError, match="not found"):
        load_npz(tmp_path / "nope.npz", "dataset")
    save_npz(tmp_path / "x.npz", a=np.zeros(1))
    with pytest.raises(VaelabError, match="lacks b, c"):
        load_npz(tmp_path / "x.npz", "dataset", ("a", "b", "c"))


def test_read_json_corrupt_file(tmp_path):
    (tmp_path / "x.json").write_text('{"a": ')
    with pytest.raises(VaelabError, match="corrupt"):
        read_json(tmp_path / "x.json", "metrics")


# ---- atomic writes ------------------------------------------------------------------------------

def test_atomic_path_exception_leaves_no_file(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_atomic_path_exception_keeps_old_content(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("new but unfinished")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_atomic_path_success_replaces_with_usual_permissions(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    old_umask = os.umask(0o022)
    try:
        write_text(target, "new")
    finally:
        os.umask(old_umask)
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert leftovers(tmp_path) == []


def test_write_disk_full_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    target.write_text("old content")
    real_write_bytes = pathlib.Path.write_bytes

    def disk_full(self, data):
        real_write_bytes(self, data[:3])  # part of it made it to disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(pathlib.Path, "write_bytes", disk_full)
    with pytest.raises(OSError) as err:
        write_bytes(target, b"new content that does not fit")
    assert err.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert target.read_text() == "old content"
    assert leftovers(tmp_path) == []


def test_save_npz_disk_full_at_fsync_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "latents.npz"
    save_npz(target, a=np.zeros(3))
    before = target.read_bytes()

    def fsync_fails(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(common.os, "fsync", fsync_fails)
    with pytest.raises(OSError):
        save_npz(target, a=np.ones(3))
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert leftovers(tmp_path) == []


# ---- one-line errors from the command line ------------------------------------------------------

def run_stage(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "VERBOSE"}
    env.update(HF_HUB_OFFLINE="1", QUIET="1")
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("vaelab: error:")
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_config_cli_bad_vae_one_line_error(tmp_path):
    out = tmp_path / "X" / "config.json"
    proc = run_stage("analysis.config", "run", "--vae", "a;b", "--out", str(out))
    line = assert_one_line_error(proc)
    assert "VAE='a;b'" in line
    assert not out.exists() and not out.parent.exists()


def test_config_cli_seed_out_of_range_one_line_error(tmp_path):
    out = tmp_path / "X" / "config.json"
    proc = run_stage("analysis.config", "run", "--vae", "owner/model", "--seed",
                     "99999999999999999999999", "--out", str(out))
    line = assert_one_line_error(proc)
    assert "SEED=99999999999999999999999 must be from 0 to 2147483647" in line
    assert not out.exists() and not out.parent.exists()


def test_data_cli_missing_folder_one_line_error(tmp_path):
    cfg = tmp_path / "data" / "config.json"
    config.main(["data", "--dataset", f"imagefolder:{tmp_path / 'missing'}", "--limit", "",
                 "--data-root", str(tmp_path), "--out", str(cfg)])
    out = tmp_path / "data" / "dataset.npz"
    proc = run_stage("analysis.data", str(cfg), str(out))
    line = assert_one_line_error(proc)
    assert str(tmp_path / "missing") in line and "does not exist" in line
    assert not out.exists() and not out.with_name("dataset.json").exists()


def test_encode_cli_not_a_diffusers_model_one_line_error(tmp_path, small_dataset):
    not_a_model = tmp_path / "my-model"
    not_a_model.mkdir()
    (not_a_model / "model.ckpt").write_bytes(b"\x00" * 16)
    cfg = tmp_path / "run" / "config.json"
    config.main(["run", "--vae", str(not_a_model), "--device", "cpu", "--precision", "fp32",
                 "--out", str(cfg)])
    out = tmp_path / "run" / "latents.npz"
    proc = run_stage("analysis.encode", str(cfg), str(small_dataset), str(out),
                     "--cache", str(tmp_path / "cache"))
    line = assert_one_line_error(proc)
    assert str(not_a_model) in line and "no config.json" in line
    assert not out.exists()
    assert not (tmp_path / "cache").exists()
