"""The compiled (mypyc) build decides exactly as the pure-Python reference (docs/compiled.md).

Builds the compiled tree from the code on disk with `scripts/build_compiled.py` (cached under
build/compiled/ by a hash of the sources, the interpreter and mypy, so a local rerun without
changes skips the compile), then runs one benchmark workload, with hostile inputs spread through
it, through `streamguard evaluate`'s path and `BatchProcessor` in two child interpreters, one
importing src/ and one the compiled tree, and compares everything they wrote byte for byte.
A failed build fails the test: it never skips.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from streamguard.compiled import COMPILED_MODULES

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
BENCH = ROOT / "benchmarks" / "bench_compiled.py"
WORKLOAD = ["--events", "4000", "--agencies", "600", "--bad", "400", "--batch", "250"]


def _source_key() -> str:
    digest = hashlib.sha256()
    digest.update(sys.version.encode())
    digest.update(importlib.metadata.version("mypy").encode())
    digest.update((ROOT / "scripts" / "build_compiled.py").read_bytes())
    for path in sorted((SRC / "streamguard").rglob("*")):
        if path.is_file() and path.suffix in (".py", ".json", ".typed"):
            digest.update(str(path.relative_to(SRC)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="module")
def compiled_tree() -> Path:
    target = ROOT / "build" / "compiled" / _source_key()
    if not (target / "streamguard").is_dir():
        shutil.rmtree(target.parent, ignore_errors=True)  # older builds of other sources
        partial = target.with_name(target.name + ".partial")
        done = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "build_compiled.py"), "--target", str(partial)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"the compiled build failed:\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}")
        partial.rename(target)
    return target


def _env(tree: Path) -> dict[str, str]:
    """Imports streamguard from `tree` first; one hash seed, so set order cannot differ."""
    return {
        **os.environ,
        "PYTHONPATH": f"{tree}{os.pathsep}{BENCH.parent}",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _child(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env=_env(tree),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _label(tree: Path) -> str:
    done = _child(tree, "-m", "streamguard", "--version")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_build_leaves_no_extension_module_in_src(compiled_tree: Path) -> None:
    # An .so next to a .py of the editable install would be imported instead of the edited code.
    assert not [p for p in SRC.rglob("*") if p.suffix in (".so", ".pyd")]
    assert not list(SRC.rglob("*.c"))


def test_version_says_which_build_runs(compiled_tree: Path) -> None:
    assert _label(SRC).endswith("(pure Python)")
    count = len(COMPILED_MODULES)
    assert _label(compiled_tree).endswith(f"(compiled (mypyc, {count} of {count} modules))")


def test_a_non_string_purpose_is_missing_in_both_builds(compiled_tree: Path) -> None:
    # mypyc checks annotations at run time: with `text: str | None` this raised TypeError.
    probe = "from streamguard.core.classifier import classify\nprint(classify(123))"
    for tree in (SRC, compiled_tree):
        done = _child(tree, "-c", probe)
        assert (done.returncode, done.stdout.strip()) == (0, "('missing',)"), done.stderr


def test_compiled_outputs_are_byte_identical_to_pure(compiled_tree: Path, tmp_path: Path) -> None:
    runs = {
        name: subprocess.Popen(  # both at once: CI has two cores
            [sys.executable, str(BENCH), "--dump", str(tmp_path / f"{name}.dump"), *WORKLOAD],
            env=_env(tree),
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, tree in (("pure", SRC), ("compiled", compiled_tree))
    }
    for name, run in runs.items():
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, f"{name}: {stderr[-4000:]}"
    pure = (tmp_path / "pure.dump").read_bytes()
    compiled = (tmp_path / "compiled.dump").read_bytes()
    # The workload must exercise the paths that matter, or identical output proves little.
    for outcome in (b"approved", b"partial", b"denied", b"malformed", b"applied", b"rejected"):
        assert pure.count(b'"outcome":"' + outcome + b'"') > 0, outcome
    assert pure.count(b"\n") > 4000
    if pure != compiled:
        pure_lines, compiled_lines = pure.split(b"\n"), compiled.split(b"\n")
        first = next(
            (i for i, (a, b) in enumerate(zip(pure_lines, compiled_lines, strict=False)) if a != b),
            min(len(pure_lines), len(compiled_lines)),
        )
        pytest.fail(
            f"compiled output differs from pure at line {first + 1} "
            f"({len(pure_lines)} vs {len(compiled_lines)} lines):\n"
            f"pure:     {pure_lines[first][:600]!r}\n"
            f"compiled: {compiled_lines[first][:600]!r}"
            if first < min(len(pure_lines), len(compiled_lines))
            else "one output is a prefix of the other"
        )
