"""Claim checks: every comparative or quantitative sentence of the report against the fact it
renders (report.facts -> report.sentences), on made-up metrics.

Run: .venv/bin/python -m pytest -n 0 -q tests/test_sentences.py
"""

from __future__ import annotations

import pytest

from analysis import variants as V
from helpers import CLASSES, comp, kl_metrics, latent_metrics, predictions_for, result
from report import facts as F
from report import sentences as S
from report.context import conclusions, summary_sentences
from report.tables import prf_table

def encode_record(cls: str = "AutoencoderKL", channels: int = 4, down: int = 8, *,
                  name: str = "/tmp/x/my-vae", revision: str = "local", untrained: bool = False,
                  sha: str = "ab" * 32) -> dict:
    return {"autoencoder_class": cls, "downsampling": down, "resolution": 32,
            "stochastic": cls == "AutoencoderKL",
            "vae_config": {"latent_channels": channels, "sample_size": 256},
            "model": {"name": name, "revision": revision, "untrained": untrained,
                      "autoencoder_class": cls, "weights_sha256": sha}}


# ---- unequal widths ----------------------------------------------------------------------

def test_versus_names_both_widths_and_unequal_size():
    metrics = kl_metrics({"svc": (0.4, 0.5)}, comparisons={"svc": {
        "sample_vs_pixels_pooled": comp("sample", "pixels_pooled", -0.05, 1e-5),
        "sample_vs_pixels_pca_sample": comp("sample", "pixels_pca_sample", 0.05, 1e-5)}})
    pooled = F.versus(metrics, "svc", "sample_vs_pixels_pooled")
    assert (pooled.a_width, pooled.b_width, pooled.direction) == (64, 48, "lower")
    text = S.versus_sentence(pooled)
    assert "score 5.0 points below pooled pixels" in text
    assert "64 features against 48, this is not a same-size comparison" in text
    assert "same size" not in text.replace("same-size comparison", "")
    equal = S.versus_sentence(F.versus(metrics, "svc", "sample_vs_pixels_pca_sample"))
    assert "score 5.0 points above pixel PCA" in equal and "both have 64 features" in equal
    # One interval and one p per sentence.
    assert text.count("95% CI") == 1 and text.count(" p ") == 1


def test_pixel_tally_says_which_pairings_are_equal_width():
    metrics = kl_metrics({"svc": (0.4, 0.5), "rf": (0.3, 0.35)}, comparisons={m: {
        "sample_vs_pixels_pooled": comp("sample", "pixels_pooled", 0.01, 0.5),
        "sample_vs_pixels_pca_sample": comp("sample", "pixels_pca_sample", 0.08, 1e-6)} for m in ("svc", "rf")})
    tally = F.pixel_tally(metrics)
    assert (tally.n_tests, tally.n_higher, tally.n_lower, tally.n_unclear) == (4, 2, 0, 2)
    text = S.pixel_tally_sentence(tally)
    assert "significantly higher in 2, significantly lower in 0 and are not clearly apart in 2" in text
    assert ".sample() latents against pooled pixels (64 against 48 features)" in text
    assert "Only .sample() latents against pixel PCA compare equal widths" in text


def test_latent_share_never_gives_the_wider_set_s_score_to_the_narrower():
    # The 0.318 belongs to mean & std (128 features); .sample() (64) reached 0.12.
    metrics = kl_metrics({"svc": (0.12, 0.318), "rf": (0.114, 0.2)})
    text = S.latent_share_sentence(F.latent_share(metrics), untrained=False)
    assert "The .sample() features, 64 numbers per image (2.1% of the 3,072 pixel values), reach at most 12.0%" in text
    assert "the mean & std features, 128 numbers per image (4.2% of the 3,072 pixel values), reach at most 31.8%" in text


def test_latent_share_names_every_classifier_tied_at_the_best():
    # The demo: HistGradientBoosting and XGBoost both reach 11.0% on .sample().
    metrics = kl_metrics({"histgb": (0.11, 0.2767), "xgboost": (0.11, 0.24), "svc": (0.09, 0.3233)})
    text = S.latent_share_sentence(F.latent_share(metrics), untrained=False)
    assert "reach at most 11.0% (HISTGB and XGBOOST; not clearly above chance)" in text
    assert "reach at most 32.3% (SVC; " in text


def test_limitations_list_unequal_baseline_widths():
    metrics = kl_metrics({"svc": (0.4, 0.5)})
    metrics["feature_sets"]["pixels_pca_mean_std"]["n_features"] = 100  # capped by 100 images
    widths = F.widths(metrics)
    assert ("pooled pixels", 48, ".sample()", 64) == widths.narrower[0][:4]
    assert ("pixel PCA", 100, "mean & std", 128) == widths.narrower[1][:4]
    items = S.limitation_items(limits(widths=widths))
    text = " ".join(items)
    assert "pooled pixels, 48 against the 64 .sample() features" in text
    assert "pixel PCA, 100 against the 128 mean & std features" in text


def test_limitations_recommend_only_the_baseline_that_is_missing():
    """Issue 36: with only the pooled pixels narrower (full CIFAR-10: the PCAs are as wide as
    the latents), no "pixel baseline at the latent's width" or "enough training images"."""
    metrics = kl_metrics({"svc": (0.4, 0.5)})
    text = " ".join(S.limitation_items(limits(widths=F.widths(metrics))))
    assert "Unequal widths: pooled pixels, 48 against the 64" in text
    assert "latent's width" not in text and "enough training images" not in text.lower()
    assert "The pixel PCAs, as wide as the latent feature sets they are set against, are those pairings." in text
    metrics["feature_sets"]["pixels_pca_mean_std"]["n_features"] = 100  # capped by 100 images
    text = " ".join(S.limitation_items(limits(widths=F.widths(metrics))))
    assert "Enough training images for a pixel PCA as wide as each latent feature set would settle it." in text


def test_lda_caveat_only_with_few_training_images_per_feature():
    metrics = kl_metrics({"svc": (0.4, 0.5)})  # .sample() 64, mean & std 128 features
    assert F.few_for_lda(300, metrics) == 128  # the demo
    assert F.few_for_lda(F.LDA_IMAGES_PER_FEATURE * 128 - 1, metrics) == 128
    assert F.few_for_lda(10_000, metrics) is None and F.few_for_lda(50_000, metrics) is None


def limits(**kw) -> F.Limits:
    base = dict(seed=0, stochastic=True, n_test=10_000, resolution=32, sample_size=256,
                widths=F.Widths(()), mean_std_confound=True, curves=True, probes=True,
                untrained=False, limit=None, n_train=50_000)
    return F.Limits(**(base | kw))


def test_limitations_cover_seed_intervals_tuning_resolution_and_what_settles_them():
    items = S.limitation_items(limits())
    text = " ".join(items)
    assert "One seed (0) and, for .sample(), one draw of the latent" in text and "SEED=1" in text
    assert "resample the 10,000 test images only" in text
    assert "No tuning" in text
    assert "encoded at 32 px, while the model's config gives a sample_size of 256 px" in text
    assert "RESOLUTION" in text
    assert "A mean-only feature set, as wide as .sample(), would separate the two" in text
    assert "Unequal widths" not in text  # none given


# ---- ties --------------------------------------------------------------------------------

def test_best_names_every_tie():
    metrics = kl_metrics({"svc": (0.4, 0.5), "rf": (0.5, 0.3)})
    best = F.best_of(metrics)
    assert best.top.accuracy == 0.5 and len(best.ties) == 1
    text = S.best_sentence(best)
    assert "tie for the best accuracy, 0.5000" in text
    assert "SVC on mean & std" in text and "RF on .sample()" in text
    assert "The best classifier is" not in text


def test_probes_tied_top_channels_are_named_as_a_tie():
    record = probe_record(whole=(0.45, 0.40, 0.50), channels=[(0.3, 0.25, 0.35), (0.3, 0.26, 0.34), (0.2, 0.15, 0.25)],
                          drops=[(0.01, -0.01, 0.03)] * 3)
    text = " ".join(S.probes_sentences(F.probes(record), "8"))
    assert "highest: channels 0 and 1, tied" in text
    assert "3 of the 3 channels have a 95% interval above chance" in text


def test_mean_std_tally_counts_ties_as_level():
    metrics = kl_metrics({"svc": (0.4, 0.5), "rf": (0.3, 0.3), "knn": (0.35, 0.3)})
    svm = F.sample_vs_mean_std(metrics)
    assert (svm.n_higher, svm.n_lower, svm.n_tied) == (1, 1, 1)
    text = " ".join(S.sample_vs_mean_std_sentences(svm))
    assert "is ahead as often as behind" in text and "level for 1" in text


# ---- metrics that disagree ---------------------------------------------------------------

def test_upcast_without_close_reconstructions_cannot_judge_broken():
    u = F.Upcast("sdxl-vae", "ema", "float32", True, -0.3, 0.04, 0.02, 0.001, any_close=False, accuracy_p=0.4,
                 psnr_ci=(-0.5, -0.1))
    text = S.upcast_text(u)
    assert "cannot tell whether its reconstructions are broken" in text
    assert "do not appear" not in text and "most likely" not in text
    assert text.startswith("The original study (Hidalgo Pujol, 2024) found sdxl-vae worse")


def test_upcast_names_the_original_model_and_this_runs_stand_in():
    u = F.Upcast("sdxl-vae-random", "ema", "bfloat16", True, 0.75, 0.03, 0.03, 0.01, any_close=False,
                 untrained=True, accuracy_p=0.4, psnr_ci=(0.5, 1.0))
    text = S.upcast_text(u)
    assert text.startswith("The original study (Hidalgo Pujol, 2024) found sdxl-vae worse")
    assert ("Here sdxl-vae-random (an untrained stand-in with random weights, in its place) ran in "
            "bfloat16") in text
    same = S.upcast_text(F.Upcast("sdxl-vae", "ema", "float32", True, 0.0, 0.8, 0.8, 0.0, any_close=True,
                                        accuracy_p=1.0, psnr_ci=(-0.1, 0.1)))
    assert "Here it ran in float32" in same and "in its place" not in same


def test_upcast_speculation_is_marked():
    u = F.Upcast("sdxl-vae", "ema", "float32", True, -0.5, 0.80, 0.82, 0.0, any_close=True,
                 accuracy_p=1.0, psnr_ci=(-0.7, -0.3))
    text = S.upcast_text(u)
    assert "not broken here" in text and "conjecture this run does not test" in text


def test_not_significant_but_interval_excludes_zero_says_why():
    metrics = kl_metrics({"svc": (0.4, 0.5), "rf": (0.3, 0.3), "knn": (0.3, 0.3)}, comparisons={
        m: {"sample_vs_pixels_pooled": comp("sample", "pixels_pooled", -0.05, 0.03)} for m in ("svc", "rf", "knn")})
    v = F.versus(metrics, "svc", "sample_vs_pixels_pooled")
    assert not v.significant and v.ci[1] < 0  # raw 0.03 x 3 tests = 0.09
    text = S.versus_sentence(v)
    assert "not clearly apart" in text and "not corrected for the 3 tests, excludes zero" in text


# ---- everything at chance ----------------------------------------------------------------

def test_everything_at_chance_claims_nothing_above_it():
    metrics = kl_metrics({"svc": (0.105, 0.11), "rf": (0.10, 0.095)}, half=0.02)
    best = F.best_of(metrics)
    assert not best.above_chance
    assert "no classifier is clearly above guessing" in S.best_sentence(best)
    share = S.latent_share_sentence(F.latent_share(metrics), untrained=False)
    assert share.count("not clearly above chance") == 2 and "times chance" not in share


def test_probes_at_chance_locate_nothing():
    record = probe_record(whole=(0.105, 0.09, 0.12), channels=[(0.1, 0.08, 0.12)] * 2,
                          drops=[(0.01, -0.01, 0.03)] * 2)
    text = " ".join(S.probes_sentences(F.probes(record), "8"))
    assert "not clearly above chance" in text and "costs most" not in text and "highest" not in text


def test_probes_channels_within_chance_single_out_none():
    record = probe_record(whole=(0.3, 0.25, 0.35), channels=[(0.11, 0.09, 0.13), (0.12, 0.1, 0.14)],
                          drops=[(0.01, -0.01, 0.03), (0.02, -0.005, 0.04)])
    text = " ".join(S.probes_sentences(F.probes(record), "8"))
    assert "no channel's 95% interval lies above chance, so none is singled out" in text
    assert "highest" not in text and "costs most" not in text
    assert "no single channel is shown to be needed" in text


def test_probes_costly_channel_is_descriptive():
    record = probe_record(whole=(0.45, 0.44, 0.46), channels=[(0.3, 0.25, 0.35), (0.2, 0.15, 0.25)],
                          drops=[(0.01, -0.01, 0.03), (0.08, 0.06, 0.1)])
    text = " ".join(S.probes_sentences(F.probes(record), "8"))
    assert "Leaving out channel 1 costs most, 8.0 points (paired 95% CI 6.0 to 10.0)" in text
    assert "1 of the 2 channels lie above zero (uncorrected, descriptive)" in text
    assert "30.0% (row 0, column 1)" in text
    assert all(s.count("95% CI") <= 1 for s in S.probes_sentences(F.probes(record), "8"))


def probe_record(whole, channels, drops) -> dict:
    return {"model_label": "Logistic Regression", "label": ".sample()", "model": "logreg",
            "shape": [len(channels), 1, 2], "classes": CLASSES,
            "all": {"accuracy": whole[0], "ci": [whole[1], whole[2]]},
            "channels": [{"channel": k, "accuracy": a, "ci": [lo, hi]} for k, (a, lo, hi) in enumerate(channels)],
            "positions": [[{"row": 0, "column": 0, "accuracy": 0.25},
                           {"row": 0, "column": 1, "accuracy": 0.3}]],
            "without_channel": [{"channel": k, "drop": d, "drop_ci": [lo, hi]}
                                for k, (d, lo, hi) in enumerate(drops)]}


def test_learning_curves_are_described_not_tested():
    rows = (F.CurveRow("LR", ".sample()", 64, 20_000, 50_000, 0.02, True, "pixel PCA", 64,
                       ((20_000, -0.01), (50_000, 0.01))),)
    text = " ".join(S.curve_sentences(F.Curves(rows), "2"))
    assert "from 20,000 to 50,000 training images" in text
    assert "every curve ends above the previous size's 95% band, which suggests" in text
    assert "not tested, so this is a description, not a finding" in text
    assert "Against pixel PCA of equal width" in text and "(the curves cross)" in text


def test_learning_curves_that_all_read_alike_against_pixels_are_said_once():
    def row(model, fs, width, leads):
        return F.CurveRow(model, fs, width, 20_000, 50_000, 0.005, False, "pixel PCA", width, leads)

    behind = ((20_000, -0.2), (50_000, -0.3))
    rows = tuple(row(m, fs, w, behind) for fs, w in ((".sample()", 64), ("mean & std", 128))
                 for m in ("Logistic Regression", "LightGBM"))
    text = " ".join(S.curve_sentences(F.Curves(rows), "2"))
    assert "Against pixel PCA of equal width, by the point estimates, all 4 curves are behind at every size." in text
    assert text.count("Against pixel PCA") == 1
    two = " ".join(S.curve_sentences(F.Curves(rows[:2]), "2"))
    assert "by the point estimates, both curves are behind at every size." in two
    # The same per model for both feature sets, but not the same for both models: one sentence.
    level = ((20_000, -0.2), (50_000, 0.0))
    alike = tuple(row(m, fs, w, behind if m == "LightGBM" else level)
                  for fs, w in ((".sample()", 64), ("mean & std", 128)) for m in ("Logistic Regression", "LightGBM"))
    text = " ".join(S.curve_sentences(F.Curves(alike), "2"))
    assert ("Against pixel PCA of equal width, by the point estimates, .sample() and mean & std alike: "
            "with Logistic Regression, behind or level at every size; with LightGBM, behind at every size.") in text
    mixed = rows[:3] + (row("LightGBM", "mean & std", 128, ((20_000, 0.1), (50_000, 0.2))),)
    text = " ".join(S.curve_sentences(F.Curves(mixed), "2"))
    assert "with LightGBM, ahead at every size" in text and text.count("Against pixel PCA") == 2


# ---- one feature set, deterministic encoder ----------------------------------------------

def test_one_feature_set_has_no_mean_std_claims():
    metrics = latent_metrics({"svc": 0.5, "rf": 0.4})
    assert F.sample_vs_mean_std(metrics) is None
    text = " ".join(conclusions(metrics, [], untrained=False))
    assert "mean & std" not in text and ".sample()" not in text
    assert "The latent, 32 numbers per image (1.0% of the 3,072 pixel values), reaches at most 50.0%" in text
    lim = " ".join(S.limitation_items(limits(stochastic=False, mean_std_confound=False)))
    assert "one draw" not in lim and "mean-only" not in lim


def test_deterministic_encoder_summary_follows_class_and_shape():
    metrics = latent_metrics({"svc": 0.5, "rf": 0.4})
    enc = F.encoder(encode_record("AutoencoderDC", 32, 32), metrics)
    assert enc.shape == (32, 1, 1) and not enc.stochastic and not enc.like_original
    dataset = {"dataset": "cifar10", "n_train": 50_000, "n_test": 10_000}
    text = " ".join(summary_sentences(metrics, enc, dataset, 2))
    assert "Can the 32×1×1 latent of a deep-compression autoencoder (diffusers AutoencoderDC" in text
    assert "Stable Diffusion VAE" not in text and "4×4×4" not in text
    assert "its one feature set, the latent itself (32 features)" in text
    assert "50,000 training and 10,000 test images" in text


def test_gap_to_original_is_framed_by_the_encoder():
    metrics = latent_metrics({"svc": 0.5, "rf": 0.4})
    tiny = F.encoder(encode_record("AutoencoderTiny", 4, 8), metrics)
    assert tiny.shape == (4, 4, 4) and not tiny.like_original  # same shape, another class
    gap = F.Gap(F.best_of(metrics), F.ORIGINAL_BEST, tiny, 50_000, 10_000, "cifar10", None)
    text = S.gap_sentence(gap)
    assert "another encoder" in text and "not a like-for-like comparison" in text
    assert "11.0 points below it" in text and "Hidalgo Pujol, 2024" in text
    ema = F.encoder(encode_record(name="stabilityai/sd-vae-ft-ema", revision="a" * 40), kl_metrics({"svc": (0.5, 0.6)}))
    assert ema.is_original_model
    assert "the published model this run also uses" in S.gap_sentence(
        F.Gap(F.best_of(kl_metrics({"svc": (0.5, 0.61)})), F.ORIGINAL_BEST, ema, 50_000, 10_000, "cifar10", None))


def test_weights_that_behave_as_untrained_are_not_read_as_perhaps_pretrained():
    # analysis.weights' verdict on weights not marked as vaelab's own: the Summary names it, the
    # Discussion gives it as the gap's reason, and no agreement with the original is drawn.
    metrics = kl_metrics({"svc": (0.11, 0.32)})
    enc = F.encoder(encode_record(), metrics, behaves_untrained=True)
    dataset = {"dataset": "cifar10", "n_train": 50_000, "n_test": 10_000}
    summary = " ".join(summary_sentences(metrics, enc, dataset, 3))
    assert "the weights in folder my-vae (which behave as untrained: see the note above the Summary) and trained" in summary
    assert "cannot tell" not in summary
    hub = F.encoder(encode_record(name="stabilityai/sd-vae-ft-ema", revision="a" * 40), metrics, behaves_untrained=True)
    assert S.weights(hub.source) == ("the published model stabilityai/sd-vae-ft-ema by Stability AI (Hugging Face Hub, "
                                     "commit aaaaaaa; its weights behave as untrained here: see the note above the Summary)")
    gap = F.Gap(F.best_of(metrics), F.ORIGINAL_BEST, enc, 50_000, 10_000, "cifar10", None)
    discussion = " ".join(S.discussion_sentences(gap, F.pixel_tally(metrics), untrained=False))
    assert "these weights behave as untrained (see the note above the Summary), which alone would explain" in discussion
    assert "cannot identify" not in discussion
    pairs = [{"a": "cat", "b": "dog", "a_as_b": 9, "b_as_a": 8}]
    metrics = metrics | {"classes": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                     "horse", "ship", "truck"]}  # the original's classes
    text = " ".join(conclusions(metrics, pairs, untrained=False, behaves_untrained=True))
    assert "For SVC, the most confused class pairs are cat/dog" in text and "original study" not in text
    assert "These weights behave as untrained (see the note above the Summary), so this measures them" in text
    trained = " ".join(conclusions(metrics, pairs, untrained=False))
    assert "As in the original study (Hidalgo Pujol, 2024), cat/dog is among them." in trained
    assert "behave as untrained" not in trained


def test_discussion_lists_what_differs_from_the_original():
    metrics = latent_metrics({"svc": 0.5})
    enc = F.encoder(encode_record("AutoencoderTiny", 4, 8), metrics)
    gap = F.Gap(F.best_of(metrics), F.ORIGINAL_BEST, enc, 2_000, 1_000, "imagefolder:/x", 200)
    text = " ".join(S.discussion_sentences(gap, F.pixel_tally(metrics), untrained=False))
    assert "the weights in folder my-vae, which it cannot identify as stabilityai/sd-vae-ft-ema" in text
    assert "the encoder differs: a tiny deterministic autoencoder (diffusers AutoencoderTiny, the TAESD family) giving 4×4×4 latents" in text
    assert "2,000 training and 1,000 test images here" in text
    tally = F.pixel_tally(metrics)
    assert tally.n_higher == tally.n_tests == 2 and tally.n_lower == 0
    assert "significantly ahead of pixels in all 2 tests" in text


def test_discussion_ahead_of_pixels_counts_the_tests_and_claims_no_lost_information():
    metrics = latent_metrics({"svc": 0.5, "rf": 0.3})
    metrics["comparisons"]["rf"] = {n: c | {"significant": False, "delta": 0.01, "ci": [-0.01, 0.03]}
                                    for n, c in metrics["comparisons"]["svc"].items()}
    enc = F.encoder(encode_record("AutoencoderTiny", 4, 8), metrics)
    gap = F.Gap(F.best_of(metrics), F.ORIGINAL_BEST, enc, 2_000, 1_000, "imagefolder:/x", 200)
    tally = F.pixel_tally(metrics)
    assert (tally.n_higher, tally.n_lower, tally.n_tests) == (2, 0, 4)
    text = " ".join(S.discussion_sentences(gap, tally, untrained=False))
    assert "significantly ahead of pixels in 2 of the 4 tests and never behind" in text
    assert "some tests" not in text and "lose" not in text


def test_discussion_behind_pixels_counts_the_tests_and_claims_no_lost_information():
    metrics = latent_metrics({"svc": 0.05})  # far below pooled pixels and pixel PCA
    for c in metrics["comparisons"]["svc"].values():  # both tests significant, the latent behind
        c["delta"], c["ci"] = -0.25, [-0.27, -0.23]
    enc = F.encoder(encode_record("AutoencoderTiny", 4, 8), metrics)
    gap = F.Gap(F.best_of(metrics), F.ORIGINAL_BEST, enc, 2_000, 1_000, "imagefolder:/x", 200)
    tally = F.pixel_tally(metrics)
    assert tally.n_lower == tally.n_tests == 2 and tally.n_higher == 0
    text = " ".join(S.discussion_sentences(gap, tally, untrained=False))
    assert "significantly behind pixels in all 2 tests" in text
    assert "some tests" not in text and "lose" not in text


# ---- what the run knows about the weights ------------------------------------------------

def test_weights_are_named_by_what_the_run_knows():
    hub = F.source({"name": "stabilityai/sd-vae-ft-ema", "revision": "f" * 40, "untrained": False})
    assert S.weights(hub) == ("the published model stabilityai/sd-vae-ft-ema by Stability AI "
                              "(Hugging Face Hub, commit fffffff)")
    folder = F.source({"name": "/home/u/models/sd-vae-ft-ema/", "revision": "local", "untrained": False,
                       "weights_sha256": "ab" * 32})
    text = S.weights(folder)
    assert text.startswith("the weights in folder sd-vae-ft-ema") and "cannot tell" in text
    assert "pretrained" not in text.replace("whether they are pretrained", "")
    assert "/home/u" not in text
    stated = F.source({"name": "/m/vae", "revision": "local", "untrained": False, "weights_sha256": "ab" * 32},
                      stated_sha256="AB" * 32)
    assert "pretrained as far as report.toml's stated checksum tells" in S.weights(stated)
    wrong = F.source({"name": "/m/vae", "revision": "local", "untrained": False, "weights_sha256": "ab" * 32},
                     stated_sha256="cd" * 32)
    assert not wrong.stated_pretrained
    random = F.source({"name": "/b/tiny-vae", "revision": "local", "untrained": True})
    assert "randomly initialised" in S.weights(random) and "not a pretrained model" in S.weights(random)


# ---- tables ------------------------------------------------------------------------------

def test_prf_table_drops_recall_only_when_it_equals_accuracy_everywhere():
    metrics = kl_metrics({"svc": (0.4, 0.5)})
    assert prf_table(metrics)["recall_is_accuracy"]
    metrics["results"]["svc"]["sample"]["recall_macro"] = 0.41
    assert not prf_table(metrics)["recall_is_accuracy"]


@pytest.mark.parametrize("cls,channels,down,shape", [("AutoencoderKL", 4, 8, (4, 4, 4)),
                                                     ("AutoencoderTiny", 16, 8, (16, 4, 4)),
                                                     ("AutoencoderDC", 32, 32, (32, 1, 1))])
def test_encoder_fact_shape_from_class_and_config(cls, channels, down, shape):
    metrics = kl_metrics({"svc": (0.4, 0.5)}) if cls == "AutoencoderKL" else latent_metrics({"svc": 0.5})
    enc = F.encoder(encode_record(cls, channels, down), metrics)
    assert enc.shape == shape and enc.like_original == (shape == (4, 4, 4) and cls == "AutoencoderKL")
    assert cls in enc.family


def c1_row(*values: float | None, random: bool = False) -> dict:
    """A Table C1 row as report.compare builds it: one cell per encoder, None where it lacks the
    feature set, the best real value(s) marked."""
    top = max(v for v in values if v is not None)
    return {"random": random, "cells": [{"value": v, "best": v == top and not random} for v in values]}


def mixed_variants(metrics: list[dict]) -> tuple[list[dict], dict]:
    """variants.json rows (encoder-only, one encoder each) and analysis.variants' decision for
    runs of different classes, on predictions made from their accuracies."""
    names = ("kl", "kl16", "taef2", "dc")[:len(metrics)]
    stats = [{"name": n, "label": n, "latents_sha256": n, "has_decoder": False, "images": 0, "resolution": 32}
             for n in names]
    return stats, V.decide(stats, metrics, [predictions_for(m) for m in metrics], {"psnr": {}, "ssim": {}}, seed=0)


def test_variants_rows_count_only_the_feature_sets_both_encoders_have():
    """Mixed classes: taef2 (the leader) shares the latent rows with dc alone; the KL encoders'
    rows are not its rows, and neither is a row only it has."""
    metrics = [kl_metrics({"svc": (0.2, 0.15)}), kl_metrics({"svc": (0.25, 0.1)}),
               latent_metrics({"svc": 0.6, "rf": 0.3}), latent_metrics({"svc": 0.3, "rf": 0.3})]
    stats, tests = mixed_variants(metrics)
    table = [c1_row(0.2, 0.25, None, None), c1_row(0.15, 0.1, None, None),
             c1_row(None, None, 0.6, 0.3), c1_row(None, None, 0.3, 0.3)]
    fact = F.variants_fact(stats, metrics, tests, table)
    (tally,) = fact.tallies
    assert fact.leader.labels == ("taef2",) and tally.rival == ("dc",)
    assert (tally.rows, tally.higher, tally.tied, tally.lower) == (2, 1, 1, 0)
    text = " ".join(S.variants_sentences(fact))
    assert "taef2 is higher than dc in 1 of the 2 rows they share and tied in 1" in text


def test_variants_top_encoder_sharing_no_feature_set_claims_no_rows():
    metrics = [kl_metrics({"svc": (0.2, 0.15)}), kl_metrics({"svc": (0.25, 0.1)}), latent_metrics({"svc": 0.6})]
    stats, tests = mixed_variants(metrics)
    fact = F.variants_fact(stats, metrics, tests, [c1_row(0.2, 0.25, None), c1_row(None, None, 0.6)])
    text = " ".join(S.variants_sentences(fact))
    assert "taef2 shares no feature set with another encoder" in text and "rows they share" not in text


def separability_info(pca: float, lda: float) -> dict:
    return {"pca": {"sample": {"centroid_accuracy": pca}}, "lda": {"sample": {"centroid_accuracy": lda}}}


def test_separability_at_chance_contrasts_nothing():
    """0.06 and 0.10 over 100 test images: both intervals hold chance, so no plane 'separates better'."""
    sep = F.separability(separability_info(0.06, 0.10), 10, 100, "sample")
    assert not sep.above_chance and sep.lda_ci[0] < 0.1 < sep.lda_ci[1]
    text = S.separability(sep)
    assert "neither plane shows class structure" in text and "better separated" not in text
    assert "100 test images include chance (0.10)" in text


def test_separability_above_chance_reads_the_planes_as_point_estimates():
    sep = F.separability(separability_info(0.20, 0.45), 10, 1000, "sample")
    assert sep.above_chance
    assert "better separated along the discriminant directions" in S.separability(sep)
    sep = F.separability(separability_info(0.45, 0.40), 10, 1000, "sample")
    assert "separate the classes no better" in S.separability(sep)
    assert F.separability({"pca": {}}, 10, 1000, "sample") is None


def test_learning_curves_at_chance_suggest_nothing():
    """Random weights: the curves wander around chance; 'the features limit these models' would
    read noise as a finding."""
    rows = tuple(F.CurveRow(m, ".sample()", 64, 50, 100, -0.03, False, None, None, (), at_chance=True)
                 for m in ("LR", "LightGBM"))
    text = " ".join(S.curve_sentences(F.Curves(rows), "2"))
    assert "All 2 curves end with chance inside the 95% band, so they say nothing" in text
    assert "limit these models" not in text and "would raise" not in text
    one_above = (rows[0], F.CurveRow("LightGBM", ".sample()", 64, 50, 100, 0.1, False, None, None, ()))
    assert "cannot be told from test-image noise" in " ".join(S.curve_sentences(F.Curves(one_above), "2"))


def test_curves_fact_marks_a_band_that_holds_chance():
    lc = {"sizes": [50, 100], "models": ["logreg"],
          "curves": {"sample": {"logreg": [{"n_train": 50, "accuracy": 0.12, "ci": [0.06, 0.18]},
                                           {"n_train": 100, "accuracy": 0.09, "ci": [0.04, 0.15]}]},
                     "mean_std": {"logreg": [{"n_train": 50, "accuracy": 0.3, "ci": [0.2, 0.4]},
                                             {"n_train": 100, "accuracy": 0.4, "ci": [0.3, 0.5]}]}}}
    metrics = kl_metrics({"logreg": (0.09, 0.4)}) | {"learning_curves": lc}
    rows = {r.fs_label: r.at_chance for r in F.curves(metrics).rows}
    assert rows == {".sample()": True, "mean & std": False}


def test_weak_rival_below_pooled_pixels_is_named_with_the_leads_over_it():
    # KNN makes little of pixel PCA-64 (0.13, below its 0.40 on pooled pixels); SVC does not.
    metrics = kl_metrics({"knn": (0.35, 0.4), "svc": (0.4, 0.5)}, half=0.01, comparisons={m: {
        "sample_vs_pixels_pca_sample": comp("sample", "pixels_pca_sample", 0.2, 1e-9),
        "mean_std_vs_pixels_pca_mean_std": comp("mean_std", "pixels_pca_mean_std", 0.1, 1e-9)}
        for m in ("knn", "svc")}, pixels={"knn": {"pixels_pooled": 0.40, "pixels_pca_sample": 0.13,
                                                  "pixels_pca_mean_std": 0.40}})
    rivals = F.weak_rivals(metrics)
    assert [(r.model_key, r.rival.fs, r.at_chance, r.n_leads) for r in rivals] == [
        ("knn", "pixels_pca_sample", False, 1)]
    text = S.weak_rivals_sentence(rivals)
    assert text.startswith("One pixel rival is weak: KNN on pixel PCA-64 reaches 13.0%, below the 40.0% "
                           "of the same classifier on pooled pixels with 48 features")
    assert "1 significant lead of the latent features in Table 4 is over this rival" in text
    tally = S.pixel_tally_sentence(F.pixel_tally(metrics))
    assert "1 of the 4 significantly higher is over a weak pixel rival, named below Table 4." in tally


def test_summary_says_when_its_equal_width_pca_is_a_weak_rival():
    # SVC, the best (mean & std, 0.5), leads pixel PCA-128, which it makes little of (0.13
    # against 0.40 on pooled pixels): the Summary's lead is over a weak rival and must say so.
    def metrics_with(pca_accuracy: float) -> dict:
        return kl_metrics({"svc": (0.4, 0.5)}, half=0.01, comparisons={"svc": {
            "sample_vs_pixels_pca_sample": comp("sample", "pixels_pca_sample", 0.1, 1e-9),
            "mean_std_vs_pixels_pca_mean_std": comp("mean_std", "pixels_pca_mean_std", 0.37, 1e-9)}},
            pixels={"svc": {"pixels_pooled": 0.40, "pixels_pca_sample": 0.40,
                            "pixels_pca_mean_std": pca_accuracy}})
    dataset = {"dataset": "cifar10", "n_train": 50_000, "n_test": 10_000}
    weak = metrics_with(0.13)
    text = " ".join(summary_sentences(weak, F.encoder(encode_record(), weak), dataset, 3))
    assert ("That pixel PCA is a weak rival: SVC on it reaches 13.0%, below the 40.0% it reaches on "
            "pooled pixels with 48 features (the two 95% intervals apart), so this lead overstates the "
            "latent's advantage over pixels") in text
    at_chance = metrics_with(0.10)
    assert ("That pixel PCA is a weak rival: SVC on it reaches 10.0%, its 95% interval holding chance "
            "(10.0%), so this lead overstates") in " ".join(
        summary_sentences(at_chance, F.encoder(encode_record(), at_chance), dataset, 3))
    fair = metrics_with(0.40)
    assert "weak rival" not in " ".join(summary_sentences(fair, F.encoder(encode_record(), fair), dataset, 3))


def test_weak_rival_at_chance_and_overlapping_intervals_are_not_weak():
    metrics = kl_metrics({"rf": (0.35, 0.4)}, half=0.03, pixels={"rf": {
        "pixels_pca_mean_std": 0.11,  # interval holds 0.10
        "pixels_pca_sample": 0.25}})  # [0.22, 0.28] vs [0.27, 0.33]
    rivals = F.weak_rivals(metrics)
    assert [(r.rival.fs, r.at_chance) for r in rivals] == [("pixels_pca_mean_std", True)]
    text = S.weak_rivals_sentence(rivals)
    assert "pixel PCA-128 is at chance with RF (11.0%; its 95% interval holds 10.0%)" in text
    assert text.endswith("None of Table 4's significant leads of the latent features is over this rival.")
    assert F.pixel_tally(metrics) is None  # no comparisons: no tally to point from


def test_weak_rivals_at_chance_are_named_once_per_pca_with_every_classifier():
    metrics = kl_metrics({"rf": (0.35, 0.4), "svc": (0.4, 0.5), "knn": (0.3, 0.3)}, half=0.03,
                         pixels={model: {"pixels_pca_mean_std": 0.11} for model in ("rf", "svc")})
    text = S.weak_rivals_sentence(F.weak_rivals(metrics))
    assert text.startswith("Some pixel rivals are weak: pixel PCA-128 is at chance with RF and SVC "
                           "(each 95% interval holds 10.0%).")
    assert text.count("PCA-128") == 1


def weak_pca_128_rivals(latents: dict, pixels: tuple) -> str:
    """The weak-rivals sentence where each (model, pooled, PCA-128) of ``pixels`` is on top
    of ``latents`` (kl_metrics' accuracies); PCA-64 equals pooled pixels, so it is not weak."""
    metrics = kl_metrics(latents, half=0.01, pixels={
        model: {"pixels_pooled": pooled, "pixels_pca_mean_std": pca, "pixels_pca_sample": pooled}
        for model, pooled, pca in pixels})
    return S.weak_rivals_sentence(F.weak_rivals(metrics), table_leads=0)


def test_weak_rival_pca_below_pooled_for_several_classifiers_is_named_once():
    # A PCA-512 from 1,000 images: below pooled pixels for every classifier (TAEF2, 100 per class).
    text = weak_pca_128_rivals({"rf": (0.45, 0.5), "svc": (0.6, 0.62)},
                               (("rf", 0.316, 0.212), ("svc", 0.330, 0.214)))
    assert text == ("Some pixel rivals are weak: pixel PCA-128 falls below pooled pixels with 48 features "
                    "for RF (21.2% against 31.6%) and SVC (21.4% against 33.0%), each pair of 95% "
                    "intervals apart.")


def test_weak_rival_pca_at_chance_for_one_and_below_pooled_for_others_is_named_once():
    # Pixel PCA-128 from few images: at chance with KNN, below pooled pixels for RF and SVC.
    text = weak_pca_128_rivals({"rf": (0.45, 0.5), "svc": (0.6, 0.62), "knn": (0.3, 0.3)},
                               (("rf", 0.316, 0.212), ("svc", 0.330, 0.214), ("knn", 0.30, 0.104)))
    assert text == ("Some pixel rivals are weak: pixel PCA-128 is at chance with KNN (10.4%; its 95% "
                    "interval holds 10.0%), and falls below pooled pixels with 48 features for RF "
                    "(21.2% against 31.6%) and SVC (21.4% against 33.0%), each pair of 95% intervals "
                    "apart.")


def test_weak_rivals_below_pooled_are_named_once_per_classifier_and_no_leads_says_nothing():
    # KNN makes little of both PCAs (the full-size random-weight run: 34.2% and 25.5% against
    # 40.3% on pooled pixels); Table 4 has no significant lead of the latent at all.
    metrics = kl_metrics({"knn": (0.10, 0.26)}, half=0.005, pixels={"knn": {
        "pixels_pooled": 0.403, "pixels_pca_sample": 0.342, "pixels_pca_mean_std": 0.255}})
    text = S.weak_rivals_sentence(F.weak_rivals(metrics), table_leads=0)
    assert text == ("Some pixel rivals are weak: KNN on pixel PCA-64 (34.2%) and PCA-128 (25.5%) falls "
                    "below the 40.3% it reaches on pooled pixels with 48 features (each pair of 95% "
                    "intervals apart).")
    assert "None of Table 4" in S.weak_rivals_sentence(F.weak_rivals(metrics), table_leads=3)


# ---- wording as data ---------------------------------------------------------------------

def wording_branches(source: str) -> list[str]:
    """The conditional expressions of ``source`` that only pick between two texts on whether a
    count is one (singular or plural) or a label is 'latent': the jobs of ngettext and nouns."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.IfExp) and isinstance(node.test, ast.Compare)
                and all(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.test.ops)):
            consts = [c.value for c in (node.test.left, *node.test.comparators) if isinstance(c, ast.Constant)]
            texts = all(isinstance(b, (ast.Constant, ast.JoinedStr)) for b in (node.body, node.orelse))
            if texts and (1 in consts or "latent" in consts):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_wording_branches_found_in_a_hand_written_plural():
    assert wording_branches("x = 'is' if n == 1 else 'are'\ny = 'the latent' if label == 'latent' else label")
    assert not wording_branches("x = ngettext('is', 'are', n)\ny = 'Holm-adjusted' if k > 1 else ''")


def test_sentences_have_no_singular_plural_or_latent_branch():
    from pathlib import Path

    report = Path(__file__).resolve().parent.parent / "report"
    assert [f"{p.name} {b}" for p in sorted(report.glob("*.py")) for b in wording_branches(p.read_text())] == []


def test_feature_set_nouns_read_as_sentences_use_them():
    from analysis.autoencoders import nouns

    assert nouns("latent").on == "the latent" and nouns(".sample()").on == ".sample()"
    assert nouns("latent").latents == "latents" and nouns("mean & std").latents == "mean & std latents"
    # a label of no VAE feature set (a pixel baseline's) keeps its own words
    assert nouns("pixels, PCA-64").features == "the pixels, PCA-64 features"


def test_grouped_says_alike_clauses_once_in_order():
    from report.formatting import grouped

    assert grouped([("SVC", "ahead"), ("KNN", "behind"), ("RF", "ahead")]) == [
        (["SVC", "RF"], "ahead"), (["KNN"], "behind")]


# ---- reviewed snapshots of whole paragraphs ----------------------------------------------

def test_snapshot_limitations_of_a_one_seed_untuned_run():
    from helpers import matches_snapshot

    widths = F.Widths((("pooled pixels", 48, ".sample()", 64, "pooling fixes its width"),))
    assert matches_snapshot("limitations-one-seed", S.limitation_items(limits(widths=widths, limit=200,
                                                                              n_train=2000, untrained=True)))


def test_snapshot_conclusions_of_a_kl_run():
    from helpers import matches_snapshot

    metrics = kl_metrics({"svc": (0.61, 0.63), "knn": (0.53, 0.55), "logreg": (0.45, 0.44)})
    assert matches_snapshot("conclusions-kl", conclusions(metrics, [], untrained=False))
