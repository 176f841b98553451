"""Word-level repairs for the purpose classifier: disguised keywords back to the words they show.

After :mod:`streamguard.core.textnorm` has folded the characters, a keyword can still be hidden in
how the word is written. These repairs undo that, each only when the result is a word the
classifier's :class:`Vocabulary` knows, so ordinary text (case numbers, code sections, names) is
left as it is:

- ``leetspeak``: digits and symbols for letters (``1CE``, ``d3p0rt4t10n``, ``@bortion``). ``1``
  and ``|`` can be an i or an l; every reading is tried and the one that makes a known word wins.
- ``split_letters``: letters split by spaces, dots, dashes, slashes or stars (``I C E``,
  ``a-b-o-r-t-i-o-n``, ``i.m.m.i.g``) or a word cut in two (``immi gration``) are joined.
- ``joined_words``: a short agency name glued to the words around it (``ICEhold``, ``assistICE``,
  ``HSIcase``) is split off. Glued words are split only into names and the context words of the
  vocabulary, never at any substring, so ``police``, ``justice``, ``zero`` and ``hsiao`` stay
  whole. A long, unambiguous keyword (``abortion``, ``immigration``) is split off wherever it is.
- ``misspelling``: a word within a small edit distance of a long keyword (``immigraton``,
  ``deportatoin``, ``mifeprestone``) or of a two-word name (``boarder patorl``) becomes that
  keyword. Short words are never corrected: ``reported`` must not become ``deported``.

The result is the text as lower-case ASCII words separated by single spaces, with a space at
each end, and the repairs that changed it.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ("WORD_STEPS", "Vocabulary", "WordFold", "WordFolder", "edit_distance")

WORD_STEPS: tuple[str, ...] = ("leetspeak", "split_letters", "joined_words", "misspelling")

# What each digit or symbol stands for, most likely reading first.
_LEET: dict[str, str] = {
    "0": "o",
    "1": "il",
    "2": "z",
    "3": "e",
    "4": "a",
    "5": "s",
    "6": "gb",
    "7": "t",
    "8": "b",
    "9": "g",
    "@": "a",
    "$": "s",
    "!": "i",
    "|": "il",
}
# Readings tried per word at most; a word with more ambiguous characters takes the first readings.
_MAX_READINGS = 64
# A run of letters, digits and leet symbols with at least one of each: "1ce", "h0ld", "@bortion".
_LEET_RUN = re.compile(
    r"(?<![a-z0-9@$!|])(?=[a-z0-9@$!|]*[a-z])(?=[a-z0-9@$!|]*[0-9@$!|])[a-z0-9@$!|]+"
)
_HAS_LEET = re.compile(r"[0-9@$!|]")
# Dotted or spaced-dot acronyms ("I.C.E.", "u.s.b.p") are joined before punctuation becomes spaces,
# or they would fall apart into single letters.
_DOTTED_ACRONYM = re.compile(r"(?<![a-z0-9])(?:[a-z]\.\s?){2,}[a-z]?(?![a-z0-9])")
# Letters of other scripts stay as tokens: a reason written in Cyrillic or Chinese says something
# even though no pattern reads it, so it must not fold away into an empty, "missing" text.
_NON_WORD = re.compile(r"[\W_]+")
# Runs longer than this are not read as one word (splitting a glued word is quadratic).
_MAX_RUN = 40


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """What the classifier reads, as the repairs need it.

    ``known``: any word the classifier has a rule for (keywords, crime words, filler).
    ``keyword``: a word of a prohibited purpose (agency names, immigration and health terms).
    ``glue_names``: short agency names that may be glued to other words (``ice``, ``hsi``).
    ``glue_words``: the words they are glued to (``hold``, ``assist``, ``warrant``).
    ``inner_keywords``: long keywords split off wherever they occur inside a word.
    ``roots``: keywords of five letters or more; a glued word that holds one is split into known
    words of three letters or more ("removalorder", "plannedparenthood").
    ``spellings``: long keywords whose misspellings are corrected.
    ``spelling_pairs``: two-word names whose misspellings are corrected together.
    """

    known: Callable[[str], bool]
    keyword: Callable[[str], bool]
    glue_names: frozenset[str]
    glue_words: frozenset[str]
    inner_keywords: tuple[str, ...]
    roots: tuple[str, ...]
    spellings: tuple[str, ...]
    spelling_pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class WordFold:
    """The repaired text (" word word ") and the repairs that changed it (in WORD_STEPS order)."""

    text: str
    steps: tuple[str, ...]


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a swap of neighbours counts once), or limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = previous[j - 1] + (ca != cb)
            best = min(previous[j] + 1, current[j - 1] + 1, cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, before[j - 2] + 1)
            current.append(best)
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return previous[-1]


def _spelling_limit(word: str) -> int:
    """Edits allowed to reach a keyword of this length: none below 8 letters, 2 from 13.

    "reproduction" is two edits from "reproductive" and "departed" one from "deported", so short
    keywords are never corrected and twelve-letter ones by one edit only.
    """
    if len(word) < 8:
        return 0
    return 1 if len(word) < 13 else 2


class WordFolder:
    """The repairs bound to one vocabulary, with per-word caches (words repeat across reasons)."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self.glue_pieces = tuple(
            sorted(vocabulary.glue_names | vocabulary.glue_words, key=len, reverse=True)
        )
        self.has_root = _any_of(vocabulary.roots)
        self.has_inner = _any_of(vocabulary.inner_keywords)
        self.has_name = _any_of(vocabulary.glue_names)
        self.pairs: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for a, b in vocabulary.spelling_pairs:
            self.pairs.setdefault((a[0], b[0]), []).append((a, b))
        self.leet = functools.lru_cache(maxsize=8192)(self._leet)
        self.glued = functools.lru_cache(maxsize=16384)(self._glued)
        self.repair = functools.lru_cache(maxsize=32768)(self._repair)

    # --- leetspeak ---

    def _leet(self, run: str) -> str | None:
        """The known word a run of letters, digits and symbols spells, if any."""
        letters = sum(ch.isalpha() for ch in run)
        # Case numbers and code sections ("24cr01234", "245a2") are mostly digits: not words.
        if not letters or len(run) - letters > letters + 2 or len(run) > 24:
            return None
        options = [_LEET.get(ch, ch) for ch in run]
        readings = itertools.islice(itertools.product(*options), _MAX_READINGS)
        for reading in readings:
            word = "".join(reading)
            if len(word) >= 3 and (self.vocabulary.known(word) or self.glued(word) is not None):
                return word
        return None

    # --- glued words ---

    def _segment(self, word: str) -> list[str] | None:
        """``word`` as a sequence of glue names and glue words with at least one name, if it is."""
        names = self.vocabulary.glue_names
        # Breadth search over split points, longest piece first; words are short, pieces few.
        best: dict[int, list[str]] = {0: []}
        for start in range(len(word)):
            if start not in best:
                continue
            for piece in self.glue_pieces:
                if word.startswith(piece, start) and start + len(piece) not in best:
                    best[start + len(piece)] = [*best[start], piece]
        pieces = best.get(len(word))
        if pieces and len(pieces) > 1 and any(piece in names for piece in pieces):
            return pieces
        return None

    def _segment_known(self, word: str) -> list[str] | None:
        """``word`` as known words of three letters or more, one of them a long keyword."""
        known, keyword = self.vocabulary.known, self.vocabulary.keyword
        names = self.vocabulary.glue_names
        best: dict[int, list[str]] = {0: []}
        for start in range(len(word) - 2):
            if start not in best:
                continue
            for end in range(len(word), start + 2, -1):
                piece = word[start:end]
                if end not in best and piece not in names and known(piece):
                    best[end] = [*best[start], piece]
        pieces = best.get(len(word))
        if pieces and len(pieces) > 1 and any(len(p) >= 5 and keyword(p) for p in pieces):
            return pieces
        return None

    def _glued(self, word: str) -> str | None:
        """The words glued together in ``word`` ("icehold" -> "ice hold"), if it is glued."""
        vocabulary = self.vocabulary
        if vocabulary.keyword(word):
            return None
        inner = self.has_inner.search(word) if self.has_inner else None
        if inner is not None:
            parts = [word[: inner.start()], inner.group(0), word[inner.end() :]]
            return " ".join(part for part in parts if part)
        pieces = None
        if self.has_name is not None and self.has_name.search(word):
            pieces = self._segment(word)
        if (
            pieces is None
            and self.has_root is not None
            and self.has_root.search(word)
            and not vocabulary.known(word)
        ):
            pieces = self._segment_known(word)
        return " ".join(pieces) if pieces else None

    # --- misspellings ---

    def _misspelt(self, word: str) -> str | None:
        """The long keyword ``word`` is a misspelling of, if any."""
        if len(word) < 7 or self.vocabulary.keyword(word) or not word.isalpha():
            return None
        for target in self.vocabulary.spellings:
            limit = _spelling_limit(target)
            if target[0] == word[0] and edit_distance(word, target, limit) <= limit:
                return target
        return None

    def _pair_misspelt(self, first: str, second: str) -> tuple[str, str] | None:
        for a, b in self.pairs.get((first[:1], second[:1]), ()):
            if (first, second) != (a, b) and _near(first, a) and _near(second, b):
                return a, b
        return None

    def _repair(self, word: str) -> tuple[tuple[str, ...], str] | None:
        """The words one word stands for and the repair that says so, if it needs one."""
        if len(word) <= 3:
            return None
        glued = self.glued(word)
        if glued is not None:
            return tuple(glued.split()), "joined_words"
        corrected = self._misspelt(word)
        if corrected is not None:
            return (corrected,), "misspelling"
        return None

    # --- the pipeline ---

    def fold(self, text: str) -> WordFold:
        """Repair disguised keywords in ``text`` (already Unicode-folded and lower case)."""
        steps: set[str] = set()
        text = text.replace("&", " and ")
        if "." in text:
            text = _DOTTED_ACRONYM.sub(lambda m: self._acronym(m.group(0), steps), text)
        if _HAS_LEET.search(text):
            text = _LEET_RUN.sub(lambda m: self._leet_or_same(m.group(0), steps), text)
        words = _NON_WORD.sub(" ", text).split()
        words = self._join_split_letters(words, steps)
        # Halves of a keyword hold a piece of it: a text without any root has none to join.
        if len(words) > 1 and self.has_root is not None and self.has_root.search("".join(words)):
            words = self._join_halves(words, steps)
        out: list[str] = []
        for word in words:
            repaired = self.repair(word)
            if repaired is None:
                out.append(word)
            else:
                out.extend(repaired[0])
                steps.add(repaired[1])
        for i in range(len(out) - 1):
            if (out[i][:1], out[i + 1][:1]) in self.pairs:
                pair = self._pair_misspelt(out[i], out[i + 1])
                if pair is not None:
                    out[i], out[i + 1] = pair
                    steps.add("misspelling")
        return WordFold(
            " " + " ".join(out) + " ", tuple(step for step in WORD_STEPS if step in steps)
        )

    def _acronym(self, dotted: str, steps: set[str]) -> str:
        """ "I.C.E." as "ice" ("p.c." as "pc" too, but only a keyword counts as a disguise)."""
        joined = dotted.replace(".", "").replace(" ", "")
        if self.vocabulary.keyword(joined):
            steps.add("split_letters")
        return joined

    def _leet_or_same(self, run: str, steps: set[str]) -> str:
        word = self.leet(run)
        if word is None:
            return run
        steps.add("leetspeak")
        return word

    def _relevant(self, word: str) -> str | None:
        """``word`` (or its glued parts, or its leetspeak reading) if it is a keyword."""
        if self.vocabulary.keyword(word):
            return word
        glued = self.glued(word)
        if glued is not None:
            return glued
        if _HAS_LEET.search(word):
            reading = self.leet(word)
            if reading is not None and self.vocabulary.keyword(reading):
                return reading
        return None

    def _join_split_letters(self, words: list[str], steps: set[str]) -> list[str]:
        """Runs of one-character words that spell a keyword ("i c e hold") become that word."""
        if sum(len(word) == 1 for word in words) < 2:
            return words
        out: list[str] = []
        i = 0
        while i < len(words):
            j = i
            while j < len(words) and len(words[j]) == 1 and j - i < _MAX_RUN:
                j += 1
            if j - i < 2:
                out.append(words[i])
                i += 1
                continue
            out.extend(self._spell_run(words[i:j], steps))
            i = j
        return out

    def _spell_run(self, letters: list[str], steps: set[str]) -> list[str]:
        """The run as the keyword (or the known word) it spells, or as it was.

        Only the whole run is read: a stretch inside it is not, so "n o t i c e" does not hide
        an "ice".
        """
        whole = "".join(letters)
        found = self._relevant(whole)
        if found is not None:
            steps.add("split_letters")
            return found.split()
        return letters

    def _join_halves(self, words: list[str], steps: set[str]) -> list[str]:
        """Two unknown halves that make a long keyword ("immi gration") become the keyword."""
        out: list[str] = []
        i = 0
        while i < len(words):
            if i + 1 < len(words):
                first, second = words[i], words[i + 1]
                whole = first + second
                if (
                    len(first) >= 2
                    and len(second) >= 2
                    and len(whole) >= 6
                    and not self.vocabulary.known(first)
                    and not self.vocabulary.known(second)
                    and self.vocabulary.keyword(whole)
                ):
                    out.append(whole)
                    steps.add("split_letters")
                    i += 2
                    continue
            out.append(words[i])
            i += 1
        return out


def _any_of(words: Iterable[str]) -> re.Pattern[str] | None:
    """A pattern finding any of ``words`` (longest first), or None when there are none."""
    ordered = sorted(words, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


def _near(word: str, target: str) -> bool:
    """One edit away (two for long words), or the same word."""
    limit = 1 if len(target) < 9 else 2
    if len(target) < 5:
        return word == target
    return edit_distance(word, target, limit) <= limit
