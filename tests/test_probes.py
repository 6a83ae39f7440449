"""Where the class information sits: which parts of the latent each probe sees, and that the
probes find information planted in one channel and one position."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from analysis import probes


def test_probe_plan_for_each_latent_shape():
    sd = probes.probe_plan((4, 4, 4))
    assert [kind for kind, _ in sd].count("channel") == 4
    assert [kind for kind, _ in sd].count("without") == 4
    assert [where for kind, where in sd if kind == "position"] == [(i, j) for i in range(4) for j in range(4)]
    dc = probes.probe_plan((32, 1, 1))  # DC-AE at 32 px: one position, nothing to map
    assert [kind for kind, _ in dc].count("position") == 0
    assert [kind for kind, _ in dc].count("channel") == 32
    assert probes.probe_plan((1, 1, 1)) == [("all", ())]


def test_features_for_picks_channels_and_positions():
    x = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)  # (N, C, h, w)
    assert probes.channel_features(x, 1).tolist() == [[4, 5, 6, 7], [16, 17, 18, 19]]
    assert probes.position_features(x, 0, 1).tolist() == [[1, 5, 9], [13, 17, 21]]
    assert probes.without_channel(x, 1).tolist()[0] == [0, 1, 2, 3, 8, 9, 10, 11]


def planted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, 2, 2) noise, 3 classes; the class is written into channel 1 at row 0, column 1."""
    rng = np.random.default_rng(seed)
    y = np.tile(np.arange(3), n // 3)
    x = rng.normal(size=(len(y), 3, 2, 2)).astype(np.float32)
    x[:, 1, 0, 1] += 3.0 * y
    return x, y


@pytest.mark.usefixtures("one_thread")
def test_probe_finds_the_informative_channel_and_position():
    x_train, y_train = planted(300, 0)
    x_test, y_test = planted(150, 1)
    result, seconds = probes.probe(x_train, x_test, y_train, y_test, seed=0)
    channels = [e["accuracy"] for e in result["channels"]]
    assert np.argmax(channels) == 1 and channels[1] > 0.8 and max(channels[0], channels[2]) < 0.6
    cells = np.array([[cell["accuracy"] for cell in row] for row in result["positions"]])
    assert np.unravel_index(cells.argmax(), cells.shape) == (0, 1)
    drops = {e["channel"]: e for e in result["without_channel"]}
    assert drops[1]["drop"] > 0.3 and drops[1]["drop_ci"][0] > 0  # leaving it out hurts
    assert abs(drops[0]["drop"]) < 0.1
    assert result["shape"] == [3, 2, 2] and math.isfinite(seconds) and seconds > 0


def write_run(run, x_train, y_train, x_test, y_test):
    from analysis.common import save_npz

    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"seed": 0}))
    (run / "encode.json").write_text(json.dumps({"classes": ["a", "b", "c"]}))
    save_npz(run / "latents.npz", y_train=y_train, y_test=y_test, train_latent=x_train,
             test_latent=x_test)
    return run / "latents.npz"


@pytest.mark.usefixtures("one_thread")
def test_probes_main_caches_and_refits_a_damaged_entry(tmp_path, capsys):
    x_train, y_train = planted(60, 0)
    x_test, y_test = planted(30, 1)
    latents = write_run(tmp_path / "run", x_train, y_train, x_test, y_test)
    cache = tmp_path / "cache"
    probes.main([str(latents), str(tmp_path / "run/probes.json"), "--cache", str(cache)])
    first = (tmp_path / "run/probes.json").read_bytes()
    assert json.loads(first)["feature_set"] == "latent"
    other = write_run(tmp_path / "other", x_train, y_train, x_test, y_test)  # same latents
    capsys.readouterr()
    probes.main([str(other), str(tmp_path / "other/probes.json"), "--cache", str(cache)])
    assert "reusing" in capsys.readouterr().err
    assert (tmp_path / "other/probes.json").read_bytes() == first
    assert json.loads((tmp_path / "other/timings-probes.json").read_text()) == {}
    entry = next(cache.glob("probes-*.json"))
    entry.write_text('{"trunc')  # an interrupted or damaged cache entry
    probes.main([str(other), str(tmp_path / "other/probes.json"), "--cache", str(cache)])
    assert "reusing" not in capsys.readouterr().err
    assert (tmp_path / "other/probes.json").read_bytes() == first


def probe_record(whole: tuple[float, float, float], drops: list[tuple[float, float, float]]) -> dict:
    return {"model_label": "Logistic Regression", "label": ".sample()", "model": "logreg",
            "shape": [len(drops), 1, 2], "classes": [str(i) for i in range(10)],
            "all": {"accuracy": whole[0], "ci": [whole[1], whole[2]]},
            "channels": [{"channel": k, "accuracy": 0.2 + 0.01 * k, "ci": [0.15 + 0.01 * k, 0.25 + 0.01 * k]}
                         for k in range(len(drops))],
            "positions": [[{"row": 0, "column": 0, "accuracy": 0.25},
                           {"row": 0, "column": 1, "accuracy": 0.3}]],
            "without_channel": [{"channel": k, "drop": d, "drop_ci": [lo, hi]}
                                for k, (d, lo, hi) in enumerate(drops)]}


def probes_text(record: dict) -> str:
    from report import facts, sentences

    return " ".join(sentences.probes_sentences(facts.probes(record), "8"))


def test_probes_sentence_names_the_channel_that_costs_most():
    text = probes_text(probe_record((0.45, 0.44, 0.46), [(0.01, -0.01, 0.03), (0.08, 0.06, 0.1)]))
    assert "Leaving out channel 1 costs most, 8.0 points" in text
    assert "the intervals of 1 of the 2 channels lie above zero (uncorrected, descriptive)" in text
    assert "highest: channel 1" in text
    assert "30.0% (row 0, column 1)" in text


def test_probes_sentence_at_chance_claims_nothing():
    text = probes_text(probe_record((0.105, 0.09, 0.12), [(0.01, -0.01, 0.03)] * 2))
    assert "not clearly above chance" in text and "costs most" not in text
