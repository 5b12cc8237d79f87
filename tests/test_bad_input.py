"""Bad input through the command line: one line on stderr naming the culprit, no traceback, exit 2.

Each case damages its own copy of the toy task (or writes a bad ``.predict`` file) and runs the
command line, ``python -m benchmark ARGS``, in a process of its own with its own stdout and stderr.

Cases run as real ``sys.executable -m benchmark`` subprocesses, two at a time.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXIT_BAD_INPUT = 2
DAMAGED = "5"  # damage a model in the middle, so the message must name the right one


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=1))


def _record_offsets(path: Path) -> list[tuple[int, int]]:
    """(offset, payload length) of every record of a shard."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        out.append((pos, length))
        pos += 16 + length
    return out


def corrupt_shard(task: Path) -> None:
    shard = task / "dataset_1" / "train" / "shard_1.tfrecord"
    offset, length = _record_offsets(shard)[3]
    data = bytearray(shard.read_bytes())
    data[offset + 12 + length // 2] ^= 0x40
    shard.write_bytes(bytes(data))


def truncated_shard(task: Path) -> None:
    shard = task / "dataset_1" / "train" / "shard_2.tfrecord"
    offset, _ = _record_offsets(shard)[10]
    shard.write_bytes(shard.read_bytes()[: offset + 20])


def truncated_weights(task: Path) -> None:
    weights = task / f"model_{DAMAGED}" / "weights.hdf5"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def missing_weights(task: Path) -> None:
    (task / f"model_{DAMAGED}" / "weights.hdf5").unlink()


def _config(task: Path, change) -> None:
    _edit_json(task / f"model_{DAMAGED}" / "config.json", lambda c: change(c["model_config"]))


def weight_count_mismatch(task: Path) -> None:
    _config(task, lambda layers: layers.insert(-1, {"layer_name": "Dense", "units": 64, "activation": "tanh"}))


def weight_shape_mismatch(task: Path) -> None:
    _config(task, lambda layers: layers[1].update(units=32))


def unknown_layer_class(task: Path) -> None:
    _config(task, lambda layers: layers[2].update(layer_name="LSTM"))


def unknown_layer_argument(task: Path) -> None:
    _config(task, lambda layers: layers[1].update(frobnicate=3))


def incomplete_grid(task: Path) -> None:
    _edit_json(task / "model_configs.json", lambda c: c.pop(DAMAGED))


def _predict_file(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def _all_predictions(missing: str | None = None) -> dict:
    return {f"model_{i}": float(i) for i in range(18) if str(i) != missing}


# name -> (what to damage in the task copy, extra CLI arguments, substrings the error line must hold)
TASK_CASES = {
    "corrupt_shard": (corrupt_shard, [], ["train/shard_1.tfrecord", "record 3", "checksum"]),
    "truncated_shard": (truncated_shard, [], ["train/shard_2.tfrecord", "truncated record 10"]),
    "truncated_weights": (truncated_weights, [], [f"model_{DAMAGED}/weights.hdf5", "truncated"]),
    "missing_weights": (missing_weights, [], [f"model_{DAMAGED}/weights.hdf5", "not found"]),
    "weight_count_mismatch": (weight_count_mismatch, [], [f"model_{DAMAGED}/weights.hdf5", "4 layers with weights",
                                                          "the layer list has 5"]),
    "weight_shape_mismatch": (weight_shape_mismatch, [], [f"model_{DAMAGED}/weights.hdf5", "'dense_1'",
                                                          "(64, 32)", "(64, 64)"]),
    "unknown_layer_class": (unknown_layer_class, [], [f"model_{DAMAGED}/config.json", "layer 2", "'LSTM'"]),
    "unknown_layer_argument": (unknown_layer_argument, [], [f"model_{DAMAGED}/config.json", "layer 1",
                                                            "'frobnicate'"]),
    "incomplete_grid": (incomplete_grid, [], ["model_configs.json", "incomplete",
                                              "num_units=64, num_layers=3, activation_function='tanh'"]),
    "unknown_measure": (None, ["-m", "no_such_measure"], ["'no_such_measure'"]),
}
PREDICT_CASES = {
    "predict_missing_models": ("missing.predict", json.dumps(_all_predictions(missing=DAMAGED)),
                               ["missing.predict", f"model_{DAMAGED}"]),
    "predict_nan": ("nan.predict", json.dumps(_all_predictions()).replace('"model_5": 5.0', '"model_5": NaN'),
                    ["nan.predict", "model_5", "nan"]),
}
CASES = sorted([*TASK_CASES, *PREDICT_CASES])


def _run_module(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300)


@pytest.fixture(scope="module")
def cli_results(toy_task_path, copy_tree, tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, list[str]]]:
    root = tmp_path_factory.mktemp("bad_input")
    commands: dict[str, tuple[list[str], list[str]]] = {}
    for name, (damage, extra, expected) in TASK_CASES.items():
        task = toy_task_path
        if damage is not None:
            task = copy_tree(toy_task_path, root / name / "toy")
            damage(task)
        measures = extra or ["-m", "weight_norm"]
        args = ["score", task, *measures, "-q", "--out", root / name / "predictions"]
        commands[name] = ([str(a) for a in args], expected)
    for name, (filename, text, expected) in PREDICT_CASES.items():
        (root / name).mkdir()
        args = ["evaluate", toy_task_path, _predict_file(root / name, filename, text)]
        commands[name] = ([str(a) for a in args], expected)

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_run_module, args) for name, (args, _) in commands.items()}
        return {name: (futures[name].result(), commands[name][1]) for name in commands}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_one_clear_line(cli_results, case):
    result, expected = cli_results[case]
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("pgdl-bench: error: "), line
    for fragment in expected:
        assert fragment in line, (fragment, line)
    assert result.returncode == EXIT_BAD_INPUT, (result.returncode, line)
