from __future__ import annotations

import numpy as np
import pytest
import torch

from polyjepa import ConfigError, DataError, testing
from polyjepa_lidar.datasets import LidarDataset
from polyjepa_lidar.io import Cloud, read_cloud
from polyjepa_lidar.pillars import FEATURES, ground_heights, pillarize, voxel_downsample


def test_pillarize_statistics_by_hand():
    # grid 2x2 over [0, 2) x [0, 2): pillar (0, 0) gets 3 points, (1, 1) gets 1
    xy = np.array([[0.2, 0.2], [0.6, 0.4], [0.9, 0.9], [1.5, 1.5], [5.0, 5.0]])
    h = np.array([1.0, 2.0, 4.0, 7.0, 9.0])
    inten = np.array([0.1, 0.2, 0.3, 0.5, 0.9], np.float32)
    labels = np.array([6, 2, 6, 5, 5])
    p = pillarize(xy, h, inten, labels, (0.0, 2.0), (0.0, 2.0), (2, 2))
    assert p.features.shape == (len(FEATURES), 2, 2)
    assert list(p.counts) == [3, 0, 0, 1]  # the point at (5, 5) is outside
    f = p.features.reshape(len(FEATURES), -1)
    assert f[0, 0] == pytest.approx(np.log1p(3))
    assert f[1, 0] == pytest.approx(7 / 3)
    assert (f[2, 0], f[3, 0]) == (pytest.approx(1.0), pytest.approx(4.0))
    assert f[4, 0] == pytest.approx(np.std([1.0, 2.0, 4.0]), rel=1e-5)
    assert f[5, 0] == pytest.approx(0.2)
    assert (f[2, 3], f[3, 3]) == (pytest.approx(7.0), pytest.approx(7.0))
    assert np.all(f[:, 1] == 0) and np.all(f[:, 2] == 0)  # empty pillars stay zero
    assert list(p.labels) == [6, -1, -1, 5]  # majority class; -1 where empty
    # per-class point counts per pillar over the data set's classes (for per-point metrics)
    q = pillarize(xy, h, inten, labels, (0.0, 2.0), (0.0, 2.0), (2, 2), np.array([2, 5, 6, 9]))
    np.testing.assert_array_equal(q.hist, [[1, 0, 2, 0], [0, 0, 0, 0], [0, 0, 0, 0],
                                           [0, 1, 0, 0]])
    assert list(q.labels) == [6, -1, -1, 5]
    with pytest.raises(ValueError, match="outside the given classes"):
        pillarize(xy, h, inten, labels, (0.0, 2.0), (0.0, 2.0), (2, 2), np.array([2, 6]))


def test_voxel_downsample_keeps_majority_label():
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.uniform(0.1, 0.8, (30, 3)), rng.uniform(5.2, 5.8, (30, 3))])
    pts[0] = 0.0  # voxels are aligned on the minimum corner
    labels = np.r_[np.full(20, 1), np.full(10, 3), np.full(30, 4)]
    cloud = Cloud(pts, np.ones(60, np.float32), labels)
    down = voxel_downsample(cloud, 1.0)
    assert len(down) == 2
    order = np.argsort(down.points[:, 0])
    assert list(down.labels[order]) == [1, 4]
    np.testing.assert_allclose(down.intensity, 1.0)


@pytest.mark.parametrize("method", ["plane", "open3d"])
def test_ground_plane_heights(method):
    rng = np.random.default_rng(1)
    xy = rng.uniform(-20, 20, (3000, 2))
    z = 0.05 * xy[:, 0] - 0.02 * xy[:, 1] - 1.7 + rng.normal(0, 0.01, 3000)
    box = np.c_[rng.uniform(2, 4, (300, 2)), rng.uniform(0, 2, 300)]
    box[:, 2] += 0.05 * box[:, 0] - 0.02 * box[:, 1] - 1.7
    pts = np.r_[np.c_[xy, z], box]
    h = ground_heights(pts, method)
    assert np.abs(h[:3000]).max() < 0.1
    assert np.all(h[3000:] > -0.1) and h[3000:].max() > 1.8
    np.testing.assert_array_equal(h, ground_heights(pts, method))  # seeded
    with pytest.raises(ValueError, match="ground method"):
        ground_heights(pts[:5], "lowest")


def test_kitti_dataset_contract(kitti_dir, kitti_dataset):
    ds = testing.check_dataset("lidar.points", kitti_dir, min_items=10, grid=16)
    item = ds[0]
    assert item["x"].shape == (len(FEATURES), 16, 16)
    assert item["valid"].dtype == torch.bool and item["valid"].shape == (256,)
    assert 20 < int(item["valid"].sum()) < 256
    # empty pillars hold zeros; state round-trips
    assert torch.all(item["x"].reshape(len(FEATURES), -1)[:, ~item["valid"]] == 0)
    again = LidarDataset(kitti_dir / "000003.bin", state=kitti_dataset.state)
    assert torch.allclose(again[0]["x"], kitti_dataset[3]["x"], atol=1e-5)
    assert ds.encoder_hints == {"in_feats": len(FEATURES)}


@pytest.mark.parametrize("source", ["las_file", "real_las_file"])
def test_las_tiles_with_pillar_and_scene_labels(source, request):
    las_file = request.getfixturevalue(source)
    ds = LidarDataset(las_file, grid=16, tile=10.0)
    assert len(ds) == 24  # 60 x 40 ft tile, 10 ft windows
    lab = ds.pillar_labels
    assert lab.shape == (24, 256)
    assert set(torch.unique(lab[lab >= 0]).tolist()) <= {2, 3, 4, 5, 6, 7}
    assert torch.equal(lab >= 0, ds.valid)
    assert set(ds.y.tolist()) <= {3, 4, 5, 6, 7, 2} and len(set(ds.y.tolist())) >= 2
    assert ds.state["tile"] == 10.0


def test_semantic_kitti_pillar_labels(semantic_kitti):
    velo, expected = semantic_kitti
    ds = LidarDataset(velo, grid=8, x_range=(-20, 20), y_range=(-20, 20))
    assert len(ds) == 2 and ds.pillar_labels is not None
    assert list(ds.classes) == [40, 50]
    assert torch.equal(ds.pillar_labels >= 0, ds.valid)
    # the per-class point counts of the occupied pillars add up to the points in the box
    pts = read_cloud(velo / "000000.bin").points
    inside = (pts[:, 0] >= -20) & (pts[:, 0] < 20) & (pts[:, 1] >= -20) & (pts[:, 1] < 20)
    first = ds.class_counts(np.stack([np.zeros(64, int), np.arange(64)], axis=1))  # [64, 2]
    assert first.sum() == int(inside.sum())
    assert first[:, 0].sum() == int((expected["000000"][inside] == 40).sum())
    np.testing.assert_array_equal(ds.classes[first[ds.valid[0].numpy()].argmax(axis=1)],
                                  ds.pillar_labels[0][ds.valid[0]].numpy())
    # road (40) is ground-like, so the scene label is the building class
    assert ds.y.tolist() == [50, 50]
    # a group per scan, or per block of consecutive scans of a sequence
    assert ds.groups.tolist() == [0, 1]
    blocks = LidarDataset(velo, grid=8, x_range=(-20, 20), y_range=(-20, 20), scan_block=2)
    assert blocks.groups.tolist() == [0, 0]
    assert torch.equal(blocks.x, ds.x)


def test_crop_voxel_and_cache(kitti_dir, tmp_path):
    ds = LidarDataset(kitti_dir / "000000.bin", grid=8, x_range=(0, 40), y_range=(-20, 20),
                      z_range=(-3, 3), voxel_size=0.5, cache_dir=str(tmp_path))
    assert len(ds) == 1 and ds.state["x_range"] == [0.0, 40.0]
    cached = list(tmp_path.rglob("points.npy"))
    assert len(cached) == 1
    ds2 = LidarDataset(kitti_dir / "000000.bin", grid=8, x_range=(0, 40), y_range=(-20, 20),
                       z_range=(-3, 3), voxel_size=0.5, cache_dir=str(tmp_path))
    assert torch.equal(ds[0]["x"], ds2[0]["x"])
    np.testing.assert_array_equal(np.load(cached[0]), read_cloud(kitti_dir / "000000.bin").points)


def test_dataset_errors(kitti_dir, tmp_path):
    with pytest.raises(DataError, match="no scan or tile"):
        LidarDataset(kitti_dir / "000000.bin", x_range=(500, 600), y_range=(0, 10))
    with pytest.raises(DataError, match="x_range"):
        LidarDataset(kitti_dir / "000000.bin", x_range=(5, 1), y_range=(0, 10))
    with pytest.raises(DataError, match=r"missing\.bin: no such file"):
        LidarDataset(tmp_path / "missing.bin")
    with pytest.raises(ConfigError, match="dataset.ground"):
        LidarDataset(kitti_dir / "000000.bin", ground="flat")


def _brute_force_tiles(xy, tile, stride):
    """Every window of the old full enumeration that holds a point, in the same order."""
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    nx = max(1, int(np.ceil((hi[0] - lo[0] - tile) / stride - 1e-6)) + 1)
    ny = max(1, int(np.ceil((hi[1] - lo[1] - tile) / stride - 1e-6)) + 1)
    block = max(1, round(2 * tile / stride))
    out = []
    for i in range(nx):
        for j in range(ny):
            x0, y0 = float(lo[0] + i * stride), float(lo[1] + j * stride)
            inside = ((xy[:, 0] >= x0) & (xy[:, 0] < x0 + tile) & (xy[:, 1] >= y0)
                      & (xy[:, 1] < y0 + tile))
            if inside.any():
                out.append((x0, y0, (i // block) * 100_000 + (j // block)))
    return out


@pytest.mark.parametrize("stride", [10.0, 2.5, 3.0])
def test_tiles_are_the_windows_that_hold_points(stride):
    from polyjepa_lidar.tiles import tile_windows

    def cloud(xy):
        return Cloud(np.c_[xy, np.zeros(len(xy))], np.zeros(len(xy), np.float32))

    rng = np.random.default_rng(0)
    dense = rng.uniform(0, 60, (2000, 2)) * [1, 0.66]
    dense = dense[(dense[:, 0] < 20) | (dense[:, 0] > 40)]  # an empty strip in the middle
    windows = tile_windows(cloud(dense), 10.0, stride)
    assert windows == _brute_force_tiles(dense, 10.0, stride)
    # far outliers on every side add the few windows they lie in and leave the windows
    # over the data as they are (neither shifted nor stretched)
    far = np.array([[800.0, 7.0], [-800.0, 7.0], [30.0, 900.0], [-500.0, -600.0]])
    with_far = tile_windows(cloud(np.r_[dense, far]), 10.0, stride)
    near = [w for w in with_far if -100 < w[0] < 100 and -100 < w[1] < 100]
    assert [w[:2] for w in near] == [w[:2] for w in windows]
    per_point = int(np.ceil(10.0 / stride)) ** 2
    assert len(far) <= len(with_far) - len(near) <= len(far) * per_point


def _with_outliers(las_file, tmp_path):
    laspy = pytest.importorskip("laspy")
    las = laspy.read(str(las_file))
    far = np.array([[5000.0, 0.0], [-3000.0, 4000.0], [0.0, -6000.0], [7000.0, 7000.0],
                    [-4000.0, -2500.0]])
    n = len(las.points)
    las.points = las.points[np.r_[np.arange(n), np.zeros(len(far), int)]]
    x, y = np.asarray(las.x), np.asarray(las.y)
    x[n:], y[n:] = x[0] + far[:, 0], y[0] + far[:, 1]
    las.x, las.y = x, y
    las.classification[n:] = 7
    out = tmp_path / "with_outliers.las"
    las.write(str(out))
    return out


def test_auto_tile_ignores_far_outliers(las_file, tmp_path):
    """Five noise returns kilometres away must not stretch the auto tile."""
    import warnings

    path = _with_outliers(las_file, tmp_path)
    assert len(read_cloud(path)) == len(read_cloud(las_file)) + 5
    clean = LidarDataset(las_file, grid=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # enough windows: no warning
        ds = LidarDataset(path, grid=8)
    assert ds.state["tile"] == pytest.approx(clean.state["tile"], rel=1e-9)
    assert 5.0 < ds.state["tile"] < 20.0  # about six points per 8 x 8 pillars, in ft
    assert len(ds) == len(clean) >= 16
    assert torch.equal(ds.valid, clean.valid)


def test_few_windows_warn_naming_the_file(las_file, tmp_path):
    path = _with_outliers(las_file, tmp_path)
    with pytest.warns(UserWarning, match=r"with_outliers\.las: only [1-9]\d? window\(s\)"):
        ds = LidarDataset(path, grid=32)  # auto: about 39 ft windows on a 60 x 40 ft tile
    assert len(ds) < 16
    with pytest.warns(UserWarning, match=r"tile\.las: only 6 window\(s\) of 20 x 20 "
                                         r"\(dataset\.tile=20\.0"):
        LidarDataset(las_file, grid=16, tile=20.0)
