"""Does pre-training gain more with longer runs and more data? One task per domain.

Where pre-training does not yet beat the same encoder at random init (QUALITY.md), this
shows which way the gap moves: each task's recipe pre-trains at ``N``, ``4N`` and ``16N``
steps on all its data and at ``4N`` steps on a quarter and a half of it
(``train.data_fraction``); every run is scored with the quality table's probe and split,
paired by seed with the random-init encoder. Frozen probes, and for the tasks judged
after fine-tuning (``QualityTask.judged_finetuned``) the quality table's fine-tuned line
too (``--finetune``: for every task that has one). Results go to ``<out>/<domain>.json``,
and ``<out>/trend.md`` and ``<out>/trend.png`` are written from every domain's file
there.

    python benchmarks/trend.py                          # every domain's main task
    python benchmarks/trend.py sar ecg --seeds 3 --out trend
    python benchmarks/trend.py tabular --tasks digits randhie --factors 1,4,16
    python benchmarks/trend.py sar --steps 4 --seeds 1  # a quick end-to-end check
    python benchmarks/trend.py lidar --set target.kind=sigreg --out trend-sigreg
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path


def chosen_tasks(tasks: list, names: list[str] | None) -> list:
    """The tasks named, or else the domain's main task (the first task marked ``main``
    that has its data here, else its first task)."""
    if names:
        return [t for t in tasks if t.name in names]
    return [next((t for t in tasks if t.main), tasks[0])] if tasks else []


def quality_driver():
    """``benchmarks/quality.py``, whose task files and loader this script shares."""
    spec = importlib.util.spec_from_file_location("_quality_driver",
                                                  Path(__file__).with_name("quality.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    import polyjepa as pj

    driver = quality_driver()
    scripts = driver.domain_scripts()
    parser = driver.domain_parser(
        __doc__.splitlines()[0], scripts, "trend",
        "task names (default: each domain's main task, QualityTask.main)")
    parser.add_argument("--factors", default="1,4,16", help="run lengths, as multiples of N")
    parser.add_argument("--fractions", default="0.25,0.5",
                        help="shares of the pre-training data, each run at FRACTION_FACTOR x N")
    parser.add_argument("--fraction-factor", type=int, default=4)
    parser.add_argument("--finetune", action="store_true",
                        help="also the fine-tuned line of every task that has one "
                             "(always for the tasks judged fine-tuned)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    for domain in driver.chosen_domains(parser, args.domains, scripts):
        t0 = time.perf_counter()
        rows = []
        for task in chosen_tasks(driver.load_tasks(scripts[domain]), args.tasks):
            driver.configure(task, args.steps, args.set)
            runs = pj.trend_runs(task.steps, args.factors, args.fractions, args.fraction_factor)
            rows += pj.run_quality_task(task, out / "runs" / domain, seeds=range(args.seeds),
                                        runs=runs,
                                        finetune=args.finetune or task.judged_finetuned)
        if not rows:
            print(f"[{domain}] no task to run here", flush=True)
            continue
        driver.save_domain(domain, rows, out, t0)
    driver.print_report(pj.write_trend_report, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
