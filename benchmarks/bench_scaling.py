"""Data-parallel scaling: samples/s of one small pretrain in 1 process and in N processes.

The same run (the generic ViT JEPA on scikit-learn's 1,797 digit scans, SIGReg target,
global batch 64) is trained by ``polyjepa pretrain`` in one process, then under
``torchrun --nproc-per-node N`` (DDP; gloo on CPUs, NCCL on GPUs) with the same global
batch, so each process takes ``64 / N`` samples a step. Throughput is read from the run's
``metrics.jsonl`` (``samples_per_s`` of the logged rows) after ``--warmup`` steps, so
start-up, the first steps and the final RankMe and export are not counted.

On CPUs the processes share the machine's cores: each runs ``OMP_NUM_THREADS`` =
cores / processes, so the N-process run has the cores the single process had, and the
ideal is the same samples/s (efficiency = samples/s of N / samples/s of 1). On GPUs each
process has a GPU of its own and the ideal is N times the samples/s of one (efficiency =
samples/s of N / (N x samples/s of 1)).

    python benchmarks/bench_scaling.py                         # 1 vs 2 gloo processes
    python benchmarks/bench_scaling.py --procs 4 --cores 8
    python benchmarks/bench_scaling.py --stream                # from streaming shards
    python benchmarks/bench_scaling.py --device cuda           # 1 GPU vs all GPUs (NCCL)
    python benchmarks/bench_scaling.py --device cuda --procs 8 --batch 1024 --width 384

``--device cuda`` runs the same comparison on a GPU node (``--procs`` defaults to the
GPUs there); a tiny model on a big GPU measures launch and all-reduce latency more than
compute, so give it a larger ``--batch`` and ``--width`` there.

Measured alone on a quiet 2-core CPU machine:

    $ python benchmarks/bench_scaling.py
    pretrain array, ViT width 64 depth 3, global batch 64, 30 timed steps after 5,
    in-memory arrays, cpu; best of 2, load average 1.3 on 2 cores at the start
      1 process (2 threads):    669.2 samples/s
      2 processes (1 thread each, DDP gloo):    654.6 samples/s
      speed-up 0.98x, scaling efficiency 98% (ideal: 669.2 samples/s)

Two processes with one thread each do the work of one process with two threads at 98 %
of its speed: the gloo all-reduce of the ~0.2 M parameters and the second process cost
2 %. On a machine other jobs keep busy the comparison tips the other way (one run at
load 4-5: 76.7 against 248.9 samples/s): a process's two OpenMP threads spin at every
parallel region waiting for a core the other jobs hold (``OMP_WAIT_POLICY=PASSIVE``
took it to 160.9), while single-threaded processes never wait on each other inside an
operator. The streaming path (``--stream``, shards of 225 samples) ran at the speed of
the in-memory one in a short check, reading the shards being a small share of a step.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def _port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _digits(path: Path) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(path, x=d.images.astype(np.float32), y=d.target)
    return path


def _overrides(a: argparse.Namespace) -> dict[str, object]:
    steps = a.warmup + a.steps
    return {
        "encoder.embed_dim": a.width, "encoder.depth": a.depth, "encoder.num_heads": 4,
        "predictor.dim": a.width // 2, "predictor.depth": 2, "predictor.num_heads": 2,
        "masker.num_targets": 4, "masker.target_scale": "[0.1, 0.2]", "target.kind": "sigreg",
        "train.batch_size": a.batch, "train.steps": steps, "train.warmup_steps": 2,
        "train.lr": 1e-3, "train.log_every": a.warmup, "train.rankme_every": 0,
        "train.checkpoint_every": 0, "train.precision": "fp32", "train.device": a.device,
        "train.num_workers": 0,
        **({"dataset.name": "shards", "dataset.stream": "true",
            "dataset.shuffle_buffer": 256} if a.stream else {}),
    }


def _train(a: argparse.Namespace, data: Path, out: Path, procs: int) -> float:
    """samples/s of one run after the warm-up steps."""
    launcher = [] if procs == 1 else ["-m", "torch.distributed.run", "--nproc-per-node",
                                      str(procs), "--master-port", str(_port())]
    cmd = [sys.executable, *launcher, "-m", "polyjepa", "pretrain", "array", "--data",
           str(data), "--out", str(out), "--no-progress"]
    for k, v in _overrides(a).items():
        cmd += ["--set", f"{k}={v}"]
    threads = max(1, a.cores // procs)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               POLYJEPA_DISABLE_PLUGIN_AUTOLOAD="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in rows if "samples_per_s" in r and r["step"] > a.warmup]
    seconds = sum(a.warmup * a.batch / r["samples_per_s"] for r in timed)
    return len(timed) * a.warmup * a.batch / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--procs", type=int, default=None,
                   help="processes of the parallel run (default: 2 on CPUs, the GPUs on cuda)")
    p.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)),
                   help="CPU cores shared by the processes (default: this machine's)")
    p.add_argument("--batch", type=int, default=64, help="global batch (default 64)")
    p.add_argument("--width", type=int, default=64, help="encoder width (default 64)")
    p.add_argument("--depth", type=int, default=3, help="encoder depth (default 3)")
    p.add_argument("--warmup", type=int, default=5, help="steps not timed (default 5)")
    p.add_argument("--steps", type=int, default=30, help="steps timed (default 30)")
    p.add_argument("--repeats", type=int, default=2,
                   help="runs of each, interleaved; the best counts (default 2)")
    p.add_argument("--stream", action="store_true",
                   help="train on streaming shards (shards dataset, stream=true)")
    a = p.parse_args()
    if a.steps % a.warmup:
        raise SystemExit("--steps must be a multiple of --warmup (the logging interval)")
    if a.procs is None:
        import torch

        a.procs = torch.cuda.device_count() if a.device == "cuda" else 2
    if a.procs < 2:
        raise SystemExit(f"--procs {a.procs}: need at least 2 processes to compare")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = _digits(root / "digits.npz")
        if a.stream:
            import polyjepa as pj

            pj.write_shards("array", data=str(data), out=root / "shards",
                            shard_size=-(-1797 // (4 * a.procs)))
            data = root / "shards"
        load = os.getloadavg()[0]
        ones, manys = [], []
        for i in range(a.repeats):  # interleaved, so that a busy spell hits both
            ones.append(_train(a, data, root / f"one{i}", 1))
            manys.append(_train(a, data, root / f"many{i}", a.procs))
        one, many = max(ones), max(manys)
    ideal = one * (a.procs if a.device == "cuda" else 1)
    threads = max(1, a.cores // a.procs)
    per = (f"{threads} thread{'s' if threads > 1 else ''} each" if a.device == "cpu"
           else "one GPU each")
    source = "streaming shards" if a.stream else "in-memory arrays"
    print(f"pretrain array, ViT width {a.width} depth {a.depth}, global batch {a.batch}, "
          f"{a.steps} timed steps after {a.warmup}, {source}, {a.device}; best of "
          f"{a.repeats}, load average {load:.1f} on {a.cores} cores at the start")
    print(f"  1 process ({a.cores if a.device == 'cpu' else 1} "
          f"{'threads' if a.device == 'cpu' else 'GPU'}): {one:8.1f} samples/s")
    print(f"  {a.procs} processes ({per}, DDP {'gloo' if a.device == 'cpu' else 'nccl'}): "
          f"{many:8.1f} samples/s")
    print(f"  speed-up {many / one:.2f}x, scaling efficiency {many / ideal:.0%} "
          f"(ideal: {ideal:.1f} samples/s)")


if __name__ == "__main__":
    main()
