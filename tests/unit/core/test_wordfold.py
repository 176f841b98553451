"""Word repairs: disguised keywords become the words they show, ordinary words stay as they are.

The repairs are tested against a small vocabulary of their own, so each test shows which word
list a decision rests on; the classifier's vocabulary is tested through the classifier.
"""

from __future__ import annotations

import pytest

from streamguard.core.wordfold import WORD_STEPS, Vocabulary, WordFolder, edit_distance

KEYWORDS = frozenset(
    {"ice", "hsi", "alien", "immigration", "deportation", "abortion", "removal", "border"}
)
KNOWN = KEYWORDS | frozenset(
    {"hold", "warrant", "assist", "case", "order", "police", "justice", "of", "in", "patrol"}
)
FOLDER = WordFolder(
    Vocabulary(
        known=KNOWN.__contains__,
        keyword=KEYWORDS.__contains__,
        glue_names=frozenset({"ice", "hsi", "alien"}),
        glue_words=frozenset({"hold", "warrant", "assist", "case"}),
        inner_keywords=("immigration", "abortion"),
        roots=("removal", "border", "alien", "immigration", "deportation", "abortion"),
        spellings=("immigration", "deportation", "abortion"),
        spelling_pairs=(("border", "patrol"),),
    )
)


def fold(text: str) -> tuple[str, tuple[str, ...]]:
    result = FOLDER.fold(text)
    return result.text.strip(), result.steps


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1ce hold", "ice hold"),
        ("|ce hold", "ice hold"),
        ("!ce", "ice"),
        ("a1ien", "alien"),  # "1" read as l, the reading that makes a word
        ("a|ien", "alien"),
        ("1mm1gr4t10n", "immigration"),
        ("d3p0rt4t10n", "deportation"),
        ("@bort!on", "abortion"),
        ("h$i case", "hsi case"),
        ("1c3", "ice"),
    ],
)
def test_leetspeak_is_read_as_the_word_it_spells(text: str, words: str) -> None:
    assert fold(text) == (words, ("leetspeak",))


@pytest.mark.parametrize(
    "text",
    ["24cr01234", "245a2 pc", "i5 north", "10851vc", "cr25 1234", "4th st", "x7", "b4"],
)
def test_case_numbers_codes_and_unknown_mixes_are_left_alone(text: str) -> None:
    """Only a reading that makes a known word counts; mostly-digit runs are never read."""
    assert fold(text) == (text, ())


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("i c e hold", "ice hold"),
        ("i.c.e hold", "ice hold"),  # dotted acronym
        ("i-c-e hold", "ice hold"),
        ("i/c/e hold", "ice hold"),
        ("i*c*e hold", "ice hold"),
        ("i_c_e hold", "ice hold"),
        ("a b o r t i o n", "abortion"),
        ("1 c 3 hold", "ice hold"),  # split and leetspeak
        ("i c e h o l d", "ice hold"),  # split, and glued once joined
        ("r e m o v a l o r d e r", "removal order"),  # several words split letter by letter
        ("immi gration", "immigration"),  # a word cut in two
        ("depor tation", "deportation"),
    ],
)
def test_split_letters_are_joined_into_the_keyword(text: str, words: str) -> None:
    folded, steps = fold(text)
    assert folded == words
    assert "split_letters" in steps


@pytest.mark.parametrize(
    "text",
    [
        "p o l i c e",  # "police" is no keyword and holds no "ice" to pick out
        "n o t i c e",
        "w m in area",
        "in migration",  # "in" is a word: not half of "inmigration"
        "a lien",  # single letters are no half
        "o f",
    ],
)
def test_letters_that_spell_no_keyword_stay_apart(text: str) -> None:
    assert fold(text) == (text, ())


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("icehold", "ice hold"),
        ("assistice", "assist ice"),
        ("hsicase", "hsi case"),
        ("iceholdwarrant", "ice hold warrant"),
        ("assistalien", "assist alien"),
        ("gotanabortion", "gotan abortion"),  # a long keyword is split off wherever it is
        ("assistimmigration", "assist immigration"),
        ("removalorder", "removal order"),  # a root and known words
        ("borderpatrol", "border patrol"),
    ],
)
def test_glued_words_are_split(text: str, words: str) -> None:
    assert fold(text) == (words, ("joined_words",))


@pytest.mark.parametrize(
    "text",
    ["police", "justice", "notice", "service", "office", "zero", "hero", "hsiao", "salient"],
)
def test_ordinary_words_holding_an_agency_name_stay_whole(text: str) -> None:
    """A short name is split off only next to its context words, never out of any word."""
    assert fold(text) == (text, ())


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("immigraton", "immigration"),
        ("imigration", "immigration"),
        ("immigartion", "immigration"),  # two letters swapped count as one edit
        ("deportatoin", "deportation"),
        ("abortoin", "abortion"),
        ("boarder patorl", "border patrol"),
        ("bordr patrol", "border patrol"),
    ],
)
def test_misspelt_keywords_are_corrected(text: str, words: str) -> None:
    assert fold(text) == (words, ("misspelling",))


@pytest.mark.parametrize(
    "text",
    [
        "emigration",  # another first letter
        "migration",
        "adoption",  # two edits from "abortion"
        "portion",
        "boarder",  # "border" is corrected only as part of "border patrol"
        "order patrol",
    ],
)
def test_words_near_a_keyword_but_not_misspellings_stay(text: str) -> None:
    assert fold(text) == (text, ())


def test_result_is_spaced_words_and_steps_in_pipeline_order() -> None:
    result = FOLDER.fold("1ce-h0ld, immigraton & assistice!!")
    assert result.text == " ice hold immigration and assist ice "
    assert result.steps == ("leetspeak", "joined_words", "misspelling")
    assert set(result.steps) <= set(WORD_STEPS)


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("immigration", "immigration", 0),
        ("immigraton", "immigration", 1),
        ("immigartion", "immigration", 1),  # a swap of neighbours
        ("imigraton", "immigration", 2),
        ("reported", "deported", 1),
        ("abc", "abcdef", 3),
    ],
)
def test_edit_distance_counts_a_swap_once(a: str, b: str, distance: int) -> None:
    assert edit_distance(a, b, 5) == distance


def test_edit_distance_stops_past_its_limit() -> None:
    assert edit_distance("investigation", "immigration", 2) == 3
