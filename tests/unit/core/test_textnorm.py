"""Unicode folding: every disguise a person cannot see is undone, and says that it was.

Characters are written as escapes so the look-alikes stay visible here.
"""

from __future__ import annotations

import unicodedata

import icu  # type: ignore[import-untyped]
import pytest

from streamguard.core.textnorm import FOLD_STEPS, fold_unicode

IGNORABLE = icu.UProperty.DEFAULT_IGNORABLE_CODE_POINT


@pytest.mark.parametrize(
    ("text", "folded", "steps"),
    [
        # compatibility forms (NFKC)
        ("\uff29\uff23\uff25 hold", "ice hold", ("compatibility",)),
        ("\U0001d408\U0001d402\U0001d404", "ice", ("compatibility",)),  # mathematical bold
        ("\U0001d526\U0001d520\U0001d522", "ice", ("compatibility",)),  # fraktur small
        ("\u24be\u24b8\u24ba", "ice", ("compatibility",)),  # circled capitals
        ("\u24d8\u24d2\u24d4", "ice", ("compatibility",)),  # circled small letters
        ("ICE\u00a0hold", "ice hold", ("compatibility",)),  # no-break space
        ("ICE\u2009hold", "ice hold", ("compatibility",)),  # thin space
        ("ICE\u3000hold", "ice hold", ("compatibility",)),  # ideographic space
        # invisible characters (Default_Ignorable_Code_Point)
        ("I\u200bCE", "ice", ("invisible",)),  # zero-width space
        ("I\u200dC\u200cE", "ice", ("invisible",)),  # zero-width joiner, non-joiner
        ("I\u2060C\ufeffE", "ice", ("invisible",)),  # word joiner, BOM
        ("ab\u00adortion", "abortion", ("invisible",)),  # soft hyphen
        ("I\ufe0fC\ufe00E", "ice", ("invisible",)),  # variation selectors
        ("I\U000e0100CE", "ice", ("invisible",)),  # variation selector supplement
        ("I\u180eCE", "ice", ("invisible",)),  # Mongolian vowel separator
        ("I\u2063CE", "ice", ("invisible",)),  # invisible separator
        ("\u202eECI", "eci", ("invisible",)),  # a bidi override changes the look, not the letters
        # combining marks
        ("i\u0301mmigrati\u0308on", "immigration", ("combining_marks",)),
        ("I\u0336C\u0336E\u0336", "ice", ("combining_marks",)),  # strike-through overlay
        ("inmigraci\u00f3n", "inmigracion", ("combining_marks",)),  # precomposed accent
        ("\u0130CE", "ice", ("combining_marks",)),  # capital I with dot above
        # TR #39 confusables
        ("\u0406\u0421\u0415", "ice", ("confusable",)),  # Cyrillic capitals
        ("\u0456\u0441\u0435", "ice", ("confusable",)),  # Cyrillic small letters
        ("\u0399C\u0395", "ice", ("confusable",)),  # Greek capital iota and epsilon
        ("\u03b9mm\u03b9gr\u03b1t\u03b9\u03bfn", "immigration", ("confusable",)),  # Greek small
        ("\u0131mm\u0131grat\u0131on", "immigration", ("confusable",)),  # dotless i
        ("\u13a5\u13df\u13ac", "ice", ("confusable",)),  # Cherokee
        # no TR #39 prototype: read by the character's name
        ("\u026a\u1d04\u1d07", "ice", ("confusable",)),  # Latin small capitals
        ("\U0001f158\U0001f152\U0001f154", "ice", ("confusable",)),  # negative circled capitals
        ("\U0001f1ee\U0001f1e8\U0001f1ea", "ice", ("confusable",)),  # regional indicator letters
        # several at once, reported in pipeline order
        ("\uff29\u00ad\uff23\uff25", "ice", ("compatibility", "invisible")),
        ("\u0456\u0301ce", "ice", ("combining_marks", "confusable")),
    ],
)
def test_disguises_fold_to_the_latin_word_they_show(
    text: str, folded: str, steps: tuple[str, ...]
) -> None:
    """Each disguise folds to plain lower-case Latin, and the step that undid it is named."""
    result = fold_unicode(text)
    assert result.text == folded
    assert result.steps == steps


def test_plain_ascii_is_only_case_folded() -> None:
    """The common case takes no step at all."""
    result = fold_unicode("Burglary 459 PC, 24-1234 / I.C.E.")
    assert result.text == "burglary 459 pc, 24-1234 / i.c.e."
    assert result.steps == ()


@pytest.mark.parametrize(
    "text",
    ["\u68c0\u67e5", "\u0436\u0438\u0442\u044c", "\U0001f693", "\u0645\u0631\u062d\u0628\u0627"],
    ids=["chinese", "cyrillic-word", "emoji", "arabic"],
)
def test_characters_without_a_latin_reading_are_kept(text: str) -> None:
    """Another script still says something: it must not fold away into an empty text."""
    assert fold_unicode(text).text.strip() != ""


def test_a_caseless_stroke_is_left_to_the_leetspeak_repair() -> None:
    """A click letter looks like I and like l: it becomes the ambiguous '|' a later step reads."""
    assert fold_unicode("\u01c0CE").text == "|ce"


def test_capital_stroke_look_alikes_read_as_i_not_l() -> None:
    """TR #39 maps capital-I look-alikes to 'l'; in a Latin word a capital stroke is an I."""
    assert fold_unicode("\u0406CE").text == "ice"
    assert fold_unicode("\u04c0CE").text == "ice"  # Cyrillic palochka


def test_every_fold_result_is_free_of_marks_and_invisibles() -> None:
    """Whatever comes in, no combining mark or default-ignorable character survives the fold."""
    sample = "".join(chr(c) for c in range(0x20, 0x30000) if unicodedata.category(chr(c)) != "Cs")
    folded = fold_unicode(sample)
    assert not any(unicodedata.category(ch) in ("Mn", "Me") for ch in folded.text)
    assert not any(icu.Char.hasBinaryProperty(ch, IGNORABLE) for ch in folded.text)
    assert set(folded.steps) <= set(FOLD_STEPS)
    assert folded.text == folded.text.casefold()
