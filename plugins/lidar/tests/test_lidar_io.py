from __future__ import annotations

import numpy as np
import pytest

from polyjepa import DataError
from polyjepa_lidar.io import list_files, load_clouds, read_cloud

from .conftest import LAS_SCALE, N_SCANS


def test_kitti_bin_reader(kitti_dir):
    path = kitti_dir / "000000.bin"
    cloud = read_cloud(path)
    raw = np.fromfile(path, np.float32).reshape(-1, 4)
    assert len(cloud) == raw.shape[0] == path.stat().st_size // 16
    np.testing.assert_allclose(cloud.points, raw[:, :3], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(cloud.intensity, raw[:, 3])
    assert cloud.labels is None
    assert cloud.intensity.min() >= 0.0 and cloud.intensity.max() <= 1.0


def test_folder_is_a_sorted_sequence(kitti_dir):
    files = list_files(kitti_dir)
    assert [f.name for f in files] == sorted(f.name for f in kitti_dir.glob("*.bin"))
    clouds = load_clouds(kitti_dir)
    assert len(clouds) == N_SCANS
    assert [len(c) for c in clouds] == [f.stat().st_size // 16 for f in files]
    assert [c.source for c in clouds] == [str(f) for f in files]


def test_real_kitti_sample(real_kitti_dir):
    path = real_kitti_dir / "000000.bin"
    cloud = read_cloud(path)
    raw = np.fromfile(path, np.float32).reshape(-1, 4)
    np.testing.assert_allclose(cloud.points, raw[:, :3], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(cloud.intensity, raw[:, 3])
    clouds = load_clouds(real_kitti_dir)
    assert len(clouds) == 10 and all(len(c) > 15000 for c in clouds)


def test_semantic_kitti_sequence_labels(semantic_kitti, tmp_path):
    velo, expected = semantic_kitti
    clouds = load_clouds(tmp_path / "sequences")  # the whole sequence tree, in order
    assert [c.source for c in clouds] == [str(velo / "000000.bin"), str(velo / "000001.bin")]
    np.testing.assert_array_equal(clouds[0].labels, expected["000000"])  # instance bits off
    np.testing.assert_array_equal(clouds[1].labels, expected["000001"])
    # a label file that does not match its scan is named
    label = tmp_path / "sequences" / "00" / "labels" / "000001.label"
    label.write_bytes(label.read_bytes()[:-8])
    with pytest.raises(DataError, match=r"000001\.label: .*one uint32 per point"):
        read_cloud(velo / "000001.bin")


def test_las_reader_keeps_asprs_classes(las_file, las_tile):
    cloud = read_cloud(las_file)
    assert len(cloud) == len(las_tile["x"])
    written = np.stack([las_tile[k] for k in "xyz"], axis=1)
    np.testing.assert_allclose(cloud.points, written, rtol=0, atol=LAS_SCALE / 2 + 1e-6)
    np.testing.assert_array_equal(cloud.labels, las_tile["classification"])
    np.testing.assert_allclose(cloud.intensity, las_tile["intensity"] / 65535.0, atol=1e-6)
    assert set(np.unique(cloud.labels)) == {2, 3, 4, 5, 6, 7}


def test_real_las_reader_keeps_asprs_classes(real_las_file):
    cloud = read_cloud(real_las_file)
    assert len(cloud) == 25408
    classes, counts = np.unique(cloud.labels, return_counts=True)
    assert set(classes) == {2, 3, 4, 5, 6, 7}
    assert counts[list(classes).index(2)] == 9808  # ground
    assert cloud.intensity.min() >= 0.0 and cloud.intensity.max() <= 1.0


def test_laz_reader_matches_las(las_file, tmp_path):
    laspy = pytest.importorskip("laspy")
    if not laspy.LazBackend.detect_available():
        pytest.skip("no LAZ backend (lazrs) installed")
    las = laspy.read(str(las_file))
    out = tmp_path / "tile.laz"
    las.write(str(out))  # compressed by the .laz suffix
    assert out.stat().st_size < las_file.stat().st_size
    a, b = read_cloud(las_file), read_cloud(out)
    np.testing.assert_array_equal(b.points, a.points)
    np.testing.assert_array_equal(b.labels, a.labels)
    np.testing.assert_array_equal(b.intensity, a.intensity)
    cut = tmp_path / "cut.laz"
    cut.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    with pytest.raises(DataError, match=r"cut\.laz"):
        read_cloud(cut)


def test_laz_without_backend_says_what_to_install(las_file, tmp_path, monkeypatch):
    laspy = pytest.importorskip("laspy")
    out = tmp_path / "tile.laz"
    out.write_bytes(las_file.read_bytes())
    monkeypatch.setattr(laspy.LazBackend, "detect_available", staticmethod(lambda: ()))
    with pytest.raises(DataError, match=r"tile\.laz: LAZ .*no LAZ backend.*\[las\]"):
        read_cloud(out)


@pytest.mark.parametrize("suffix", [".pcd", ".ply"])
def test_open3d_formats_round_trip(kitti_dir, tmp_path, suffix):
    import open3d as o3d

    src = read_cloud(kitti_dir / "000001.bin")
    pcd = o3d.t.geometry.PointCloud(o3d.core.Tensor(src.points.astype(np.float32)))
    pcd.point.intensity = o3d.core.Tensor(src.intensity.reshape(-1, 1))
    labels = np.where(src.points[:, 2] < -1.4, 40, 50).astype(np.int32)
    pcd.point.label = o3d.core.Tensor(labels.reshape(-1, 1))
    out = tmp_path / f"scan{suffix}"
    assert o3d.t.io.write_point_cloud(str(out), pcd)
    back = read_cloud(out)
    np.testing.assert_allclose(back.points, src.points, atol=1e-5)
    np.testing.assert_allclose(back.intensity, src.intensity, atol=1e-6)
    np.testing.assert_array_equal(back.labels, labels)  # a per-point class field


def test_npz_reader(tmp_path):
    pts = np.random.default_rng(0).normal(size=(50, 3))
    np.savez(tmp_path / "c.npz", points=pts, labels=np.arange(50) % 3)
    cloud = read_cloud(tmp_path / "c.npz")
    np.testing.assert_allclose(cloud.points, pts)
    assert list(cloud.labels[:4]) == [0, 1, 2, 0]


def test_truncated_kitti_names_file(kitti_dir, tmp_path):
    bad = tmp_path / "cut.bin"
    bad.write_bytes((kitti_dir / "000000.bin").read_bytes()[:1000 * 16 + 7])
    with pytest.raises(DataError, match=r"cut\.bin.*16-byte"):
        read_cloud(bad)


def test_empty_and_nan_kitti(tmp_path):
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.bin: empty file"):
        read_cloud(empty)
    arr = np.ones((10, 4), np.float32)
    arr[3, 1] = np.nan
    nan = tmp_path / "nan.bin"
    arr.tofile(nan)
    with pytest.raises(DataError, match=r"nan\.bin: 1 point\(s\) with NaN"):
        read_cloud(nan)


def test_corrupt_las_names_file(las_file, tmp_path):
    bad = tmp_path / "broken.las"
    bad.write_bytes(las_file.read_bytes()[:5000])
    with pytest.raises(DataError, match=r"broken\.las"):
        read_cloud(bad)
    junk = tmp_path / "junk.las"
    junk.write_bytes(b"not a las file at all" * 20)
    with pytest.raises(DataError, match=r"junk\.las"):
        read_cloud(junk)


def test_corrupt_pcd_and_unknown_format(tmp_path):
    bad = tmp_path / "bad.pcd"
    bad.write_text("this is not a point cloud\n")
    with pytest.raises(DataError, match=r"bad\.pcd"):
        read_cloud(bad)
    other = tmp_path / "scan.xyz1"
    other.write_text("1 2 3\n")
    with pytest.raises(DataError, match=r"scan\.xyz1: unknown point-cloud format"):
        read_cloud(other)
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match="no point-cloud files"):
        list_files(tmp_path / "none")


def test_bad_arrays():
    with pytest.raises(DataError, match=r"points must be \[N, 3\+\]"):
        load_clouds(np.zeros((5, 2)))
    with pytest.raises(DataError, match="empty"):
        load_clouds(np.zeros((0, 4)))
