"""Build the classifier's evaluation sets: heldout.jsonl (measure once) and dev.jsonl (tune on).

Usage: python -m tests.data.classifier.build [--check]

Each line is ``{"id", "target", "expect", "attack", "text"}``: ``target`` is the category the text
probes (``immigration`` or ``health_care``), ``expect`` whether the classifier should report it,
``attack`` the evasion or look-alike class. Texts are written with ASCII escapes, so invisible and
look-alike characters stay visible in a diff. ``--check`` fails when a file is not what its
source module builds (the sets must be reproducible from their seed).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.data.classifier import attacks, dev, heldout

HERE = Path(__file__).resolve().parent
SETS: dict[str, ModuleType] = {"heldout": heldout, "dev": dev}

# How many bases each transform is applied to, per target; small sets use all their bases.
PER_TRANSFORM = {"immigration": 22, "health_care": 14}
PER_SPLIT = {"immigration": 8, "health_care": 5}
PER_MIXED = {"immigration": 26, "health_care": 16}


def _sample(rng: random.Random, items: Sequence[str], count: int) -> list[str]:
    return list(items) if count >= len(items) else rng.sample(list(items), count)


def _disguised(bases: Sequence[str], target: str, rng: random.Random) -> Iterator[tuple[str, str]]:
    """(attack, text) for every evasion transform over a sample of the marked bases."""
    for base in bases:
        yield "plain", attacks.plain(base)
    for name, transform in attacks.UNICODE.items():
        eligible = [b for b in bases if name != "dotless_i" or "i" in b.lower()]
        for base in _sample(rng, eligible, PER_TRANSFORM[target]):
            yield f"unicode.{name}", attacks.on_marked(base, transform, rng)
    for base in _sample(rng, bases, PER_TRANSFORM[target]):
        yield "unicode.odd_spaces", attacks.odd_spaces(attacks.on_marked(base, _same, rng), rng)
    for base in _sample(rng, bases, PER_MIXED[target]):
        yield "unicode.mixed", attacks.on_marked(base, attacks.mixed, rng)
    for base in bases:
        yield "leetspeak", attacks.on_marked(base, attacks.leet, rng)
    for name, split in attacks.SPLITS.items():
        for base in _sample(rng, bases, PER_SPLIT[target]):
            yield f"split.{name}", attacks.on_marked(base, split, rng)
    for base in bases:
        if " " in attacks.plain(base).strip():
            yield "joined", attacks.joined(base, rng)
    for base in _sample(rng, bases, PER_SPLIT[target]):
        yield "random_case", attacks.random_case(attacks.plain(base), rng)


def _same(word: str, rng: random.Random) -> str:
    del rng
    return word


def _crime_before_agency(source: ModuleType, rng: random.Random) -> Iterator[tuple[str, str]]:
    pairs = [(c, a) for c in source.CRIMES for a in source.AGENCY_AFTER_CRIME]
    for crime, agency in _sample(rng, pairs, 70):
        yield "crime_before_agency", f"{crime} {agency}"
    triples = [
        (adj, obj, agency)
        for adj in source.FRAUD_ADJECTIVES
        for obj in source.FRAUD_OBJECTS
        for agency in source.AGENCY_AFTER_FRAUD
    ]
    for adj, obj, agency in _sample(rng, triples, 45):
        yield "fraud_adjective_before_agency", f"{adj} {obj} {agency}"


def build(name: str) -> list[dict[str, Any]]:
    """Every record of one set, in a stable order, without duplicate (target, text) pairs."""
    source = SETS[name]
    rng = random.Random(source.SEED)
    rows: list[tuple[str, bool, str, str]] = []
    for attack, text in _disguised(source.IMMIGRATION_BASES, "immigration", rng):
        rows.append(("immigration", True, attack, text))
    for attack, text in _crime_before_agency(source, rng):
        rows.append(("immigration", True, attack, text))
    for attack, texts in (
        ("misspelling", source.IMMIGRATION_MISSPELT),
        ("spanish", source.IMMIGRATION_SPANISH),
        ("vocabulary", source.IMMIGRATION_VOCABULARY),
    ):
        rows.extend(("immigration", True, attack, text) for text in texts)
    for attack, text in _disguised(source.HEALTH_BASES, "health_care", rng):
        rows.append(("health_care", True, attack, text))
    for attack, texts in (
        ("misspelling", source.HEALTH_MISSPELT),
        ("spanish", source.HEALTH_SPANISH),
        ("vocabulary", source.HEALTH_VOCABULARY),
        ("crime_word_elsewhere", source.HEALTH_WITH_CRIME_WORD),
    ):
        rows.extend(("health_care", True, attack, text) for text in texts)
    for target, lookalikes, benign_bases in (
        ("immigration", source.NOT_IMMIGRATION, source.BENIGN_BASES),
        ("health_care", source.NOT_HEALTH, source.BENIGN_HEALTH_BASES),
    ):
        for attack, texts in lookalikes.items():
            rows.extend((target, False, attack, text) for text in texts)
        for base in benign_bases:
            for transform_name in ("cyrillic", "greek", "fullwidth", "zero_width", "combining"):
                transform = attacks.UNICODE[transform_name]
                rows.append(
                    (target, False, "benign_disguised", attacks.on_marked(base, transform, rng))
                )
            split = attacks.SPLITS[rng.choice(sorted(attacks.SPLITS))]
            for transform in (attacks.leet, split):
                rows.append(
                    (target, False, "benign_disguised", attacks.on_marked(base, transform, rng))
                )

    seen: set[tuple[str, str]] = set()
    records = []
    for target, expect, attack, text in rows:
        if (target, text) in seen:
            continue
        seen.add((target, text))
        records.append(
            {
                "id": f"{name}-{len(records):04d}",
                "target": target,
                "expect": expect,
                "attack": attack,
                "text": text,
            }
        )
    return records


def render(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(record, ensure_ascii=True) + "\n" for record in records)


def load(name: str) -> list[dict[str, Any]]:
    """The records of one committed set file."""
    path = HERE / f"{name}.jsonl"
    with path.open(encoding="ascii") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name in SETS:
        text = render(build(name))
        path = HERE / f"{name}.jsonl"
        if args.check:
            if not path.is_file() or path.read_text(encoding="ascii") != text:
                stale.append(path.name)
            continue
        path.write_text(text, encoding="ascii")
        print(f"wrote {path} ({text.count(chr(10))} records)")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python -m tests.data.classifier.build")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
