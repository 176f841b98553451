r"""Unicode folding for the purpose classifier: any text to the lower-case Latin letters it shows.

A reason typed to slip past a keyword screen looks like the keyword to a person and not to a
program: ``\u0406\u0421\u0415`` (Cyrillic), ``\uff29\uff23\uff25`` (full-width),
``\U0001d408\U0001d402\U0001d404`` (mathematical bold), ``I\u200bCE`` (a zero-width space),
``ab\u00adortion`` (a soft hyphen), ``i\u0301mmigration`` (a combining accent). This module undoes
those disguises, in this order, and says which of them it had to undo:

1. ``compatibility``: Unicode NFKC folds full-width, mathematical, circled and parenthesised
   letters, ligatures, superscripts and the odd spaces (no-break, thin, ideographic) to plain ones.
2. ``invisible``: every Default_Ignorable_Code_Point is removed (zero-width spaces and joiners,
   soft hyphens, variation selectors, bidirectional controls, tag characters, Hangul fillers), so
   a word cut by one is whole again. The property comes from ICU's Unicode data.
3. ``combining_marks``: NFD, then every combining mark is dropped (accents, strokes, underlines).
4. ``confusable``: every other non-ASCII character is replaced by its Unicode TR #39 confusable
   prototype (ICU's SpoofChecker skeleton, built on the Unicode Consortium's confusables.txt)
   when that prototype is ASCII: Cyrillic ``\u0430``, Greek ``\u03bf``, dotless ``\u0131``,
   Cherokee ``\u13df``. TR #39 maps the capital-I look-alikes (Cyrillic ``\u0406``, Greek
   ``\u0399``) to ``l``, the prototype of the vertical stroke; a capital letter of another script
   that looks like a stroke is read as ``I`` here, which is what a reader of a Latin reason sees,
   and a caseless one as either (``|``, which the leetspeak repair resolves). Latin small
   capitals, negative circled and squared letters and regional-indicator letters have no
   prototype; they are read by their Unicode name (``LATIN LETTER SMALL CAPITAL E`` is ``e``).
5. Case folding.

Characters with no Latin reading (Chinese, most Cyrillic words, emoji) are kept, so a reason in
another script still says something instead of folding away into an empty, "missing" text.

The module is pure; each distinct character is looked up once and remembered.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import icu  # type: ignore[import-untyped]  # PyICU ships no type information

__all__ = ("FOLD_STEPS", "UnicodeFold", "fold_unicode")

FOLD_STEPS: tuple[str, ...] = ("compatibility", "invisible", "combining_marks", "confusable")

_SPOOF = icu.SpoofChecker()
_IGNORABLE = icu.UProperty.DEFAULT_IGNORABLE_CODE_POINT
_MARK_CATEGORIES = frozenset({"Mn", "Me"})
# "LATIN LETTER SMALL CAPITAL E", "NEGATIVE CIRCLED LATIN CAPITAL LETTER I", "REGIONAL
# INDICATOR SYMBOL LETTER C": letters TR #39 gives no prototype but whose name says which they are.
_NAMED_LATIN = re.compile(
    r"(?:LATIN LETTER SMALL CAPITAL|(?:NEGATIVE )?(?:CIRCLED|SQUARED) LATIN CAPITAL LETTER|"
    r"REGIONAL INDICATOR SYMBOL LETTER) ([A-Z])"
)


@dataclass(frozen=True, slots=True)
class UnicodeFold:
    """The folded text and the disguises that had to be undone to get it (in FOLD_STEPS order)."""

    text: str
    steps: tuple[str, ...]


def _latin_reading(skeleton: str, original: str) -> str | None:
    """The ASCII a reader sees in one character, from its TR #39 skeleton or its name."""
    if skeleton.isascii():
        # The prototype of every vertical stroke is "l"; capitals of other scripts that look like
        # one (Cyrillic and Greek capital I, Cherokee GI) are the capital I of a Latin word.
        if skeleton == "l" and original.isupper():
            return "i"
        # A caseless stroke (a click letter, a Hebrew vav) is an I or an l: "|" leaves that to the
        # leetspeak step, which picks the letter that makes a word.
        if skeleton == "l" and not original.islower():
            return "|"
        return skeleton
    named = _NAMED_LATIN.fullmatch(unicodedata.name(original, ""))
    return named.group(1) if named else None


@functools.lru_cache(maxsize=8192)
def _fold_char(ch: str) -> tuple[str, str]:
    """(replacement, step) for one non-ASCII character after NFKC; step is "" when kept as is."""
    if bool(icu.Char.hasBinaryProperty(ch, _IGNORABLE)):
        return "", "invisible"
    decomposed = unicodedata.normalize("NFD", ch)
    base = "".join(c for c in decomposed if unicodedata.category(c) not in _MARK_CATEGORIES)
    if base != decomposed:
        if not base:
            return "", "combining_marks"
        if base.isascii():
            return base, "combining_marks"
    latin = "".join(
        c if c.isascii() else (_latin_reading(str(_SPOOF.getSkeleton(0, c)), c) or c) for c in base
    )
    if latin == base:
        return base, "combining_marks" if base != decomposed else ""
    return latin, "confusable"


def fold_unicode(text: str) -> UnicodeFold:
    """Case-folded text with compatibility forms, invisibles, marks and look-alikes undone."""
    if text.isascii():
        return UnicodeFold(text.casefold(), ())
    steps: set[str] = set()
    compatible = unicodedata.normalize("NFKC", text)
    # Canonical composition ("i" + acute to "\u00ed") is no disguise; only compatibility folds are.
    if compatible != text and compatible != unicodedata.normalize("NFC", text):
        steps.add("compatibility")
    out: list[str] = []
    for ch in compatible:
        if ch.isascii():
            out.append(ch)
            continue
        replacement, step = _fold_char(ch)
        out.append(replacement)
        if step:
            steps.add(step)
    folded = "".join(out).casefold()
    if not folded.isascii():
        # Case folding can decompose again ("İ" -> "i" + combining dot): drop the marks it adds.
        folded = "".join(
            c
            for c in unicodedata.normalize("NFD", folded)
            if unicodedata.category(c) not in _MARK_CATEGORIES
        )
    return UnicodeFold(folded, tuple(step for step in FOLD_STEPS if step in steps))
