"""The official CMI (against a plain-loop transcription and published values) and the Kendall scores."""

import itertools
import math

import numpy as np
import pytest

from scripts.perf.synthetic import synthetic_task
from tests.reference_cmi import models_from_task, reference_cmi
from benchmark.scores.scoring import (
    PredictionError,
    TaskArrays,
    conditional_mutual_information,
    evaluate,
    granulated_kendall,
    kendall_tau,
)
from task_loaders import load_task


@pytest.fixture(scope="module")
def toy(toy_task_path):
    return load_task(toy_task_path)


def test_published_reference_values_on_fixture(toy):
    # SCORING.md: the official scorer gives 1.0000000000032 for pred = gap, 0.583479 for -gap, 0 for a constant.
    gaps = {f"model_{m}": toy.gap(m) for m in toy.model_ids}
    assert conditional_mutual_information(gaps, toy).cmi == pytest.approx(1.0000000000032, abs=1e-13)
    neg = {k: -v for k, v in gaps.items()}
    assert conditional_mutual_information(neg, toy).cmi == pytest.approx(0.583479, abs=5e-7)
    const = {k: 3.0 for k in gaps}
    assert conditional_mutual_information(const, toy).cmi == 0.0


def test_matches_loop_transcription_on_fixture_with_ties(toy):
    models = models_from_task(toy)
    rng = np.random.default_rng(7)
    for trial in range(10):
        # few distinct values: many ties between predictions, as the official '-' rule must handle
        pred = {k: float(rng.integers(0, 3 + trial)) for k in models}
        expected, per_pair = reference_cmi(pred, models)
        result = conditional_mutual_information(pred, toy)
        assert abs(result.cmi - expected) <= 1e-9
        assert set(result.conditions) == set(per_pair)
        for cond, value in per_pair.items():
            assert abs(result.conditions[cond] - value) <= 1e-9


@pytest.mark.parametrize(
    "sizes,seed",
    [({"a": 2, "b": 3, "c": 2}, 0), ({"a": 3, "b": 3}, 1), ({"w": 2, "d": 2, "lr": 3, "bs": 2}, 2)],
)
def test_matches_loop_transcription_on_synthetic_grids(sizes, seed):
    arrays, models = synthetic_task(sizes, seed=seed, tie_levels=6)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        pred = {k: float(v) for k, v in zip(arrays.keys, rng.normal(size=len(arrays.keys)).round(1))}
        expected, per_pair = reference_cmi(pred, models)
        result = conditional_mutual_information(pred, arrays)
        assert abs(result.cmi - expected) <= 1e-9
        for cond, value in per_pair.items():
            assert abs(result.conditions[cond] - value) <= 1e-9


def test_cmi_by_hand_one_pair_per_slice():
    # Four models on a 2x2 grid conditioned on both hyperparameters: every slice (a_i, a_j, b_i, b_j)
    # holds exactly one ordered pair, so each 2x2 table is a single cell: MI = 0 in every slice, and
    # H = -log2(1 + 1e-12) < 0 (the official 1e-12): the score is 0 whatever the predictions.
    arrays, models = synthetic_task({"a": 2, "b": 2}, seed=3)
    pred = dict(zip(arrays.keys, arrays.gaps))
    assert conditional_mutual_information(pred, arrays).cmi == 0.0
    assert reference_cmi(pred, models)[0] == 0.0


def test_cmi_three_binary_hyperparameters_by_hand():
    # 8 models on a 2x2x2 grid, distinct gaps, prediction = gap. Conditioned on (a, b), a slice holds the
    # 4 pairs that vary in c. Same (a, b) cell: 2 self pairs (-,-) and the two cross pairs (+,+), (-,-):
    # table (+,+)=1, (-,-)=3, so MI = H = h(1/4). Different cells: 4 concordant pairs, MI = H again.
    # So mean MI / mean H is 1 up to the 1e-12 in the entropy, for every conditioning pair.
    arrays, _ = synthetic_task({"a": 2, "b": 2, "c": 2}, seed=5)
    pred = dict(zip(arrays.keys, arrays.gaps))
    result = conditional_mutual_information(pred, arrays)
    assert len(result.conditions) == 6
    for value in result.conditions.values():
        assert value == pytest.approx(1.0, abs=1e-11)
    # and reversing the prediction on a slice with table (+,+)=1, (-,-)=3 gives (+,-)... : not 1
    reversed_pred = {k: -v for k, v in pred.items()}
    assert conditional_mutual_information(reversed_pred, arrays).cmi < 1.0


def test_cmi_single_hyperparameter_conditions_on_it():
    # With one hyperparameter the conditioning set is that hyperparameter (SCORING.md needs two; this is
    # the documented extension): 3 models, each slice (h_i, h_j) holds one pair -> MI = 0 -> score 0.
    arrays = TaskArrays(keys=["model_0", "model_1", "model_2"], gaps=np.array([0.1, 0.3, 0.2]), names=["h"],
                        codes={"h": np.array([0, 1, 2])}, sizes={"h": 3})
    pred = {"model_0": 1.0, "model_1": 3.0, "model_2": 2.0}
    result = conditional_mutual_information(pred, arrays)
    assert list(result.conditions) == [("h",)]
    assert result.cmi == 0.0


def test_missing_and_nonfinite_predictions_are_refused(toy):
    gaps = {f"model_{m}": toy.gap(m) for m in toy.model_ids}
    partial = dict(list(gaps.items())[:-2])
    with pytest.raises(PredictionError, match="no prediction for 2 of 18 models: model_16, model_17"):
        conditional_mutual_information(partial, toy)
    bad = dict(gaps, model_3=float("nan"))
    with pytest.raises(PredictionError, match="model_3 has a non-finite prediction"):
        conditional_mutual_information(bad, toy)
    # bare ids are accepted as keys, as in model_configs.json
    bare = {k[len("model_"):]: v for k, v in gaps.items()}
    assert conditional_mutual_information(bare, toy).cmi == conditional_mutual_information(gaps, toy).cmi


def _tau_b_by_hand(x, y):
    concordant = discordant = ties_x = ties_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            ties_x += 1
        elif dy == 0:
            ties_y += 1
        elif dx == dy:
            concordant += 1
        else:
            discordant += 1
    return (concordant - discordant) / math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))


def test_kendall_tau_by_hand():
    x = np.array([1.0, 2.0, 2.0, 5.0, 3.0, 0.5])
    y = np.array([0.1, 0.4, 0.3, 0.2, 0.9, 0.0])
    assert kendall_tau(x, y) == pytest.approx(_tau_b_by_hand(x, y), abs=1e-12)


def test_granulated_kendall_by_hand():
    # 2x2 grid: along 'a' the measure orders the gap correctly in both cells (tau = +1 each), along 'b'
    # it orders it wrongly in both (tau = -1 each): psi = (1 + -1) / 2 = 0.
    arrays = TaskArrays(
        keys=[f"model_{i}" for i in range(4)],
        gaps=np.array([0.1, 0.2, 0.3, 0.4]),  # (a, b) = (0,0), (0,1), (1,0), (1,1)
        names=["a", "b"],
        codes={"a": np.array([0, 0, 1, 1]), "b": np.array([0, 1, 0, 1])},
        sizes={"a": 2, "b": 2},
    )
    pred = np.array([2.0, 1.0, 4.0, 3.0])
    result = granulated_kendall(pred, arrays)
    assert result == {"a": 1.0, "b": -1.0, "psi": 0.0}


def test_evaluate_reports_everything(toy):
    gaps = {f"model_{m}": toy.gap(m) for m in toy.model_ids}
    scores = evaluate(gaps, toy)
    assert scores["num_models"] == 18
    assert scores["kendall_tau"] == pytest.approx(1.0)
    assert scores["granulated_kendall"]["psi"] == pytest.approx(1.0)
    assert len(scores["conditions"]) == 6 and "num_units|num_layers" in scores["conditions"]
    assert scores["cmi"] == min(scores["conditions"].values())


def test_cell_kendall_taus_equal_scipy_on_random_cells():
    """The vectorized per-cell tau-b of the granulated Kendall coefficient against scipy, cell by cell,
    with ties in both variables, cells of one model and cells where tau is undefined."""
    from scipy.stats import kendalltau

    from benchmark.scores.scoring import cell_kendall_taus

    rng = np.random.default_rng(4)
    cells = rng.integers(0, 12, 90)
    pred = rng.integers(0, 5, 90).astype(float)
    gaps = rng.integers(0, 4, 90) / 10
    pred[cells == 3] = 1.0  # all values equal in one cell: undefined
    taus = cell_kendall_taus(pred, gaps, cells)
    for c in range(12):
        members = cells == c
        expected = kendalltau(pred[members], gaps[members]).statistic if members.sum() >= 2 else float("nan")
        if np.isnan(expected):
            assert np.isnan(taus[c])
        else:
            assert taus[c] == pytest.approx(expected, abs=1e-12)
