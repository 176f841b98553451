"""Evasion transforms for the classifier's evaluation sets.

Base texts mark their trigger words with braces (``"assist {ICE} with locate"``); a transform
rewrites the marked words only, the way someone who wants a search past the screen would disguise
the word the screen looks for and leave the rest readable. Every transform takes a
``random.Random`` so the sets are reproducible from their seed.

The character choices come from Unicode itself (character names through ``unicodedata``), not from
the classifier's own tables, so the sets do not share a blind spot with the code they measure.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable

Transform = Callable[[str, random.Random], str]

_MARKED = re.compile(r"\{([^{}]+)\}")


def plain(marked: str) -> str:
    """The base text without its markers."""
    return _MARKED.sub(lambda m: m.group(1), marked)


def on_marked(marked: str, transform: Transform, rng: random.Random) -> str:
    """Apply ``transform`` to every marked word and drop the markers."""
    return _MARKED.sub(lambda m: transform(m.group(1), rng), marked)


def _letters_at(word: str, rng: random.Random, share: float, eligible: str) -> list[int]:
    """Positions to rewrite: a random share of the eligible letters, at least one."""
    places = [i for i, ch in enumerate(word) if ch in eligible]
    if not places:
        return []
    chosen = [i for i in places if rng.random() < share]
    return chosen or [rng.choice(places)]


def _substitute(word: str, table: dict[str, str], rng: random.Random, share: float) -> str:
    chars = list(word)
    for i in _letters_at(word, rng, share, "".join(table)):
        chars[i] = table[chars[i]]
    return "".join(chars)


def _named(names: dict[str, str]) -> dict[str, str]:
    """Latin letter -> the character of that Unicode name."""
    return {letter: unicodedata.lookup(name) for letter, name in names.items()}


# Look-alike letters of other scripts, chosen by name; only letters that a reader takes for the
# Latin one are listed, so a disguised word still reads as the word.
_CYR = "CYRILLIC SMALL LETTER "
_CYR_CAP = "CYRILLIC CAPITAL LETTER "
CYRILLIC: dict[str, str] = _named(
    {
        "a": _CYR + "A",
        "e": _CYR + "IE",
        "o": _CYR + "O",
        "p": _CYR + "ER",
        "c": _CYR + "ES",
        "x": _CYR + "HA",
        "y": _CYR + "U",
        "i": _CYR + "BYELORUSSIAN-UKRAINIAN I",
        "j": _CYR + "JE",
        "s": _CYR + "DZE",
        "h": _CYR + "SHHA",
        "d": _CYR + "KOMI DE",
        "A": _CYR_CAP + "A",
        "B": _CYR_CAP + "VE",
        "C": _CYR_CAP + "ES",
        "E": _CYR_CAP + "IE",
        "H": _CYR_CAP + "EN",
        "I": _CYR_CAP + "BYELORUSSIAN-UKRAINIAN I",
        "J": _CYR_CAP + "JE",
        "K": _CYR_CAP + "KA",
        "M": _CYR_CAP + "EM",
        "O": _CYR_CAP + "O",
        "P": _CYR_CAP + "ER",
        "S": _CYR_CAP + "DZE",
        "T": _CYR_CAP + "TE",
        "X": _CYR_CAP + "HA",
        "Y": _CYR_CAP + "STRAIGHT U",
    }
)
GREEK: dict[str, str] = {
    "A": "\u0391",
    "B": "\u0392",
    "E": "\u0395",
    "Z": "\u0396",
    "H": "\u0397",
    "I": "\u0399",
    "K": "\u039a",
    "M": "\u039c",
    "N": "\u039d",
    "O": "\u039f",
    "P": "\u03a1",
    "T": "\u03a4",
    "Y": "\u03a5",
    "X": "\u03a7",
    "o": "\u03bf",
    "v": "\u03bd",
    "i": "\u03b9",
    "a": "\u03b1",
    "u": "\u03c5",
    "k": "\u03ba",
    "p": "\u03c1",
}


def cyrillic(word: str, rng: random.Random) -> str:
    return _substitute(word, CYRILLIC, rng, 0.6)


def greek(word: str, rng: random.Random) -> str:
    return _substitute(word, GREEK, rng, 0.6)


def fullwidth(word: str, rng: random.Random) -> str:
    del rng
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in word)


MATH_STYLES = (
    "BOLD",
    "ITALIC",
    "BOLD ITALIC",
    "SCRIPT",
    "BOLD SCRIPT",
    "FRAKTUR",
    "DOUBLE-STRUCK",
    "BOLD FRAKTUR",
    "SANS-SERIF",
    "SANS-SERIF BOLD",
    "SANS-SERIF ITALIC",
    "SANS-SERIF BOLD ITALIC",
    "MONOSPACE",
)


def math_alphanumeric(word: str, rng: random.Random) -> str:
    style = rng.choice(MATH_STYLES)
    out = []
    for ch in word:
        if ch.isascii() and ch.isalpha():
            case = "CAPITAL" if ch.isupper() else "SMALL"
            name = f"MATHEMATICAL {style} {case} {ch.upper()}"
        elif ch.isascii() and ch.isdigit():
            name = f"MATHEMATICAL {style} DIGIT {unicodedata.name(ch).split()[-1]}"
        else:
            out.append(ch)
            continue
        try:
            out.append(unicodedata.lookup(name))
        except KeyError:  # the holes of the block (script e, fraktur C): letterlike symbols
            out.append(ch)
    return "".join(out)


def circled(word: str, rng: random.Random) -> str:
    # Mostly the enclosed alphanumerics NFKC folds; sometimes the negative circled capitals, which
    # have no compatibility decomposition, because an attacker would not know the difference.
    negative = rng.random() < 0.2
    out = []
    for ch in word:
        if ch.isascii() and ch.isalpha():
            if negative:
                name = f"NEGATIVE CIRCLED LATIN CAPITAL LETTER {ch.upper()}"
                out.append(unicodedata.lookup(name))
            else:
                case = "CAPITAL" if ch.isupper() else "SMALL"
                out.append(unicodedata.lookup(f"CIRCLED LATIN {case} LETTER {ch.upper()}"))
        else:
            out.append(ch)
    return "".join(out)


INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u2061", "\u2063", "\u180e")


def _between_letters(word: str, rng: random.Random, pick: Callable[[], str], share: float) -> str:
    out = []
    for i, ch in enumerate(word):
        out.append(ch)
        if i < len(word) - 1 and ch.isalnum() and word[i + 1].isalnum() and rng.random() < share:
            out.append(pick())
    result = "".join(out)
    if result == word and len(word) > 1:
        cut = rng.randrange(1, len(word))
        result = word[:cut] + pick() + word[cut:]
    return result


def zero_width(word: str, rng: random.Random) -> str:
    return _between_letters(word, rng, lambda: rng.choice(INVISIBLE), 0.5)


def soft_hyphen(word: str, rng: random.Random) -> str:
    return _between_letters(word, rng, lambda: "\u00ad", 0.4)


def variation_selector(word: str, rng: random.Random) -> str:
    selectors = [chr(c) for c in range(0xFE00, 0xFE10)] + ["\U000e0100", "\U000e01ef"]
    return "".join(ch + rng.choice(selectors) if ch.isalpha() else ch for ch in word)


COMBINING = tuple(chr(c) for c in (0x301, 0x300, 0x308, 0x303, 0x327, 0x336, 0x331, 0x332, 0x307))


def combining(word: str, rng: random.Random) -> str:
    out = []
    for ch in word:
        out.append(ch)
        if ch.isalpha() and rng.random() < 0.5:
            out.append(rng.choice(COMBINING))
            if rng.random() < 0.3:
                out.append(rng.choice(COMBINING))
    return "".join(out)


def dotless_i(word: str, rng: random.Random) -> str:
    del rng
    return word.replace("i", "\u0131").replace("I", "\u0130")


SPACES = ("\u00a0", "\u2009", "\u202f", "\u2007", "\u2002", "\u2003", "\u205f", "\u3000", "\u200a")


def odd_spaces(text: str, rng: random.Random) -> str:
    """Every space of the whole text becomes a no-break, thin or other Unicode space."""
    return "".join(rng.choice(SPACES) if ch == " " else ch for ch in text)


def thin_split(word: str, rng: random.Random) -> str:
    """Letters split by a thin or no-break space: 'I C E' that looks like 'ICE'."""
    sep = rng.choice(("\u2009", "\u200a", "\u00a0", "\u202f"))
    return sep.join(word)


LEET = {
    "a": "4@",
    "e": "3",
    "i": "1!|",
    "o": "0",
    "s": "5$",
    "t": "7",
    "b": "8",
    "g": "9",
    "l": "1|",
    "z": "2",
}


def leet(word: str, rng: random.Random) -> str:
    chars = list(word)
    for i in _letters_at(word.lower(), rng, 0.55, "".join(LEET)):
        chars[i] = rng.choice(LEET[chars[i].lower()])
    return "".join(chars)


def splitter(sep: str) -> Transform:
    def split(word: str, rng: random.Random) -> str:
        letters = [ch for ch in word if ch != " "]
        joiner = sep if sep != "mixed" else rng.choice((" ", ".", "-", "/", "*", ". "))
        return joiner.join(letters)

    return split


SPLITS: dict[str, Transform] = {
    "space": splitter(" "),
    "dot": splitter("."),
    "dot_space": splitter(". "),
    "dash": splitter("-"),
    "slash": splitter("/"),
    "star": splitter("*"),
    "underscore": splitter("_"),
}


def joined(marked: str, rng: random.Random) -> str:
    """The marked word glued to its neighbour: 'ICEhold', 'assistICE', 'HSIrequest'."""
    match = _MARKED.search(marked)
    if match is None:
        return plain(marked)
    before, word, after = marked[: match.start()], match.group(1), marked[match.end() :]
    word = word.replace(" ", "")
    if after.startswith(" ") and (not before.strip() or rng.random() < 0.6):
        rest = after[1:]
        return plain(before) + word + plain(rest)
    if before.endswith(" "):
        return plain(before[:-1]) + word + plain(after)
    return plain(before) + word + plain(after)


UNICODE: dict[str, Transform] = {
    "cyrillic": cyrillic,
    "greek": greek,
    "fullwidth": fullwidth,
    "math": math_alphanumeric,
    "circled": circled,
    "zero_width": zero_width,
    "soft_hyphen": soft_hyphen,
    "variation_selector": variation_selector,
    "combining": combining,
    "dotless_i": dotless_i,
    "thin_split": thin_split,
}


def mixed(word: str, rng: random.Random) -> str:
    """Two disguises at once: look-alike letters with invisible joiners, leetspeak split by dots."""
    first, second = rng.sample(
        [cyrillic, greek, fullwidth, zero_width, combining, leet, soft_hyphen], 2
    )
    return second(first(word, rng), rng)


def random_case(text: str, rng: random.Random) -> str:
    return "".join(ch.upper() if rng.random() < 0.5 else ch.lower() for ch in text)
