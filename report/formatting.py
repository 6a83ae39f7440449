"""How the report writes numbers: one function each, also registered as Jinja filters.

Not run on its own. ``report.sentences`` uses these functions; ``report.render`` registers
FILTERS so the templates write numbers the same way (``{{ n|count }}`` -> "50,000").
"""

from __future__ import annotations

from gettext import ngettext  # the one singular/plural choice: ngettext("is", "are", n)

# Every negative number the reader sees is written with U+2212 MINUS SIGN, as typesetting
# does: the hyphen-minus is shorter than the plus sign and breaks lines. Code, file names
# and configuration values keep ASCII (they are typed, not read).
MINUS = "\u2212"


def number(x: float, spec: str = "") -> str:
    """A number in a format spec with its minus sign typeset: (-0.17, '+.2f') -> '−0.17',
    (0.17, '+.2f') -> '+0.17'. The one formatter of signed values; the others call it."""
    return f"{x:{spec}}".replace("-", MINUS)


def count(n: int) -> str:
    """A whole number with thousands separators: 50000 -> '50,000'."""
    return f"{int(n):,}"


def pct(x: float) -> str:
    """A share as a percentage: 0.318 -> '31.8%'."""
    return f"{100 * x:.1f}%"


def acc(x: float) -> str:
    """An accuracy as the tables print it: 0.31795 -> '0.3180'."""
    return f"{x:.4f}"


def pts(x: float) -> str:
    """An accuracy difference in percentage points, signed: 0.0523 -> '+5.2'."""
    return number(100 * x, "+.1f")


def unsigned(x: float) -> str:
    """Accuracy points, signed only when negative: 0.0523 -> '5.2', -0.013 -> '−1.3'."""
    return number(100 * x, ".1f")


def size(x: float) -> str:
    """The size of a difference in points, no sign: -0.0523 -> '5.2'."""
    return f"{100 * abs(x):.1f}"


def p_text(p: float) -> str:
    """A p-value: '< 0.001' or '0.012'."""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_is(p: float) -> str:
    """A p-value after 'p': '< 0.001' or '= 0.012'."""
    return p_text(p) if p < 0.001 else f"= {p_text(p)}"


def ci_text(ci, digits: int = 3) -> str:
    """An accuracy interval as the tables print it: '[0.301, 0.335]'; '' without one."""
    return f"[{number(ci[0], f'.{digits}f')}, {number(ci[1], f'.{digits}f')}]" if ci else ""


def joined(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    if not items:
        return ""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def plural(n: int, one: str, many: str | None = None) -> str:
    """'1 classifier', '3 classifiers' (thousands separators included). A verb or pronoun
    that agrees with a count is ``ngettext(one, many, n)`` (the standard library's, which
    Jinja's i18n uses too): the prose has no singular/plural branch of its own."""
    return f"{count(n)} {ngettext(one, many or one + 's', n)}"


def capitalised(text: str) -> str:
    """'the image folder …' at the start of a sentence: 'The image folder …'."""
    return text[:1].upper() + text[1:]


def grouped(pairs) -> list[tuple[list, str]]:
    """Clauses that read alike, said once: [(subject, clause), ...] -> [([subjects], clause),
    ...], in order of first appearance. [('SVC', 'ahead'), ('KNN', 'behind'), ('RF', 'ahead')]
    -> [(['SVC', 'RF'], 'ahead'), (['KNN'], 'behind')]."""
    out: dict[str, list] = {}
    for subject, clause in pairs:
        out.setdefault(clause, []).append(subject)
    return [(subjects, clause) for clause, subjects in out.items()]


FILTERS = {"number": number, "count": count, "pct": pct, "acc": acc, "pts": pts, "p_text": p_text,
           "ci_text": ci_text, "joined": joined, "plural": plural}
