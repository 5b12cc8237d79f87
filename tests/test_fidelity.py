"""benchmark.perf.fidelity: the agreement numbers and the shim that calls the authors' code."""

import math

import numpy as np
import pytest
import scipy.stats

from benchmark.perf.fidelity import AUTHORS_CALLS, agreement, main, write_shim


def test_agreement_is_spearman_and_median_ratio_over_shared_finite_models():
    a = {"model_0": 1.0, "model_1": 2.0, "model_2": 3.0, "model_3": 4.5, "model_4": float("nan"), "model_5": 9.0}
    b = {"model_0": 2.0, "model_1": 1.0, "model_2": 6.0, "model_3": 9.0, "model_4": 1.0}
    got = agreement(a, b)
    assert got["models"] == 4  # model_4 is NaN on one side, model_5 missing on the other
    x, y = [1.0, 2.0, 3.0, 4.5], [2.0, 1.0, 6.0, 9.0]
    assert got["spearman"] == pytest.approx(scipy.stats.spearmanr(x, y).statistic)
    assert got["spearman"] == pytest.approx(1 - 6 * (1 + 1) / (4 * 15))  # ranks 1234 vs 2134: d^2 sum 2
    assert got["median_ratio"] == pytest.approx(np.median([0.5, 2.0, 0.5, 0.5]))
    assert math.isnan(agreement({"m": 1.0}, {"m": 2.0})["spearman"])
    # a zero on the authors' side has no ratio (a product DBI x (1 - LWM) is 0 when LWM is 1)
    zero = agreement({"a": 0.0, "b": 1.0, "c": 3.0}, {"a": 0.0, "b": 2.0, "c": 3.0})
    assert zero["median_ratio"] == pytest.approx(0.75) and zero["spearman"] == pytest.approx(1.0)


def test_shims_pick_the_measure_and_offset_seeds_only_when_asked(tmp_path):
    authors = tmp_path / "authors"
    authors.mkdir()
    for measure, kwargs in AUTHORS_CALLS.items():
        plain = (write_shim(authors, measure, None, tmp_path / "shims") / "complexity.py").read_text()
        seeded = (write_shim(authors, measure, 3, tmp_path / "shims") / "complexity.py").read_text()
        compile(plain, "complexity.py", "exec")
        assert f"KWARGS = {kwargs!r}" in plain and "SEED = None" in plain and "SEED = 3" in seeded
    assert AUTHORS_CALLS["mixup_margin"] == {"measure": "Margin", "augment": "mixup"}
    assert sorted(p.name for p in (tmp_path / "shims").iterdir())[:2] == ["authors_augment_margin",
                                                                          "authors_augment_margin_seed3"]


def test_fidelity_refuses_a_folder_without_complexity_py(tmp_path, capsys):
    assert main(["--submission", str(tmp_path), "--measure", "conv_margin", str(tmp_path)]) == 2
    assert "no complexity.py" in capsys.readouterr().err
