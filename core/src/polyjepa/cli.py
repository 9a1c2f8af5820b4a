"""The ``polyjepa`` command line.

Heavy imports (torch, scikit-learn, matplotlib) happen inside the commands that need
them, so ``polyjepa --help`` and ``polyjepa plugins`` answer immediately.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import __version__
from .errors import PolyjepaError, PolyjepaWarning


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="polyjepa",
        description="Self-supervised JEPA pre-training on any kind of data.",
        epilog="Plugins may add commands of their own (polyjepa <domain> ...); "
               "`polyjepa plugins` lists them.")
    p.add_argument("--version", action="version", version=f"polyjepa {__version__}")
    # both are taken out of the line before parsing (split_global_options), so they may
    # stand anywhere; they are declared here for --help
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="also load this plugin: a module (also from the current directory) "
                        "or a .py file; repeatable, or POLYJEPA_PLUGINS=a,b. Runs record "
                        "it, so later commands on the run load it again")
    p.add_argument("--strict-plugins", action="store_true",
                   help="fail on a broken plugin instead of skipping it")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    sp = sub.add_parser("plugins", help="list installed plugins and their components")
    sp.add_argument("--json", action="store_true", help="machine-readable output")

    sp = sub.add_parser("pretrain", help="pre-train a JEPA into a run folder")
    sp.add_argument("recipe", nargs="?", help="recipe name (see `polyjepa plugins`)")
    sp.add_argument("--data", help="the data to train on (path; the recipe says what)")
    sp.add_argument("--out", help="run folder (default runs/<recipe>)")
    sp.add_argument("--config", help="TOML or YAML config file")
    sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override any config value, e.g. --set encoder.depth=4")
    for flag, typ in (("steps", int), ("batch-size", int), ("lr", float), ("seed", int),
                      ("warmup-steps", int), ("accumulate", int)):
        sp.add_argument(f"--{flag}", type=typ)
    sp.add_argument("--device", help="cpu, cuda, cuda:1 or auto")
    sp.add_argument("--precision", choices=["auto", "bf16", "fp32"])
    sp.add_argument("--no-progress", action="store_true")
    sp.add_argument("--print-config", action="store_true",
                    help="print the resolved config and exit")

    sp = sub.add_parser("evaluate", help="RankMe, linear probe, kNN and domain metrics")
    sp.add_argument("run", help="run folder")
    sp.add_argument("--data", help="data to evaluate on (default: the training data)")
    sp.add_argument("--evaluator", action="append", help="evaluator name (repeatable)")
    sp.add_argument("--checkpoints", action="store_true",
                    help="evaluate every kept checkpoint (RankMe and the probes), marking "
                         "the one the run exported")
    sp.add_argument("--device", default="cpu")
    sp.add_argument("--json", action="store_true")

    sp = sub.add_parser("embed", help="write embeddings of data as .npy")
    sp.add_argument("run", help="run folder")
    sp.add_argument("--data", help="data to embed (default: the training data)")
    sp.add_argument("--out", required=True, help="output .npy file")
    sp.add_argument("--batch-size", type=int)
    sp.add_argument("--device", default="cpu")

    sp = sub.add_parser("report", help="PNG plots of a run: loss, RankMe, lr, embedding map")
    sp.add_argument("run", help="run folder")
    sp.add_argument("--data", help="labelled data for the embedding map (default: the "
                                   "last evaluation's embeddings, else the training data)")
    sp.add_argument("--out", help="folder for the plots (default <run>/report)")

    sp = sub.add_parser("demo", help="pre-train and evaluate every installed domain on its "
                                     "bundled demo data")
    sp.add_argument("recipes", nargs="*", help="only these recipes")
    sp.add_argument("--out", default="runs/demo")
    sp.add_argument("--steps", type=int, help="fewer steps for a quick look")
    sp.add_argument("--no-progress", action="store_true")

    sp = sub.add_parser("sweep", help="label-free hyper-parameter search, trials ranked by "
                                      "RankMe (plus a linear probe where labels exist)")
    sp.add_argument("recipe", nargs="?", help="recipe name (see `polyjepa plugins`)")
    sp.add_argument("--data", help="the data to train on")
    sp.add_argument("--grid", required=True, help="TOML/YAML file: [params] to search, "
                                                  "method = grid|random, [set] fixed values")
    sp.add_argument("--out", help="sweep folder (default sweeps/<recipe>)")
    sp.add_argument("--config", help="TOML or YAML config file for the base run")
    sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="fixed override for every trial")
    sp.add_argument("--steps", type=int, help="training steps of every trial")
    sp.add_argument("--workers", type=int, help="trials at once (default: half the CPU "
                                                "cores; 0: in this process)")
    sp.add_argument("--ray-address", help="run the trials with Ray Tune on this cluster "
                                          "('auto', 'ray://HOST:10001' or 'local')")
    sp.add_argument("--no-probe", action="store_true", help="skip the linear probes")
    sp.add_argument("--no-progress", action="store_true")

    sp = sub.add_parser("export", help="write a run's encoder as a self-describing folder "
                                       "(weights, config, model card); --push uploads it")
    sp.add_argument("run", help="run folder")
    sp.add_argument("dir", help="new or empty folder (an earlier export is replaced)")
    sp.add_argument("--checkpoint", metavar="STEP_OR_PATH",
                    help="export this checkpoint (a step, or a checkpoint folder or file) "
                         "instead of the run's encoder")
    sp.add_argument("--push", metavar="REPO", help="then upload it to this Hugging Face "
                                                   "Hub model repo (user/name)")
    sp.add_argument("--private", action="store_true", help="create the Hub repo private")
    sp.add_argument("--license", help="license for the model card (default: unknown)")

    sp = sub.add_parser("new-plugin", help="write a working third-party plugin skeleton")
    sp.add_argument("name", help="domain name, e.g. 'audio' (distribution polyjepa-audio)")
    sp.add_argument("dir", help="folder to create")

    sp = sub.add_parser("shard", help="write a recipe's decoded samples as WebDataset .tar "
                                      "shards (train on them with dataset.name=shards)")
    sp.add_argument("recipe", nargs="?", help="recipe name (see `polyjepa plugins`)")
    sp.add_argument("--data", help="the data to read (path; the recipe says what)")
    sp.add_argument("--out", required=True, help="folder or fsspec URL for the shards")
    sp.add_argument("--config", help="TOML or YAML config file")
    sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override any config value, e.g. --set dataset.target=label")
    sp.add_argument("--shard-size", type=int, default=1000, metavar="N",
                    help="samples per shard (default 1000)")
    sp.add_argument("--no-progress", action="store_true")

    return p


def _print_plugins(as_json: bool) -> int:
    from .plugins import host

    h = host()
    if as_json:
        data = {
            "plugins": [vars(p) for p in h.plugins],
            "failures": [vars(f) for f in h.failures],
            "components": {kind: [{"name": e.name, "provider": e.provider,
                                   "description": e.description}
                                  for e in reg.entries()]
                           for kind, reg in h.registries.items()},
        }
        print(json.dumps(data, indent=2))
        return 0
    print("plugins:")
    for p in h.plugins:
        dist = f" [{p.distribution}]" if p.distribution and p.distribution != p.name else ""
        print(f"  {p.name}{dist}  ({p.source}: {p.module})")
    for kind, reg in h.registries.items():
        print(f"\n{kind}:")
        if not reg.names():
            print("  (none)")
        width = max((len(n) for n in reg.names()), default=0)
        for e in reg.entries():
            desc = f"  {e.description}" if e.description else ""
            print(f"  {e.name:<{width}}  from {e.provider}{desc}")
    if h.failures:
        print("\nbroken plugins (skipped):")
        for f in h.failures:
            print(f"  {f.message}")
    return 0


def _cmd_pretrain(a: argparse.Namespace) -> int:
    from .api import pretrain, resolve_config

    train = {"steps": a.steps, "batch_size": a.batch_size, "lr": a.lr, "seed": a.seed,
             "warmup_steps": a.warmup_steps, "accumulate": a.accumulate,
             "device": a.device, "precision": a.precision}
    train = {k: v for k, v in train.items() if v is not None}
    if a.print_config:
        cfg = resolve_config(a.recipe, a.data, a.config, a.set, **train)
        print(json.dumps(cfg, indent=2, default=str))
        return 0
    if not a.recipe and not a.config:
        raise PolyjepaError("name a recipe (see `polyjepa plugins`) or give --config")
    run = pretrain(a.recipe, data=a.data, out=a.out, config=a.config, overrides=a.set,
                   progress=not a.no_progress, **train)
    rows = run.metrics()
    last = rows[-1] if rows else {}
    summary = ", ".join(f"{k}={last[k]:.4g}" for k in ("loss", "rankme") if k in last)
    print(f"run folder: {run.path}  ({summary})")
    return 0


def _print_checkpoints(run: str, table: dict[int, dict[str, float]], as_json: bool) -> None:
    from .api import Run

    chosen = (Run(run).info.get("selected") or {}).get("step")
    if as_json:
        print(json.dumps({"selected": chosen, "checkpoints": {str(k): v for k, v in
                                                              table.items()}}, indent=2))
        return
    keys = sorted({k for m in table.values() for k in m if k != "rankme_max"},
                  key=lambda k: (k != "rankme_centered", k))
    widths = [max(len(k), 8) for k in keys]
    print("    step  " + "  ".join(k.rjust(w) for k, w in zip(keys, widths)))
    for step, m in table.items():
        mark = "*" if step == chosen else " "
        cells = [f"{m[k]:.4f}".rjust(w) if k in m else "-".rjust(w) for k, w in zip(keys, widths)]
        print(f"{mark}{step:>7}  " + "  ".join(cells))
    if chosen is not None:
        print("* the checkpoint this run exported as its encoder")


def _cmd_evaluate(a: argparse.Namespace) -> int:
    from .api import evaluate, evaluate_checkpoints

    if a.checkpoints:
        _print_checkpoints(a.run, evaluate_checkpoints(a.run, data=a.data,
                                                       evaluators=a.evaluator,
                                                       device=a.device), a.json)
        return 0
    metrics = evaluate(a.run, data=a.data, evaluators=a.evaluator, device=a.device)
    if a.json:
        print(json.dumps(metrics, indent=2))
    else:
        width = max((len(k) for k in metrics), default=0)
        for k, v in metrics.items():
            print(f"{k:<{width}}  {v:.4f}")
    return 0


def _cmd_embed(a: argparse.Namespace) -> int:
    from .api import embed

    emb = embed(a.run, data=a.data, batch_size=a.batch_size, device=a.device, out=a.out,
                progress=True)
    print(f"wrote {a.out}: {emb.shape[0]} embeddings of dimension {emb.shape[1]}")
    return 0


def _cmd_report(a: argparse.Namespace) -> int:
    from .report import write_report

    paths = write_report(a.run, data=a.data, out=a.out)
    for p in paths:
        print(f"wrote {p}")
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    from .api import demo

    results = demo(a.recipes or None, out=a.out, steps=a.steps, progress=not a.no_progress)
    if not results:
        print("no installed recipe ships demo data")
        return 1
    print("\ndemo results:")
    for name, r in results.items():
        metrics = ", ".join(f"{k}={v:.3f}" for k, v in r["metrics"].items())
        print(f"  {name:<10} [{r['kind'].upper()} data] {r['description']}\n"
              f"  {'':<10} {metrics}\n  {'':<10} run folder: {r['run']}")
        comp = dict(r.get("comparison") or {})
        if comp:
            metric, data = comp.pop("metric"), comp.pop("data")
            scores = ", ".join(f"{k} {v:.3f}" for k, v in comp.items())
            print(f"  {'':<10} {data}, {metric}: {scores}")
    if any(r.get("comparison") for r in results.values()):
        print(f"\none-page summary: {Path(a.out) / 'quality.png'} and "
              f"{Path(a.out) / 'quality.md'}")
    return 0


def _cmd_sweep(a: argparse.Namespace) -> int:
    from .sweeps import sweep, sweep_table

    if not a.recipe and not a.config:
        raise PolyjepaError("name a recipe (see `polyjepa plugins`) or give --config")
    train = {"steps": a.steps} if a.steps is not None else {}
    result = sweep(a.recipe, data=a.data, grid=a.grid, out=a.out, config=a.config,
                   overrides=a.set or None, workers=a.workers, ray_address=a.ray_address,
                   probe=not a.no_probe, progress=not a.no_progress, **train)
    print(sweep_table(result))
    for what, path in result.files.items():
        print(f"wrote {path} ({what})")
    return 0 if result.best is not None else 1


def _cmd_export(a: argparse.Namespace) -> int:
    from .exporting import export

    if a.private and not a.push:
        raise PolyjepaError("--private applies to the Hub repo: give --push REPO too")
    out = export(a.run, a.dir, checkpoint=a.checkpoint, push=a.push, private=a.private,
                 license=a.license)
    print(f"exported the encoder of {a.run} to {out}")
    if a.push:
        print(f"pushed to https://huggingface.co/{a.push}")
    return 0


def _cmd_new_plugin(a: argparse.Namespace) -> int:
    from .scaffold import write_plugin

    path = write_plugin(a.name, a.dir)
    print(f"wrote plugin polyjepa-{a.name} in {path}\n"
          f"next: pip install -e {path} && pytest {path}/tests")
    return 0


COMMANDS: dict[str, Any] = {
    "pretrain": _cmd_pretrain, "evaluate": _cmd_evaluate, "embed": _cmd_embed,
    "report": _cmd_report, "demo": _cmd_demo, "sweep": _cmd_sweep, "new-plugin": _cmd_new_plugin,
}
COMMANDS["export"] = _cmd_export


def _cmd_shard(a: argparse.Namespace) -> int:
    from .shards import write_shards

    if not a.recipe and not a.config:
        raise PolyjepaError("name a recipe (see `polyjepa plugins`) or give --config")
    index = write_shards(a.recipe, data=a.data, out=a.out, config=a.config,
                         overrides=a.set or None, shard_size=a.shard_size,
                         progress=not a.no_progress)
    print(f"wrote {index['count']} samples in {len(index['shards'])} shards to {a.out}\n"
          f"train on them: polyjepa pretrain {a.recipe or '--config ' + str(a.config)} "
          f"--data {a.out} --set dataset.name=shards")
    return 0


COMMANDS["shard"] = _cmd_shard


def split_global_options(argv: list[str]) -> tuple[list[str], bool, list[str]]:
    """``--plugin MODULE`` and ``--strict-plugins`` taken from anywhere on the line (before
    or after the command), and the rest of the arguments in order."""
    plugins, strict, rest = [], False, []
    it = iter(argv)
    for arg in it:
        if arg == "--":
            rest += [arg, *it]
            break
        if arg == "--strict-plugins":
            strict = True
        elif arg == "--plugin":
            value = next(it, None)
            if value is None:
                raise PolyjepaError("--plugin needs a module name or a .py file")
            plugins.append(value)
        elif arg.startswith("--plugin="):
            plugins.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return plugins, strict, rest


def _plugin_command(rest: list[str]) -> int | None:
    """Run ``polyjepa <plugin command> ...`` if the first word names one; else ``None``."""
    if not rest or rest[0].startswith("-") or rest[0] in COMMANDS or rest[0] == "plugins":
        return None
    from .plugins import host

    registry = host().registry("commands")
    name = rest[0]
    if name not in registry:
        known = ", ".join(["plugins", *COMMANDS, *registry.names()])
        print(f"polyjepa: unknown command {name!r} (commands: {known}). If it comes from a "
              f"plugin, install it: pip install polyjepa-{name}", file=sys.stderr)
        return 2
    entry = registry.get(name)
    try:
        with _one_line_warnings(f"polyjepa {name}"):
            status = entry.resolve()(list(rest[1:]))
    except PolyjepaError as exc:
        print(f"polyjepa {name}: error: {exc}", file=sys.stderr)
        return 2
    return int(status or 0)


def _prog(command: str) -> str:
    return f"polyjepa {command}" if command else "polyjepa"


@contextmanager
def _one_line_warnings(prog: str) -> Iterator[None]:
    """Show polyjepa's own warnings as ``prog: warning: ...``, each message once (a run
    reads its data several times), and other packages' warnings as Python would."""
    seen: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        show = warnings.showwarning

        def one_line(message, category, filename, lineno, file=None, line=None) -> None:
            if not issubclass(category, PolyjepaWarning):
                show(message, category, filename, lineno, file, line)
            elif str(message) not in seen:
                seen.add(str(message))
                print(f"{prog}: warning: {message}", file=sys.stderr)

        warnings.showwarning = one_line
        yield


def main(argv: list[str] | None = None) -> int:
    from .plugins import configure

    argv = list(sys.argv[1:] if argv is None else argv)
    command = ""
    try:
        plugins, strict, rest = split_global_options(argv)
        command = next((a for a in rest if not a.startswith("-")), "")
        configure(modules=plugins or None, strict=True if strict else None,
                  require_modules=True)
        status = _plugin_command(rest)
        if status is not None:
            return status
        parser = _parser()
        a = parser.parse_args(rest)
        if a.command is None:
            parser.print_help()
            return 0
        command = a.command
        if a.command == "plugins":
            return _print_plugins(a.json)
        with _one_line_warnings(_prog(command)):
            return COMMANDS[a.command](a)
    except PolyjepaError as exc:
        print(f"{_prog(command)}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{_prog(command)}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
