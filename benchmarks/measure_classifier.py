"""Measure the purpose classifier: real-log false positives, evaluation-set recall, and speed.

Usage:
    python benchmarks/measure_classifier.py [DATA_DIR] [--review-dir DIR]
        [--sets dev,heldout] [--compare-with REV] [--no-real]

DATA_DIR is the folder of real public ALPR records (default: ../shared/data next to the
repository; never copied into it).

Real logs: prints row and distinct-reason counts per category and source. The reason texts
themselves are written only to files under --review-dir (default: the system temp folder), never
to stdout or into the repository, because real reasons can hold plate numbers and names:
- immigration_flagged.txt, health_care_flagged.txt: every distinct reason flagged, with its count,
  to read by hand for false positives;
- immigration_candidates_unflagged.txt: distinct reasons that contain "ice", "hsi", "cbp", "dhs",
  "border" and similar letters but were not flagged, to read by hand for misses.

Evaluation sets (tests/data/classifier/*.jsonl, written by hand and by evasion transforms, no real
rows): recall per attack class on the texts that should be flagged, false positives per look-alike
class on those that should not. dev is the set rules are tuned on; heldout is measured once, at
the end (its docstring says why), so run it only when you mean to report it.

--compare-with REV loads src/streamguard/core/classifier.py (and its textnorm module if any) as it
is at git revision REV and times both on the same texts in the same run: the ratio is what counts,
since absolute speed depends on the machine.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
import types
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

# The synthetic immigration reasons and tricky negatives of the unit tests double as probes: the
# real logs hold almost no immigration reasons, so recall cannot be measured on them alone.
from tests.unit.core.test_classifier import IMMIGRATION, NOT_IMMIGRATION  # noqa: E402

from streamguard.core import classifier  # noqa: E402
from streamguard.core.classifier import CATEGORIES, classify  # noqa: E402

SET_DIR = REPO / "tests" / "data" / "classifier"
PROHIBITED = ("immigration", "health_care")

# (label, file under DATA_DIR, reason column)
SOURCES: tuple[tuple[str, str, str], ...] = (
    ("ca_portals.reason", "sm_alpr/ca_portal_search_audits_2026-03_04.csv", "reason"),
    ("ca_portals.offenseType", "sm_alpr/ca_portal_search_audits_2026-03_04.csv", "offenseType"),
    ("eugene_or", "eugene_or/EPDSearchAuditLogs.csv", "reason"),
    ("okaloosa_fl", "okaloosa/okaloosa_fl_so_org_audit_2025-11-01_2025-12-08.csv", "Reason"),
    ("irvine_ca", "irvine_ca_muckrock/irvine_pd_vigilant_search_audit_2021_2025.csv", "Reason"),
)
# Letters an immigration reason would contain; used only to pick unflagged texts for review.
CANDIDATE = re.compile(
    r"ice|hsi|cbp|dhs|border|boarder|immig|imig|migra|alien|deport|ero\b|uscis|usbp|homeland|"
    r"removal|detain|federal|customs|visa|asyl|green card|citizen",
    re.IGNORECASE,
)

Categorise = Callable[[str], tuple[str, ...]]


def read_column(path: Path, column: str) -> Iterator[str]:
    """Yield one column of a CSV file, the empty string where the cell is missing."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or column not in reader.fieldnames:
            raise SystemExit(f"error: {path} has no column {column!r}")
        for row in reader:
            yield row.get(column) or ""


def read_sources(data_dir: Path) -> dict[str, list[str]]:
    """The reason columns of every source, plus the portal purposes as the engine builds them."""
    texts: dict[str, list[str]] = {}
    for label, name, column in SOURCES:
        path = data_dir / name
        if not path.is_file():
            raise SystemExit(f"error: {path} not found")
        texts[label] = list(read_column(path, column))
    # What the engine classifies for a portal search: the offense type and the reason together.
    texts["ca_portals.purpose"] = [
        f"{offense} - {reason}" if reason and offense else reason or offense
        for reason, offense in zip(
            texts["ca_portals.reason"], texts["ca_portals.offenseType"], strict=True
        )
    ]
    return texts


def measure_real(data_dir: Path, review_dir: Path) -> list[str]:
    """Print the real-log figures; return the distinct texts (the speed benchmark reuses them)."""
    texts = read_sources(data_dir)
    everything = [text for values in texts.values() for text in values]
    distinct = sorted(set(everything))
    # Cold: every distinct text once, through the uncached path, so the figure is the real cost of
    # an unseen reason. Warm: every row in log order, as the engine sees them, with the cache.
    started = time.perf_counter()
    verdicts = {text: classifier._categorise(text) for text in distinct}
    cold = time.perf_counter() - started
    classifier.cache_clear()
    started = time.perf_counter()
    for text in everything:
        classify(text)
    warm = time.perf_counter() - started

    print(f"data: {data_dir}")
    print("counts are of non-empty cells; an empty cell is always `missing`")
    header = f"{'source':24} {'rows':>7} {'nonempty':>8} " + " ".join(
        f"{name[:10]:>10}" for name in CATEGORIES
    )
    print(header)
    totals: Counter[str] = Counter()
    total_rows = total_nonempty = free_text = 0
    for label, values in texts.items():
        counts = Counter[str]()
        nonempty = sum(1 for text in values if text.strip())
        for text in values:
            if text.strip():
                counts.update(verdicts[text])
        cells = " ".join(f"{counts[name]:>10}" for name in CATEGORIES)
        print(f"{label:24} {len(values):>7} {nonempty:>8} {cells}")
        if label.endswith(".purpose"):
            continue  # the same rows again, combined; kept out of the totals
        totals.update(counts)
        total_rows += len(values)
        total_nonempty += nonempty
        if not label.endswith(".offenseType"):
            free_text += nonempty
    cells = " ".join(f"{totals[name]:>10}" for name in CATEGORIES)
    print(f"{'all (reason columns)':24} {total_rows:>7} {total_nonempty:>8} {cells}")

    by_category: Counter[str] = Counter(name for text in distinct for name in verdicts[text])
    print(
        f"distinct texts: {len(distinct)}; per category: "
        + ", ".join(f"{name}={by_category[name]}" for name in CATEGORIES)
    )
    print(f"speed cold (distinct, uncached): {len(distinct) / cold:,.0f} texts/s")
    print(f"speed warm (all rows, cached):   {len(everything) / warm:,.0f} texts/s")

    row_counts = Counter(everything)
    review_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[str]] = {}
    for name in PROHIBITED:
        files[f"{name}_flagged.txt"] = sorted(
            (text for text in distinct if name in verdicts[text]), key=lambda t: -row_counts[t]
        )
    files["immigration_candidates_unflagged.txt"] = sorted(
        (
            text
            for text in distinct
            if CANDIDATE.search(text) and "immigration" not in verdicts[text]
        ),
        key=lambda text: -row_counts[text],
    )
    for name, rows in files.items():
        target = review_dir / name
        with target.open("w", encoding="utf-8") as handle:
            for text in rows:
                handle.write(f"{row_counts[text]}\t{text!r}\t{' '.join(verdicts[text])}\n")
        print(f"wrote {len(rows)} distinct texts to {target}")
    for name in PROHIBITED:
        flagged_rows = totals[name]
        distinct_flagged = len(files[f"{name}_flagged.txt"])
        print(
            f"{name}: {flagged_rows} rows ({flagged_rows / max(total_nonempty, 1):.4%} of "
            f"{total_nonempty} non-empty cells, {flagged_rows / max(free_text, 1):.4%} of "
            f"{free_text} free-text reasons), {distinct_flagged} distinct"
        )

    hits = [probe for probe in IMMIGRATION if "immigration" in classify(probe)]
    false = [probe for probe in NOT_IMMIGRATION if "immigration" in classify(probe)]
    print(f"probe recall (in-sample): {len(hits)}/{len(IMMIGRATION)} synthetic reasons flagged")
    for probe in IMMIGRATION:
        if probe not in hits:
            print(f"  missed: {probe!r}")
    print(f"probe false positives: {len(false)}/{len(NOT_IMMIGRATION)} tricky negatives flagged")
    for probe in false:
        print(f"  flagged: {probe!r}")
    return distinct


def load_set(name: str) -> list[dict[str, object]]:
    path = SET_DIR / f"{name}.jsonl"
    with path.open(encoding="ascii") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _family(attack: str) -> str:
    return attack.split(".", 1)[0]


def measure_set(
    name: str, categorise: Categorise, *, show_misses: bool, label: str | None = None
) -> None:
    """Recall per attack class, false positives per look-alike class, of one evaluation set."""
    records = load_set(name)
    cells: dict[tuple[str, bool, str], list[int]] = defaultdict(lambda: [0, 0])
    misses: list[tuple[str, str, str]] = []
    for record in records:
        target, expect = str(record["target"]), bool(record["expect"])
        attack, text = str(record["attack"]), str(record["text"])
        flagged = target in categorise(text)
        cell = cells[(target, expect, attack)]
        cell[0] += flagged
        cell[1] += 1
        if flagged != expect:
            misses.append((target, attack, text))
    print(f"\n== set {label or name}: {len(records)} texts ==")
    for target in PROHIBITED:
        positives = sorted(key for key in cells if key[0] == target and key[1])
        negatives = sorted(key for key in cells if key[0] == target and not key[1])
        true_pos = sum(cells[key][0] for key in positives)
        all_pos = sum(cells[key][1] for key in positives)
        false_pos = sum(cells[key][0] for key in negatives)
        all_neg = sum(cells[key][1] for key in negatives)
        precision = true_pos / max(true_pos + false_pos, 1)
        print(
            f"{target}: recall {true_pos}/{all_pos} = {true_pos / max(all_pos, 1):.1%}; "
            f"look-alikes flagged {false_pos}/{all_neg} = {false_pos / max(all_neg, 1):.1%}; "
            f"precision in set {precision:.1%}"
        )
        families: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for key in positives:
            families[_family(key[2])][0] += cells[key][0]
            families[_family(key[2])][1] += cells[key][1]
        for family, (hit, total) in sorted(families.items()):
            print(f"  recall  {family:30} {hit:>4}/{total:<4} {hit / total:6.1%}")
        for key in positives:
            if _family(key[2]) != key[2]:
                hit, total = cells[key]
                print(f"    {key[2]:32} {hit:>4}/{total:<4} {hit / total:6.1%}")
        for key in negatives:
            hit, total = cells[key]
            print(f"  flagged {key[2]:30} {hit:>4}/{total:<4} {hit / total:6.1%}")
    if show_misses:
        for target, attack, text in misses:
            print(f"  wrong: {target:11} {attack:28} {text!r}")


def load_classifier_at(rev: str) -> types.ModuleType:
    """The classifier module (with the textnorm module it imports, if any) as of git REV."""
    tmp = Path(tempfile.mkdtemp(prefix="classifier-"))
    package = tmp / "baseline_classifier"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module in ("classifier", "textnorm"):
        shown = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{rev}:src/streamguard/core/{module}.py"],
            capture_output=True,
            text=True,
            check=False,
        )
        if shown.returncode == 0:
            source = shown.stdout.replace(
                "streamguard.core.textnorm", "baseline_classifier.textnorm"
            )
            (package / f"{module}.py").write_text(source)
    sys.path.insert(0, str(tmp))
    spec = importlib.util.spec_from_file_location(
        "baseline_classifier.classifier", package / "classifier.py"
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"error: cannot load the classifier of {rev}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def time_uncached(categorise: Categorise, texts: Sequence[str], rounds: int = 3) -> list[float]:
    """Texts per second of each round, every text through the uncached path.

    The first round also fills the per-word and per-character caches (every text new to the
    process); later rounds show the steady state, where a new reason is mostly made of words seen
    before.
    """
    speeds = []
    for _ in range(rounds):
        # CPU time of this process: other processes on a shared machine slow the wall clock.
        started = time.process_time()
        for text in texts:
            categorise(text)
        speeds.append(len(texts) / (time.process_time() - started))
    return speeds


def compare_speed(baseline: types.ModuleType, rev: str, texts: Sequence[str]) -> list[str]:
    """Same-run speed of this tree's classifier and REV's on the same texts, as report lines.

    Rounds alternate between the two so that load from other processes on the machine hits both
    alike; the figure to read is the median ratio of the paired later rounds.
    """
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(5):
        theirs += time_uncached(baseline._categorise, texts, rounds=1)
        ours += time_uncached(classifier._categorise, texts, rounds=1)
    ratios = sorted(t / o for t, o in zip(theirs[1:], ours[1:], strict=True))
    return [
        f"speed, {len(texts)} distinct texts uncached, texts/s:",
        f"  first pass (cold caches): this tree {ours[0]:,.0f}, {rev} {theirs[0]:,.0f}, "
        f"ratio {theirs[0] / ours[0]:.2f}x slower",
        f"  later passes (warm per-word caches): this tree {max(ours[1:]):,.0f}, {rev} "
        f"{max(theirs[1:]):,.0f} at best; median ratio {ratios[len(ratios) // 2]:.2f}x slower "
        f"(range {ratios[0]:.2f}-{ratios[-1]:.2f})",
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--review-dir", default=tempfile.gettempdir())
    parser.add_argument("--sets", default="dev", help="comma-separated: dev, heldout, or none")
    parser.add_argument("--show-misses", action="store_true", help="list wrong texts (dev only)")
    parser.add_argument("--compare-with", metavar="REV", help="time against the classifier at REV")
    parser.add_argument("--no-real", action="store_true", help="skip the real logs")
    args = parser.parse_args(argv)
    review_dir = Path(args.review_dir).resolve()
    if review_dir == REPO or REPO in review_dir.parents:
        parser.error("--review-dir must be outside the repository: the files hold real reasons")

    set_names = [name for name in args.sets.split(",") if name and name != "none"]
    speed_lines: list[str] = []
    if args.compare_with:
        # Timed first, before any other measurement warms this process's caches.
        if args.no_real:
            texts = sorted(
                {str(r["text"]) for name in set_names or ["dev"] for r in load_set(name)}
            )
        else:
            texts = sorted(
                {t for values in read_sources(Path(args.data_dir)).values() for t in values}
            )
        baseline = load_classifier_at(args.compare_with)
        speed_lines = compare_speed(baseline, args.compare_with, texts)
    if not args.no_real:
        measure_real(Path(args.data_dir), review_dir)
    for name in set_names:
        measure_set(name, classifier._categorise, show_misses=args.show_misses and name == "dev")
    if args.compare_with:
        for name in set_names:
            label = f"{name} at {args.compare_with}"
            measure_set(name, baseline._categorise, show_misses=False, label=label)
        print()
        print("\n".join(speed_lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
