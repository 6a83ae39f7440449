"""Sentences: each fact of ``report.facts`` rendered as prose.

Not run on its own. ``report.context``, ``report.compare`` and ``report.diff`` call these;
tests (tests/test_sentences.py, tests/test_repeats.py) assert each sentence's claims against
the fact it renders.

Adding a sentence takes three steps:

1. **The fact.** A dataclass, or a field or property of one, in ``report/facts.py``, read from
   the run's files, holding every decision the sentence states: a verdict, a count, a
   direction, "all" / "none" / "some". Tests and their verdicts are not computed there:
   ``analysis/verdicts.py`` stores them in metrics.json (``p_adjusted``, ``significant``).
2. **The wording.** A macro in ``templates/sentences/SECTION.txt.j2`` that takes that fact
   (``report.prose`` says what a macro has: the number filters, ``|plural``, ``ngettext``
   for agreement, ``nouns`` for a feature set's noun phrases). It may leave out a passage
   on a flag the fact holds; it never compares numbers itself.
3. **The registration and its test.** The macro's name in its section's tuple below
   (``LIMITATIONS``, ``SEEDS_RESULTS``, ``TUNING_RESULTS``, ``REPEATS_DISCUSSION``), which
   ``report.prose.say_all`` renders in order; and a test that builds the fact from made-up
   arrays (tests/helpers.py) and asserts what the sentence claims: its numbers, its
   direction, the test it names or says is absent; not the whole string.

The sentences written before templates/sentences/ existed are still Python functions below.
They follow the same rule: the fact decides, the function words it; singular and plural come
from ``ngettext`` and ``formatting.plural``, a feature set's words from its ``nouns``
(``analysis.autoencoders``), an encoder class's from ``facts.class_names``, and clauses that
read alike are said once with ``formatting.grouped``. Move one to a macro when you change it.

Style, for a reader: models and datasets by name (paths only in Appendix A); thousands
separators (``formatting.count``); at most one interval and one p-value per sentence, the
rest in the table it came from; each fact stated once, pointed to afterwards.
"""

from __future__ import annotations

from pathlib import PurePath

from analysis.autoencoders import FEATURE_SETS, nouns
from analysis.stats import ALPHA  # the level metrics.json's verdicts were made at
from report.facts import (CLOSE_SSIM, ORIGINAL_BEST_MODEL, ORIGINAL_CONFUSED,
                          ORIGINAL_ENCODER, Baselines, Best, BestDiff, Curves, Gap, LatentShare, Limits,
                          Overall, PixelTally, Probes, Recon, ReconRank, Resolutions, RowTally, SampleVsMeanStd,
                          Score, Seeds, Separability, SetsDiff, SharedEncoder, Source, Summary, Tuning, Upcast,
                          Variants, Versus, WeakRival, class_names)
from report.formatting import acc, count, joined, number, p_is, p_text, pct, plural, pts, size, unsigned
from report.formatting import capitalised, grouped, ngettext
from report.prose import say, say_all


# ---- naming ------------------------------------------------------------------------------

def dataset_name(dataset: str) -> str:
    """The dataset (dataset.json's "dataset") as prose names it: 'CIFAR-10', or 'the image
    folder “NAME”' (its path is in Appendix A)."""
    if dataset == "cifar10":
        return "CIFAR-10"
    root = str(dataset).removeprefix("imagefolder:")
    return f"the image folder “{PurePath(root.rstrip('/')).name or root}”"


def default_title(dataset: str, cls: str) -> str:
    """The title when report.toml gives none: 'Predicting CIFAR-10 from VAE latents'."""
    return f"Predicting {dataset_name(dataset)} from {class_names(cls).title} latents"


def encoder_word(cls: str) -> str:
    """How the prose names the encoder: only a KL autoencoder is variational ('VAE')."""
    return class_names(cls).word


def weights(src: Source) -> str:
    """How prose names the weights, saying only what the run knows (analysis.weights' verdict
    included: weights that behave as untrained are not hedged as perhaps pretrained)."""
    note = "see the note above the Summary"
    if src.kind == "hub":
        by = f" by {src.publisher}" if src.publisher else ""
        return (f"the published model {src.name}{by} (Hugging Face Hub, commit {src.revision[:7]}"
                + (f"; its weights behave as untrained here: {note})" if src.behaves_untrained else ")"))
    if src.kind == "random":
        return f"a randomly initialised {src.cls} from folder {src.name} (not a pretrained model)"
    if src.behaves_untrained:
        return f"the weights in {src.place} {src.name} (which behave as untrained: {note})"
    if src.stated_pretrained:
        return (f"the weights in {src.place} {src.name}, pretrained as far as report.toml's stated "
                "checksum tells (it matches)")
    return f"the weights in {src.place} {src.name} (whether they are pretrained, the run cannot tell)"


def width_text(n: int) -> str:
    return plural(n, "feature")


def named(name: str, n: int) -> str:
    return f"{name} ({width_text(n)})"


def on(label: str) -> str:
    """'.sample()', 'mean & std', or 'the latent' (a deterministic encoder's one feature set)."""
    return nouns(label).on


def score_text(s: Score) -> str:
    return f"{s.model} on {on(s.fs_label)}"


# ---- the primary run ---------------------------------------------------------------------

def summary_sentences(s: Summary) -> list[str]:
    """The Summary: the question, what was run, the best result and its equal-width baseline."""
    enc = s.encoder
    c, h, w = enc.shape
    sets = joined([f"{nouns(label).listed} ({count(n)} features)"
                   for label, n in enc.feature_sets])
    out = [f"Can the {c}×{h}×{w} latent of a {enc.family} tell the classes of "
           f"{dataset_name(s.dataset)} apart?",
           f"This run encoded {count(s.n_train)} training and {count(s.n_test)} "
           f"test images with {weights(enc.source)} and trained {s.n_models} classifiers and a "
           f"random predictor on {ngettext('its one feature set', 'its feature sets', len(enc.feature_sets))}, "
           f"{sets}" + (f", and on {s.n_baselines} pixel baselines for comparison (Table 4 gives their widths)."
                        if s.n_baselines else ".")]
    out.append(best_sentence(s.best, table=False))
    if s.pca:
        out.append(versus_sentence(s.pca))
        if s.pca_weak and s.pca.direction == "higher":
            out.append(say("summary", "weak_rival", s.pca_weak))
    if s.overall:
        out.append(overall_sentence(s.overall))
    out.append("The Discussion sets this against the original study's figures.")
    return out


def overall_sentence(o: Overall) -> str:
    """A report of several variants: which one the main sections describe, and the best over
    all of them with its test against the other encoders' best."""
    first = (f"The report compares {count(len(o.labels))} variants, {joined(list(o.labels))}"
             + (f" ({count(o.n_encoders)} distinct encoders)" if o.n_encoders < len(o.labels) else "")
             + f", in the section Comparing encoders; the results above are those of the first, {o.labels[0]}.")
    names = joined([joined(list(e.labels)) for e in o.top])
    models = joined([e.model for e in o.top])
    if len(o.top) > 1:
        best = f"The best accuracy over all of them, {acc(o.top[0].accuracy)}, is tied between {names} ({models})"
    elif o.primary_leads:
        best = f"The best accuracy over all of them is the first's, {acc(o.top[0].accuracy)} ({models})"
    else:
        best = f"The best accuracy over all of them is {names}'s, {acc(o.top[0].accuracy)} ({models})"
    tests = [f"{size(d.delta)} points above {joined(list(d.b.labels))}'s best "
             f"({'significant' if d.significant else 'not significant'}: McNemar p {p_is(d.p_adjusted)}"
             + (", Holm-adjusted" if d.family_size > 1 else "") + ")"
             for d in o.diffs if d.delta > 0]
    return f"{first} {best}" + (", " + "; ".join(tests) if tests else "") + "."


def best_sentence(b: Best, table: bool = True) -> str:
    """The best classifier, ties named, against chance and the random predictor."""
    who = score_text(b.top)
    if b.ties:
        who = joined([who] + [score_text(s) for s in b.ties]) + " tie for the best accuracy"
        lead = f"{who}, {acc(b.top.accuracy)} ({pct(b.top.accuracy)})"
    else:
        lead = f"The best classifier is {who}, with a test accuracy of {acc(b.top.accuracy)} ({pct(b.top.accuracy)})"
    ci = f", 95% CI {acc(b.top.ci[0])} to {acc(b.top.ci[1])}" if b.top.ci else ""
    if b.above_chance:
        tail = (f"{ci}: above chance ({b.chance:.2f} for {b.n_classes} classes) and the random "
                f"predictor ({acc(b.random_accuracy)})")
    else:
        tail = (f"{ci}, which includes chance ({b.chance:.2f} for {b.n_classes} classes): no "
                "classifier is clearly above guessing in this run")
    return lead + tail + (" (Table 3)." if table else ".")


def gap_sentence(g: Gap) -> str:
    """This run's best against the original study's best, framed by how alike the encoders are."""
    theirs = (f"The original study (Hidalgo Pujol, 2024) reports a best test accuracy of "
              f"{g.original:.2f} ({ORIGINAL_BEST_MODEL}) with {ORIGINAL_ENCODER}")
    d = g.delta
    whose = f"the best of {g.overall.labels[0]}, the first variant," if g.overall else "this run's best"
    ours = (f"{whose} equals it" if d == 0 else f"{whose} is {size(d)} points {'above' if d > 0 else 'below'} it")
    if g.overall and not g.overall.primary_leads:
        top = g.overall.top[0]
        d = top.accuracy - g.original
        ours += (f" (the best over all variants, {joined([joined(list(e.labels)) for e in g.overall.top])}'s "
                 f"{acc(top.accuracy)}, " + ("equals it)" if d == 0 else f"is {size(d)} points {'above' if d > 0 else 'below'} it)"))
    if g.encoder.is_original_model:
        return f"{theirs}, the published model this run also uses; {ours}."
    if g.encoder.like_original:
        return (f"{theirs}; {ours}, with other weights of the same class and latent shape "
                "(4×4×4 from an AutoencoderKL).")
    return (f"{theirs}, another encoder (4×4×4 KL latents), so it is a point of reference, not "
            f"a like-for-like comparison; {ours}.")


def versus_sentence(v: Versus, widths: bool = True) -> str:
    """One paired comparison: one interval, one (Holm-adjusted) p, both widths."""
    p = (f"Holm-adjusted McNemar p {p_is(v.p_adjusted)}" if v.p_adjusted is not None
         else f"McNemar p {p_is(v.p)}")
    lo, hi = v.ci
    if v.direction == "higher":
        text = f"{v.a} score {size(v.delta)} points above {v.b} (95% CI {size(lo)} to {size(hi)}; {p})"
    elif v.direction == "lower":
        text = f"{v.a} score {size(v.delta)} points below {v.b} (95% CI {size(hi)} to {size(lo)}; {p})"
    else:
        text = (f"{v.a} and {v.b} are not clearly apart: {pts(v.delta)} points "
                f"(95% CI {pts(lo)} to {pts(hi)}; {p})")
        if lo > 0 or hi < 0:
            text += (f", although the interval, not corrected for the {count(v.family_size)} "
                     "tests, excludes zero")
    if not widths:
        pass  # the caller states the widths
    elif v.same_width:
        text += f"; both have {width_text(v.a_width)}"
    else:
        text += (f"; with {count(v.a_width)} features against {count(v.b_width)}, this is not a "
                 "same-size comparison")
    return f"With {v.model}, {text}."


def pairing_text(p) -> str:
    return f"{p.a} against {p.b} ({count(p.a_width)} against {count(p.b_width)} features)"


def pixel_tally_sentence(t: PixelTally) -> str:
    """N of M over the whole VAE-vs-pixels family."""
    same = [p for p in t.pairings if p.a_width == p.b_width]
    text = (f"Table 4 holds {plural(t.n_tests, 'test')} ({plural(t.n_models, 'classifier')} and "
            f"{plural(len(t.pairings), 'pairing')}, Holm-corrected as one family): the latent "
            f"features score significantly higher in {count(t.n_higher)}, significantly lower in "
            f"{count(t.n_lower)} and are not clearly apart in {count(t.n_unclear)}; "
            f"{count(t.n_raw_below)} of the raw p-values are below {ALPHA}. The pairings are "
            + "; ".join(pairing_text(p) for p in t.pairings) + ".")
    if t.unequal and same:
        text += (" Only " + joined([f"{p.a} against {p.b}" for p in same])
                 + " compare equal widths.")
    elif t.unequal:
        text += " None compares equal widths."
    if t.n_higher_over_weak:
        text += (f" {count(t.n_higher_over_weak)} of the {count(t.n_higher)} significantly higher "
                 f"{ngettext('is', 'are', t.n_higher_over_weak)} over a weak pixel rival, named "
                 "below Table 4.")
    return text


def weak_rivals_sentence(rivals: tuple[WeakRival, ...], table_leads: int | None = None) -> str:
    """The pixel rivals a classifier makes little of, a PCA at chance named once with every
    classifier it fails (a classifier below its pooled pixels named once with its PCAs), and
    how many of Table 4's leads are over them. ``table_leads``: the significant leads of the
    latent in all of Table 4; with none, there is nothing the rivals could inflate to report."""
    at_chance: dict[int, list[WeakRival]] = {}
    for r in rivals:
        if r.at_chance:
            at_chance.setdefault(r.rival.width, []).append(r)
    chance_items: dict[int, str] = {}  # by PCA width: one clause per PCA, whatever else it fails
    for w, group in at_chance.items():
        names = joined([r.rival.model for r in group])
        chance_items[w] = (f"pixel PCA-{w} is at chance with {names} "
                           + ngettext(f"({pct(group[0].rival.accuracy)}; its 95% interval holds {pct(group[0].chance)})",
                                      f"(each 95% interval holds {pct(group[0].chance)})", len(group)))
    items = []
    # The rivals below pooled pixels, grouped the way that names fewer things: one PCA weak
    # for several classifiers (a wide PCA from few images), or one classifier weak on several PCAs.
    by_model: dict[str, list[WeakRival]] = {}
    by_width: dict[int, list[WeakRival]] = {}
    for r in rivals:
        if not r.at_chance:
            by_model.setdefault(r.rival.model, []).append(r)
            by_width.setdefault(r.rival.width, []).append(r)
    if len(by_width) < len(by_model):
        for w, group in by_width.items():
            each = joined([f"{r.rival.model} ({pct(r.rival.accuracy)} against {pct(r.pooled.accuracy)})"
                           for r in group])
            below = (f"falls below pooled pixels with {count(group[0].pooled.width)} features for "
                     f"{each}, each pair of 95% intervals apart")
            if w in chance_items:  # the same PCA: named once, "... at chance with KNN and falls below ..."
                chance_items[w] += f", and {below}"
            else:
                items.append(f"pixel PCA-{w} {below}")
        by_model = {}
    for model, group in by_model.items():
        pooled = group[0].pooled
        if len(group) == 1:
            r = group[0]
            items.append(f"{model} on pixel PCA-{r.rival.width} reaches {pct(r.rival.accuracy)}, "
                         f"below the {pct(pooled.accuracy)} of the same classifier on pooled pixels "
                         f"with {count(pooled.width)} features (the two 95% intervals are apart)")
        else:
            pcas = joined([f"PCA-{r.rival.width} ({pct(r.rival.accuracy)})" for r in group])
            items.append(f"{model} on pixel {pcas} falls below the {pct(pooled.accuracy)} it reaches "
                         f"on pooled pixels with {count(pooled.width)} features (each pair of 95% "
                         "intervals apart)")
    items = list(chance_items.values()) + items
    n, leads = len(rivals), sum(r.n_leads for r in rivals)
    text = ngettext("One pixel rival is weak: ", "Some pixel rivals are weak: ", n) + "; ".join(items) + "."
    them = ngettext("this rival", "these rivals", n)
    if leads:
        text += (f" {plural(leads, 'significant lead')} of the latent features in Table 4 "
                 f"{ngettext('is', 'are', leads)} over {them}, so "
                 f"{ngettext('it overstates', 'they overstate', leads)} the latent's advantage over pixels.")
    elif table_leads != 0:
        text += f" None of Table 4's significant leads of the latent features is over {them}."
    return text


def latent_share_sentence(s: LatentShare, untrained: bool, behaves_untrained: bool = False) -> str:
    """How much class information each latent keeps, per width: never the wider set's score
    under the narrower set's width; classifiers tied at a set's best are all named."""
    parts = []
    for b in s.best:
        t = b.top
        share = 100 * t.width / s.pixels
        verdict = (f"{b.top.accuracy / b.chance:.1f} times chance" if b.above_chance
                   else "not clearly above chance")
        subject = nouns(t.fs_label)
        parts.append(f"{subject.features}, {count(t.width)} numbers per image ({share:.1f}% of "
                     f"the {count(s.pixels)} pixel values), {ngettext('reaches', 'reach', subject.number)} at most {pct(t.accuracy)} "
                     f"({joined([t.model] + [tie.model for tie in b.ties])}; {verdict})")
    text = joined(parts)
    text = capitalised(text) + "."
    if untrained:
        text += " With an untrained encoder this measures the pipeline, not what a pretrained latent keeps."
    elif behaves_untrained:
        text += (" These weights behave as untrained (see the note above the Summary), so this measures "
                 "them, not what a pretrained latent keeps.")
    return text


def sample_vs_mean_std_sentences(s: SampleVsMeanStd) -> list[str]:
    """mean & std against .sample(): the tally, its test, and what the comparison mixes."""
    if s.n_higher == s.n_models:
        verdict = "is ahead for every classifier"
    elif s.n_lower == s.n_models:
        verdict = "is behind for every classifier"
    elif s.n_higher > s.n_lower:
        verdict = "is ahead for most classifiers"
    elif s.n_higher < s.n_lower:
        verdict = "is behind for most classifiers"
    else:
        verdict = "is ahead as often as behind"
    tied = f", level for {count(s.n_tied)}" if s.n_tied else ""
    out = [f"The latent mean and standard deviation ({width_text(s.mean_std_width)}) against one "
           f".sample() ({width_text(s.sample_width)}) {verdict} by the point estimates: higher for "
           f"{count(s.n_higher)} of {plural(s.n_models, 'classifier')}, lower for "
           f"{count(s.n_lower)}{tied}, by {pts(s.mean_delta)} points on average (largest change: "
           f"{s.largest[0]}, {pts(s.largest[1])} points; Table 5)."]
    if s.n_tested:
        raw = (f"; {count(s.n_raw_below)} of the raw p-values are below {ALPHA}"
               if s.n_raw_below != s.n_significant else "")
        if s.n_significant == 0:
            out.append(f"None of the {count(s.n_tested)} differences is significant after Holm's "
                       f"correction{raw}, so this run cannot tell the two feature sets apart.")
        else:
            out.append(f"{count(s.n_significant)} of the {count(s.n_tested)} differences "
                       f"{ngettext('is', 'are', s.n_significant)} significant after Holm's "
                       f"correction{raw}.")
        if s.best_model:
            out.append(versus_sentence(s.best_model, widths=False))
    out.append(f"The comparison changes two things at once: mean & std has "
               f"{s.mean_std_width / s.sample_width:.0f} times the features and none of the "
               "sampling noise, so it cannot say which of the two makes a difference.")
    return out


def lead_text(leads) -> str:
    """Where the VAE leads its pixel baseline along a curve, by the point estimates."""
    ahead = [count(n) for n, d in leads if d > 0]
    behind = [count(n) for n, d in leads if d < 0]
    level = len(leads) - len(ahead) - len(behind)
    if ahead and behind:
        return (f"ahead at {joined(ahead)} and behind at {joined(behind)} training images "
                "(the curves cross)")
    if not ahead and not behind:
        return "level at every size"
    side = "ahead" if ahead else "behind"
    return f"{side} at every size" if not level else f"{side} or level at every size"


def curve_sentences(c: Curves, figure: str) -> list[str]:
    """Learning curves, as a description: bands over test images, no test. ``figure``: their
    figure's number (report.labels)."""
    rows = c.rows
    prev_n, last_n = rows[0].prev_n, rows[0].last_n
    gains = joined([f"{pts(r.gain)} points for {r.model} on {on(r.fs_label)}" for r in rows])
    n, m = c.n_above, len(rows)
    out: list[str] = []
    if c.all_at_chance:  # noise around chance has no shape to read
        said = (f"{ngettext('the curve ends', f'all {m} curves end', m)} with chance inside "
                "the 95% band, so they say nothing about whether more training images or "
                "better features would help")
    elif n == m:
        said = ("every curve ends above the previous size's 95% band, which suggests that more "
                "training images would raise these accuracies")
    elif n == 0:
        # Not exceeding the band is no evidence of a plateau: the test set may be too small.
        said = ("no curve ends above the previous size's 95% band, which suggests only that the "
                "last gains cannot be told from test-image noise; it does not show whether more "
                "training images would help")
    else:
        said = (f"{n} of the {m} curves {ngettext('ends', 'end', n)} above the previous size's 95% band, which suggests "
                "that more training images would help some of these models")
    out += [f"Learning curves (Figure {figure}): from {count(prev_n)} to {count(last_n)} training images, "
           f"test accuracy changes by {gains}.",
           # at chance the bands, not the point estimates, are what the sentence reads
           f"{said[0].upper() + said[1:] if c.all_at_chance else 'By the point estimates, ' + said}; "
           "the bands cover test-image resampling only and the curves are not tested, so this is "
           "a description, not a finding."]
    compared = [r for r in rows if r.pixel and r.leads]
    leads = {lead_text(r.leads) for r in compared}
    if (len(compared) > 1 and len(leads) == 1 and len({r.pixel for r in compared}) == 1
            and all(r.pixel_width == r.width for r in compared)):
        # Every curve against its pixel PCA reads the same: say it once.
        every = "both" if len(compared) == 2 else f"all {count(len(compared))}"
        out.append(f"Against {compared[0].pixel} of equal width, by the point estimates, {every} "
                   f"curves are {leads.pop()}.")
        return out
    said_for: dict[str, tuple[str, str, str]] = {}  # feature set -> (pixel, widths, what)
    for fs in dict.fromkeys(r.fs_label for r in compared):
        mine = [r for r in compared if r.fs_label == fs]
        first = mine[0]
        widths = ("of equal width" if first.pixel_width == first.width else
                  f"({count(first.pixel_width)} components against {count(first.width)} features)")
        said_for[fs] = (first.pixel, widths, "; ".join(f"with {r.model}, {lead_text(r.leads)}" for r in mine))
    # Feature sets whose curves read the same are said once, "… .sample() and mean & std alike: …".
    return out + [f"Against {pixel} {widths}, by the point estimates, {joined([on(fs) for fs in sets])}"
                  f"{ngettext('', ' alike', len(sets))}: {what}."
                  for sets, (pixel, widths, what) in grouped(said_for.items())]


def probes_sentences(p: Probes, figure: str) -> list[str]:
    """Where the information sits: one interval per sentence, no verdict on noise. ``figure``:
    the probes figure's number (report.labels)."""
    c, h, w = p.shape
    head = f"Where the information sits (Figure {figure}): {p.model} on the whole {nouns(p.label).latent} ({c}×{h}×{w})"
    lo, hi = p.whole_ci
    if not p.above_chance:
        return [f"{head} reaches {pct(p.whole)} (95% CI {pct(lo)} to {pct(hi)}), not clearly above "
                f"chance ({pct(p.chance)}), so there is no class information to locate in its "
                "channels or positions."]
    out = [f"{head} reaches {pct(p.whole)} (95% CI {pct(lo)} to {pct(hi)}; chance {pct(p.chance)})."]
    if c > 1 and p.channels:
        accs = [a for _, a, _ in p.channels]
        above = p.channels_above_chance
        text = f"Each channel alone reaches {pct(min(accs))} to {pct(max(accs))}"
        if not above:
            text += ("; no channel's 95% interval lies above chance, so none is singled out")
        else:
            top = p.top_channels
            best = ngettext(f"highest: channel {top[0]}", f"highest: channels {joined([str(t) for t in top])}, tied",
                            len(top))
            text += (f" ({best}); {len(above)} of the {c} channels have a 95% interval above chance")
        out.append(text + ".")
        if p.drops:
            costly = p.costly
            if costly:
                worst = max(p.drops, key=lambda e: e[1])
                dlo, dhi = worst[2]
                out.append(f"Leaving out channel {worst[0]} costs most, {unsigned(worst[1])} points "
                           f"(paired 95% CI {unsigned(dlo)} to {unsigned(dhi)}); the intervals of "
                           f"{len(costly)} of the {c} channels lie above zero (uncorrected, "
                           "descriptive).")
            else:
                out.append("Leaving out any one channel costs no accuracy that its paired 95% "
                           "interval separates from zero (uncorrected, descriptive), so no single "
                           "channel is shown to be needed.")
    if h * w > 1 and p.positions:
        bottom = min(p.positions, key=lambda e: e[2])
        top = max(p.positions, key=lambda e: e[2])
        out.append(f"One spatial position alone reaches {pct(bottom[2])} (row {bottom[0]}, column "
                   f"{bottom[1]}) to {pct(top[2])} (row {top[0]}, column {top[1]}).")
    return out


def confused_sentence(model: str, pairs: list[dict], classes: list[str], figure: str,
                      untrained: bool = False) -> str | None:
    """The most confused pairs; against the original's only where its classes are present and
    the weights are not (or do not behave as) untrained: then an agreement would mean nothing."""
    if not pairs:
        return None
    listed = joined([f"{p['a']}/{p['b']}" for p in pairs])
    text = f"For {model}, the most confused class pairs are {listed} (counts in Figure {figure})."
    if untrained or not all(c in classes for pair in ORIGINAL_CONFUSED for c in pair):
        return text  # other classes than CIFAR-10's: nothing to set against the original
    found = {frozenset((p["a"], p["b"])) for p in pairs}
    agree = [f"{a}/{b}" for a, b in ORIGINAL_CONFUSED if frozenset((a, b)) in found]
    if agree:
        return (f"{text} As in the original study (Hidalgo Pujol, 2024), {' and '.join(agree)} "
                f"{ngettext('is', 'are', len(agree))} among them.")
    return (f"{text} The original study's most confused pairs, cat/dog and automobile/truck "
            "(Hidalgo Pujol, 2024), are not among them.")


# ---- discussion and limitations ----------------------------------------------------------

def discussion_sentences(g: Gap, tally: PixelTally | None, untrained: bool) -> list[str]:
    """What explains the gap to the original study, as far as the run can tell."""
    out = [gap_sentence(g)]
    reasons = []
    src = g.encoder.source
    if untrained:
        reasons.append("the encoder here has random weights, which alone explains a gap of any "
                       "size (its latents carry no learnt features)")
    elif src.behaves_untrained:
        reasons.append("these weights behave as untrained (see the note above the Summary), which "
                       "alone would explain a gap of any size")
    elif src.kind == "hub" and not g.encoder.is_original_model:
        reasons.append(f"the weights differ: this run used {src.name}, not {ORIGINAL_ENCODER}")
    elif src.kind == "folder":
        reasons.append(f"the weights may differ: this run used the weights in {src.place} {src.name}, "
                       f"which it cannot identify as {ORIGINAL_ENCODER}")
    if not g.encoder.like_original:
        c, h, w = g.encoder.shape
        reasons.append(f"the encoder differs: a {g.encoder.family} giving {c}×{h}×{w} latents, "
                       "against the original's AutoencoderKL giving 4×4×4")
    if g.n_train != 50_000 or g.n_test != 10_000:
        reasons.append(f"the data differ: {count(g.n_train)} training and {count(g.n_test)} test "
                       f"images here, where CIFAR-10 has 50,000 and 10,000")
    reasons.append("the original's library versions and classifier settings are not recorded "
                   "here, so their share of the gap cannot be measured")
    out.append("What this run can say about the gap: " + "; ".join(reasons) + ".")
    if tally:
        if tally.n_higher and not tally.n_lower:
            # As below: higher accuracy of these classifiers is what was measured, not proof
            # that pixel reductions lost information another model could not read.
            where = (f"all {count(tally.n_tests)} tests" if tally.n_higher == tally.n_tests else
                     f"{count(tally.n_higher)} of the {count(tally.n_tests)} tests and never behind, "
                     "the rest not clearly apart")
            out.append(f"In Table 4 the latent features are significantly ahead of pixels in {where}, "
                       "so in this run these classifiers do better on the latents than on simple "
                       "pixel reductions.")
        elif tally.n_lower and not tally.n_higher:
            # Lower accuracy of these classifiers is no proof that the latents lost the
            # information: another model could read it. Say what was measured.
            where = (f"all {count(tally.n_tests)} tests" if tally.n_lower == tally.n_tests else
                     f"{count(tally.n_lower)} of the {count(tally.n_tests)} tests and never ahead, "
                     "the rest not clearly apart")
            out.append(f"In Table 4 the latent features are significantly behind pixels in {where}, "
                       "so in this run these classifiers do better on simple pixel reductions than "
                       "on the latents.")
        elif not tally.n_lower and not tally.n_higher:
            out.append("No test in Table 4 separates the latent features from the pixel baselines, so "
                       "this run cannot say that the encoder adds or loses class information.")
        else:
            out.append("Table 4 is mixed: the latent features are significantly ahead of pixels in "
                       "some tests and behind in others, so whether the encoder helps depends on "
                       "the classifier and the baseline.")
    return out


LIMITATIONS = ("seeds", "intervals", "tuning", "resolution", "widths", "mean_std", "descriptive", "subset",
               "random_weights")


def limitation_items(lim: Limits) -> list[str]:
    """One item per limitation, each with what would settle it (templates/sentences/limitations.txt.j2)."""
    return say_all("limitations", LIMITATIONS, lim)


# ---- comparing encoders ------------------------------------------------------------------

def rank_text(r: ReconRank) -> str:
    """One measure's ranking: a best only where the paired bootstrap establishes it."""
    def value(x: float, signed: bool = False) -> str:
        spec = ("+" if signed else "") + (".2f" if r.measure == "PSNR" else ".3f")
        return number(x, spec) + (" dB" if r.measure == "PSNR" else "")

    if r.established:
        return f"by {r.measure} {r.leader} reconstructs best ({value(r.value)})"
    close = "; ".join(f"{label} {value(-d, True)}, 95% CI {value(-hi, True)} to {value(-lo, True)}"
                      for label, d, (lo, hi) in r.close)
    return (f"by {r.measure} {r.leader} has the highest mean ({value(r.value)}), but it is "
            f"indistinguishable on this sample from {joined([c[0] for c in r.close])} ({close})")


def recon_sentence(r: Recon) -> str:
    """Which variant reconstructs best: only where a paired bootstrap over the same images
    (analysis.variants.recon_tests) establishes it, and as far as PSNR and SSIM agree."""
    head = (f"Table C2 gives each variant's PSNR and SSIM over the same {count(r.images)} test images; "
            "a variant is said to reconstruct best only where the paired bootstrap 95% interval of "
            "its lead over every other variant excludes zero.")
    if r.psnr.established and r.ssim.established and r.psnr.leader == r.ssim.leader:
        text = (f"{head} {r.psnr.leader} reconstructs best by both measures "
                f"({number(r.psnr.value, '.2f')} dB, SSIM {number(r.ssim.value, '.3f')}).")
    else:
        text = f"{head} {capitalised(rank_text(r.psnr))}; {rank_text(r.ssim)}."
        if r.psnr.established and r.ssim.established:
            text += " The two measures disagree, so no variant reconstructs best on both."
    if not r.any_close:
        text += (f" No variant reconstructs the images closely: SSIM is at most {number(r.max_ssim, '.3f')} of 1 "
                 f"(a close reconstruction scores above {CLOSE_SSIM}).")
    return text


def tally_text(t: RowTally) -> str:
    """The leader against one rival over their shared rows: higher, tied, lower."""
    return joined([f"higher than {joined(list(t.rival))} in {count(t.higher)} of the {count(t.rows)} rows they share"]
                  + [f"{word} in {count(n)}" for word, n in (("tied", t.tied), ("lower", t.lower)) if n])


def support_text(tallies: tuple[RowTally, ...], family_size: int) -> str:
    """How many of the tallies' differences McNemar's test supports, Holm over the family."""
    up = sum(t.higher_significant for t in tallies)
    down = sum(t.lower_significant for t in tallies)
    where = f"McNemar's test on the same test images, Holm-adjusted over the {count(family_size)} comparisons,"
    if not up and not down:
        return (f"{where} supports none of these differences (smallest adjusted p "
                f"{p_text(min(t.min_p_adjusted for t in tallies))})")
    parts = [f"{count(up)} of the {count(sum(t.higher for t in tallies))} higher"] if up else []
    parts += [f"{count(down)} of the {count(sum(t.lower for t in tallies))} lower"] if down else []
    return f"{where} supports {joined(parts)}"


def best_diff_text(d: BestDiff) -> str:
    """Two encoders' best results: the difference, its interval and its test."""
    lo, hi = d.ci
    test = (f"95% CI {pts(lo)} to {pts(hi)}; {'Holm-adjusted ' if d.family_size > 1 else ''}"
            f"McNemar p {p_is(d.p_adjusted)}")
    if d.significant:
        verdict = "a significant difference"
    else:
        verdict = ("not a significant difference" + (", although the bootstrap interval excludes zero"
                                                      if lo > 0 or hi < 0 else "")
                   + ", so the test images do not rank these two by their best result")
    return (f"Best against best, {joined(list(d.a.labels))}'s {acc(d.a.accuracy)} ({d.a.model}) is {size(d.delta)} "
            f"points above {joined(list(d.b.labels))}'s {acc(d.b.accuracy)} ({d.b.model}) ({test}): {verdict}")


def variants_sentences(v: Variants) -> list[str]:
    """Best accuracy per distinct encoder and whether a test separates them, the leader's
    rows against each other encoder's with their tests, which decoder reconstructs best and
    which variants have no decoder."""
    per = "encoder and resolution" if v.by_resolution else "encoder"
    first = (f"Best accuracy per {per}: " + "; ".join(
        f"{joined(e.labels)} {acc(e.accuracy)} ({e.model})" for e in v.ranked) + ".")
    out = [first]
    if len(v.ranked) > 1:
        lead = joined(list(v.leader.labels))
        if not v.n_compared_rows:
            out.append("The encoders share no feature set, so no row of Table C1 sets them side by "
                       "side; their best accuracies above come from different feature sets.")
        elif not v.tallies:
            out.append(f"{lead} shares no feature set with another encoder, so no row of Table C1 sets it "
                       "beside them; its best accuracy above comes from a feature set of its own.")
        else:
            text = (f"Row by row (Table C1: the classifiers on the feature sets both have), {lead} is "
                    + "; ".join(tally_text(t) for t in v.tallies) + "; "
                    + support_text(v.tallies, v.family_size) + ".")
            if v.random_rows:
                text += (f" Left out: the {plural(v.random_rows, 'random-predictor row')} (that predictor "
                         "does not read the features).")
            out.append(text)
        out += [best_diff_text(d) + "." for d in v.best_diffs]
    if v.recon:  # one decoder alone has nothing to be compared with (Table C2 has it)
        out.append(recon_sentence(v.recon))
    if v.no_decoder:
        out.append(no_decoder_sentence(v.no_decoder))
    return out


def no_decoder_sentence(labels: tuple[str, ...]) -> str:
    """The encoder-only variants (a TAESD checkpoint without its decoder file): they have no
    reconstructions, PSNR or SSIM."""
    n = len(labels)
    return (f"{joined(list(labels))} {ngettext('has', 'have', n)} no decoder (no decoder file came with "
            f"{ngettext('its', 'their', n)} encoder), so {ngettext('it has', 'they have', n)} no "
            "reconstructions, PSNR or SSIM (a dash in Table C2, no row in Figure C1).")


def shared_encoder_sentence(s: SharedEncoder, quality: bool = True) -> str:
    """What is the same and what differs for variants that share an encoder. ``quality``:
    name each decoder's PSNR and SSIM (the report has them in Table C2 instead)."""
    def each(label: str, psnr: float | None, ssim: float | None) -> str:
        return f"{label} has no decoder" if psnr is None else f"{label} PSNR {psnr:.2f} dB, SSIM {ssim:.3f}"

    return (f"{joined(list(s.labels))} share one encoder (encoder checksum "
            f"{s.checksum[:12]}…, sha256 over its weights and config): their latents are "
            "bit-for-bit identical, so they were encoded and classified once and Table C1 shows "
            "their results in one column. Only their decoders differ" + (": " + "; ".join(
                each(*q) for q in s.quality) + "." if quality else " (their PSNR and SSIM are in Table C2)."))


def resolution_sentence(r: Resolutions) -> str:
    """One VAE at several resolutions: its best accuracy at each, and what the higher costs."""
    parts = [f"{acc(p.accuracy)} at {p.resolution} px ({p.model}, {p.fs_label}, {p.width} features)"
             for p in r.points]
    change = r.change
    verdict = ("the same best accuracy" if change == 0 else
               f"a best accuracy {100 * abs(change):.1f} points "
               f"{'higher' if change > 0 else 'lower'}")
    low, high = r.points[0], r.points[-1]
    return (f"Resolution, for {r.name}: best accuracy " + "; ".join(parts) + f". Encoding at "
            f"{high.resolution} instead of {low.resolution} px gives {verdict}, for about "
            f"{r.cost:.0f} times the encoder's work per image.")


def upcast_text(u: Upcast) -> str:
    """The original's sdxl-vae finding, without speculation passed off as a cause."""
    # The original's model is the published sdxl-vae; this run's variant may be another copy
    # or a stand-in (a local folder, random weights), named as such.
    same = u.name == "sdxl-vae"
    notes = [n for n, on in (("an untrained stand-in with random weights", u.untrained),
                             ("in its place", not same)) if on]
    subject = ("it" if same else u.name) + (f" ({', '.join(notes)})" if notes else "")
    text = ("The original study (Hidalgo Pujol, 2024) found sdxl-vae worse, with broken "
            f"reconstructions. Here {subject} ran in {u.precision}; its config sets "
            f"force_upcast={u.force_upcast}, so vaelab never runs it in float16, and every latent "
            "and reconstruction was checked for NaN/Inf (none found, or the run would have "
            "stopped). " + upcast_gaps(u) + " ")
    if not u.any_close:
        text += ("Since no variant here reconstructs the images closely (Table C2), this run "
                 "cannot tell whether its reconstructions are broken in the original's sense.")
    elif u.clearly_worse:
        text += ("Its reconstructions are clearly worse here too (SSIM below half the primary's), "
                 "even without float16, so float16 overflow cannot be the whole explanation.")
    else:
        text += ("Its reconstructions are not broken here. The original study does not say "
                 "which precision it used; if it ran sdxl-vae in float16, the overflow known for "
                 "that model would break them, but that is a conjecture this run does not test.")
    return text


def upcast_gaps(u: Upcast) -> str:
    """The sdxl variant's best accuracy and PSNR against the primary's, each with its test."""
    if u.accuracy_p is None:
        text = f"It shares {u.primary}'s encoder, so its accuracies are the same"
    else:
        verdict = "significant" if u.accuracy_significant else "not significant"
        text = (f"Its best accuracy differs from {u.primary}'s by {pts(u.accuracy_gap)} points ({verdict}: "
                f"Holm-adjusted McNemar p {p_is(u.accuracy_p)})")
    lo, hi = u.psnr_ci
    apart = lo > 0 or hi < 0
    return (text + f", and its PSNR by {number(u.psnr_gap, '+.2f')} dB (paired bootstrap 95% CI "
            f"{number(lo, '+.2f')} to {number(hi, '+.2f')}: {'a' if apart else 'no'} difference established on "
            "these images).")


def baselines_sentence(b: Baselines) -> str:
    """What the pixel baselines are and how wide each is against its VAE feature set."""
    pooled, pcas, n_train = b.pooled, b.pcas, b.n_train
    parts = []
    if pooled is not None:
        parts.append(f"the pixels average-pooled over 8×8 blocks to 4×4×3 = {count(pooled)} values")
    capped = False
    if pcas:
        each = []
        for n, label, vae_n in pcas:
            if n < vae_n:
                capped = True
                each.append(f"{count(n)} against the {count(vae_n)} {label} features")
            else:
                each.append(f"{count(n)}, as many as the {label} features")
        parts.append("the leading principal components of the raw pixels (32×32×3 values scaled "
                     "to [0, 1]): " + joined(each))
    text = "The same classifiers, with the same settings, are also trained on " + " and on ".join(parts) + "."
    if capped:
        text += (f" A PCA has at most as many components as training images ({count(n_train)} "
                 "here), hence the narrower ones.")
    return text + " The PCA is fitted on the training images only; test images are only projected."


def separability(sep: Separability | None) -> str | None:
    """Contrast the PCA plane (maximal variance; the template quotes its share of variance)
    with the LDA plane (maximal class separation) by a nearest-centroid test accuracy in each;
    when neither is clearly above chance there is nothing to contrast."""
    if sep is None:
        return None
    primary = sep.feature_set
    latent = (FEATURE_SETS[primary].nouns if primary in FEATURE_SETS else nouns(primary)).test_latent
    scores = (f"Assigning each {latent} to the nearest class centre (centres from the "
              f"projected training latents) gives an accuracy of {acc(sep.pca)} "
              f"({sep.pca / sep.chance:.1f} times chance) in the PCA plane and {acc(sep.lda)} "
              f"({sep.lda / sep.chance:.1f} times chance) in the LDA plane")
    if not sep.above_chance:
        return (f"{scores}. Both exact 95% intervals over the {count(sep.n_test)} test images "
                f"include chance ({sep.chance:.2f}), so neither plane shows class structure "
                "that the two could be compared on.")
    if sep.lda > sep.pca:
        reading = ("so by this measure (point estimates, no test) the classes are better "
                   "separated along the discriminant directions than along the directions of "
                   "maximal variance: the PCA plot understates what a linear classifier can use")
    else:
        reading = ("so by this measure (point estimates, no test) the discriminant directions "
                   "separate the classes no better than the directions of maximal variance")
    return f"{scores}, {reading}."


# ---- comparing two runs (report.diff) ----------------------------------------------------

def sets_diff_sentences(d: SetsDiff) -> list[str]:
    """A sentence when the two encoders yield different feature sets (a KL autoencoder's
    .sample() and mean & std, a deterministic one's latent) or widths: the table compares
    only what both have, at the widths each has."""
    out = []
    if not d.same:
        def names(run) -> str:
            return f"{run.name} ({run.cls}) has {' and '.join(run.labels)}"

        out.append(f"The two encoders yield different feature sets: {names(d.a)}; "
                   f"{names(d.b)}. " + (
                       f"Only {' and '.join(d.common)} are compared below." if d.common else
                       "They have none in common, so no paired comparison is made; compare "
                       "their accuracies in each run's report."))
    if d.wider:
        out.append("Feature sets of different widths are compared as each encoder gives them: "
                   + ", ".join(f"{label} ({wa} vs {wb} features)" for label, wa, wb in d.wider) + ".")
    return out


def diff_decoder_sentences(missing: list[str]) -> list[str]:
    """A sentence naming the run(s) without a decoder: no reconstructions to compare."""
    if not missing:
        return []
    return [f"{' and '.join(missing)} had no decoder (no decoder file came with the encoder), so "
            "no reconstructions, PSNR or SSIM are compared."]


# ---- weights that behave as untrained (analysis.weights) ----------------------------------

def untrained_behaviour(name: str, check: dict) -> str:
    """Why one run's weights behave as untrained, from the values analysis.weights compared
    (its weights.json): the reconstructions against the flat image, when it has a decoder,
    and the latents against chance or, when above it, against pooled pixels."""
    acc_check, recon = check["accuracy"], check["reconstructions"]
    parts = []
    if recon is not None:
        parts.append("reconstructs the test images no better than a flat grey image of the "
                     f"training mean (mean PSNR {number(recon['psnr_mean'], '.2f')} dB against "
                     f"{number(recon['flat_psnr_mean'], '.2f')} dB, on the same "
                     f"{plural(recon['images'], 'image')})")
    best = f"classifies at best {acc(acc_check['best'])} from its latents"
    if acc_check["near_chance"]:
        parts.append(f"{best}, under {check['thresholds']['chance_factor']:g} times chance "
                     f"({acc_check['chance']:.2f})")
    else:
        parts.append(f"{best}, below the {acc(acc_check['pooled_pixels'])} of the image merely "
                     f"averaged ({acc_check['pooled_pixels_label']})")
    return f"{name} {joined(parts)}."


# ---- several seeds (SEEDS) and tuned classifiers (TUNE) ----------------------------------


def seeds_varied(s: Seeds) -> str:
    """What a seed changes in this run and what every seed shares (Methodology)."""
    return say("repeats", "seeds_varied", s)


SEEDS_RESULTS = ("seeds_held", "seeds_unstable", "seeds_best")
TUNING_RESULTS = ("tuning_kept", "tuning_changed", "tuning_defaults")
REPEATS_DISCUSSION = ("seeds_discussion", "tuning_discussion")


def seeds_sentences(s: Seeds, table: str) -> list[str]:
    """How many of Table ``table``'s verdicts hold for every seed, which do not, and the best
    result's spread (templates/sentences/repeats.txt.j2)."""
    return say_all("repeats", SEEDS_RESULTS, s, table)


def tuning_sentences(t: Tuning, appendix: str) -> list[str]:
    """What tuning changed: the latent-vs-pixel-PCA verdicts, and how often the default won."""
    return say_all("repeats", TUNING_RESULTS, t, appendix)


def repeats_discussion(seeds: Seeds | None, tuned: Tuning | None) -> list[str]:
    """What several seeds and tuning say about reading Table 4 (Discussion); nothing when
    neither ran."""
    return say_all("repeats", REPEATS_DISCUSSION, seeds, tuned)


def robustness_sentence(seeds: Seeds | None, tuned: Tuning | None) -> str | None:
    """Whether the best model's lead (or gap) to the pixel PCA of its width survives other seeds
    and tuning: the question a reader asks of Table 4 first."""
    return say("repeats", "robustness", seeds, tuned) or None
