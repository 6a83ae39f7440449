"""Facts: what the run's numbers say, as typed views of the run's files, before any sentence
is written.

Not run on its own. The statistics are not decided here: every paired test's raw and
Holm-adjusted p-value and its verdict, the best result and its ties, the weak pixel rivals
and the most-confused classes are stored in metrics.json by analysis.verdicts, and the
facts read them. ``report.context`` builds these from one build's files and
``report.sentences`` renders each as prose; tests (tests/test_sentences.py) build them from
made-up metrics and assert the sentence against the fact.

A fact carries everything its sentence needs: the values, the feature widths on each side,
the test behind a comparison or the absence of one, and ties. No sentence looks anything up
in metrics.json itself, so a sentence can only say what its fact holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePath

from analysis.autoencoders import (MEAN_STD_VS_SAMPLE, PIXEL_COMPARISONS, POOLED, RANDOM,
                                   is_real_model, pca_baseline)
from analysis.autoencoders import nouns
from analysis.autoencoders import versus as comparison_name
from analysis.runs import feature_set_kind, filled, sets_of_kind
from analysis.stats import chance
from analysis.taesd import CHECKPOINT_SUFFIXES
from analysis.devices import PRECISION_NAMES

# The study this report reproduces: Hidalgo Pujol, P. (2024), Lab 10: Predicting CIFAR10
# using VAEs, APRNS, GIA-UPC. Its reported test accuracies, typed in from it; it used
# stabilityai/sd-vae-ft-ema (also -mse and sdxl-vae) on CIFAR-10, 4x4x4 latents.
ORIGINAL_ACCURACY = {
    "logreg": "0.44–0.46", "rf": "0.44–0.47", "knn": "0.53", "svc": "0.61",
    "histgb": "0.57", "lightgbm": "0.57–0.58", "xgboost": "0.55–0.56", RANDOM: "≈0.10",
}
ORIGINAL_BEST = 0.61
ORIGINAL_BEST_MODEL = "SVC"
ORIGINAL_ENCODER = "stabilityai/sd-vae-ft-ema"
ORIGINAL_CONFUSED = [("cat", "dog"), ("automobile", "truck")]
# SSIM at or below this (of 1) is called "not close": random-weight decoders give 0.0-0.1,
# a working SD VAE about 0.8 on CIFAR-10. Only used to say a run cannot judge "broken".
CLOSE_SSIM = 0.5
# metrics.json "comparisons" that pit a VAE feature set against a pixel baseline, in order.
BASELINE_COMPARISONS = tuple(PIXEL_COMPARISONS)
# Hub organisations whose names the report can spell out.
PUBLISHERS = {"stabilityai": "Stability AI", "madebyollin": "Ollin Boer Bohan",
              "mit-han-lab": "MIT HAN Lab", "black-forest-labs": "Black Forest Labs"}
@dataclass(frozen=True)
class ClassNames:
    """How the prose names one autoencoder class (analysis.autoencoders says what it yields)."""
    family: str  # "the latent of a …" (Summary, Discussion)
    title: str  # the default title's "Predicting CIFAR-10 from … latents"
    word: str  # the encoder as the text calls it: only a KL autoencoder is variational ("VAE")


CLASS_NAMES = {
    "AutoencoderKL": ClassNames("variational autoencoder (diffusers AutoencoderKL, the kind Stable Diffusion uses)",
                                "VAE", "VAE"),
    "AutoencoderTiny": ClassNames("tiny deterministic autoencoder (diffusers AutoencoderTiny, the TAESD family)",
                                  "tiny autoencoder (TAESD)", "encoder"),
    "AutoencoderDC": ClassNames("deep-compression autoencoder (diffusers AutoencoderDC, DC-AE)", "DC-AE", "encoder"),
    "TAESD": ClassNames("tiny deterministic autoencoder (a TAESD-family checkpoint)", "autoencoder", "encoder"),
}


def class_names(cls: str) -> ClassNames:
    """The names of class ``cls``; a class the table lacks is named by its own name."""
    return CLASS_NAMES.get(cls) or ClassNames(f"autoencoder ({cls})", "autoencoder", "encoder")


# ---- metrics helpers ---------------------------------------------------------------------

def real_models(metrics: dict) -> list[str]:
    return [m for m in metrics["model_order"] if is_real_model(m)]


def width(metrics: dict, fs: str) -> int:
    return int(metrics["feature_sets"][fs]["n_features"])


def fs_name(metrics: dict, fs: str) -> str:
    """A feature set as prose names it, without its width: '.sample() latents', 'pixel PCA'."""
    info = metrics["feature_sets"][fs]
    if feature_set_kind(info) == "vae":
        return nouns(info["label"]).latents
    return "pixel PCA" if info.get("matches") else "pooled pixels"


def comparison(metrics: dict, model: str, name: str) -> dict | None:
    """One stored comparison (analysis.verdicts judged it), or None when the run lacks it."""
    return (metrics.get("comparisons") or {}).get(model, {}).get(name)


# ---- facts -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Score:
    """One classifier on one feature set."""
    model: str  # label, "SVC (RBF)"
    fs: str  # feature-set key
    fs_label: str  # ".sample()"
    width: int
    accuracy: float
    ci: tuple[float, float] | None


@dataclass(frozen=True)
class Best:
    """The highest accuracy among the real classifiers, and whatever ties it."""
    top: Score
    ties: tuple[Score, ...]  # other model/feature-set pairs at exactly the same accuracy
    chance: float
    n_classes: int
    random_accuracy: float

    @property
    def above_chance(self) -> bool:
        """Its 95% interval lies above chance (without an interval: the point does)."""
        low = self.top.ci[0] if self.top.ci else self.top.accuracy
        return low > self.chance


def score(metrics: dict, model: str, fs: str) -> Score:
    res = metrics["results"][model][fs]
    ci = res.get("accuracy_ci")
    return Score(metrics["models"][model]["label"], fs, metrics["feature_sets"][fs]["label"],
                 width(metrics, fs), res["accuracy"], tuple(ci) if ci else None)


def best_of(metrics: dict, fs: str | None = None) -> Best:
    """The stored best real classifier and its ties (analysis.verdicts): over every VAE
    feature set, or over ``fs`` alone."""
    chosen = metrics["best"] if fs is None else metrics["best_by_feature_set"][fs]
    sets = sets_of_kind(metrics, "vae") if fs is None else [fs]
    guess = chance(metrics["classes"])
    return Best(score(metrics, chosen["model"], chosen["feature_set"]),
                tuple(score(metrics, t["model"], t["feature_set"]) for t in chosen["ties"]),
                guess, len(metrics["classes"]),
                max(metrics["results"][RANDOM][fs]["accuracy"] for fs in sets)
                if RANDOM in metrics["results"] else guess)


@dataclass(frozen=True)
class Versus:
    """A paired comparison of two feature sets seen by one classifier on the same test images."""
    model: str
    a: str  # prose name, "'.sample() latents'"
    a_width: int
    b: str
    b_width: int
    delta: float  # accuracy of a minus b
    ci: tuple[float, float]  # paired bootstrap 95% interval of delta
    p: float  # McNemar's exact p, raw
    p_adjusted: float | None  # Holm over the family; None: not part of a family
    family_size: int
    significant: bool  # analysis.verdicts' verdict: the adjusted p below the one alpha

    @property
    def direction(self) -> str:
        """'higher' / 'lower' when significant, else 'unclear'."""
        if not self.significant or self.delta == 0:
            return "unclear"
        return "higher" if self.delta > 0 else "lower"

    @property
    def same_width(self) -> bool:
        return self.a_width == self.b_width


def versus(metrics: dict, model: str, name: str) -> Versus | None:
    comp = comparison(metrics, model, name)
    if not comp:
        return None
    return Versus(metrics["models"][model]["label"], fs_name(metrics, comp["a"]),
                  width(metrics, comp["a"]), fs_name(metrics, comp["b"]), width(metrics, comp["b"]),
                  comp["delta"], tuple(comp["ci"]), comp["p_value"], comp.get("p_adjusted"),
                  comp.get("family_size", 1), bool(comp.get("significant")))


@dataclass(frozen=True)
class Pairing:
    """One kind of VAE-vs-pixels comparison (e.g. .sample() against pooled pixels)."""
    a: str
    a_width: int
    b: str
    b_width: int


@dataclass(frozen=True)
class PixelTally:
    """Every classifier's VAE-vs-pixel tests, one Holm family."""
    n_models: int
    pairings: tuple[Pairing, ...]
    n_tests: int
    n_higher: int
    n_lower: int
    n_raw_below: int  # raw p below the one alpha (analysis.stats.ALPHA)
    n_higher_over_weak: int = 0  # of n_higher, those over a weak rival (WeakRival)

    @property
    def n_unclear(self) -> int:
        return self.n_tests - self.n_higher - self.n_lower

    @property
    def unequal(self) -> tuple[Pairing, ...]:
        return tuple(p for p in self.pairings if p.a_width != p.b_width)


def pixel_tally(metrics: dict) -> PixelTally | None:
    comps = metrics.get("comparisons")
    if not comps:
        return None
    tests = [(m, n, c) for m, per in comps.items() for n, c in per.items() if n in BASELINE_COMPARISONS]
    if not tests:
        return None
    names = [n for n in BASELINE_COMPARISONS if any(n == t[1] for t in tests)]
    pairings = []
    for name in names:
        c = next(c for _, n, c in tests if n == name)
        pairings.append(Pairing(fs_name(metrics, c["a"]), width(metrics, c["a"]),
                                fs_name(metrics, c["b"]), width(metrics, c["b"])))
    weak = {(r["model"], r["feature_set"]) for r in metrics["weak_rivals"]}
    return PixelTally(len({m for m, _, _ in tests}), tuple(pairings), len(tests),
                      sum(c["significant"] and c["delta"] > 0 for _, _, c in tests),
                      sum(c["significant"] and c["delta"] < 0 for _, _, c in tests),
                      sum(c["raw_significant"] for _, _, c in tests),
                      sum(c["significant"] and c["delta"] > 0 and (m, c["b"]) in weak for m, _, c in tests))


@dataclass(frozen=True)
class WeakRival:
    """A pixel PCA that one classifier makes little of: at chance (its 95% interval holds
    chance), or below the same classifier on the narrower pooled pixels (the two 95% intervals
    apart). A latent's lead over such a rival says more about the rival than about the latent."""
    model_key: str
    rival: Score  # the classifier on the pixel PCA
    pooled: Score | None  # the same classifier on pooled pixels
    chance: float
    n_leads: int  # the latent feature sets' significant leads over it (Table 4)
    at_chance: bool  # its 95% interval holds chance (else: below the pooled pixels)


def weak_rivals(metrics: dict) -> tuple[WeakRival, ...]:
    """The stored weak pixel rivals (analysis.verdicts), classifier by classifier."""
    guess = chance(metrics["classes"])
    return tuple(WeakRival(r["model"], score(metrics, r["model"], r["feature_set"]),
                           score(metrics, r["model"], POOLED) if POOLED in metrics["results"][r["model"]] else None,
                           guess, r["n_leads"], r["at_chance"])
                 for r in metrics["weak_rivals"])


@dataclass(frozen=True)
class LatentShare:
    """Each VAE feature set's width, its share of the image's pixel values and its best score."""
    best: tuple[Best, ...]  # one per VAE feature set, in display order
    pixels: int  # values per image the encoder saw: 32*32*3


def latent_share(metrics: dict) -> LatentShare:
    return LatentShare(tuple(best_of(metrics, fs) for fs in sets_of_kind(metrics, "vae")),
                       32 * 32 * 3)


@dataclass(frozen=True)
class SampleVsMeanStd:
    """mean & std against one .sample() over the real classifiers (KL autoencoders only)."""
    sample_width: int
    mean_std_width: int
    n_models: int
    n_higher: int  # mean & std above .sample() (point estimates)
    n_lower: int
    mean_delta: float
    largest: tuple[str, float]  # (model label, delta) of the largest change
    n_tested: int
    n_significant: int
    n_raw_below: int
    best_model: Versus | None  # the best classifier's test

    @property
    def n_tied(self) -> int:
        return self.n_models - self.n_higher - self.n_lower


def sample_vs_mean_std(metrics: dict) -> SampleVsMeanStd | None:
    if not {"sample", "mean_std"} <= set(sets_of_kind(metrics, "vae")):
        return None
    deltas = [(metrics["models"][m]["label"],
               metrics["results"][m]["mean_std"]["accuracy"] - metrics["results"][m]["sample"]["accuracy"])
              for m in real_models(metrics)]
    comps = metrics.get("comparisons") or {}
    tests = [per[MEAN_STD_VS_SAMPLE] for per in comps.values() if MEAN_STD_VS_SAMPLE in per]
    return SampleVsMeanStd(
        width(metrics, "sample"), width(metrics, "mean_std"), len(deltas),
        sum(d > 0 for _, d in deltas), sum(d < 0 for _, d in deltas),
        sum(d for _, d in deltas) / len(deltas), max(deltas, key=lambda t: abs(t[1])),
        len(tests), sum(t["significant"] for t in tests), sum(t["raw_significant"] for t in tests),
        versus(metrics, metrics["best"]["model"], MEAN_STD_VS_SAMPLE))


@dataclass(frozen=True)
class CurveRow:
    model: str
    fs_label: str
    width: int
    prev_n: int
    last_n: int
    gain: float  # full-size accuracy minus the previous size's
    above_band: bool  # the full-size point lies above the previous point's 95% band
    pixel: str | None  # prose name of the pixel PCA curve matched to this feature set
    pixel_width: int | None
    leads: tuple[tuple[int, float], ...]  # (training images, VAE minus pixels) per size
    at_chance: bool = False  # the full-size point's 95% band includes chance


@dataclass(frozen=True)
class Curves:
    """Learning curves: descriptive, bands over test images, no test and no correction."""
    rows: tuple[CurveRow, ...]

    @property
    def n_above(self) -> int:
        return sum(r.above_band for r in self.rows)

    @property
    def all_at_chance(self) -> bool:
        """Every curve ends at chance: its shape then says nothing about what limits a model."""
        return all(r.at_chance for r in self.rows)


def curves(metrics: dict) -> Curves | None:
    lc = metrics.get("learning_curves")
    if not lc or len(lc.get("sizes", [])) < 2:
        return None
    pixel_of = {info.get("matches"): key for key, info in metrics["feature_sets"].items()
                if info.get("matches") and key in lc["curves"]}
    rows = []
    for fs in sets_of_kind(metrics, "vae"):
        for model in lc["models"]:
            points = lc["curves"].get(fs, {}).get(model)
            if not points or len(points) < 2:
                continue
            prev, last = points[-2], points[-1]
            pixel = {p["n_train"]: p["accuracy"]
                     for p in lc["curves"].get(pixel_of.get(fs), {}).get(model, [])}
            rows.append(CurveRow(
                metrics["models"][model]["label"], metrics["feature_sets"][fs]["label"],
                width(metrics, fs), prev["n_train"], last["n_train"], last["accuracy"] - prev["accuracy"],
                last["accuracy"] > prev["ci"][1],
                fs_name(metrics, pixel_of[fs]) if pixel_of.get(fs) else None,
                width(metrics, pixel_of[fs]) if pixel_of.get(fs) else None,
                tuple((p["n_train"], p["accuracy"] - pixel[p["n_train"]]) for p in points
                      if p["n_train"] in pixel),
                last["ci"][0] <= chance(metrics["classes"])))
    return Curves(tuple(rows)) if rows else None


@dataclass(frozen=True)
class Probes:
    """Where the class information sits: channels, positions, leave-one-out (descriptive:
    intervals are per probe, uncorrected, and no test is made)."""
    model: str
    label: str
    shape: tuple[int, int, int]
    whole: float
    whole_ci: tuple[float, float]
    chance: float
    channels: tuple[tuple[int, float, tuple[float, float]], ...]  # (channel, accuracy, ci)
    drops: tuple[tuple[int, float, tuple[float, float]], ...]  # (channel, drop, paired ci)
    positions: tuple[tuple[int, int, float], ...]  # (row, column, accuracy)

    @property
    def above_chance(self) -> bool:
        return self.whole_ci[0] > self.chance

    @property
    def channels_above_chance(self) -> tuple[int, ...]:
        return tuple(c for c, _, ci in self.channels if ci[0] > self.chance)

    @property
    def top_channels(self) -> tuple[int, ...]:
        """Channels at the highest single-channel accuracy (more than one: a tie)."""
        top = max(a for _, a, _ in self.channels)
        return tuple(c for c, a, _ in self.channels if a == top)

    @property
    def costly(self) -> tuple[int, ...]:
        """Channels whose paired interval for the cost of leaving them out lies above zero."""
        return tuple(c for c, _, ci in self.drops if ci[0] > 0)


def probes(record: dict | None, model_label: str | None = None) -> Probes | None:
    if not record:
        return None
    return Probes(
        model_label or record.get("model_label") or record["model"], record["label"],
        tuple(record["shape"]), record["all"]["accuracy"], tuple(record["all"]["ci"]),
        chance(record["classes"]),
        tuple((e["channel"], e["accuracy"], tuple(e["ci"])) for e in record.get("channels", [])),
        tuple((e["channel"], e["drop"], tuple(e["drop_ci"])) for e in record.get("without_channel", [])),
        tuple((e["row"], e["column"], e["accuracy"]) for row in record.get("positions", []) for e in row))


@dataclass(frozen=True)
class Source:
    """What the run knows about where the weights came from."""
    kind: str  # "hub" (an id resolved to a commit), "folder" (a local folder), "random"
    name: str  # hub id, or the folder's name (the path is in Appendix A)
    revision: str | None  # hub commit
    publisher: str | None
    cls: str
    stated_pretrained: bool = False  # report.toml names these weights' sha256 as pretrained
    behaves_untrained: bool = False  # analysis.weights' verdict (weights.json): named on page 1

    @property
    def place(self) -> str:
        """"file" for a checkpoint file (a TAESD .pth), else "folder"."""
        return "file" if PurePath(self.name).suffix in CHECKPOINT_SUFFIXES else "folder"


def source(model: dict, stated_sha256: str = "", behaves_untrained: bool = False) -> Source:
    model = filled("model", model)
    name, revision, cls = model["name"], model["revision"], model["autoencoder_class"]
    if model["untrained"]:
        return Source("random", PurePath(name).name or name, None, None, cls)
    if revision != "local" and re.fullmatch(r"[0-9a-f]{40}", revision) and "/" in name \
            and not PurePath(name).is_absolute():
        org = name.split("/")[0]
        return Source("hub", name, revision, PUBLISHERS.get(org), cls, behaves_untrained=behaves_untrained)
    stated = bool(stated_sha256) and stated_sha256.strip().lower() == model["weights_sha256"]
    return Source("folder", PurePath(name.rstrip("/")).name, None, None, cls, stated, behaves_untrained)


@dataclass(frozen=True)
class Encoder:
    """The primary encoder as the prose describes it."""
    source: Source
    cls: str
    stochastic: bool
    shape: tuple[int, int, int]  # (C, h, w) of one latent
    feature_sets: tuple[tuple[str, int], ...]  # (label, width) per VAE feature set
    resolution: int
    sample_size: int | None  # the config's sample_size: the resolution it was made for

    @property
    def family(self) -> str:
        return class_names(self.cls).family

    @property
    def like_original(self) -> bool:
        """The original study's kind of latent: an AutoencoderKL giving 4x4x4 at 32 px."""
        return self.cls == "AutoencoderKL" and self.shape == (4, 4, 4)

    @property
    def is_original_model(self) -> bool:
        """The published model behind the original study's best figure, at a hub commit."""
        return self.source.kind == "hub" and self.source.name == ORIGINAL_ENCODER


def encoder(encode: dict, metrics: dict, stated_sha256: str = "", behaves_untrained: bool = False) -> Encoder:
    """``behaves_untrained``: analysis.weights' verdict on the run (weights.json)."""
    encode = filled("encode", encode)  # a made-up record (tests) gets the reader's defaults
    down, res, cfg = int(encode["downsampling"]), int(encode["resolution"]), encode["vae_config"]
    return Encoder(
        source(encode["model"], stated_sha256, behaves_untrained), encode["autoencoder_class"],
        bool(encode["stochastic"]), (int(cfg["latent_channels"]), res // down, res // down),
        tuple((metrics["feature_sets"][fs]["label"], width(metrics, fs)) for fs in sets_of_kind(metrics, "vae")),
        res, cfg["sample_size"])


@dataclass(frozen=True)
class Gap:
    """This run's best against the original study's, and what differs that the run can see."""
    best: Best
    original: float
    encoder: Encoder
    n_train: int
    n_test: int
    dataset: str
    limit: int | None
    overall: "Overall | None" = None  # several variants: ``best`` is the first's

    @property
    def delta(self) -> float:
        return self.best.top.accuracy - self.original


@dataclass(frozen=True)
class ReconRank:
    """One measure (PSNR or SSIM) over the variants' shared decoded images, as
    analysis.variants.recon_tests decided it."""
    measure: str  # "PSNR", "SSIM"
    leader: str  # label of the highest mean
    value: float  # its mean
    best: tuple[str, ...]  # the leader and every variant the paired bootstrap cannot tell from it
    # (label, leader's mean minus its, 95% paired bootstrap interval) of each of those others
    close: tuple[tuple[str, float, tuple[float, float]], ...]

    @property
    def established(self) -> bool:
        """The leader's lead over every other variant is established (its interval excludes 0)."""
        return self.best == (self.leader,)


@dataclass(frozen=True)
class Recon:
    """Reconstruction quality per variant over the same test images (from variants.json and
    variant-tests.json)."""
    images: int
    psnr: ReconRank
    ssim: ReconRank
    max_ssim: float

    @property
    def any_close(self) -> bool:
        return self.max_ssim > CLOSE_SSIM


def recon_rank(measure: str, test: dict, labels: list[str], means: list[float]) -> ReconRank:
    lead = test["leader"]
    close = []
    for pair in test["pairs"]:
        if lead in (pair["a"], pair["b"]) and not pair["established"]:
            sign = 1 if pair["a"] == lead else -1
            lo, hi = (sign * x for x in pair["ci"])
            close.append((labels[pair["b"] if sign == 1 else pair["a"]], sign * pair["delta"], (min(lo, hi), max(lo, hi))))
    return ReconRank(measure, labels[lead], means[lead], tuple(labels[i] for i in test["best"]), tuple(close))


def recon(variants: list[dict], tests: dict) -> Recon | None:
    """None with fewer than two decoders (nothing to rank)."""
    rec = tests.get("reconstruction")
    if not rec:
        return None
    labels = [v["label"] for v in variants]
    return Recon(int(rec["images"]), recon_rank("PSNR", rec["psnr"], labels, [v["psnr_mean"] for v in variants]),
                 recon_rank("SSIM", rec["ssim"], labels, [v["ssim_mean"] for v in variants]),
                 max(v["ssim_mean"] for v in variants if v["has_decoder"]))


@dataclass(frozen=True)
class Upcast:
    """The original study's sdxl-vae problem, as this run can see it."""
    name: str
    primary: str
    precision: str  # "float32" ...
    force_upcast: bool | None
    psnr_gap: float  # against the primary, dB
    ssim: float
    primary_ssim: float
    accuracy_gap: float
    any_close: bool  # some variant reconstructs closely (SSIM > CLOSE_SSIM)
    untrained: bool = False  # a random-weight stand-in, not the published sdxl-vae
    # The tests of both gaps (analysis.variants): the best results' Holm-adjusted McNemar p and
    # verdict (None when both share an encoder: one result), the PSNR gap's paired interval.
    accuracy_p: float | None = None
    accuracy_significant: bool = False
    psnr_ci: tuple[float, float] | None = None

    @property
    def clearly_worse(self) -> bool:
        return self.ssim < 0.5 * max(self.primary_ssim, 1e-9)


@dataclass(frozen=True)
class Widths:
    """Pixel baselines narrower than the VAE feature set they are set against."""
    narrower: tuple[tuple[str, int, str, int, str], ...]  # (pixels, width, vae, width, why)

    @property
    def capped(self) -> bool:
        """A pixel PCA is narrower than its VAE set (capped by the training images), rather than
        only the pooled pixels, whose width the image size fixes."""
        return any(pixels == "pixel PCA" for pixels, *_ in self.narrower)


def widths(metrics: dict) -> Widths:
    out = []
    for fs in sets_of_kind(metrics, "baseline"):
        info = metrics["feature_sets"][fs]
        if info.get("matches"):
            vae = info["matches"]
            if info["n_features"] < width(metrics, vae):
                out.append(("pixel PCA", info["n_features"], metrics["feature_sets"][vae]["label"],
                            width(metrics, vae), "a PCA has at most as many components as training images"))
        else:  # set against the primary VAE feature set only (BASELINE_COMPARISONS)
            vae = sets_of_kind(metrics, "vae")[0]
            if info["n_features"] != width(metrics, vae):
                out.append(("pooled pixels", info["n_features"], metrics["feature_sets"][vae]["label"],
                            width(metrics, vae), "pooling to 4×4×3 fixes its width"))
    return Widths(tuple(out))


@dataclass(frozen=True)
class Limits:
    """What the run cannot tell, from its own settings."""
    seed: int
    stochastic: bool
    n_test: int
    resolution: int
    sample_size: int | None
    widths: Widths
    mean_std_confound: bool  # mean & std vs .sample() doubles the width and drops the noise
    curves: bool
    probes: bool
    untrained: bool
    limit: int | None
    n_train: int
    extra: dict = field(default_factory=dict)
    seeds: Seeds | None = None  # several seeds ran (SEEDS): what they measured
    tuning: Tuning | None = None  # some classifiers were tuned (TUNE)

    @property
    def suggested_seeds(self) -> tuple[int, ...]:
        """Three seeds to suggest for SEEDS, the run's own first: 0 -> (0, 1, 2), 5 -> (5, 0, 1)."""
        return (self.seed, *[x for x in range(3) if x != self.seed][:2])


@dataclass(frozen=True)
class Summary:
    """What the Summary says: the question, what was run, the best result and its test
    against the equal-width pixel PCA."""
    encoder: Encoder
    dataset: str  # dataset.json's "dataset": "cifar10" or "imagefolder:PATH"
    n_train: int
    n_test: int
    n_models: int  # real classifiers (the random predictor besides)
    n_baselines: int
    best: Best
    pca: Versus | None  # the best model's feature set against its pixel PCA
    overall: Overall | None = None  # several variants: the first is the one described above
    pca_weak: WeakRival | None = None  # that pixel PCA, when it is a weak rival for the best model


def summary(metrics: dict, enc: Encoder, dataset: dict, n_baselines: int) -> Summary:
    top = metrics["best"]
    rival = pca_baseline(top["feature_set"])
    pca = versus(metrics, top["model"], comparison_name(top["feature_set"], rival))
    weak = next((r for r in weak_rivals(metrics) if r.model_key == top["model"] and r.rival.fs == rival), None)
    return Summary(enc, dataset["dataset"], dataset["n_train"], dataset["n_test"],
                   len(real_models(metrics)), n_baselines, best_of(metrics), pca, pca_weak=weak)


@dataclass(frozen=True)
class Baselines:
    """The pixel baselines and their widths against the VAE feature sets they are set against."""
    pooled: int | None  # width of the pooled pixels; None: no pooled baseline
    pcas: tuple[tuple[int, str, int], ...]  # (components, VAE feature set label, its width)
    n_train: int  # training images: a PCA has at most as many components


def baselines(metrics: dict, n_train: int) -> Baselines:
    sets = metrics["feature_sets"]
    kept = sets_of_kind(metrics, "baseline")
    return Baselines(
        next((width(metrics, fs) for fs in kept if not sets[fs].get("matches")), None),
        tuple((width(metrics, fs), sets[sets[fs]["matches"]]["label"], width(metrics, sets[fs]["matches"]))
              for fs in kept if sets[fs].get("matches")),
        metrics.get("n_train", n_train))


# ---- comparing encoders (variants.json and each variant's metrics.json) ------------------

@dataclass(frozen=True)
class Separability:
    """Nearest-centroid test accuracy of the primary feature set in its PCA plane and in its
    LDA plane (figures.json), each with an exact 95% interval over the test images. The two
    are point estimates on the same images; no test compares them."""
    pca: float
    lda: float
    pca_ci: tuple[float, float]
    lda_ci: tuple[float, float]
    chance: float
    n_test: int
    feature_set: str  # the primary VAE feature set's key ("sample", "latent")

    @property
    def above_chance(self) -> bool:
        """Either plane's interval lies above chance: there is class structure to compare."""
        return self.pca_ci[0] > self.chance or self.lda_ci[0] > self.chance


def separability(figures_info: dict, n_classes: int, n_test: int, primary: str) -> Separability | None:
    from analysis.stats import proportion_ci

    pca, lda = figures_info.get("pca", {}).get(primary), figures_info.get("lda", {}).get(primary)
    if not pca or not lda or "centroid_accuracy" not in pca or "centroid_accuracy" not in lda:
        return None
    p_acc, l_acc = pca["centroid_accuracy"], lda["centroid_accuracy"]
    return Separability(p_acc, l_acc, proportion_ci(p_acc, n_test), proportion_ci(l_acc, n_test),
                        chance(n_classes), n_test, primary)


@dataclass(frozen=True)
class EncoderBest:
    """One distinct encoder of Table C1 (the variants that share it) and its best result."""
    labels: tuple[str, ...]
    accuracy: float
    model: str  # label


@dataclass(frozen=True)
class RowTally:
    """The leading encoder against one other over the Table C1 rows both have
    (analysis.variants.row_tests): higher, tied and lower rows, and how many of the higher and
    lower a test supports (McNemar, Holm over every row of every rival)."""
    rival: tuple[str, ...]
    rows: int
    higher: int
    tied: int
    lower: int
    higher_significant: int
    lower_significant: int
    min_p_adjusted: float


@dataclass(frozen=True)
class BestDiff:
    """Two encoders' best results on the same test images (analysis.variants.best_tests),
    ``a`` the one with the higher best accuracy."""
    a: EncoderBest
    b: EncoderBest
    delta: float  # a minus b
    ci: tuple[float, float]
    p_adjusted: float
    family_size: int
    significant: bool


@dataclass(frozen=True)
class Variants:
    """The encoders compared in Table C1 and what their decoders allow to compare."""
    ranked: tuple[EncoderBest, ...]  # highest best accuracy first (ties in column order)
    by_resolution: bool  # the variants differ in resolution
    n_compared_rows: int  # Table C1 rows that more than one encoder has
    leader: EncoderBest  # the encoder the row tallies are about (analysis.variants' leader)
    tallies: tuple[RowTally, ...]  # the leader against each encoder it shares a row with
    family_size: int  # row tests, all rivals together
    random_rows: int  # random-predictor rows left out of the tallies
    best_diffs: tuple[BestDiff, ...]  # the leader's best against each other encoder's
    recon: Recon | None  # reconstruction quality, when more than one variant has a decoder
    no_decoder: tuple[str, ...]  # labels of the encoder-only variants


@dataclass(frozen=True)
class Overall:
    """A report of several variants, as its Summary and Conclusions name it: every variant, the
    best over all of them and its test against the best of the other encoders."""
    labels: tuple[str, ...]  # every variant, primary first
    n_encoders: int
    top: tuple[EncoderBest, ...]  # the encoders with the highest best accuracy (more than one: tied)
    primary_leads: bool  # the primary's encoder is among ``top``
    diffs: tuple[BestDiff, ...]  # the leading encoder's best against each other encoder's


def overall(v: Variants, labels: list[str]) -> Overall:
    top = tuple(e for e in v.ranked if e.accuracy == v.ranked[0].accuracy)
    return Overall(tuple(labels), len(v.ranked), top, any(labels[0] in e.labels for e in top), v.best_diffs)


def compared_rows(table: list[dict]) -> list[dict]:
    """Table C1 rows (real classifiers) that more than one encoder has: only those compare."""
    return [r for r in table if not r["random"] and sum(c["value"] is not None for c in r["cells"]) > 1]


def encoder_bests(variants: list[dict], metrics: list[dict], groups: list[list[int]]) -> list[EncoderBest]:
    """One EncoderBest per group of ``groups`` (variant indices sharing an encoder), in order."""
    out = []
    for group in groups:
        m = metrics[group[0]]
        out.append(EncoderBest(tuple(variants[j]["label"] for j in group), m["best"]["accuracy"],
                               m["models"][m["best"]["model"]]["label"]))
    return out


def best_diff(test: dict, encoders: list[EncoderBest]) -> BestDiff:
    """One of variant-tests.json's ``best`` pairs, turned so that ``a`` is ahead."""
    flip = test["delta"] < 0
    a, b = (encoders[test["b"]], encoders[test["a"]]) if flip else (encoders[test["a"]], encoders[test["b"]])
    lo, hi = test["ci"]
    return BestDiff(a, b, abs(test["delta"]), (-hi, -lo) if flip else (lo, hi), test["p_adjusted"],
                    test["family_size"], test["significant"])


def variants_fact(variants: list[dict], metrics: list[dict], tests: dict, table: list[dict]) -> Variants:
    """``tests``: variant-tests.json (its ``groups``: variant indices sharing an encoder);
    ``table``: Table C1's rows, one column per group (report.compare)."""
    encoders = encoder_bests(variants, metrics, tests["groups"])
    lead = tests["leader"]
    tallies = tuple(RowTally(encoders[r["group"]].labels, len(r["rows"]), r["higher"], r["tied"], r["lower"],
                             r["higher_significant"], r["lower_significant"], r["min_p_adjusted"])
                    for r in tests["rows"]["rivals"])
    diffs = tuple(best_diff(t, encoders) for t in tests["best"] if lead in (t["a"], t["b"]))
    return Variants(
        tuple(sorted(encoders, key=lambda e: -e.accuracy)), len({v["resolution"] for v in variants}) > 1,
        len(compared_rows(table)), encoders[lead], tallies, tests["rows"]["family_size"],
        tests["rows"]["random_rows"], diffs, recon(variants, tests),
        tuple(v["label"] for v in variants if not v["has_decoder"]))


@dataclass(frozen=True)
class SharedEncoder:
    """Variants with one encoder (same checksum, same settings): identical latents."""
    labels: tuple[str, ...]
    checksum: str  # encoder_sha256, "unknown" when not recorded
    quality: tuple[tuple[str, float | None, float | None], ...]  # (label, PSNR, SSIM); None: no decoder


def shared_encoders(variants: list[dict], groups: list[list[int]]) -> tuple[SharedEncoder, ...]:
    out = []
    for group in groups:
        if len(group) < 2:
            continue
        members = [variants[i] for i in group]
        out.append(SharedEncoder(
            tuple(v["label"] for v in members), members[0]["encoder_sha256"] or "unknown",
            tuple((v["label"], v["psnr_mean"], v["ssim_mean"]) if v["has_decoder"] else (v["label"], None, None)
                  for v in members)))
    return tuple(out)


@dataclass(frozen=True)
class ResolutionPoint:
    resolution: int
    accuracy: float  # the best
    model: str  # label
    fs_label: str
    width: int


@dataclass(frozen=True)
class Resolutions:
    """One VAE run at several resolutions: its best result at each, lowest first."""
    name: str
    points: tuple[ResolutionPoint, ...]

    @property
    def change(self) -> float:
        """Best accuracy at the highest resolution minus at the lowest."""
        return self.points[-1].accuracy - self.points[0].accuracy

    @property
    def cost(self) -> float:
        """The encoder's work per image at the highest resolution, against the lowest."""
        return (self.points[-1].resolution / self.points[0].resolution) ** 2


def resolutions(variants: list[dict], metrics: list[dict]) -> tuple[Resolutions, ...]:
    by_model: dict[str, list[int]] = {}
    for i, v in enumerate(variants):
        by_model.setdefault(v["model"], []).append(i)
    out = []
    for members in by_model.values():
        members = sorted(members, key=lambda i: variants[i]["resolution"])
        if len({variants[i]["resolution"] for i in members}) < 2:
            continue
        points = []
        for i in members:
            best = metrics[i]["best"]
            fs = metrics[i]["feature_sets"][best["feature_set"]]
            points.append(ResolutionPoint(variants[i]["resolution"], best["accuracy"],
                                          metrics[i]["models"][best["model"]]["label"], fs["label"],
                                          fs["n_features"]))
        low = variants[members[0]]
        out.append(Resolutions(low.get("vae_name", low["model"]), tuple(points)))
    return tuple(out)


def pair_test(tests: list[dict], a: int, b: int) -> dict | None:
    """The test of ``a`` against ``b`` among ``tests`` (dicts with "a", "b", "delta", "ci"),
    turned to read ``a`` minus ``b``; None when there is none."""
    for t in tests:
        if (t["a"], t["b"]) == (a, b):
            return t
        if (t["a"], t["b"]) == (b, a):
            lo, hi = t["ci"]
            return t | {"a": a, "b": b, "delta": -t["delta"], "ci": [-hi, -lo]}
    return None


def upcast(variants: list[dict], metrics: list[dict], tests: dict) -> Upcast | None:
    """The original sdxl-vae problem (broken reconstructions), as the first sdxl variant shows
    it against the primary; None without one, or without decoders to compare."""
    suspects = [i for i, v in enumerate(variants) if "sdxl" in v["model"].lower()]
    if not suspects:
        return None
    i = suspects[0]
    v, primary = variants[i], variants[0]
    if not (v["has_decoder"] and primary["has_decoder"]):
        return None  # the problem is about reconstructions: nothing to compare without them
    group = {j: g for g, members in enumerate(tests["groups"]) for j in members}
    best = pair_test(tests["best"], group[i], group[0])
    psnr = pair_test(tests["reconstruction"]["psnr"]["pairs"], i, 0)
    return Upcast(
        v["label"], primary["label"], PRECISION_NAMES[v["precision"]], v["force_upcast"],
        v["psnr_mean"] - primary["psnr_mean"], v["ssim_mean"], primary["ssim_mean"],
        metrics[i]["best"]["accuracy"] - metrics[0]["best"]["accuracy"],
        max(x["ssim_mean"] for x in variants if x["has_decoder"]) > CLOSE_SSIM, bool(v.get("untrained")),
        best["p_adjusted"] if best else None, bool(best and best["significant"]), tuple(psnr["ci"]))


# ---- comparing two runs (report.diff) ----------------------------------------------------

@dataclass(frozen=True)
class RunSets:
    """One run of a diff and its VAE feature sets."""
    name: str
    cls: str  # its encoder class
    labels: tuple[str, ...]


@dataclass(frozen=True)
class SetsDiff:
    """The two runs' VAE feature sets: the same ones or not, and widths that differ."""
    a: RunSets
    b: RunSets
    same: bool
    common: tuple[str, ...]  # labels of the feature sets both have
    wider: tuple[tuple[str, int, int], ...]  # (label, width in A, width in B) where they differ


def sets_diff(a: dict, b: dict) -> SetsDiff:
    """``a``, ``b``: runs as report.diff loads them (name, encode, metrics)."""
    sets_a, sets_b = sets_of_kind(a["metrics"], "vae"), sets_of_kind(b["metrics"], "vae")
    fa, fb = a["metrics"]["feature_sets"], b["metrics"]["feature_sets"]

    def run_sets(run: dict, sets: list[str]) -> RunSets:
        return RunSets(run["name"], run["encode"]["model"]["autoencoder_class"],
                       tuple(run["metrics"]["feature_sets"][fs]["label"] for fs in sets))

    return SetsDiff(run_sets(a, sets_a), run_sets(b, sets_b), sets_a == sets_b,
                    tuple(fa[fs]["label"] for fs in sets_a if fs in sets_b),
                    tuple((fa[fs]["label"], fa[fs]["n_features"], fb[fs]["n_features"]) for fs in sets_a
                          if fs in sets_b and fa[fs]["n_features"] != fb[fs]["n_features"]))


# LDA (Figure "fig:lda") estimates a features x features within-class covariance from the
# training latents; with fewer than this many training images per feature it fits them
# visibly better than new points, and the caption says so. 10 per feature is the usual
# floor for a covariance estimate to be stable; the full CIFAR-10 (50,000) is far above
# it for every SD VAE feature set, a LIMIT=30 demo (300) far below.
LDA_IMAGES_PER_FEATURE = 10


def few_for_lda(n_train: int, metrics: dict) -> int | None:
    """The widest VAE feature set's width when the training images are few for its LDA
    (under LDA_IMAGES_PER_FEATURE per feature), else None."""
    widest = max(width(metrics, fs) for fs in sets_of_kind(metrics, "vae"))
    return widest if n_train < LDA_IMAGES_PER_FEATURE * widest else None


# ---- several seeds (seeds.json) and tuning (tuned.json) ----------------------------------

@dataclass(frozen=True)
class Repeat:
    """One of Table 4's comparisons, followed over seeds or under tuning."""
    model: str  # label
    a: str  # prose name, '.sample() latents'
    b: str
    verdicts: tuple[str, ...]  # analysis.verdicts.verdict of each seed (or: default, tuned)
    deltas: tuple[float, ...]

    @property
    def holds(self) -> bool:
        return all(v == self.verdicts[0] for v in self.verdicts)


@dataclass(frozen=True)
class Seeds:
    """What changed over the seeds of SEEDS (analysis.seeds decided it; seeds.json)."""
    seeds: tuple[int, ...]
    varies: dict  # seeds.json "varies": which parts of the run the seed changes
    feature_sets: tuple[str, ...]  # labels of the VAE feature sets (their latents do not vary)
    has_decoder: bool
    n_tests: int  # Table 4's tests
    n_hold: int  # of them, those whose verdict is the same in every seed
    unstable: tuple[Repeat, ...]  # the others, in Table 4's order
    best_same: bool  # the best result is the same model and feature set in every seed
    best: tuple[str, str, float, float]  # the run's best (model label, feature-set label): mean, sd
    best_pca: Repeat | None  # the best model's feature set against its pixel PCA, over the seeds

    @property
    def held(self) -> str:
        """How many of Table 4's verdicts hold in every seed: 'all', 'none' or 'some'."""
        return "all" if self.n_hold == self.n_tests else "none" if self.n_hold == 0 else "some"


def seeds(metrics: dict, record: dict) -> Seeds:
    comps = record["comparisons"]
    order = [(m, n) for m in metrics["model_order"] for n in BASELINE_COMPARISONS if n in comps.get(m, {})]

    def repeat(m: str, n: str) -> Repeat:
        c = comps[m][n]
        return Repeat(metrics["models"][m]["label"], fs_name(metrics, c["a"]), fs_name(metrics, c["b"]),
                      tuple(c["verdict"]), tuple(c["delta"]))

    top = metrics["best"]
    spread = record["results"][top["model"]][top["feature_set"]]
    pca = comparison_name(top["feature_set"], pca_baseline(top["feature_set"]))
    return Seeds(tuple(record["seeds"]), record["varies"],
                 tuple(metrics["feature_sets"][fs]["label"] for fs in sets_of_kind(metrics, "vae")),
                 bool(record.get("has_decoder", True)), len(order),
                 sum(comps[m][n]["holds"] for m, n in order),
                 tuple(repeat(m, n) for m, n in order if not comps[m][n]["holds"]),
                 bool(record["best"]["same"]),
                 (metrics["models"][top["model"]]["label"], metrics["feature_sets"][top["feature_set"]]["label"],
                  spread["mean"], spread["sd"]),
                 repeat(top["model"], pca) if pca in comps.get(top["model"], {}) else None)


@dataclass(frozen=True)
class Tuning:
    """What tuning changed (analysis.tune decided it; tuned.json)."""
    models: tuple[str, ...]  # labels of the tuned classifiers
    folds: int
    most_rows: int  # the most training rows a round of the search fits on
    n_searches: int
    n_default: int  # searches whose choice was the default settings
    n_tests: int  # the tuned latent-vs-pixel-PCA tests, one Holm family
    changed: tuple[Repeat, ...]  # verdicts (default, tuned) that tuning changed, in table order
    best_pca: Repeat | None  # the run's best model on its feature set against its pixel PCA
    best_pca_delta: float | None  # its tuned difference


def tuning(metrics: dict, record: dict) -> Tuning:
    comps = record["comparisons"]
    order = [(m, n) for m in record["models"] for n in BASELINE_COMPARISONS if n in comps.get(m, {})]

    def repeat(m: str, n: str) -> Repeat:
        c = comps[m][n]
        return Repeat(metrics["models"][m]["label"], fs_name(metrics, c["a"]), fs_name(metrics, c["b"]),
                      (c["default_verdict"], c["verdict"]), (c["default_delta"], c["delta"]))

    top = metrics["best"]
    pca = comparison_name(top["feature_set"], pca_baseline(top["feature_set"]))
    best = repeat(top["model"], pca) if pca in comps.get(top["model"], {}) else None
    searches = [r for per in record["results"].values() for r in per.values()]
    return Tuning(tuple(metrics["models"][m]["label"] for m in record["models"]),
                  int(record["search"]["folds"]), int(record["search"]["most_rows"]), len(searches),
                  sum(bool(r["default"]) for r in searches), len(order),
                  tuple(repeat(m, n) for m, n in order if comps[m][n]["changed"]), best,
                  comps[top["model"]][pca]["delta"] if best else None)
