"""Device, precision and batch choice (analysis.devices) with every hardware probe patched:
CUDA, Apple MPS and the CPU's measured convolution rates, so the whole table runs on any machine."""

from __future__ import annotations

import platform

import pytest
import torch

from analysis import devices as devices_mod
from analysis.common import VaelabError
from analysis.devices import (Batching, batch_decision, bf16_decision, choose_batch, choose_device,
                              choose_precision, cpu_description, device_name, measured_once)


@pytest.fixture
def machine(monkeypatch):
    """Call with the hardware to pretend: machine(cuda=..., cuda_bf16=..., mps=..., ...)."""

    def pretend(cuda=False, cuda_bf16=False, mps=False, macos14=False, cpu_rates=(200.0, 100.0)):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        # Native bf16 only: with including_emulation=True (the default) old GPUs say yes too.
        monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                            lambda including_emulation=True: cuda and (cuda_bf16 or including_emulation))
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        monkeypatch.setattr(torch.backends.mps, "is_macos_or_newer",
                            lambda major, minor: macos14 and (major, minor) <= (14, 0))
        # GFLOP/s of the reference convolution, float32 then bfloat16 (emulated by default).
        monkeypatch.setattr(devices_mod, "conv_rates", lambda device="cpu": dict(zip(("fp32", "bf16"), cpu_rates)))

    return pretend


# ---- choose_device --------------------------------------------------------------------------------

def test_choose_device_auto_prefers_cuda_over_mps(machine):
    machine(cuda=True, mps=True)
    assert choose_device("auto") == "cuda"


def test_choose_device_auto_picks_mps_without_cuda(machine):
    machine(mps=True)
    assert choose_device("auto") == "mps"


def test_choose_device_auto_falls_back_to_cpu(machine):
    machine()
    assert choose_device("auto") == "cpu"


def test_choose_device_auto_treats_failing_mps_probe_as_absent(machine, monkeypatch):
    machine()

    def broken():
        raise RuntimeError("MPS probe failed")

    monkeypatch.setattr(torch.backends.mps, "is_available", broken)
    assert choose_device("auto") == "cpu"


@pytest.mark.parametrize("requested", ["cuda", "cuda:1"])
def test_choose_device_cuda_without_gpu_refused(machine, requested):
    machine(mps=True)
    with pytest.raises(VaelabError, match=f"DEVICE={requested} but no CUDA GPU.*DEVICE=cpu or auto"):
        choose_device(requested)


def test_choose_device_mps_without_mps_refused(machine):
    machine(cuda=True)
    with pytest.raises(VaelabError, match="DEVICE=mps but Apple's MPS backend is not available"):
        choose_device("mps")


@pytest.mark.parametrize("requested", ["cpu", "cuda:1", "mps"])
def test_choose_device_explicit_device_kept_when_present(machine, requested):
    machine(cuda=True, mps=True)
    assert choose_device(requested) == requested


# ---- choose_precision: PRECISION=auto ---------------------------------------------------------------

AUTO_TABLE = [
    # device, hardware, force_upcast, expected
    ("cuda", dict(cuda=True, cuda_bf16=True), True, "bf16"),
    ("cuda", dict(cuda=True, cuda_bf16=True), False, "bf16"),
    ("cuda", dict(cuda=True), False, "fp16"),
    ("cuda", dict(cuda=True), True, "fp32"),
    ("cuda:1", dict(cuda=True), False, "fp16"),
    ("mps", dict(mps=True, macos14=True), True, "bf16"),
    ("mps", dict(mps=True, macos14=True), False, "bf16"),
    ("mps", dict(mps=True), False, "fp16"),
    ("mps", dict(mps=True), True, "fp32"),
    # measured (float32, bfloat16) GFLOP/s: a Zen 5, an AMX Xeon (issue 33), an Emerald Rapids
    # guest without AMX, just under and at the 1.1x threshold; emulated (the default)
    ("cpu", dict(cpu_rates=(355.0, 664.0)), True, "bf16"),
    ("cpu", dict(cpu_rates=(900.0, 3800.0)), False, "bf16"),
    ("cpu", dict(cpu_rates=(229.0, 148.0)), True, "fp32"),
    ("cpu", dict(cpu_rates=(200.0, 219.0)), True, "fp32"),
    ("cpu", dict(cpu_rates=(200.0, 220.0)), True, "bf16"),
    ("cpu", dict(), True, "fp32"),
    ("cpu", dict(), False, "fp32"),
]


@pytest.mark.parametrize("device, hardware, force_upcast, expected", AUTO_TABLE)
def test_choose_precision_auto_follows_device_table(machine, device, hardware, force_upcast, expected):
    machine(**hardware)
    assert choose_precision("auto", device, force_upcast=force_upcast, name="x")[0] == expected


def test_choose_precision_auto_ignores_emulated_cuda_bf16(machine):
    machine(cuda=True, cuda_bf16=False)  # is_bf16_supported() alone would say True (emulated)
    assert torch.cuda.is_bf16_supported()
    assert choose_precision("auto", "cuda", force_upcast=True, name="x")[0] == "fp32"


def test_choose_precision_auto_mps_before_torch_2_3_has_no_bf16(machine, monkeypatch):
    machine(mps=True, macos14=True)
    monkeypatch.setattr(torch, "__version__", "2.2.2")
    assert choose_precision("auto", "mps", force_upcast=True, name="x")[0] == "fp32"
    assert choose_precision("auto", "mps", force_upcast=False, name="x")[0] == "fp16"


def test_choose_precision_auto_mps_without_macos_probe_reads_mac_ver(machine, monkeypatch):
    machine(mps=True)
    monkeypatch.delattr(torch.backends.mps, "is_macos_or_newer")
    monkeypatch.delattr(torch._C, "_mps_is_on_macos_or_newer", raising=False)
    monkeypatch.setattr(platform, "mac_ver", lambda: ("14.5", ("", "", ""), "arm64"))
    assert choose_precision("auto", "mps", force_upcast=True, name="x")[0] == "bf16"
    monkeypatch.setattr(platform, "mac_ver", lambda: ("13.6", ("", "", ""), "arm64"))
    assert choose_precision("auto", "mps", force_upcast=True, name="x")[0] == "fp32"


# ---- choose_precision: explicit values --------------------------------------------------------------

@pytest.mark.parametrize("device", ["cuda", "mps", "cpu"])
def test_choose_precision_fp16_with_force_upcast_refused_on_every_device(machine, device):
    machine(cuda=True, mps=True)
    with pytest.raises(VaelabError, match="some/vae sets force_upcast.*PRECISION=bf16 or PRECISION=fp32"):
        choose_precision("fp16", device, force_upcast=True, name="some/vae")


@pytest.mark.parametrize("requested", ["fp32", "bf16", "fp16"])
def test_choose_precision_explicit_value_kept_on_mps(machine, requested):
    machine(mps=True)
    assert choose_precision(requested, "mps", force_upcast=False, name="x")[0] == requested


# ---- the reason, in the same call ------------------------------------------------------------------

REASON_WORDS = [
    ("cuda", dict(cuda=True, cuda_bf16=True), True, ["GPU computes bfloat16 natively"]),
    ("cuda", dict(cuda=True), False, ["no native bfloat16", "does not set force_upcast"]),
    ("cuda", dict(cuda=True), True, ["no native bfloat16", "sets force_upcast"]),
    ("mps", dict(mps=True, macos14=True), True, ["MPS computes bfloat16", "macOS 14"]),
    ("mps", dict(mps=True), True, ["MPS has no bfloat16", "sets force_upcast"]),
    ("cpu", dict(cpu_rates=(355.0, 664.0)), True, ["timed one bfloat16 and one float32 convolution",
                                                    "at least 1.1x as fast", "so bfloat16"]),
    ("cpu", dict(cpu_rates=(229.0, 148.0)), True, ["less than 1.1x as fast", "so float32"]),
]


@pytest.mark.parametrize("device, hardware, force_upcast, words", REASON_WORDS)
def test_choose_precision_auto_says_why(machine, device, hardware, force_upcast, words):
    machine(**hardware)
    _, reason = choose_precision("auto", device, force_upcast=force_upcast, name="x")
    for word in words:
        assert word in reason
    assert "\n" not in reason and reason.endswith(".")
    assert "GFLOP" not in reason  # measured rates differ between identical runs: not in the report


def test_choose_precision_explicit_names_the_setting(machine):
    machine()
    assert "PRECISION=fp32" in choose_precision("fp32", "cpu", True, "x")[1]


def test_bf16_decision_needs_the_threshold_speedup():
    assert bf16_decision({"fp32": 100.0, "bf16": 109.0})[0] == "fp32"
    assert bf16_decision({"fp32": 100.0, "bf16": 110.0})[0] == "bf16"
    assert bf16_decision({"fp32": 0.0, "bf16": 50.0})[0] == "fp32"  # a failed float32 timing


def test_conv_rates_measure_both_precisions_on_this_cpu():
    rates = devices_mod.conv_rates()
    assert set(rates) == {"fp32", "bf16"}
    assert all(1 < rate < 1e6 for rate in rates.values())  # GFLOP/s: a 2-core CPU does 10-10,000


# ---- measured once --------------------------------------------------------------------------------

def test_measured_once_keeps_the_first_measurement(tmp_path):
    calls = []

    def measure():
        calls.append(1)
        return {"fp32": 100.0 + len(calls)}

    first = measured_once(tmp_path, "conv", {"a": 1}, measure)
    again = measured_once(tmp_path, "conv", {"a": 1}, measure)
    other = measured_once(tmp_path, "conv", {"a": 2}, measure)  # another key: measured anew
    assert first == again == {"fp32": 101.0} and other == {"fp32": 102.0} and len(calls) == 2
    assert measured_once(None, "conv", {"a": 1}, measure) == {"fp32": 103.0}  # no cache: every time


def test_measured_once_measures_a_damaged_file_again(tmp_path):
    measured_once(tmp_path, "conv", {}, lambda: {"x": 1.0})
    (probe,) = tmp_path.glob("probe-conv-*.json")
    probe.write_text("{not json")
    assert measured_once(tmp_path, "conv", {}, lambda: {"x": 2.0}) == {"x": 2.0}


# ---- BATCH=auto -------------------------------------------------------------------------------------

@pytest.mark.parametrize("rates, expected", [
    ({"16": 80.0, "32": 82.0, "64": 77.0}, "16"),   # 32 within noise: the default stays
    ({"16": 80.0, "32": 84.0, "64": 77.0}, "32"),   # 5% faster: taken
    ({"16": 60.0, "32": 70.0, "64": 90.0}, "64"),
    ({"16": 90.0, "32": 70.0, "64": 60.0}, "16"),
    ({"16": 60.0, "64": 62.0, "128/16": 75.0}, "128/16"),  # the low-resolution blocks on 128
    ({"64": 900.0, "256": 2400.0, "1024": 2300.0}, "256"),  # a GPU's sizes, without 16
])
def test_batch_decision_takes_the_fastest_beyond_noise(rates, expected):
    batching, reason = batch_decision(rates)
    assert batching.label == expected
    assert f"took {batching.words}" in reason or f"kept {batching.words}" in reason
    assert "images/s" not in reason  # measured rates stay in encode.json


def test_batch_decision_names_the_staged_candidates():
    _, reason = batch_decision({"16": 1.0, "32": 1.0, "64/16": 2.0, "128/16": 1.0})
    assert "batches 16 and 32, and 64 and 128 with its high-resolution blocks 16 images at a time," in reason
    assert "took 64 (its high-resolution blocks 16 images at a time)" in reason


def test_batching_label_round_trips():
    assert Batching.parse("128/16") == Batching(128, 16) and Batching(128, 16).label == "128/16"
    assert Batching.parse("32") == Batching(32) and Batching(32).words == "32"


def test_choose_batch_probes_only_large_auto_runs(tmp_path):
    def timings(candidates):
        raise AssertionError("probed")

    assert choose_batch(8, "cpu", True, timings, tmp_path, {})[0] == Batching(8)
    assert choose_batch(None, "cpu", False, timings, tmp_path, {})[0] == Batching(16)
    seen = []

    def fast_128(candidates):
        seen.append([c.label for c in candidates])
        return {c.label: float(c.size + (c.micro or 0)) for c in candidates}

    batching, _, probe = choose_batch(None, "cpu", True, fast_128, tmp_path, {"arch": 1})
    assert batching == Batching(128, 16) and probe["128/16"] == 144.0
    assert seen == [["16", "32", "64", "64/16", "128/16"]]
    # kept, not re-timed
    assert choose_batch(None, "cpu", True, timings, tmp_path, {"arch": 1})[0] == Batching(128, 16)


# ---- cpu_bf16 --------------------------------------------------------------------------------------

@pytest.mark.parametrize("amx, avx512_bf16, expected", [
    (True, True, "amx"), (False, True, "avx512_bf16"), (False, False, ""),
])
def test_cpu_bf16_names_the_units(monkeypatch, amx, avx512_bf16, expected):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    assert devices_mod.cpu_bf16() == expected


def test_cpu_bf16_treats_a_failing_probe_as_absent(monkeypatch):
    def broken():
        raise RuntimeError("cpuinfo probe failed")

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", broken)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert devices_mod.cpu_bf16() == "avx512_bf16"


# ---- device_name -----------------------------------------------------------------------------------

def test_device_name_mps_names_apple_macos_and_machine(monkeypatch):
    monkeypatch.setattr(platform, "mac_ver", lambda: ("14.5", ("", "", ""), "arm64"))
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    monkeypatch.setattr(torch.backends.mps, "get_name", lambda: "Apple M2 Pro", raising=False)
    assert device_name("mps") == "Apple M2 Pro MPS (macOS 14.5, arm64)"


def test_device_name_mps_without_chip_name_still_says_apple(monkeypatch):
    monkeypatch.setattr(platform, "mac_ver", lambda: ("14.5", ("", "", ""), "arm64"))
    monkeypatch.setattr(platform, "machine", lambda: "arm64")

    def no_metal():
        raise RuntimeError("no Metal device")

    monkeypatch.setattr(torch.backends.mps, "get_name", no_metal, raising=False)
    assert device_name("mps") == "Apple MPS (macOS 14.5, arm64)"


# Two processors of a KVM guest that calls itself only "AMD EPYC" (flags cut short).
ZEN5_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_bf16

processor\t: 1
cpu family\t: 99
model name\t: Another CPU
"""


def test_cpu_description_names_family_model_and_vector_units():
    assert cpu_description(ZEN5_CPUINFO) == "AMD EPYC (Zen 5: family 26, model 2; AVX-512, bf16)"
    zen3 = ZEN5_CPUINFO.replace("26", "25").replace("model\t\t: 2", "model\t\t: 1").replace(
        " avx512f avx512bw avx512_bf16", "")
    assert cpu_description(zen3) == "AMD EPYC (Zen 3: family 25, model 1; AVX2)"
    unknown = zen3.replace("model\t\t: 1", "model\t\t: 33")  # a desktop Zen 3: named by numbers only
    assert cpu_description(unknown) == "AMD EPYC (family 25, model 33; AVX2)"
    spr = ("cpu family\t: 6\nmodel\t\t: 143\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
           "flags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    assert cpu_description(spr) == "Intel(R) Xeon(R) Platinum 8480+ (Sapphire Rapids: family 6, model 143; AVX-512, bf16, AMX)"


def test_cpu_description_without_model_name_is_none_and_bare_name_is_kept():
    assert cpu_description("processor\t: 0\nflags\t\t: avx2\n") is None
    assert cpu_description("model name\t: Some ARM core\n") == "Some ARM core"
