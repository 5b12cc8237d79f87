"""`pgdl-bench data pgdl`: resumable download from a local HTTP server, CRC checks, atomic unpacking, zip safety."""

from __future__ import annotations

import filecmp
import json
import os
import zipfile
from pathlib import Path

import pytest
from pgdl_http import ZipServer, flip_byte_in_member, pgdl_zip

from benchmark.data import pgdl_data
from benchmark.cli import main
from benchmark.data.pgdl_data import ARCHIVES, DataError, fetch_archive, find_tasks
from benchmark.data.safe_unzip import UnzipError, safe_unzip
from benchmark.scores.scoring import evaluate
from task_loaders import load_task


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


@pytest.fixture
def public_zip(toy_task_path, tmp_path) -> bytes:
    return pgdl_zip(toy_task_path, tmp_path / "public_data.zip").read_bytes()


def test_interrupted_download_resumes_then_the_tasks_load_and_score(capsys, public_zip, toy_task_path, tmp_path):
    out = tmp_path / "data"
    with ZipServer({"/public_data.zip": public_zip}) as server:
        half = len(public_zip) // 2
        server.cut_after = half
        code, stdout, err = run(capsys, "data", "pgdl", "public", "--out", out, "--url", server.url, "-q")
        assert code == 1 and err.count("\n") == 1 and err.startswith("pgdl-bench: error: ")
        assert f"after {half} of {len(public_zip)} bytes" in err and "rerun to resume" in err
        # nothing that looks complete: only the partial download
        assert leftovers(out) == ["public_data.zip.part"]
        assert (out / "public_data.zip.part").stat().st_size == half

        code, stdout, err = run(capsys, "data", "pgdl", "public", "--out", out, "--url", server.url, "-q")
        assert code == 0, err
        assert server.requests == [("/public_data.zip", None), ("/public_data.zip", f"bytes={half}-")]
    task_dir = out / "public_data" / "input_data" / toy_task_path.name
    assert f"  {task_dir}  (18 models)" in stdout.splitlines()
    assert leftovers(out) == ["public_data"]  # the zip is gone once unpacked
    # byte for byte the fixture, split into the two trees
    for file in toy_task_path.rglob("*"):
        if file.is_file() and file.name not in ("SOURCE.md", "LICENSE"):
            rel = file.relative_to(toy_task_path)
            tree = out / "public_data" / ("reference_data" if file.name == "model_configs.json" else "input_data")
            assert filecmp.cmp(file, tree / toy_task_path.name / rel, shallow=False), rel
    task = load_task(task_dir)
    assert task.model_ids == load_task(toy_task_path).model_ids
    assert task.metrics_path == out / "public_data" / "reference_data" / toy_task_path.name / "model_configs.json"

    # the unpacked task scores like the fixture itself
    code, stdout, err = run(capsys, "score", task_dir, "-m", "weight_norm", "--backend", "serial", "--json",
                            "--store", tmp_path / "s.sqlite", "--out", tmp_path / "pred")
    assert code == 0, err
    scored = json.loads(stdout)["tasks"][toy_task_path.name]["weight_norm"]
    assert scored["cmi"] == pytest.approx(evaluate(scored["predictions"], load_task(toy_task_path))["cmi"], abs=0)
    assert scored["cmi"] > 0.05

    # a rerun finds it there and downloads nothing
    with ZipServer({}) as server:
        code, stdout, _ = run(capsys, "data", "pgdl", "public", "--out", out, "--url", server.url, "-q")
        assert code == 0 and server.requests == [] and str(task_dir) in stdout


def test_resume_edge_cases(public_zip, tmp_path):
    from benchmark.data.download import download

    size = len(public_zip)
    with ZipServer({"/f.zip": public_zip}) as server:
        # a server that ignores Range: the partial file is replaced by a fresh full download
        server.cut_after = size // 3
        with pytest.raises(pgdl_data.DownloadError, match="rerun to resume"):
            download(f"{server.url}/f.zip", tmp_path / "a.zip", progress=False)
        server.ignore_range = True
        assert download(f"{server.url}/f.zip", tmp_path / "a.zip", progress=False).read_bytes() == public_zip
        # a part file that is already whole (stopped before the rename): the server's 416 confirms the size
        server.ignore_range = False
        (tmp_path / "b.zip.part").write_bytes(public_zip)
        assert download(f"{server.url}/f.zip", tmp_path / "b.zip", progress=False).read_bytes() == public_zip
        # a part file longer than the file: refused
        (tmp_path / "c.zip.part").write_bytes(public_zip + b"x")
        with pytest.raises(pgdl_data.DownloadError, match="HTTP error 416"):
            download(f"{server.url}/f.zip", tmp_path / "c.zip", progress=False)
    assert server.requests[1:] == [("/f.zip", f"bytes={size // 3}-"), ("/f.zip", f"bytes={size}-"),
                                   ("/f.zip", f"bytes={size + 1}-")]


def test_corrupt_zip_is_one_line_and_leaves_nothing(capsys, toy_task_path, tmp_path):
    bad = pgdl_zip(toy_task_path, tmp_path / "bad.zip", compression=zipfile.ZIP_STORED)
    member = f"public_data/input_data/{toy_task_path.name}/model_3/weights.hdf5"
    flip_byte_in_member(bad, member)
    with zipfile.ZipFile(bad) as zf:
        assert zf.testzip() == member  # the zip's own CRC catches it
    out = tmp_path / "data"
    with ZipServer({"/public_data.zip": bad.read_bytes()}) as server:
        code, _, err = run(capsys, "data", "pgdl", "public", "--out", out, "--url", server.url, "-q")
    assert code == 1 and err.count("\n") == 1
    assert member in err and "corrupt" in err and "Bad CRC-32" in err and "rerun to download it again" in err
    assert leftovers(out) == []  # no task folder, no staging folder, and the bad zip is deleted


def test_server_error_is_one_line_and_leaves_nothing(capsys, public_zip, tmp_path):
    out = tmp_path / "data"
    with ZipServer({"/public_data.zip": public_zip}) as server:
        server.fail_status = 500
        code, _, err = run(capsys, "data", "pgdl", "public", "--out", out, "--url", server.url, "-q")
        assert code == 1 and err.count("\n") == 1
        assert f"{server.url}/public_data.zip: HTTP error 500" in err
        server.fail_status = None
        code, _, err = run(capsys, "data", "pgdl", "phase2", "--out", out, "--url", server.url, "-q")  # not served
        assert code == 1 and err.count("\n") == 1 and "phase_two_data.zip: HTTP error 404" in err
    assert leftovers(out) == []


def test_unreachable_server_and_disk_space(capsys, public_zip, tmp_path, monkeypatch):
    out = tmp_path / "data"
    with ZipServer({}) as server:
        dead = server.url
    code, _, err = run(capsys, "data", "pgdl", "public", "--out", out, "--url", dead, "-q")
    assert code == 1 and err.count("\n") == 1 and "cannot connect" in err
    monkeypatch.setattr(pgdl_data, "free_bytes", lambda path: 1000)
    with ZipServer({"/public_data.zip": public_zip}) as server:
        with pytest.raises(DataError, match=r"not enough disk space in .*public_data.zip needs about .* GB"):
            fetch_archive(ARCHIVES[0], out, server.url, progress=False)
    assert leftovers(out) == []  # refused before a byte was written


def test_zip_slip_and_links_are_refused(tmp_path):
    cases = {
        "dotdot": [("top/../../evil.txt", b"x")],
        "absolute": [("/tmp/evil.txt", b"x")],
        "backslash": [("top\\..\\evil.txt", b"x")],
        "duplicate": [("top/a.txt", b"1"), ("top/A.txt", b"2")],
    }
    for label, members in cases.items():
        path = tmp_path / f"{label}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in members:
                zf.writestr(zipfile.ZipInfo(name), data)
        with pytest.raises(UnzipError, match="refusing member"):
            safe_unzip(path, tmp_path / "dest" / label, progress=False)
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("top/link")
        info.create_system = 3
        info.external_attr = (0o120777 << 16)  # a symbolic link to /etc/passwd
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnzipError, match="symbolic link"):
        safe_unzip(link, tmp_path / "dest" / "link", progress=False)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()
    assert leftovers(tmp_path / "dest") == []


def test_unzip_is_not_nested_twice_and_find_tasks_orders_the_competition(toy_task_path, tmp_path):
    # a zip whose top folder is not the destination's name keeps it
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("other/a.txt", "a")
    safe_unzip(path, tmp_path / "x", progress=False)
    assert (tmp_path / "x" / "other" / "a.txt").read_text() == "a"
    # nor is one whose top folder is the destination's name, with macOS metadata beside it (skipped)
    with zipfile.ZipFile(tmp_path / "y.zip", "w") as zf:
        zf.writestr("y/a.txt", "a")
        zf.writestr("__MACOSX/y/._a.txt", "metadata")
        zf.writestr("y/.DS_Store", "metadata")
    safe_unzip(tmp_path / "y.zip", tmp_path / "y", progress=False)
    assert leftovers(tmp_path / "y") == ["a.txt"]

    root = tmp_path / "root"
    for name in ("task9", "task1_v4", "zeta", "task10"):
        target = root / "phase" / "input_data" / name
        for model in ("model_0",):
            (target / model).mkdir(parents=True)
        ref = root / "phase" / "reference_data" / name
        ref.mkdir(parents=True)
        (ref / "model_configs.json").write_text("{}")
    (root / "phase" / "input_data" / "not_a_task").mkdir()
    (root / ".hidden.unpacking" / "task2" / "model_0").mkdir(parents=True)
    os.symlink(toy_task_path, root / "toy")
    names = [p.name for p in find_tasks(root)]
    assert names == ["task1_v4", "task9", "task10", "toy", "zeta"]
