"""Every built-in measure still gives the values recorded on main before the ModelView refactor.

The recorded values (``tests/data/measure_values.json``, see ``tests/reference_values.py``) cover all
64 models of the embedded zoos; the default run checks three models per zoo, ``-m slow`` all of them.
Equal to 1e-6 relative (faster algorithms round differently: silhouette by one matrix product, the
Jacobian by batched vector-Jacobian products), exactly 0 where the recorded value is 0.
"""

from __future__ import annotations

import json
import math

import pytest

from tests.reference_values import PATH, ZOOS, compared_measures, measure_values

RECORDED = json.loads(PATH.read_text())


def _check(zoo: str, path, model_ids: list[str]) -> None:
    names = RECORDED["measures"]
    assert sorted(compared_measures()) == sorted(names), "a built-in measure was added or removed: record again"
    now = measure_values(path, model_ids, names)
    wrong = [f"{zoo}/model_{m} {name}: recorded {RECORDED['zoos'][zoo][m][name]!r}, now {now[m][name]!r}"
             for m in model_ids for name in names
             if not math.isclose(now[m][name], RECORDED["zoos"][zoo][m][name], rel_tol=1e-6, abs_tol=0.0)]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("zoo", ZOOS)
def test_measures_give_the_recorded_values_on_three_models(zoo, embedded_zoo):
    ids = sorted(RECORDED["zoos"][zoo], key=int)
    _check(zoo, embedded_zoo(zoo), [ids[0], ids[len(ids) // 2], ids[-1]])


@pytest.mark.slow
@pytest.mark.parametrize("zoo", ZOOS)
def test_measures_give_the_recorded_values_on_every_model(zoo, embedded_zoo):
    _check(zoo, embedded_zoo(zoo), sorted(RECORDED["zoos"][zoo], key=int))
