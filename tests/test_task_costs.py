"""The per-task cost script's pieces: multiply-adds counted by hand, the tasks' shapes, scaling, the cap."""

from __future__ import annotations

import time

import pytest

import measures

from scripts.perf.task_costs import (
    SCALED,
    TASKS,
    TaskShape,
    fully_convolutional,
    largest,
    markdown_table,
    multiply_adds,
    scaling,
    synthetic_model,
    time_cell,
)
from task_loaders import build_network, parameter_count
from task_loaders.architectures import vgg


def test_multiply_adds_by_hand():
    layers = vgg((8, 8, 1), 3, width=2, depth=1, dense_units=4)
    # conv 1->2 and 2->2 (3x3, same) on 8x8, pool to 4x4x2 = 32, dense 32->4, dense 4->3
    expected = 64 * 2 * 9 * 1 + 64 * 2 * 9 * 2 + 32 * 4 + 4 * 3
    assert multiply_adds(build_network(layers, (8, 8, 1)), (8, 8, 1)) == expected


def test_task_shapes():
    layers = fully_convolutional((32, 32, 3), 10, 2.5e6, 4, batchnorm=False)
    assert parameter_count(layers, (32, 32, 3)) == pytest.approx(2.5e6, rel=0.01)
    assert sum(1 for layer in layers if layer["layer_name"] == "Conv2D") == 5  # 4 convs + the 1x1 classifier
    label, layers, macs = largest(TASKS["task9"])
    assert label == "NiN 12 conv layers x 512"
    net = build_network(layers, (32, 32, 3))
    assert net(__import__("torch").zeros(2, 3, 32, 32)).shape == (2, 10)
    assert {t.num_classes for t in TASKS.values()} == {10, 102, 37}
    assert TASKS["task7"].input_shape == (32, 32, 4) and TASKS["task8"].input_shape == (28, 28, 1)


def test_scaling_and_the_cap():
    assert scaling("weight_norm") == ({}, 1)
    assert scaling("dead_units") == ({}, 40)  # the view's sample: 1000 -> 25
    assert scaling("fragmentation") == ({"num_triplets": 1, "resolution": 12}, 80)  # 20 x 24^2 / (1 x 12^2)
    assert all(factor > 1 for _, factor in SCALED.values())
    tiny = TaskShape("tiny", (8, 8, 1), 3, 4, "test", "a tiny VGG", {"x": vgg((8, 8, 1), 3, width=2, depth=1)})
    model = synthetic_model(tiny, tiny.grid["x"])
    assert model.network(model.x).argmax(1).tolist() == model.y.tolist()  # it fits its own labels
    cell = time_cell(model, "dead_units", cap=60)
    # both numbers are rounded when stored (0.001 s and 0.1 s): equal up to that rounding
    assert cell["status"] == "ok" and abs(cell["cpu_s_per_model"] - cell["cpu_s_scaled"] * 40) <= 0.05 + 40 * 0.0005
    @measures.measure("test_busy_loop", source="tests")
    def busy(view):
        """Spins for 5 CPU seconds."""
        start = time.process_time()
        while time.process_time() - start < 5:
            pass
        return 0.0

    try:
        over = time_cell(model, "test_busy_loop", cap=0.2)
    finally:
        measures.registry._REGISTRY.pop("test_busy_loop", None)
    assert over["status"] == "not measured: over 0.2 CPU s even scaled down by 40" and over["cpu_s_per_model"] is None
    assert over["cpu_s_scaled"] < 1  # stopped at the cap, not after 5 s
    table = markdown_table({"tasks": {"tiny": {"architecture": "x", "params": 2e6, "multiply_adds": 3e9, "models": 4,
                                               "measures": {"dead_units": cell, "test_busy_loop": over}}}})
    assert "| `test_busy_loop` | n.m. |" in table and f">= {cell['cpu_s_per_model']:.0f}" in table
