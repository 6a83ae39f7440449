"""SEEDS and TUNE: their checks, the spread over seeds and the verdicts that hold for every seed
(analysis.seeds, analysis.verdicts), the tuned classifiers (analysis.tune), what the report and
`make diff` say of them, and one end-to-end build of each on a copy of the demo build."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from analysis import config, stats, verdicts
from analysis.common import VaelabError
from helpers import comp, copy_build, kl_metrics, make_vars, run_make, steps_run


# ---- SEEDS and TUNE as typed -----------------------------------------------------------------

def test_parse_seeds_keeps_distinct_seeds_in_order():
    assert config.parse_seeds(" 3 0  2147483647 ") == (3, 0, 2147483647)
    assert config.parse_seeds("0 1 2", seed="0") == (0, 1, 2)


@pytest.mark.parametrize("text, message", [
    ("", "SEEDS='' names no seed"),
    ("   ", "SEEDS='   ' names no seed"),
    ("0 1 0", "SEEDS='0 1 0' names seed 0 twice"),
    ("0 00", "SEEDS='0 00' names seed 0 twice"),
    ("0 x", "SEEDS='0 x': 'x' is not a whole number"),
    ("1.5", "SEEDS='1.5': '1.5' is not a whole number"),
    ("0,1,2", "SEEDS='0,1,2': '0,1,2' is not a whole number"),
    ("0 -1", "SEEDS='0 -1': -1 must be from 0 to 2147483647"),
    ("2147483648", "2147483648 must be from 0 to 2147483647"),
])
def test_parse_seeds_rejects_with_one_line(text, message):
    with pytest.raises(VaelabError, match=re.escape(message)) as err:
        config.parse_seeds(text)
    assert "\n" not in str(err.value)


def test_parse_seeds_first_seed_must_be_seed():
    with pytest.raises(VaelabError, match=re.escape("SEED=3 and SEEDS='0 1' disagree")):
        config.parse_seeds("0 1", seed="3")


def test_parse_tune_one_all_none_or_named_models():
    assert config.parse_tune("") == config.parse_tune("0") == ()
    assert config.parse_tune("1") == config.TUNABLE_MODELS
    assert config.parse_tune("LightGBM svc") == ("svc", "lightgbm")  # in the tables' order


@pytest.mark.parametrize("text, message", [
    ("svm", "TUNE='svm': unknown model 'svm'; nearest: svc"),
    ("svc xyz", "unknown model 'xyz'; use TUNE=1 or some of"),
    ("random", "the random predictor has no hyperparameters"),
    ("svc svc", "TUNE='svc svc' names svc twice"),
    ("1 svc", "TUNE='1 svc': 1 stands alone"),
])
def test_parse_tune_rejects_with_one_line(text, message):
    with pytest.raises(VaelabError, match=re.escape(message)):
        config.parse_tune(text)


def test_tunable_models_are_the_real_classifiers_with_a_grid():
    from analysis.autoencoders import is_real_model
    from analysis.models import MODELS
    from analysis.tune import DEFAULTS, SPACES

    assert config.TUNABLE_MODELS == tuple(m.key for m in MODELS if is_real_model(m.key))
    assert tuple(SPACES) == tuple(DEFAULTS) == config.TUNABLE_MODELS
    for key, space in SPACES.items():  # every grid holds the default settings
        assert set(space) == set(DEFAULTS[key]) and all(DEFAULTS[key][p] in v for p, v in space.items())


def test_make_plan_names_the_seeds_and_models_only_when_set():
    plain = config.make_plan("a/b", "a/b", "32")
    assert "SEEDS" not in plain and "TUNE" not in plain
    assert config.make_plan("a/b", "a/b", "32", seeds="0") == plain + "SEEDS_LIST := 0\n"
    text = config.make_plan("a/b", "a/b", "32", seeds="4 1 2", seed="4", tune="1")
    assert "SEEDS_LIST := 4 1 2\nEXTRA_SEEDS := 1 2\n" in text
    assert f"TUNE_MODELS := {' '.join(config.TUNABLE_MODELS)}\n" in text


def test_config_main_plan_writes_nothing_on_bad_seeds_or_tune(tmp_path):
    for extra in (["--seeds", "0 0"], ["--tune", "svm"], ["--seeds", "1", "--seed", "0"]):
        out = tmp_path / "b" / "plan.mk"
        with pytest.raises(VaelabError):
            config.main(["plan", "--vaes", "a/b", "--vae", "a/b", *extra, "--out", str(out)])
        assert not out.exists()


def test_seeds_and_tune_stamps_round_trip(tmp_path):
    config.main(["seeds", "--seeds", "2 5", "--out", str(tmp_path / "s.json")])
    config.main(["tune", "--models", "knn svc", "--out", str(tmp_path / "t.json")])
    assert config.load_seeds_config(tmp_path / "s.json") == config.SeedsConfig(seeds=(2, 5))
    assert config.load_tune_config(tmp_path / "t.json") == config.TuneConfig(models=("knn", "svc"))


# ---- the spread over seeds and the verdicts that hold for every seed -------------------------

def test_spread_of_made_up_accuracies():
    assert stats.spread([0.5, 0.6, 0.7]) == {"n": 3, "mean": 0.6, "sd": 0.1, "min": 0.5, "max": 0.7}
    assert stats.spread([0.42]) == {"n": 1, "mean": 0.42, "sd": 0.0, "min": 0.42, "max": 0.42}
    assert stats.spread([0.3, 0.3])["sd"] == 0.0
    with pytest.raises(ValueError):
        stats.spread([])


@pytest.mark.parametrize("delta, p, expected", [
    (0.05, 0.001, "higher"), (-0.05, 0.001, "lower"), (0.05, 0.4, "unclear"), (0.0, 0.0, "unclear")])
def test_verdict_of_a_judged_comparison(delta, p, expected):
    judged = kl_metrics({"svc": (0.5, 0.5)}, comparisons={"svc": {
        "sample_vs_pixels_pca_sample": comp("sample", "pixels_pca_sample", delta, p)}})
    assert verdicts.verdict(judged["comparisons"]["svc"]["sample_vs_pixels_pca_sample"]) == expected


def seed_metrics(acc: dict[str, tuple[float, float]], deltas: dict[str, tuple[float, float]]) -> dict:
    """A made-up KL run: per model, its two accuracies and (delta, raw p) of .sample() against
    pixel PCA-64; mean & std against .sample() not significant."""
    comparisons = {m: {"sample_vs_pixels_pca_sample": comp("sample", "pixels_pca_sample", d, p),
                       "mean_std_vs_sample": comp("mean_std", "sample", 0.01, 0.6)}
                   for m, (d, p) in deltas.items()}
    return kl_metrics(acc, comparisons=comparisons)


def test_across_seeds_spread_and_verdict_that_holds_for_every_seed():
    by_seed = {
        0: seed_metrics({"svc": (0.50, 0.52), "knn": (0.40, 0.41)}, {"svc": (0.10, 0.001), "knn": (0.02, 0.3)}),
        1: seed_metrics({"svc": (0.52, 0.50), "knn": (0.41, 0.41)}, {"svc": (0.12, 0.0001), "knn": (0.09, 0.001)}),
        2: seed_metrics({"svc": (0.54, 0.51), "knn": (0.42, 0.40)}, {"svc": (0.08, 0.002), "knn": (0.01, 0.5)}),
    }
    summary = verdicts.across_seeds(by_seed)
    assert summary["seeds"] == [0, 1, 2]
    svc = summary["results"]["svc"]["sample"]
    assert svc["accuracy"] == [0.50, 0.52, 0.54] and svc["mean"] == 0.52 and svc["sd"] == 0.02
    held = summary["comparisons"]["svc"]["sample_vs_pixels_pca_sample"]
    assert held["verdict"] == ["higher"] * 3 and held["holds"] and held["n_agree"] == 3
    assert held["delta"] == [0.10, 0.12, 0.08] and held["mean_delta"] == 0.1
    # KNN is ahead in seed 1 only: its first seed's verdict (unclear) is not every seed's.
    flip = summary["comparisons"]["knn"]["sample_vs_pixels_pca_sample"]
    assert flip["verdict"] == ["unclear", "higher", "unclear"] and not flip["holds"] and flip["n_agree"] == 2
    assert summary["families"] == {"vae_vs_pixels": {"n_tests": 2, "n_hold": 1},
                                   "mean_std_vs_sample": {"n_tests": 2, "n_hold": 2}}
    # The best result is mean & std in seed 0 and .sample() in the others.
    assert [b["feature_set"] for b in summary["best"]["per_seed"]] == ["mean_std", "sample", "sample"]
    assert summary["best"]["same"] is False


def test_across_seeds_verdicts_use_each_seeds_own_holm_family():
    """p = 0.03 is significant alone, not after Holm over a family of two with p = 0.04."""
    alone = seed_metrics({"svc": (0.5, 0.5)}, {"svc": (0.05, 0.03)})
    crowded = seed_metrics({"svc": (0.5, 0.5), "knn": (0.5, 0.5)}, {"svc": (0.05, 0.03), "knn": (0.05, 0.04)})
    assert verdicts.verdict(alone["comparisons"]["svc"]["sample_vs_pixels_pca_sample"]) == "higher"
    assert verdicts.verdict(crowded["comparisons"]["svc"]["sample_vs_pixels_pca_sample"]) == "unclear"


def test_under_tuning_judges_the_tuned_family_and_flags_changed_verdicts():
    default = seed_metrics({"svc": (0.5, 0.5), "knn": (0.4, 0.4)},
                           {"svc": (0.10, 0.001), "knn": (0.02, 0.4)})["comparisons"]
    tuned = {"svc": {"sample_vs_pixels_pca_sample": comp("sample", "pixels_pca_sample", 0.01, 0.5)},
             "knn": {"sample_vs_pixels_pca_sample": comp("sample", "pixels_pca_sample", 0.08, 0.001)}}
    out, tests = verdicts.under_tuning(tuned, default)
    svc, knn = out["svc"]["sample_vs_pixels_pca_sample"], out["knn"]["sample_vs_pixels_pca_sample"]
    assert (svc["default_verdict"], svc["verdict"], svc["changed"]) == ("higher", "unclear", True)
    assert (knn["default_verdict"], knn["verdict"], knn["changed"]) == ("unclear", "higher", True)
    assert knn["p_adjusted"] == pytest.approx(0.002) and knn["family"] == "tuned_vae_vs_pixels"
    assert tests == {"alpha": 0.05, "correction": "holm", "family_size": 2, "n_changed": 2}
    same, tests = verdicts.under_tuning({"svc": {"sample_vs_pixels_pca_sample": comp(
        "sample", "pixels_pca_sample", 0.2, 0.0001)}}, default)
    assert not same["svc"]["sample_vs_pixels_pca_sample"]["changed"] and tests["n_changed"] == 0


# ---- analysis.seeds ----------------------------------------------------------------------------

def test_derived_sample_is_the_bytes_an_encode_with_that_seed_writes(tiny_vae, tmp_path, one_thread):
    """A further seed reuses the encoder's mean and std: the .sample() it draws from them is
    what encoding the images again with that seed gives, byte for byte."""
    from analysis.encode import Encoder, encode_dataset
    from analysis.seeds import derive
    from analysis.vae import load_vae, resolve_model

    rng = np.random.default_rng(0)
    data = {f"x_{s}": rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8) for s in ("train", "test")}
    data |= {"y_train": np.arange(6) % 2, "y_test": np.arange(6) % 2}
    encoder = Encoder(load_vae(resolve_model(str(tiny_vae))), "cpu", "fp32", batch_size=4)
    first = encode_dataset(encoder, data, 0, "tiny", tmp_path / "p0")
    again = encode_dataset(encoder, data, 7, "tiny", tmp_path / "p7")
    derived = derive(first, 7)
    for key, array in again.items():
        assert derived[key].dtype == array.dtype and derived[key].tobytes() == array.tobytes(), key
    assert not np.array_equal(first["test_sample"], again["test_sample"])
    deterministic = {k: v for k, v in first.items() if not k.endswith(("_mean", "_std", "_sample"))} \
        | {"train_latent": first["train_mean"], "test_latent": first["test_mean"]}
    assert derive(deterministic, 7) is deterministic  # nothing a seed changes


@pytest.fixture(scope="module")
def seeded_run(tmp_path_factory, tiny_classified, one_thread) -> Path:
    """A copy of the tiny made-up classified run (conftest.py tiny_classified), then SEEDS="0 1"
    and TUNE="logreg knn" through the stages' mains, as the Makefile runs them."""
    from analysis import seeds, tune

    root = copy_build(tiny_classified.parent, tmp_path_factory.mktemp("seeded") / "root")
    run = root / "run"
    config.main(["seeds", "--seeds", "0 1", "--out", str(run / "seeds-config.json")])
    config.main(["tune", "--models", "logreg knn", "--out", str(run / "tune-config.json")])
    data = str(root / "data/dataset.npz")
    seeds.main([str(run), data, str(run / "seeds.json"), "--config", str(run / "seeds-config.json"),
                "--baselines", str(root / "baselines"), "--cache", str(root / "cache")])
    tune.main([str(run), data, str(run / "tuned.json"), "--config", str(run / "tune-config.json"),
               "--cache", str(root / "cache")])
    return run


def test_seeds_stage_writes_each_seed_and_the_summary(seeded_run):
    from analysis.runs import current_seeds, read_metrics, seed_dir

    summary = current_seeds(seeded_run)
    assert summary is not None and summary["seeds"] == [0, 1]
    folder = seed_dir(seeded_run, 1)
    for name in ("metrics.json", "metrics.csv", "predictions.csv", "classify.json", "baselines.json"):
        assert (folder / name).is_file(), name
    one = read_metrics(folder)
    assert one["seed"] == 1 and one["bootstrap"]["seed"] == 1 and "learning_curves" not in one
    primary = read_metrics(seeded_run)
    for model, per in summary["results"].items():
        for fs, over in per.items():
            assert over["accuracy"] == [primary["results"][model][fs]["accuracy"],
                                        one["results"][model][fs]["accuracy"]]
    # The seed's pixel baselines are the seed's own, fitted once for every run of the dataset.
    record = json.loads((folder / "baselines.json").read_text())
    assert record["seed"] == 1 and all(json.loads((seeded_run.parent / "baselines" / name / "baseline.json")
                                                  .read_text())["seed"] == 1 for name in record["baselines"].values())
    assert summary["varies"]["sample_draw"] is True and summary["varies"]["latents"] is False


def test_seeds_stage_reuses_its_cached_results(seeded_run, tmp_path):
    from analysis import seeds
    from analysis.runs import seed_dir

    before = (seed_dir(seeded_run, 1) / "predictions.csv").read_bytes()
    out = tmp_path / "again.json"
    seeds.main([str(seeded_run), str(seeded_run.parent / "data/dataset.npz"), str(out), "--config",
                str(seeded_run / "seeds-config.json"), "--baselines", str(seeded_run.parent / "baselines"),
                "--cache", str(seeded_run.parent / "cache")])
    again = json.loads(out.read_text())
    assert again["per_seed"]["1"]["from_cache"] is True
    assert (seed_dir(seeded_run, 1) / "predictions.csv").read_bytes() == before
    assert again["results"] == json.loads((seeded_run / "seeds.json").read_text())["results"]


def test_seeds_stage_refuses_seeds_that_do_not_start_with_the_runs_own(seeded_run, tmp_path):
    from analysis import seeds

    config.main(["seeds", "--seeds", "5 1", "--out", str(tmp_path / "s.json")])
    with pytest.raises(VaelabError, match="SEEDS starts with 5 but .* was made with SEED=0"):
        seeds.main([str(seeded_run), str(seeded_run.parent / "data/dataset.npz"), str(tmp_path / "o.json"),
                    "--config", str(tmp_path / "s.json"), "--baselines", str(tmp_path / "b")])
    assert not (tmp_path / "o.json").exists()


def test_stale_seeds_summary_is_not_read(seeded_run, tmp_path):
    from analysis.runs import current_seeds

    run = copy_build(seeded_run, tmp_path / "run")
    record = json.loads((run / "classify.json").read_text())
    (run / "classify.json").write_text(json.dumps(record | {"results_key": "other"}))
    assert current_seeds(run) is None


# ---- analysis.tune -----------------------------------------------------------------------------

def separable(n: int, seed: int = 0, width: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    return (rng.normal(size=(n, width)) + 1.5 * y[:, None]).astype(np.float32), y


def test_search_chooses_from_the_grid_by_cross_validation_on_training_rows(one_thread):
    from analysis.config import TuneConfig
    from analysis.tune import SPACES, search

    x, y = separable(90)
    found = search("logreg", x, y, 0, "libsvm", TuneConfig(models=("logreg",)))
    assert found["params"]["C"] in SPACES["logreg"]["C"] and found["candidates"] == 4
    assert 0 <= found["cv_accuracy"] <= 1 and found["default"] == (found["params"] == {"C": 1.0})
    # 4 candidates, factor 3: two rounds, the first on 2 rows per class and fold (3 classes).
    assert [(r["candidates"], r["rows"]) for r in found["rounds"]] == [(4, 18), (2, 54)]
    assert search("logreg", x, y, 0, "libsvm", TuneConfig(models=("logreg",))) == found  # seeded
    capped = search("logreg", x, y, 0, "libsvm", TuneConfig(models=("logreg",), max_rows=60))
    assert capped["rounds"][-1]["rows"] <= 60


@pytest.mark.parametrize("key", ["lightgbm", "xgboost", "histgb"])
def test_search_boosted_side_by_side_chooses_as_one_after_the_other(one_thread, key):
    """The boosted trees' candidates in two worker processes, or the search on one thread (as in
    a worker of run_searches): the same search result."""
    from analysis import tune
    from analysis.config import TuneConfig

    x, y = separable(120, width=4)
    serial = tune.search(key, x, y, 0, "libsvm", TuneConfig(models=(key,)))
    assert tune.search(key, x, y, 0, "libsvm", TuneConfig(models=(key,)), n_jobs=2) == serial
    assert tune.search(key, x, y, 0, "libsvm", TuneConfig(models=(key,)), one_thread=True) == serial


def test_run_searches_side_by_side_gives_what_one_after_the_other_gives(one_thread, monkeypatch, capsys):
    """Large sets: the boosted trees' and libsvm's searches and refits go to two worker
    processes, the rest stay in-process; every job's result is the one a single process finds."""
    from analysis import tune
    from analysis.config import TuneConfig

    x, y = separable(150, width=4)
    features = {"a": (x, x[:40]), "b": (x[:, :3], x[:40, :3])}
    models = ("logreg", "svc", "lightgbm", "histgb")
    jobs = [(key, fs) for key in models for fs in features]
    defaults = {job: np.zeros(40, dtype=np.int64) for job in jobs}
    config = TuneConfig(models=models)
    serial = tune.run_searches(jobs, features, y, defaults, 0, "libsvm", config, workers=1)
    assert "side by side" not in capsys.readouterr().err
    monkeypatch.setattr(tune, "PARALLEL_MIN_ROWS", 100)
    ended = []
    pooled = tune.run_searches(jobs, features, y, defaults, 0, "libsvm", config, workers=2,
                               done=lambda job, result: ended.append(job))
    assert "6 searches side by side in 2 processes" in capsys.readouterr().err
    assert list(pooled) == jobs and sorted(ended) == sorted(jobs)  # each reported as it ended
    for job in jobs:
        assert pooled[job][0] == serial[job][0]
        np.testing.assert_array_equal(pooled[job][1], serial[job][1])


def test_cached_searches_search_once_per_key_and_seal_each_as_it_ends(tmp_path):
    """Two jobs with one key: one search, its seconds counted once. A search that ends is sealed
    before the next: an interrupted stage keeps it, and the next run reads it."""
    from analysis import cache, tune

    jobs = [("svc", "a"), ("svc", "b"), ("knn", "a")]
    keys = {("svc", "a"): "k1", ("svc", "b"): "k1", ("knn", "a"): "k2"}
    calls = []

    def result(job):
        return {"params": {"job": list(job)}}, np.arange(3), {"search_seconds": 1.0, "refit_seconds": 0.5}

    def interrupted(pending, done):
        calls.append(pending)
        done(pending[0], result(pending[0]))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tune.cached_searches(jobs, keys, tmp_path, interrupted)
    assert calls == [[("svc", "a"), ("knn", "a")]]  # the shared key once
    assert cache.reusable(tmp_path / "tuned-k1") and not cache.reusable(tmp_path / "tuned-k2")

    def compute(pending, done):
        calls.append(pending)
        for job in pending:
            done(job, result(job))

    out = tune.cached_searches(jobs, keys, tmp_path, compute)
    assert calls[-1] == [("knn", "a")]  # k1 read from the cache
    assert out["svc", "a"][2]["from_cache"] and out["svc", "b"][2]["same_as"] == "a"
    assert out["knn", "a"][0] == {"params": {"job": ["knn", "a"]}} and out["knn", "a"][2]["search_seconds"] == 1.0
    np.testing.assert_array_equal(out["svc", "b"][1], np.arange(3))


def test_cached_searches_wait_for_an_entry_another_stage_is_searching(tmp_path):
    """make -j: an entry whose lock another process holds is left until this stage's own
    searches are done, then read once that process has sealed it."""
    import fcntl
    import threading

    from analysis import cache, tune
    from analysis.common import save_npz, write_json

    jobs = [("svc", "a"), ("knn", "a")]
    keys = {("svc", "a"): "theirs", ("knn", "a"): "mine"}
    computed = []

    def compute(pending, done):
        computed.extend(pending)
        for job in pending:
            done(job, ({"params": {}}, np.arange(2), {"search_seconds": 1.0}))

    with open(tmp_path / "tuned-theirs.lock", "a") as other:
        fcntl.flock(other, fcntl.LOCK_EX)  # the other stage, searching
        out = {}
        stage = threading.Thread(target=lambda: out.update(tune.cached_searches(jobs, keys, tmp_path, compute)))
        stage.start()
        for _ in range(200):
            if computed:
                break
            threading.Event().wait(0.05)
        assert computed == [("knn", "a")]  # its own search first, not waiting
        # The other stage seals its entry and lets go.
        write_json(tmp_path / "tuned-theirs" / "search.json", {"params": {"by": "the other stage"}})
        save_npz(tmp_path / "tuned-theirs" / "predictions.npz", y_pred=np.arange(2))
        cache.seal(tmp_path / "tuned-theirs")
        fcntl.flock(other, fcntl.LOCK_UN)
    stage.join(timeout=30)
    assert not stage.is_alive() and computed == [("knn", "a")]
    assert out["svc", "a"][0] == {"params": {"by": "the other stage"}} and out["svc", "a"][2]["from_cache"]


def test_search_starts_every_grid_on_the_same_rows(one_thread, monkeypatch):
    """The first round is on max_rows / 9 rows whatever the grid's size (scikit-learn's
    'exhaust' would start a 6-candidate grid on 3 times the rows of a 9-candidate one)."""
    from analysis import tune
    from analysis.config import TuneConfig

    x, y = separable(900)
    config = TuneConfig(models=("logreg",), max_rows=810)
    rounds = {}
    for c in ((0.01, 0.1, 1.0, 10.0), (0.01, 0.03, 0.1, 0.3, 1.0, 10.0), tuple(10.0 ** np.arange(-4, 5))):
        monkeypatch.setitem(tune.SPACES, "logreg", {"C": c})
        found = tune.search("logreg", x, y, 0, "libsvm", config)
        rounds[len(c)] = [(r["candidates"], r["rows"]) for r in found["rounds"]]
    assert rounds == {4: [(4, 90), (2, 270)], 6: [(6, 90), (2, 270)], 9: [(9, 90), (3, 270)]}


def test_search_skips_a_last_round_of_one_candidate_and_chooses_the_same(one_thread, monkeypatch):
    """9 candidates, factor 3: scikit-learn's schedule is 9, 3, 1 candidates; the round of one
    chooses nothing, so the search ends on the 3, with the same choice."""
    from analysis import tune
    from analysis.config import TuneConfig

    monkeypatch.setitem(tune.SPACES, "logreg", {"C": (1e-4, 1e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)})
    x, y = separable(270)
    config = TuneConfig(models=("logreg",))
    found = tune.search("logreg", x, y, 0, "libsvm", config)
    assert [(r["candidates"], r["rows"]) for r in found["rounds"]] == [(9, 30), (3, 90)]
    # Where the last round holds more than one candidate, it stays: 4 candidates end on 2.
    assert tune.last_rows(270, 3, 4, config) == 270 and tune.last_rows(270, 3, 9, config) == 90
    monkeypatch.setattr(tune, "last_rows", lambda n, k, c, cfg: min(n, cfg.max_rows))  # the full schedule
    full = tune.search("logreg", x, y, 0, "libsvm", config)
    assert [r["candidates"] for r in full["rounds"]] == [9, 3, 1]
    assert found["params"] == full["params"]


def test_search_histgb_stops_early_where_its_refit_will():
    """HistGradientBoosting's early_stopping='auto' stops early on more than 10,000 rows: the
    refit on 50,000 does, the search's folds (at most 10,000 rows) would not. The search's
    estimator takes the refit's choice, whatever rows a fold has."""
    from sklearn.base import clone

    from analysis.models import make_model
    from analysis.tune import search_estimator

    for n_train, stops in ((50_000, True), (10_000, False), (2_000, False)):
        refit = make_model("histgb", 0, n_train)
        assert refit.early_stopping == "auto"  # decided on the rows it is fitted on
        candidate = clone(search_estimator("histgb", 0, n_train, "libsvm"))
        assert candidate.early_stopping is stops
    # Other models search with make_model's estimator unchanged.
    assert search_estimator("lightgbm", 0, 50_000, "libsvm").get_params() == make_model("lightgbm", 0, 50_000).get_params()


def test_search_needs_enough_images_per_class_for_its_folds():
    from analysis.config import TuneConfig
    from analysis.tune import search

    x, y = separable(6)  # two images per class, three folds
    with pytest.raises(VaelabError, match="TUNE needs at least 3 training images per class"):
        search("logreg", x, y, 0, "libsvm", TuneConfig(models=("logreg",)))


def test_knn_grid_leaves_out_more_neighbours_than_the_first_round_holds():
    from analysis.config import TuneConfig
    from analysis.tune import grid

    small = grid("knn", 60, 10, TuneConfig())  # one round on 60 rows: folds of 40
    assert small["n_neighbors"] == [5, 10, 25] and small["weights"] == ["uniform", "distance"]
    assert grid("knn", 50_000, 10, TuneConfig())["n_neighbors"] == [5, 10, 25, 50]


def test_svc_gamma_multiples_of_scale():
    from analysis.models import make_model
    from analysis.tune import estimator_params

    x = np.ones((10, 4), dtype=np.float32)
    x[:, :2] = np.arange(20, dtype=np.float32).reshape(10, 2)  # two constant columns
    model = make_model("svc", 0, 10, "libsvm")
    assert estimator_params("svc", {"C": 3.0, "gamma": 1.0}, x, model) == {"svc__C": 3.0, "svc__gamma": "scale"}
    assert estimator_params("svc", {"C": 1.0, "gamma": 2.0}, x, model)["svc__gamma"] == pytest.approx(1.0)


def test_tune_stage_tunes_latents_and_equal_width_pixels_alike(seeded_run):
    from analysis.runs import current_tuned, read_metrics, read_predictions

    tuned = current_tuned(seeded_run)
    assert tuned is not None and tuned["models"] == ["logreg", "knn"]
    assert tuned["feature_sets"] == ["sample", "mean_std", "pixels_pca_sample", "pixels_pca_mean_std"]
    # Fewer training rows than max_rows: every round fits on at most all of them.
    search = tuned["search"]
    assert search["most_rows"] == search["training_rows"] < search["max_rows"]
    for per in tuned["results"].values():
        for r in per.values():
            assert r["rounds"][0]["rows"] == search["first_rows"] and r["rounds"][-1]["rows"] <= search["most_rows"]
    metrics, columns = read_metrics(seeded_run), read_predictions(seeded_run)
    y = np.asarray(columns["y_true"])
    for model, per in tuned["results"].items():
        for fs, r in per.items():
            assert r["default_accuracy"] == metrics["results"][model][fs]["accuracy"]
            if r["default"]:  # the defaults chosen: the default fit is the tuned one
                assert r["accuracy"] == r["default_accuracy"]
    comps = tuned["comparisons"]
    assert set(comps["knn"]) == {"sample_vs_pixels_pca_sample", "mean_std_vs_pixels_pca_mean_std"}
    for model, per in comps.items():
        for name, c in per.items():
            assert c["default_verdict"] == verdicts.verdict(metrics["comparisons"][model][name])
            assert c["changed"] == (c["verdict"] != c["default_verdict"])
            assert c["family_size"] == tuned["tests"]["family_size"] == 4
    assert len(y) == metrics["n_test"]


def test_tune_stage_reuses_its_cached_searches(seeded_run, tmp_path):
    from analysis import tune

    out = tmp_path / "tuned.json"
    tune.main([str(seeded_run), str(seeded_run.parent / "data/dataset.npz"), str(out), "--config",
               str(seeded_run / "tune-config.json"), "--cache", str(seeded_run.parent / "cache")])
    timings = json.loads((seeded_run / "timings-tune.json").read_text())["searches"]
    assert all(t.get("from_cache") for per in timings.values() for t in per.values())
    assert json.loads(out.read_text()) == json.loads((seeded_run / "tuned.json").read_text())


# ---- what the report and make diff say of them -------------------------------------------------

def made_up_seeds() -> tuple[dict, dict]:
    by_seed = {
        0: seed_metrics({"svc": (0.50, 0.52), "knn": (0.40, 0.41)}, {"svc": (0.10, 0.001), "knn": (0.02, 0.3)}),
        1: seed_metrics({"svc": (0.52, 0.50), "knn": (0.41, 0.41)}, {"svc": (0.12, 0.0001), "knn": (0.09, 0.001)}),
        2: seed_metrics({"svc": (0.54, 0.51), "knn": (0.42, 0.40)}, {"svc": (0.08, 0.002), "knn": (0.01, 0.5)}),
    }
    from analysis.seeds import varies

    return by_seed[0], verdicts.across_seeds(by_seed) | {"varies": varies(True), "has_decoder": True}


def test_seed_sentences_state_what_holds_for_every_seed():
    from report import facts as F
    from report import sentences as S

    metrics, summary = made_up_seeds()
    fact = F.seeds(metrics, summary)
    assert (fact.n_tests, fact.n_hold) == (2, 1)
    text = " ".join(S.seeds_sentences(fact, "4"))
    assert "Over the 3 seeds (0, 1 and 2), 1 of the 2 tests of Table 4 reaches the same verdict in every seed" in text
    assert "KNN on .sample() latents against pixel PCA (not clearly apart, ahead, not clearly apart)" in text
    assert "SVC on mean & std, averages 0.5100" in text and "another result is the best in some seeds" in text
    varied = S.seeds_varied(fact)
    assert "the .sample() draw" in varied and "the latent mean & std and the decoded images are the same" in varied
    # The best result is SVC on mean & std, which has no comparison with its pixel PCA here.
    assert fact.best_pca is None and S.robustness_sentence(fact, None) is None


def test_robustness_sentence_follows_the_best_models_equal_width_test():
    from report import facts as F
    from report import sentences as S

    by_seed = {s: seed_metrics({"svc": (0.6 + s / 100, 0.5)}, {"svc": (0.1 + s / 100, 0.001)}) for s in range(3)}
    summary = verdicts.across_seeds(by_seed) | {"varies": {}, "has_decoder": False}
    fact = F.seeds(by_seed[0], summary)
    text = S.robustness_sentence(fact, None)
    # the comparison it names, its verdict held in every seed, and the range of the deltas
    assert text.startswith("Against pixel PCA of the same width, SVC on .sample() latents")
    assert "is ahead of it in every one of the 3 seeds" in text and "+10.0 to +12.0 points" in text
    by_seed[1] = seed_metrics({"svc": (0.61, 0.5)}, {"svc": (0.0, 0.9)})
    fact = F.seeds(by_seed[0], verdicts.across_seeds(by_seed) | {"varies": {}, "has_decoder": False})
    text = S.robustness_sentence(fact, None)
    # no longer held: each seed's verdict in order, and the deltas' range
    assert "does not reach the same verdict in every seed" in text and "in every one" not in text
    assert "(ahead, not clearly apart, ahead; by +0.0 to +12.0 points)" in text


def test_limitations_say_what_several_seeds_and_tuning_measured():
    from report import facts as F
    from report import sentences as S

    metrics, summary = made_up_seeds()
    base = dict(seed=0, stochastic=True, n_test=100, resolution=32, sample_size=None,
                widths=F.Widths(()), mean_std_confound=False, curves=False, probes=False,
                untrained=False, limit=None, n_train=100)
    plain = S.limitation_items(F.Limits(**base))
    assert plain[0].startswith("One seed (0)") and plain[2].startswith("No tuning")
    tuned = {"models": ["svc"], "search": {"folds": 3, "max_rows": 10000, "most_rows": 10000},
             "results": {"svc": {"sample": {"default": True}, "pixels_pca_sample": {"default": False}}},
             "comparisons": {"svc": {"sample_vs_pixels_pca_sample": comp("sample", "pixels_pca_sample", 0.1, 0.001)
                                     | {"default_verdict": "higher", "verdict": "unclear", "default_delta": 0.1,
                                        "changed": True}}}}
    measured = S.limitation_items(F.Limits(**base, seeds=F.seeds(metrics, summary), tuning=F.tuning(metrics, tuned)))
    assert measured[0].startswith("3 seeds (0, 1 and 2): the spread between seeds is measured")
    assert "1 of the 2 verdicts holds in every seed" in measured[0]
    assert measured[2].startswith("Tuning covers SVC over small grids (Appendix B)")
    assert "at most 10,000 of them" in measured[2]
    text = " ".join(S.tuning_sentences(F.tuning(metrics, tuned), "Appendix B"))
    assert "leaves 0 of the 1 verdict" in text and "SVC on .sample() latents against pixel PCA, from ahead to not clearly apart" in text
    assert "1 of the 2 searches chose the default settings" in text
    tuned["results"]["svc"]["sample"]["default"] = False
    assert "None of the 2 searches chose" in " ".join(S.tuning_sentences(F.tuning(metrics, tuned), "Appendix B"))
    assert S.repeats_discussion(None, None) == []


def test_diff_across_seeds_says_which_rows_hold_for_every_seed():
    from analysis.diffstats import across_seeds

    y = np.repeat(np.arange(2), 50)
    rng = np.random.default_rng(1)

    def run(acc_ahead: float) -> tuple[dict, dict]:
        metrics = kl_metrics({"svc": (0.5, 0.5)})
        right = rng.random(100) < acc_ahead
        pred = np.where(right, y, 1 - y)
        return metrics, {"y_true": y, "svc__sample": pred, "svc__mean_std": pred}

    (ma, pa), (mb, pb) = run(0.3), run(0.95)  # B far ahead
    (ma2, pa2), (mb2, pb2) = run(0.5), run(0.52)  # B not clearly ahead
    out = across_seeds({0: (ma, mb, pa, pb), 1: (ma2, mb2, pa2, pb2)})
    row = out["rows"]["svc__sample"]
    assert out["seeds"] == [0, 1] and row["verdict"][0] == "higher" and row["verdict"][1] == "unclear"
    assert not row["holds"] and row["n_agree"] == 1 and len(row["delta"]) == 2
    assert across_seeds({0: (ma, mb, pa, pb)}) is None


# ---- end to end: SEEDS and TUNE on a copy of the demo build --------------------------------------

@pytest.mark.e2e
def test_make_report_with_seeds_and_tune(demo_build, tiny_vae, synthetic_images, tmp_path):
    """SEEDS="0 1 2" and TUNE on a copy of the demo build rerun only the seeds and tuning stages
    (the latents, the first seed's results and figures are reused) and the report states the
    spread over seeds, the verdicts that hold for every seed and the tuned accuracies. (That
    a build without them is the report it always was is checked on the demo before and after
    the change, docs/benchmarks.md; rendering without the flags ignores their files:
    test_render_without_the_flags_reads_no_seeds_or_tuned_file.)"""
    from helpers import page_text

    build = copy_build(demo_build, tmp_path / "b")
    args = make_vars(build, tiny_vae, synthetic_images, 6)
    target = str(build / "report.html")
    proc = run_make(target, *args, "SEEDS=0 1 2", "TUNE=logreg svc")
    assert steps_run(proc) == {"report.provenance", "report.render html"}
    assert "-m analysis.seeds" in proc.stdout and "-m analysis.tune" in proc.stdout
    run = build / "runs/tiny-vae"
    summary = json.loads((run / "seeds.json").read_text())
    assert summary["seeds"] == [0, 1, 2] and summary["varies"]["sample_draw"]
    tuned = json.loads((run / "tuned.json").read_text())
    assert tuned["models"] == ["logreg", "svc"]
    text = page_text((build / "report.html").read_text())
    top = summary["results"]["svc"]["sample"]
    assert f"{top['mean']:.4f} ± {top['sd']:.4f}" in text
    assert "mean ± standard deviation of the accuracy over the 3 seeds (0, 1, 2)" in text
    held = summary["families"]["vae_vs_pixels"]
    n = "all" if held["n_hold"] == held["n_tests"] else "none" if not held["n_hold"] else str(held["n_hold"])
    assert re.search(rf"Over the 3 seeds \(0, 1 and 2\), {n}\b.* of Table 4 reach", text)
    assert "Tuned against default settings" in text and "Appendix B. Tuned settings" in text
    search = tuned["search"]
    assert f"its rounds on {search['first_rows']:,} to at most {search['training_rows']:,} of them" in text
    assert "SEEDS=0 1 2" in text and "TUNE=logreg svc" in text  # Appendix A's variables
    assert "One seed (0)" not in text and "No tuning" not in text


@pytest.mark.e2e
@pytest.mark.parametrize("setting, message", [("SEEDS=0 1 1", "SEEDS='0 1 1' names seed 1 twice"),
                                              ("TUNE=svm", "unknown model 'svm'; nearest: svc")])
def test_make_bad_seeds_or_tune_fails_with_one_line_and_builds_nothing(tmp_path, tiny_vae, synthetic_images,
                                                                       setting, message):
    build = tmp_path / "b"
    proc = run_make("report", *make_vars(build, tiny_vae, synthetic_images, 3), setting, check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("vaelab: error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in proc.stderr
    assert not build.exists() or not any(p.is_file() for p in build.rglob("*"))


def test_make_diff_between_runs_with_the_same_seeds(seeded_run, tmp_path):
    """report.diff (what `make diff` runs) on two runs made with SEEDS="0 1": its table repeated
    for each seed, each row's mean delta and in how many seeds its verdict holds."""
    from report.diff import compare, format_table, load_run, render_diff

    other = copy_build(seeded_run, tmp_path / "other")
    a, b = load_run(seeded_run), load_run(other)
    for run in (a, b):
        run["encode"]["model"]["name"] = run["name"]  # tiny_run's encode.json names no model
    assert a["seeds"] == b["seeds"] == [0, 1]
    rows = compare(a, b, seed=0)
    assert all(r["seeds"]["of"] == 2 and r["seeds"]["holds"] and r["seeds"]["delta"] == [0, 0] for r in rows)
    table = format_table(a, b, rows)
    assert "seeds: mean delta" in table and "over the 2 seeds both runs have" in table
    assert all(line.rstrip().endswith("2/2") for line in table.splitlines() if line.startswith("SVC "))
    html = render_diff(a, b, rows, tmp_path / "d" / "diff.html", [])
    assert "Delta over seeds" in html and "repeated for each of the 2 seeds" in html
    # A run without several seeds: the table as before, no seed columns.
    (other / "seeds.json").unlink()
    b = load_run(other)
    b["encode"]["model"]["name"] = "other"
    rows = compare(a, b, seed=0)
    assert all(r["seeds"] is None for r in rows) and "seeds" not in format_table(a, b, rows)
    assert "Delta over seeds" not in render_diff(a, b, rows, tmp_path / "e" / "diff.html", [])


def test_render_without_the_flags_reads_no_seeds_or_tuned_file(seeded_run):
    """A build without SEEDS and TUNE renders without --seeds and --tuned: a seeds.json or
    tuned.json left in the run by an earlier build is not read (the context is the one of a
    run that never had them); with the flags, a missing or stale one is an error."""
    from report.context import repeats

    assert repeats(seeded_run, False, False) == (None, None)
    over, tuned = repeats(seeded_run, True, True)
    assert over["seeds"] == [0, 1] and tuned["models"] == ["logreg", "knn"]
    with pytest.raises(VaelabError, match="seeds.json is missing or was made from other results"):
        repeats(seeded_run / "seeds" / "seed-1", True, False)


def test_snapshot_seeds_paragraph_and_discussion():
    from helpers import matches_snapshot
    from report import facts as F
    from report import sentences as S

    metrics, summary = made_up_seeds()
    fact = F.seeds(metrics, summary)
    assert matches_snapshot("seeds-three", S.seeds_sentences(fact, "4") + [S.seeds_varied(fact)]
                            + S.repeats_discussion(fact, None))
