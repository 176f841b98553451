"""Build the opt-in compiled StreamGuard: mypyc over the per-event modules (docs/compiled.md).

    python scripts/build_compiled.py --target DIR   # an importable tree: PYTHONPATH=DIR
    python scripts/build_compiled.py --wheel DIR    # a platform wheel, for a separate venv

Never builds in place: the source tree is copied to a scratch directory and compiled there, so
no `.so` file ever lands in src/ where it would shadow an edited `.py` of an editable install.
The modules compiled are `streamguard.compiled.COMPILED_MODULES`; every other module ships as
plain Python. mypyc comes from the project's pinned mypy (the dev extra); a C compiler and the
Python headers are needed here, never by `pip install -e .`. Fails (non-zero) on any mypyc or
compiler error: a build that silently fell back to pure Python would prove nothing.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

# The scratch copy's setup.py: the project's own pyproject.toml (metadata, packages) plus the
# extension modules. mypy checks with the project's settings (strict, faust and aiokafka untyped).
# A PEP 517 build runs setup.py for its metadata too: only a build command runs mypyc.
_SETUP = """\
import sys

from mypyc.build import mypycify
from setuptools import setup

building = {{"build", "build_ext", "bdist_wheel"}} & set(sys.argv)
paths = ["--config-file", "pyproject.toml", *{paths!r}]
setup(
    ext_modules=mypycify(paths, opt_level={opt!r}, multi_file=True) if building else [],
    options={{"build_ext": {{"parallel": {jobs}}}}},
)
"""


def module_paths() -> list[str]:
    """The source paths of `COMPILED_MODULES`, relative to the project root."""
    sys.path.insert(0, str(SRC))
    try:
        from streamguard.compiled import COMPILED_MODULES
    finally:
        sys.path.remove(str(SRC))
    return ["src/" + name.replace(".", "/") + ".py" for name in COMPILED_MODULES]


def stage(scratch: Path, paths: list[str], opt_level: str, jobs: int) -> None:
    """A clean copy of the project (no caches, no stale extension modules) with its setup.py."""
    shutil.copytree(
        SRC / "streamguard",
        scratch / "src" / "streamguard",
        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", "*.c"),
    )
    shutil.copy2(ROOT / "README.md", scratch / "README.md")
    # The wheel is built in an isolated environment: it needs the same mypy as this one.
    pyproject = (ROOT / "pyproject.toml").read_text()
    requires = 'requires = ["setuptools>=68", "wheel"]'
    if requires not in pyproject:
        raise SystemExit(f"pyproject.toml no longer says {requires!r}: update this script")
    mypy_pin = f'"mypy=={importlib.metadata.version("mypy")}"'
    pyproject = pyproject.replace(requires, requires[:-1] + f", {mypy_pin}]")
    (scratch / "pyproject.toml").write_text(pyproject)
    (scratch / "setup.py").write_text(_SETUP.format(paths=paths, opt=opt_level, jobs=jobs))


def _run(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    subprocess.run(args, cwd=cwd, env=env, check=True)  # noqa: S603 (our interpreter, our args)


def compile_in_place(scratch: Path, paths: list[str]) -> None:
    """Compile inside the scratch copy with this environment's mypyc (no download)."""
    _run([sys.executable, "setup.py", "--quiet", "build_ext", "--inplace"], scratch)
    src = scratch / "src"
    built = {str(so.relative_to(scratch)).split(".")[0] for so in src.rglob("*.so")}
    missing = [p for p in paths if p.removesuffix(".py") not in built]
    if missing:
        raise SystemExit(f"mypyc built no extension module for: {', '.join(missing)}")


def install_tree(scratch: Path, target: Path) -> None:
    """The compiled package and mypyc's shared library into `target` (replacing what was there)."""
    src = scratch / "src"
    target.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target / "streamguard", ignore_errors=True)
    for old in target.glob("*__mypyc*"):
        old.unlink()
    shutil.copytree(src / "streamguard", target / "streamguard")
    for lib in src.glob("*__mypyc*"):
        shutil.copy2(lib, target / lib.name)


def build_wheel(scratch: Path, out: Path) -> None:
    """A PEP 517 build of the scratch copy (pip fetches setuptools and the pinned mypy)."""
    out.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), "."], scratch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--target", type=Path, help="write an importable tree here")
    where.add_argument("--wheel", type=Path, help="write a wheel into this directory")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--opt-level", default="3", choices=("0", "1", "2", "3"))
    args = parser.parse_args(argv)
    start = time.monotonic()
    paths = module_paths()
    with tempfile.TemporaryDirectory(prefix="streamguard-mypyc-") as tmp:
        scratch = Path(tmp)
        stage(scratch, paths, args.opt_level, args.jobs)
        if args.target is not None:
            compile_in_place(scratch, paths)
            install_tree(scratch, args.target.resolve())
            where_to = args.target
        else:
            build_wheel(scratch, args.wheel.resolve())
            where_to = args.wheel
    print(
        f"compiled {len(paths)} modules with mypyc (-O{args.opt_level}, {args.jobs} jobs) "
        f"into {where_to} in {time.monotonic() - start:.0f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
