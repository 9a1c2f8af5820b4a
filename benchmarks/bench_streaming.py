"""Peak memory of reading large tables and LAS tiles: streamed vs read whole.

Generates, in a temporary folder deleted afterwards, Parquet files (numeric and a few
categorical columns, a class target) of the ``--sizes`` in MB, CSV files of the
``--csv-sizes`` and a LAS tile grown ``--las-factors`` times from the shared real tile
(or a generated one) by laying copies side by side. For each file and mode, a fresh
subprocess opens the dataset (``stream=True`` or ``False``; the streamed one into an
empty cache) and draws ``BATCHES`` random batches of ``BATCH`` samples; it reports its
peak RSS (``ru_maxrss``) and the time. The read-whole mode runs only for files up to
``--whole-max`` MB. Run: ``python benchmarks/bench_streaming.py [--sizes 200,2000]``.

Figures on the development machine (2 CPU cores shared with other jobs; one run, the
2 GB case once; Parquet written in row groups of 100,000 rows):

    file                      size MB  mode      peak RSS MB   open s  50 batches s
    parquet                     232.2  stream            791     13.6           0.5
    parquet                     232.2  whole            1568     15.9           0.1
    parquet                      2012  stream            811    118.7           0.3
    csv                         52.42  stream            739      4.8           0.3
    csv                         52.42  whole             810      5.9           0.2
    csv                         209.7  stream            847     16.3           0.4
    csv                         209.7  whole            1397     22.8           0.2
    las x10                     8.239  stream            602      1.1           0.1
    las x10                     8.239  whole             577      1.2           0.1
    las x200                    164.8  stream            891     32.8           0.5
    las x200                    164.8  whole            1366     49.7           0.9

The streamed peak stays flat as the Parquet file grows ninefold (232 MB: 791 MB,
2 GB: 811 MB; the floor is the interpreter with torch, pandas and Arrow loaded, about
600 MB), where the whole read of the 232 MB file already peaks at 1.6 GB. The 2 GB
file was not read whole (above ``--whole-max``). Streaming parses a table twice (the
statistics, then the encoding) and writes the cache, which a second open reuses
without reading the file.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BATCHES, BATCH = 50, 256
N_NUM, N_CAT = 20, 3


def table_chunk(rng: np.random.Generator, n: int):
    import pandas as pd

    cols = {f"num{k}": rng.normal(k, 1 + k, n) for k in range(N_NUM)}
    for k in range(N_CAT):
        cols[f"cat{k}"] = np.array([f"c{k}_{v}" for v in range(20 + 30 * k)])[
            rng.integers(0, 20 + 30 * k, n)]
    frame = pd.DataFrame(cols)
    frame.loc[rng.random(n) < 0.05, "num0"] = np.nan
    frame["label"] = rng.integers(0, 5, n)
    return frame


def write_parquet(path: Path, mb: float) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    writer = None
    try:
        while _written(path) < mb * 2**20:
            table = pa.Table.from_pandas(table_chunk(rng, 200_000), preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=100_000)
    finally:
        if writer is not None:
            writer.close()


def _written(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def write_csv(path: Path, mb: float) -> None:
    rng = np.random.default_rng(0)
    first = True
    while _written(path) < mb * 2**20:
        table_chunk(rng, 100_000).to_csv(path, mode="w" if first else "a", header=first,
                                         index=False, float_format="%.6g")
        first = False


def write_las(path: Path, factor: int) -> None:
    import laspy

    src = sorted(Path("/work/shared/data/lidar/las").glob("*.las"))
    if src:
        las = laspy.read(str(src[0]))
        x, y, z = np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)
        inten, cls = np.asarray(las.intensity), np.asarray(las.classification)
    else:  # a generated tile: ground, a few boxes
        rng = np.random.default_rng(0)
        n = 20_000
        x, y = rng.uniform(0, 60, n), rng.uniform(0, 40, n)
        z = 0.05 * x + np.where((x > 10) & (x < 20), 10.0, 0.0) + rng.normal(0, 0.05, n)
        inten, cls = rng.integers(0, 65535, n), np.where(z > 5, 6, 2)
    width = float(x.max() - x.min()) * 1.001
    cols = int(np.ceil(np.sqrt(factor)))
    header = laspy.LasHeader(point_format=3, version="1.2")
    header.scales = np.array([0.01] * 3)
    header.offsets = np.array([float(x.min()), float(y.min()), float(z.min())])
    height = float(y.max() - y.min()) * 1.001
    with laspy.open(str(path), mode="w", header=header) as out:
        for k in range(factor):
            rec = laspy.ScaleAwarePointRecord.zeros(len(x), header=header)
            rec.x = x + (k % cols) * width
            rec.y = y + (k // cols) * height
            rec.z, rec.intensity, rec.classification = z, inten, cls
            out.write_points(rec)


def child(kind: str, path: str, stream: bool, cache: str) -> None:
    """One measurement, in a fresh process: open the dataset, draw random batches."""
    import torch

    from polyjepa import collate

    t = time.perf_counter()
    if kind == "las":
        from polyjepa_lidar.datasets import LidarDataset

        ds = LidarDataset(path, stream=stream, cache_dir=cache)
    else:
        from polyjepa_tabular.datasets import TableDataset

        ds = TableDataset(path, target="label", stream=stream, cache_dir=cache)
    opened = time.perf_counter() - t
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for _ in range(BATCHES):
        batch = collate([ds[int(i)] for i in rng.integers(0, len(ds), min(BATCH, len(ds)))])
        assert torch.isfinite(batch["x"]).all()
    drawn = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rss": rss, "open": opened, "draw": drawn, "n": len(ds)}))


def measure(kind: str, path: Path, stream: bool, tmp: Path) -> dict:
    cache = tmp / f"cache-{path.name}-{stream}"
    res = subprocess.run([sys.executable, __file__, "--child", kind, str(path),
                          str(int(stream)), str(cache)], capture_output=True, text=True,
                         env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                              "PYTHONWARNINGS": "ignore", **_env()})
    shutil.rmtree(cache, ignore_errors=True)
    if res.returncode:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr else "failed"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS",)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="200,2000", help="Parquet sizes in MB")
    ap.add_argument("--csv-sizes", default="50,200", help="CSV sizes in MB")
    ap.add_argument("--las-factors", default="10,200", help="LAS tile growth factors")
    ap.add_argument("--whole-max", type=float, default=1000,
                    help="largest file (MB) also read whole")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, path, stream, cache = args.child
        child(kind, path, stream == "1", cache)
        return
    cases: list[tuple[str, str, float]] = []
    cases += [("parquet", s, float(s)) for s in args.sizes.split(",") if s]
    cases += [("csv", s, float(s)) for s in args.csv_sizes.split(",") if s]
    cases += [("las", s, float(s)) for s in args.las_factors.split(",") if s]
    print(f"{'file':<24} {'size MB':>8}  {'mode':<8} {'peak RSS MB':>12} {'open s':>8} "
          f"{'50 batches s':>13}")
    with tempfile.TemporaryDirectory(prefix="bench-streaming-") as tmp_name:
        tmp = Path(tmp_name)
        for kind, label, value in cases:
            path = tmp / f"{kind}-{label}.{ 'las' if kind == 'las' else kind}"
            if kind == "parquet":
                write_parquet(path, value)
            elif kind == "csv":
                write_csv(path, value)
            else:
                write_las(path, int(value))
            mb = path.stat().st_size / 2**20
            name = f"las x{label}" if kind == "las" else kind
            modes = [True] + ([False] if mb <= args.whole_max else [])
            for stream in modes:
                r = measure("las" if kind == "las" else "table", path, stream, tmp)
                mode = "stream" if stream else "whole"
                if "error" in r:
                    print(f"{name:<24} {mb:>8.4g}  {mode:<8} {r['error']}")
                else:
                    print(f"{name:<24} {mb:>8.4g}  {mode:<8} {r['rss']:>12.0f} "
                          f"{r['open']:>8.1f} {r['draw']:>13.1f}", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
