"""Does pre-training pay? Every domain's labelled tasks, pretrained vs random init vs baselines.

Each plugin describes its tasks in ``plugins/<domain>/benchmarks/quality.py`` (a function
``tasks() -> list[polyjepa.QualityTask]``). For each task and seed this pre-trains at
``N`` and ``4N`` steps and scores the frozen encoders, the same encoder at random init and
the field's classic baselines with one probe on one split (see ``polyjepa.quality``).
Results go to ``<out>/<domain>.json``; ``<out>/quality.md`` and ``<out>/quality.png`` are
then written from every domain's file there, so one domain can be run again alone.

    python benchmarks/quality.py                      # every domain (nox -s quality)
    python benchmarks/quality.py tabular ecg --seeds 3 --out quality
    python benchmarks/quality.py tabular --steps 4 --seeds 1   # a quick end-to-end check
    python benchmarks/quality.py recsys --set loss.covariance_weight=0 --out quality-nocov
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def domain_scripts() -> dict[str, Path]:
    """``{domain: path}`` of every plugin's quality task file."""
    return {p.parents[1].name: p for p in sorted(ROOT.glob("plugins/*/benchmarks/quality.py"))}


def load_tasks(path: Path) -> list:
    spec = importlib.util.spec_from_file_location(f"_quality_{path.parents[1].name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tasks()


def domain_parser(description: str, scripts: dict[str, Path], out: str,
                  tasks_help: str) -> argparse.ArgumentParser:
    """The options this script and ``trend.py`` share: domains, seeds, N, tasks,
    overrides and the output folder."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("domains", nargs="*", help=f"domains to run (default all: "
                                                   f"{', '.join(scripts)})")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, help="N for every task (default: each task's own)")
    parser.add_argument("--tasks", nargs="*", help=tasks_help)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every run (e.g. loss.covariance_weight=0)")
    parser.add_argument("--out", default=out, help="folder for results and the report")
    return parser


def chosen_domains(parser: argparse.ArgumentParser, names: list[str],
                   scripts: dict[str, Path]) -> list[str]:
    """``names`` (every domain when empty); an unknown name is a usage error."""
    unknown = sorted(set(names) - set(scripts))
    if unknown:
        parser.error(f"no quality tasks for {unknown}; known: {', '.join(scripts)}")
    return names or list(scripts)


def configure(task, steps: int | None, sets: list[str]):
    """``task`` with ``--steps`` (N) and every ``--set KEY=VALUE`` override applied."""
    from polyjepa.config import parse_value

    if steps:
        task.steps = steps
    for item in sets:
        key, _, value = item.partition("=")
        task.overrides = {**task.overrides, key: parse_value(value)}
    return task


def save_domain(domain: str, rows: list, out: Path, t0: float) -> None:
    """Store a domain's rows as ``<out>/<domain>.json`` and say how long they took."""
    from polyjepa.quality import save_rows

    save_rows(rows, out / f"{domain}.json")
    print(f"[{domain}] {len(rows)} scores in {time.perf_counter() - t0:.0f} s", flush=True)


def print_report(write_report, out: Path) -> None:
    """Write a report from every domain's rows in ``out`` with ``write_report`` and print it."""
    from polyjepa.quality import load_rows

    md, png = write_report(load_rows(sorted(out.glob("*.json"))), out)
    print(md.read_text(encoding="utf-8"))
    print(f"wrote {md} and {png}")


def main(argv: list[str] | None = None) -> int:
    import polyjepa as pj

    scripts = domain_scripts()
    parser = domain_parser(__doc__.splitlines()[0], scripts, "quality",
                           "only tasks with these names")
    parser.add_argument("--factor", type=int, default=4, help="the long run is FACTOR x N steps")
    args = parser.parse_args(argv)
    out = Path(args.out)
    for domain in chosen_domains(parser, args.domains, scripts):
        t0 = time.perf_counter()
        rows = []
        for task in load_tasks(scripts[domain]):
            if args.tasks and task.name not in args.tasks:
                continue
            rows += pj.run_quality_task(configure(task, args.steps, args.set),
                                        out / "runs" / domain, seeds=range(args.seeds),
                                        factor=args.factor)
        save_domain(domain, rows, out, t0)
    print_report(pj.write_quality_report, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
