"""scripts.perf.fidelity: the agreement numbers and the shim that calls the authors' code."""

import importlib.util
import math

import numpy as np
import pytest
import scipy.stats

from scripts.perf.fidelity import AUTHORS_CALLS, agreement, main, write_shim


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


def test_param_runs_the_port_with_it_and_the_authors_with_the_call_that_computes_it(tmp_path, monkeypatch, capsys):
    import scripts.perf.fidelity as fidelity

    authors = tmp_path / "authors"
    authors.mkdir()
    (authors / "complexity.py").write_text("def complexity(model, dataset, shallow=True):\n    return 0.0\n")
    # Chuang et al.'s two submissions default to shallow=True (kV-Margin) and shallow=False (kV-GN-Margin)
    assert fidelity.authors_kwargs("kv_margin", {"layer": "deep"}) == {"shallow": False}
    assert fidelity.authors_kwargs("kv_gn_margin", {"layer": "shallow"}) == {"shallow": True}
    assert fidelity.authors_kwargs("kv_gn_margin") == {}
    with pytest.raises(SystemExit, match="known: layer=shallow, layer=deep"):
        fidelity.authors_kwargs("kv_margin", {"layer": "first"})
    seen = []

    def score(task, measures, submissions, workers, params=()):
        seen.append((measures, [folder.name for folder in submissions], list(params)))
        return {name: {"m0": 1.0, "m1": 2.0, "m2": 3.0} for name in measures}

    monkeypatch.setattr(fidelity, "_score", score)
    row = fidelity.run(authors, "kv_margin", ["zoo"], False, 1, tmp_path / "shims", params={"layer": "deep"})["zoo"]
    assert seen == [(["kv_margin", "submission:authors_kv_margin_layer-deep"], ["authors_kv_margin_layer-deep"],
                     ["kv_margin.layer=deep"])]
    assert row["native_vs_authors"]["spearman"] == pytest.approx(1.0)
    shim = (tmp_path / "shims" / "authors_kv_margin_layer-deep" / "complexity.py").read_text()
    assert "KWARGS = {'shallow': False}" in shim
    assert main(["--submission", str(authors), "--measure", "conv_margin", "--param", "layer=deep", "zoo"]) == 2
    assert "no call of the authors' code computes conv_margin" in capsys.readouterr().err


def test_fidelity_refuses_a_folder_without_complexity_py(tmp_path, capsys):
    assert main(["--submission", str(tmp_path), "--measure", "conv_margin", str(tmp_path)]) == 2
    assert "no complexity.py" in capsys.readouterr().err


def test_seed_adds_a_seeded_run_of_the_authors_code_and_compares_the_port_with_it(tmp_path, monkeypatch):
    import scripts.perf.fidelity as fidelity

    authors = tmp_path / "authors"
    authors.mkdir()
    calls = []
    columns = {"vpm_label_variation": {"m0": 1.0, "m1": 2.0, "m2": 3.0},
               "submission:authors_vpm_label_variation": {"m0": 3.0, "m1": 1.0, "m2": 2.0},
               "submission:authors_vpm_label_variation_seed1": {"m0": 2.0, "m1": 1.0, "m2": 3.0},
               "submission:authors_vpm_label_variation_seed0": {"m0": 0.5, "m1": 1.0, "m2": 1.5}}

    def score(task, measures, submissions, workers, params=()):
        calls.append(([folder.name for folder in submissions], measures))
        return {name: columns[name] for name in measures}

    monkeypatch.setattr(fidelity, "_score", score)
    row = fidelity.run(authors, "vpm_label_variation", ["zoo"], True, 1, tmp_path / "shims", seed=0)["zoo"]
    assert calls[0][0] == ["authors_vpm_label_variation", "authors_vpm_label_variation_seed1",
                           "authors_vpm_label_variation_seed0"]
    assert row["native_vs_authors_seeded"] == {"seed": 0, "models": 3, "spearman": pytest.approx(1.0),
                                               "median_ratio": pytest.approx(2.0)}
    assert row["native_vs_authors"]["spearman"] == pytest.approx(-0.5)
    assert row["authors_run_to_run"]["spearman"] == pytest.approx(0.5)
    seeded = (tmp_path / "shims" / "authors_vpm_label_variation_seed0" / "complexity.py").read_text()
    assert "SEED = 0" in seeded
    # --seed 1 with --repeat reuses the repeat's run
    calls.clear()
    row = fidelity.run(authors, "vpm_label_variation", ["zoo"], True, 1, tmp_path / "shims", seed=1)["zoo"]
    assert calls[0][0] == ["authors_vpm_label_variation", "authors_vpm_label_variation_seed1"]
    assert row["native_vs_authors_seeded"]["spearman"] == pytest.approx(0.5)


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow")
def test_a_seeded_call_gives_the_generators_back_as_it_found_them(tmp_path):
    """A seeded shim and the unseeded one run in the same worker: the seeded call must not seed the next one."""
    tf = pytest.importorskip("tensorflow")
    from tensorflow.python.eager import context

    authors = tmp_path / "authors"
    authors.mkdir()
    (authors / "complexity.py").write_text(
        "import numpy as np\nimport tensorflow as tf\nfrom tensorflow.python.eager import context\n\n"
        "def complexity(model, dataset):\n"
        "    return context.global_seed(), float(np.random.random_sample())\n")
    folder = write_shim(authors, "vpm_label_variation", 5, tmp_path / "shims")
    spec = importlib.util.spec_from_file_location("seeded_shim", folder / "complexity.py")
    shim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shim)
    tf.random.set_seed(None)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    inside = shim.complexity(None, None, str(folder))
    assert inside == (5, pytest.approx(np.random.RandomState(5).random_sample()))  # seeded inside the call
    assert context.global_seed() is None  # unseeded again after it
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    tf.random.set_seed(7)
    context.internal_operation_seed()
    expected = context.context()._rng.getstate()
    shim.complexity(None, None, str(folder))
    assert context.global_seed() == 7 and context.context()._rng.getstate() == expected  # a set seed stays as it was
    assert tf.random.set_seed is shim._tf_seed and np.random.seed is shim._np_seed
    tf.random.set_seed(None)
