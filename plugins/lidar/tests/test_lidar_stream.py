"""Streamed LAS/LAZ files: the same windows as a whole read, chunk by chunk."""

from __future__ import annotations

import numpy as np
import pytest

from polyjepa import ConfigError, testing
from polyjepa_lidar.datasets import LidarDataset


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 997 points and bands of 3000, so that the small files here are read in
    many chunks and spilled into several bands."""
    import polyjepa_lidar.stream as stream

    monkeypatch.setattr(stream, "CHUNK_POINTS", 997)
    monkeypatch.setattr(stream, "BAND_POINTS", 3000)


def _same(a: LidarDataset, b: LidarDataset) -> None:
    assert a.state == b.state
    testing.check_same_samples(a, b)
    assert np.array_equal(a.classes, b.classes)
    assert (a.pillar_hist != b.pillar_hist).nnz == 0


@pytest.mark.parametrize("kw", [{}, {"tile": 10.0, "tile_stride": 4.0, "z_range": (1340, 1400)},
                                {"grid": 8, "ground": "min"}])
def test_stream_same_as_whole_read(las_file, tmp_path, small_chunks, kw):
    a = LidarDataset(las_file, stream=False, **kw)
    b = LidarDataset(las_file, stream=True, cache_dir=str(tmp_path), **kw)
    _same(a, b)
    assert not list(tmp_path.iterdir())  # the spilled bands are removed


def test_stream_same_on_real_tile(real_las_file, small_chunks):
    _same(LidarDataset(real_las_file, grid=16, stream=False),
          LidarDataset(real_las_file, grid=16, stream=True))


def test_stream_sampled_extent_is_close(las_file, monkeypatch, small_chunks):
    """A file larger than the sample: the window size comes from every k-th point."""
    import polyjepa_lidar.stream as stream

    monkeypatch.setattr(stream, "SAMPLE_POINTS", 2000)
    a = LidarDataset(las_file, stream=False)
    b = LidarDataset(las_file, stream=True)
    assert b.state["tile"] == pytest.approx(a.state["tile"], rel=0.1)
    assert len(b) == pytest.approx(len(a), rel=0.3)


def test_stream_needs_las_and_no_voxels(las_file, kitti_dir):
    with pytest.raises(ConfigError, match="cannot down-sample voxels"):
        LidarDataset(las_file, stream=True, voxel_size=0.5)
    with pytest.raises(ConfigError, match="reads LAS/LAZ files"):
        LidarDataset(kitti_dir, stream=True)
    with pytest.raises(ConfigError, match="stream must be"):
        LidarDataset(las_file, stream="sometimes")


def test_stream_auto_above_threshold(las_file, monkeypatch):
    import polyjepa_lidar.datasets as datasets
    import polyjepa_lidar.stream as stream

    monkeypatch.setattr(stream, "STREAM_BYTES", 1000)
    monkeypatch.setattr(datasets, "read_cached", lambda *a: pytest.fail("read whole"))
    assert len(LidarDataset(las_file)) > 0
