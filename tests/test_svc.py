"""The two SVC implementations (analysis.models.svc_implementation): libsvm and oneDAL."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from analysis import classify
from analysis.models import fit_predict, make_model, svc_implementation
from analysis.common import VaelabError
from analysis.config import make_run_config

pytestmark = pytest.mark.usefixtures("one_thread")


def onedal_or_skip() -> None:
    try:
        import sklearnex.svm  # noqa: F401
    except Exception as err:  # no x86-64 wheel here (e.g. Apple silicon): nothing to compare
        pytest.skip(f"scikit-learn-intelex does not import here ({err})")


def mixture(n_train: int = 1500, n_test: int = 1000, n_features: int = 16, seed: int = 0):
    """Ten overlapping Gaussian classes: hard enough that the SVCs' boundaries matter."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 0.7, size=(10, n_features))
    y = rng.integers(0, 10, size=n_train + n_test)
    x = (centers[y] + rng.normal(size=(len(y), n_features))).astype(np.float32)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def test_svc_onedal_agrees_with_libsvm_on_99_percent_of_predictions():
    onedal_or_skip()
    x_train, y_train, x_test, y_test = mixture()
    libsvm, _, _ = fit_predict("svc", 0, x_train, y_train, x_test, svc="libsvm")
    onedal, _, _ = fit_predict("svc", 0, x_train, y_train, x_test, svc="onedal")
    assert 0.3 < np.mean(libsvm == y_test) < 0.95  # a problem where the boundaries matter
    assert np.mean(libsvm == onedal) >= 0.99


def test_svc_two_onedal_runs_are_identical():
    onedal_or_skip()
    x_train, y_train, x_test, _ = mixture()
    models = [make_model("svc", 0, len(y_train), "onedal").fit(x_train, y_train)
              for _ in range(2)]
    assert type(models[0][-1]).__module__.startswith("sklearnex")
    np.testing.assert_array_equal(models[0][-1].n_support_, models[1][-1].n_support_)
    np.testing.assert_array_equal(models[0].predict(x_test), models[1].predict(x_test))
    np.testing.assert_array_equal(models[0].decision_function(x_test),
                                  models[1].decision_function(x_test))


def test_svc_same_hyper_parameters_in_both_implementations():
    onedal_or_skip()
    params = {impl: make_model("svc", 3, 100, impl)[-1].get_params()
              for impl in ("libsvm", "onedal")}
    for impl in params:
        assert (params[impl]["kernel"], params[impl]["C"], params[impl]["gamma"],
                params[impl]["random_state"]) == ("rbf", 1.0, "scale", 3)


def test_svc_implementation_auto_is_onedal_where_it_imports():
    onedal_or_skip()
    info = svc_implementation("auto")
    assert info["implementation"] == "onedal" and info["package"] == "scikit-learn-intelex"
    assert info["version"] in info["label"] and info["threads"] >= 1


def test_svc_implementation_libsvm_names_scikit_learn():
    from importlib import metadata

    info = svc_implementation("libsvm")
    assert info == {"implementation": "libsvm", "package": "scikit-learn",
                    "version": metadata.version("scikit-learn"),
                    "label": f"libsvm (scikit-learn {metadata.version('scikit-learn')})"}


def test_svc_implementation_falls_back_to_libsvm_when_sklearnex_fails(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearnex.svm", None)  # import now raises ImportError
    assert svc_implementation("auto")["implementation"] == "libsvm"
    with pytest.raises(VaelabError, match="SVC=onedal needs scikit-learn-intelex.*SVC=libsvm"):
        svc_implementation("onedal")


def test_svc_unknown_choice_is_refused():
    with pytest.raises(VaelabError, match="SVC='thundersvm' is not known"):
        make_run_config("stabilityai/sd-vae-ft-ema", "", "0", "cpu", "fp32", "8", svc="thundersvm")
    assert make_run_config("stabilityai/sd-vae-ft-ema", "", "0", "cpu", "fp32", "8",
                           svc=" LIBSVM ").svc == "libsvm"


def test_results_key_includes_the_svc_implementation_and_onedal_threads(tmp_path):
    latents = tmp_path / "latents.npz"
    latents.write_bytes(b"same latents")
    libsvm = {"implementation": "libsvm", "package": "scikit-learn", "version": "1.9.1"}
    onedal = {"implementation": "onedal", "package": "scikit-learn-intelex", "version": "2026.2.0"}
    keys = {name: classify.results_key(latents, 0, ["a", "b"], {}, svc)[0] for name, svc in
            {"libsvm": libsvm, "onedal-1": onedal | {"threads": 1},
             "onedal-2": onedal | {"threads": 2}}.items()}
    assert len(set(keys.values())) == 3
    assert classify.results_key(latents, 0, ["a", "b"], {}, libsvm)[0] == keys["libsvm"]


def test_check_baselines_accepts_other_threads_but_not_another_svc(tmp_path):
    onedal = {"implementation": "onedal", "package": "scikit-learn-intelex", "version": "2026.2.0"}
    base = {"folder": "pca-64-x", "n_test": 10, "seed": 0, "svc": onedal | {"threads": 2}}
    classify.check_baselines({"pixels_pca_sample": base}, 10, 0, onedal | {"threads": 1}, tmp_path)
    libsvm = {"implementation": "libsvm", "package": "scikit-learn", "version": "1.9.1"}
    with pytest.raises(VaelabError, match="pca-64-x was fitted on .*another SVC"):
        classify.check_baselines({"pixels_pca_sample": base}, 10, 0, libsvm, tmp_path)
