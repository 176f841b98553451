"""Measure the purpose classifier on real released search-audit logs.

Usage: python benchmarks/measure_classifier.py [DATA_DIR] [--review-dir DIR]

DATA_DIR is the folder of real public ALPR records (default: ../shared/data next to the repository).
Prints row and distinct-reason counts per category and source, and classification speed. The reason
texts themselves are written only to files under --review-dir (default: the system temp folder),
never to stdout or into the repository, because real reasons can hold plate numbers and names:
- immigration_flagged.txt: every distinct reason flagged `immigration`, with its count, to read by
  hand for false positives;
- immigration_candidates_unflagged.txt: distinct reasons that contain "ice", "hsi", "cbp", "dhs",
  "border" and similar letters but were not flagged, to read by hand for misses.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

# The synthetic immigration reasons and tricky negatives of the unit tests double as probes: the
# real logs hold almost no immigration reasons, so recall cannot be measured on them alone.
from tests.unit.core.test_classifier import IMMIGRATION, NOT_IMMIGRATION  # noqa: E402

from streamguard.core import classifier  # noqa: E402
from streamguard.core.classifier import CATEGORIES, classify  # noqa: E402

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
    r"removal|detain|federal|customs|visa",
    re.IGNORECASE,
)


def read_column(path: Path, column: str) -> Iterator[str]:
    """Yield one column of a CSV file, the empty string where the cell is missing."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or column not in reader.fieldnames:
            raise SystemExit(f"error: {path} has no column {column!r}")
        for row in reader:
            yield row.get(column) or ""


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--review-dir", default=tempfile.gettempdir())
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir)
    review_dir = Path(args.review_dir).resolve()
    if review_dir == REPO or REPO in review_dir.parents:
        parser.error("--review-dir must be outside the repository: the files hold real reasons")

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

    everything = [text for values in texts.values() for text in values]
    distinct = sorted(set(everything))
    # Cold: every distinct text once, through the uncached path, so the figure is the real cost of
    # an unseen reason. Warm: every row in log order, as the engine sees them, with the cache.
    started = time.perf_counter()
    verdicts = {text: classifier._categorise(text) for text in distinct}
    cold = time.perf_counter() - started
    classifier._categorise_cached.cache_clear()
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
    total_rows = total_nonempty = 0
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
    flagged = sorted(
        (text for text in distinct if "immigration" in verdicts[text]),
        key=lambda text: -row_counts[text],
    )
    unflagged = sorted(
        (
            text
            for text in distinct
            if CANDIDATE.search(text) and "immigration" not in verdicts[text]
        ),
        key=lambda text: -row_counts[text],
    )
    review_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in (
        ("immigration_flagged.txt", flagged),
        ("immigration_candidates_unflagged.txt", unflagged),
    ):
        target = review_dir / name
        with target.open("w", encoding="utf-8") as handle:
            for text in rows:
                handle.write(f"{row_counts[text]}\t{text!r}\t{' '.join(verdicts[text])}\n")
        print(f"wrote {len(rows)} distinct texts to {target}")
    flagged_rows = totals["immigration"]
    print(
        f"immigration: {flagged_rows} rows ({flagged_rows / max(total_nonempty, 1):.4%} of "
        f"non-empty), {len(flagged)} distinct"
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
