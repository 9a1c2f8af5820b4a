"""``pj.generated_folder``: simulators' output written once, whole, never over a user's files."""

from __future__ import annotations

import pytest

import polyjepa as pj


def _writer(calls: list[int], fail: bool = False):
    def write(tmp):
        calls.append(1)
        (tmp / "a").mkdir()
        (tmp / "a" / "x01.bin").write_bytes(b"1")
        if fail:
            raise RuntimeError("simulator failed")
        (tmp / "x02.bin").write_bytes(b"2")
    return write


def test_written_once_per_settings(tmp_path):
    calls: list[int] = []
    folder = pj.generated_folder(tmp_path / "g", {"n": 2}, _writer(calls), r"(a/)?x\d+\.bin")
    assert (folder / "a" / "x01.bin").read_bytes() == b"1" and (folder / "x02.bin").is_file()
    assert pj.generated_folder(folder, {"n": 2}, _writer(calls), r"(a/)?x\d+\.bin") == folder
    assert len(calls) == 1  # the same settings: kept, not rewritten
    pj.generated_folder(folder, {"n": 3}, _writer(calls), r"(a/)?x\d+\.bin")
    assert len(calls) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["g"]  # no temporary folder left


def test_other_files_are_refused_and_kept(tmp_path):
    folder = tmp_path / "mine"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="a/notes.txt"):
        pj.generated_folder(folder, {}, _writer([]), r"(a/)?x\d+\.bin")
    assert (folder / "a" / "notes.txt").read_text() == "keep me"
    with pytest.raises(FileExistsError, match="is a file"):
        pj.generated_folder(folder / "a" / "notes.txt", {}, _writer([]), r"x")


def test_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="simulator failed"):
        pj.generated_folder(tmp_path / "g", {}, _writer([], fail=True), r"(a/)?x\d+\.bin")
    assert list(tmp_path.iterdir()) == []
