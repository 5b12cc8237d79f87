"""The performance suite runs and reports (no timing assertions), and the TFRecord fast path it measures."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from scripts.perf import suite
from scripts.perf.fragmentation import forward_flops
from task_loaders import TaskFormatError, build_network, read_split, write_split
from task_loaders import tfrecord
from task_loaders.architectures import vgg


def _report(out: Path) -> tuple[dict, str]:
    report = json.loads((out / "perf_report.json").read_text(), parse_constant=pytest.fail)  # strict: no NaN
    return report, (out / "perf_report.md").read_text()


def test_quick_suite_writes_every_section(tmp_path, toy_task_path, capsys):
    out = tmp_path / "perf"
    status = suite.main(["--quick", "--out", str(out), "--task", str(toy_task_path)])
    report, md = _report(out)
    # the exit status says whether every target was met (timings vary with the machine; not asserted here)
    assert report["quick"] is True and status == (0 if report["passed"] else 1)
    assert report["passed"] is all(s["status"] not in ("fail", "error") for s in report["sections"].values())
    assert list(report["sections"]) == list(suite.SECTIONS)
    for key in ("cpu_model", "cpu_count", "torch_threads", "torch", "numpy", "tensorflow"):
        assert key in report["machine"]
    for name, section in report["sections"].items():
        assert section["status"] in ("pass", "fail", "n/a"), (name, section["notes"])
        assert section["checks"], name
        for check in section["checks"]:
            assert {"name", "ours", "baseline", "ratio", "target", "pass"} <= set(check), name
        assert f"## {section['title']}" in md
    frag = report["sections"]["fragmentation"]["results"]
    assert frag["flops_per_point"] == forward_flops(build_network(vgg((32, 32, 3), 10, width=64, depth=3),
                                                                  (32, 32, 3)), (3, 32, 32))
    assert all(t["ratio"] > 0 for t in frag["by_threads"])
    assert report["sections"]["tfrecord"]["results"]["identical"] is True
    assert report["sections"]["leaderboard"]["results"]["subcommand"] in ("leaderboard", "score")
    assert "| section | check | ours | baseline | ratio | target | result |" in md
    assert md.strip() in capsys.readouterr().out


def test_skipped_sections_are_reported(tmp_path, capsys):
    out = tmp_path / "perf"
    status = suite.main(["--quick", "--out", str(out), "--skip", "tfrecord", "activations", "fragmentation",
                         "leaderboard"])
    report, md = _report(out)
    assert status == (0 if report["passed"] else 1)
    assert report["sections"]["cmi"]["status"] in ("pass", "fail")
    for name in ("tfrecord", "activations", "fragmentation", "leaderboard"):
        assert report["sections"][name]["status"] == "skipped"
        assert f"## {suite.TITLES[name]}" in md


def test_flop_count_of_a_small_network():
    # conv 3x3, 3 -> 4 channels, 'same' on 8x8: 8*8*4 outputs x 27 MACs; dense 8*8*4 -> 5 after flatten.
    spec = {"model_config": [
        {"layer_name": "Conv2D", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"layer_name": "Flatten"},
        {"layer_name": "Dense", "units": 5},
    ], "input_shape": [8, 8, 3]}
    network = build_network(spec["model_config"], (8, 8, 3))
    assert forward_flops(network, (3, 8, 8)) == 2 * (8 * 8 * 4 * 27 + 8 * 8 * 4 * 5)


# -- the TFRecord fast path: the same arrays as the record-by-record path, or that path's errors ---------


def _streaming(directory: Path):
    parts = [tfrecord._read_shard_streaming(s, True, None) for s in tfrecord.shard_paths(directory)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def test_fast_path_reads_tensorflow_written_shards(toy_task_path):
    # TensorFlow wrote the toy shards with the Example's two map entries in either order, record by record.
    for split in ("train", "test"):
        directory = toy_task_path / "dataset_1" / split
        for shard in tfrecord.shard_paths(directory):
            assert tfrecord._read_regular_shard(shard, True) is not None, shard
        x, y = read_split(directory)
        sx, sy = _streaming(directory)
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert np.array_equal(x, sx) and np.array_equal(y, sy)


def _example(inputs: np.ndarray, label: int, reverse: bool) -> bytes:
    entries = [(b"inputs", tfrecord.serialize_tensor(inputs)), (b"output", tfrecord.serialize_tensor(np.int32(label)))]
    if reverse:
        entries.reverse()
    body = b"".join(tfrecord._field_bytes(1, tfrecord._field_bytes(1, key) + tfrecord._field_bytes(
        2, tfrecord._field_bytes(1, tfrecord._field_bytes(1, value)))) for key, value in entries)
    return tfrecord._field_bytes(1, body)


def test_fast_path_handles_mixed_entry_orders_and_dtypes(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((30, 4, 4, 2)).astype(np.float64)  # float64 on disk, float32 out
    y = rng.integers(0, 10, 30)
    shard = tmp_path / "split" / "shard_0.tfrecord"
    shard.parent.mkdir()
    tfrecord.write_records(shard, [_example(a, int(b), reverse=i % 3 == 0) for i, (a, b) in enumerate(zip(x, y))])
    assert tfrecord._read_regular_shard(shard, True) is not None
    rx, ry = read_split(shard.parent)
    assert rx.dtype == np.float32 and np.array_equal(rx, x.astype(np.float32)) and np.array_equal(ry, y)


def test_irregular_and_corrupt_shards_get_the_streaming_path_and_its_errors(tmp_path):
    rng = np.random.default_rng(1)
    good = tmp_path / "good"
    write_split(good, rng.random((40, 3, 3, 1), dtype=np.float32), np.arange(40) % 7, records_per_shard=15)
    x, y = read_split(good)
    assert np.array_equal(x, _streaming(good)[0]) and np.array_equal(y, np.arange(40) % 7)

    corrupt = tmp_path / "corrupt"
    write_split(corrupt, rng.random((10, 3, 3, 1), dtype=np.float32), np.zeros(10))
    shard = corrupt / "shard_0.tfrecord"
    data = bytearray(shard.read_bytes())
    size = len(data) // 10
    data[7 * size - 5] ^= 0xFF  # the last payload byte of record 6: its label's tensor content
    shard.write_bytes(bytes(data))
    assert tfrecord._read_regular_shard(shard, True) is None
    with pytest.raises(TaskFormatError, match="payload checksum mismatch in record 6"):
        read_split(corrupt)
    assert read_split(corrupt, verify=False)[0].shape == (10, 3, 3, 1)  # no CRC check: bytes are bytes

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    payloads = [_example(np.zeros((2, 2), np.float32), 0, False), _example(np.zeros((3, 3), np.float32), 1, False)]
    tfrecord.write_records(mixed / "shard_0.tfrecord", payloads)
    with pytest.raises(TaskFormatError, match=r"record 1 has inputs of shape \(3, 3\)"):
        read_split(mixed)

    truncated = tmp_path / "truncated"
    write_split(truncated, np.zeros((5, 2), np.float32), np.zeros(5))
    shard = truncated / "shard_0.tfrecord"
    shard.write_bytes(shard.read_bytes()[:-3])
    with pytest.raises(TaskFormatError, match="truncated record 4"):
        read_split(truncated)

    split_shapes = tmp_path / "split_shapes"
    split_shapes.mkdir()
    tfrecord.write_records(split_shapes / "shard_0.tfrecord", payloads[:1])
    tfrecord.write_records(split_shapes / "shard_1.tfrecord", payloads[1:])
    with pytest.raises(TaskFormatError, match=r"shard_1.tfrecord: record 0 has inputs of shape \(3, 3\)"):
        read_split(split_shapes)


def test_fast_path_header_crc_is_checked(tmp_path):
    write_split(tmp_path / "s", np.ones((4, 2), np.float32), np.zeros(4))
    shard = tmp_path / "s" / "shard_0.tfrecord"
    data = bytearray(shard.read_bytes())
    struct.pack_into("<I", data, 8, 0)  # record 0's length CRC
    shard.write_bytes(bytes(data))
    with pytest.raises(TaskFormatError, match="length checksum mismatch"):
        read_split(tmp_path / "s")


def test_cli_modules_keep_their_entry_points():
    from scripts.perf import activations, cmi, end_to_end, fragmentation, measure_times, tfrecord as perf_tf

    for module in (activations, cmi, end_to_end, fragmentation, measure_times, perf_tf):
        assert callable(module.main), module.__name__
