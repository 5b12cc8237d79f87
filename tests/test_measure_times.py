"""scripts.perf.measure_times times the catalogue as a score run spends it, and its tables add up."""

from __future__ import annotations

import json

import pytest

import measures
from scripts.perf import measure_times as mt


def test_measures_share_one_pass_and_give_their_fresh_view_values():
    shared, times = mt.time_measures(["element_sparsity", "inverse_margin", "weight_norm"], train=40)
    assert shared["error"] is None and shared["value"] == 1.0  # every hidden layer and the logits: one pass
    for name, entry in times.items():
        assert entry["error"] is None
        assert entry["value"] == measures.get(name)(mt.task1_view(40)), name
        assert entry["cpu_seconds"] >= 0 and entry["seconds"] >= 0


def _entry(s: float) -> dict:
    return {"seconds": 10 * s, "cpu_seconds": s, "value": 1.0, "error": None}


def test_the_total_adds_the_shared_pass_to_the_measures():
    before = {"measures": {"a": _entry(5.0), "b": _entry(3.0)}}
    after = {"measures": {"a": _entry(2.0), "b": {"seconds": 4.0, "value": 1.0, "error": None}},
             mt.SHARED_PASS: _entry(1.5)}
    assert mt.total_seconds(before) == 8.0
    assert mt.total_seconds(after) == pytest.approx(7.5)  # 2 + 4 (wall: no CPU seconds recorded) + 1.5
    lines = mt.comparison_table(before, after, slowest=1).splitlines()
    assert lines[2] == "| whole catalogue (2 measures) | 8.0 | 7.5 |"
    assert lines[3] == "| `a` | 5.0 | 2.0 |" and lines[4] == "| `b` | 3.0 | 4.0 |"
    assert lines[-1] == "| the forward pass the measures of a model share (in the total) |  | 1.5 |"
    table = mt.markdown_table(after["measures"], {}, after[mt.SHARED_PASS]).splitlines()
    assert table[-1] == "| (the forward pass the measures of a model share) |  | 1.5 |"


def test_retiming_some_measures_keeps_the_others_and_records_the_pass(tmp_path, monkeypatch):
    (tmp_path / "measure_times.json").write_text(json.dumps({"measures": {"weight_norm": _entry(9.0),
                                                                          "vc_bound": _entry(7.0)}}))
    monkeypatch.setattr(mt, "time_measures", lambda names, train, progress: (_entry(1.0), {"weight_norm": _entry(0.5)}))
    assert mt.main(["-m", "weight_norm", "--out", str(tmp_path), "--note", "a test"]) == 0
    record = json.loads((tmp_path / "measure_times.json").read_text())
    assert record["measures"]["vc_bound"] == _entry(7.0)
    assert record["measures"]["weight_norm"] == {**_entry(0.5), "view": "shared"}
    assert record[mt.SHARED_PASS] == _entry(1.0) and record["notes"] == ["a test"]
    assert mt.total_seconds(record) == 8.5
