"""Run every benchmark in bench/ with its default arguments (what `make bench` calls).

A benchmark is a module ``bench/<name>.py`` with a ``main(argv) -> int`` function; each one
creates and drops its own database. Benchmarks are never part of `make test`.

    .venv/bin/python bench/run.py                  # all of them
    .venv/bin/python bench/run.py household_grid   # only these
"""

from __future__ import annotations

import importlib
import inspect
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
NOT_BENCHMARKS = {"common", "run"}


def discover() -> list[str]:
    """Names of the modules in bench/ that define ``main()``, in alphabetical order."""
    names = []
    for path in sorted(BENCH_DIR.glob("*.py")):
        if path.stem in NOT_BENCHMARKS or path.stem.startswith("_"):
            continue
        # Cheap text check first, so a helper module is never imported just to be skipped.
        if "\ndef main(" in path.read_text(encoding="utf-8"):
            names.append(path.stem)
    return names


def main(argv: list[str] | None = None) -> int:
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    from common import console, print_table

    wanted = list(sys.argv[1:] if argv is None else argv)
    available = discover()
    unknown = [n for n in wanted if n not in available]
    if unknown:
        console.print(f"[red]unknown benchmark(s): {', '.join(unknown)}; have: {available}[/red]")
        return 2
    summary: list[tuple[str, str, str]] = []
    for name in wanted or available:
        module = importlib.import_module(name)
        entry = getattr(module, "main", None)
        if not callable(entry):
            continue
        start = time.perf_counter()
        try:
            # An empty argv, not this script's: every benchmark runs with its defaults.
            rc = entry([]) if inspect.signature(entry).parameters else entry()
        except Exception as exc:  # one broken benchmark must not hide the others' results
            console.print_exception()
            rc, note = 1, f"error: {type(exc).__name__}"
        else:
            note = "ok" if rc == 0 else f"exit {rc}"
        summary.append((name, f"{time.perf_counter() - start:.0f} s", note))
    print_table("benchmarks", ["benchmark", "took", "result"], summary)
    return 0 if all(note == "ok" for _, _, note in summary) else 1


if __name__ == "__main__":
    raise SystemExit(main())
