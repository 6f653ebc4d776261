"""`make bench [BENCH=<name>]`: run the benchmarks, print each figure next to
its baseline measured in the same run, and write var/bench/results.json."""

import importlib
import json
import pkgutil
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.core import BENCH_DIR, Result  # noqa: E402


def discover() -> dict[str, Any]:
    """Every module bench/bench_<name>.py exposes run() -> list[Result]."""
    found: dict[str, Any] = {}
    for module in pkgutil.iter_modules([str(HERE)]):
        if module.name.startswith("bench_"):
            found[module.name.removeprefix("bench_")] = importlib.import_module("bench." + module.name)
    return found


def main(argv: list[str]) -> int:
    modules = discover()
    wanted = [name for name in argv if name]
    unknown = [name for name in wanted if name not in modules]
    if unknown:
        print("unknown benchmark(s): " + ", ".join(unknown) + "; known: " + ", ".join(sorted(modules)))
        return 2
    results: list[Result] = []
    for name in sorted(wanted or modules):
        print(f"== {name}", flush=True)
        results.extend(modules[name].run())
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / "results.json"
    path.write_text(json.dumps([result.as_dict() for result in results], indent=2, ensure_ascii=False) + "\n")
    print()
    print(f"{'figure':40} {'value':>12} {'baseline':>12} {'unit':8} {'ratio':>8}  {'goal':16} met")
    for result in results:
        print(
            f"{result.name:40} {result.value:>12.3f} {result.baseline:>12.3f} {result.unit:8}"
            f" {result.ratio:>8.2f}  {result.goal:16} {'yes' if result.met else 'NO'}"
        )
    shown = path.relative_to(HERE.parent) if path.is_relative_to(HERE.parent) else path
    print(f"\nwritten: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
