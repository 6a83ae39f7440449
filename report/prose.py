"""Sentences as templates: one Jinja2 macro per sentence, under templates/sentences/.

Not run on its own. ``report.sentences`` calls ``say`` and ``say_all``; the macros are plain
text (no HTML, no escaping: the report's templates escape each sentence where they insert it),
written over as many lines as reads well, since every run of spaces and line breaks in a
macro's output becomes one space. A macro returns nothing when its sentence does not apply,
and ``say_all`` leaves it out.

A macro has the filters of ``report.formatting`` (``{{ n|count }}``, ``{{ n|plural('seed') }}``)
and these globals: ``ngettext`` (agreement with a count: ``{{ ngettext('is', 'are', n) }}``),
``nouns`` (a feature set's noun phrases, ``analysis.autoencoders.nouns``) and ``capitalised``.
Like every template it may show a passage on a setting or a flag, but never compares results:
which is higher, or whether a difference is significant, is decided in Python (the facts).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from analysis.autoencoders import nouns
from report.formatting import FILTERS, capitalised, ngettext

SENTENCES = Path(__file__).resolve().parent.parent / "templates" / "sentences"


@cache
def _module(section: str):
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(SENTENCES)), autoescape=False,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(FILTERS)
    env.globals.update(ngettext=ngettext, nouns=nouns, capitalised=capitalised)
    return env.get_template(f"{section}.txt.j2").module


def say(section: str, name: str, *args, **kwargs) -> str:
    """Sentence ``name`` of ``section`` (the macro in templates/sentences/SECTION.txt.j2),
    with its whitespace made single spaces; '' when it does not apply."""
    return re.sub(r"[ \n]+", " ", str(getattr(_module(section), name)(*args, **kwargs))).strip()


def say_all(section: str, names: tuple[str, ...], *args, **kwargs) -> list[str]:
    """The sentences ``names`` of ``section`` in order, each given the same facts, without
    those that do not apply."""
    return [text for text in (say(section, name, *args, **kwargs) for name in names) if text]
