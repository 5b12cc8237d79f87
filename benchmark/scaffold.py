"""``pgdl-bench new-measure NAME``: write a ready-to-install measure plugin package.

The package (``pgdl-measure-<name>/``) has a ``pyproject.toml`` declaring the measure under the
``pgdl_bench.measures`` entry-point group, the measure itself (a worked example to edit: the
L1 norm of the weights), a test that checks it against a value computed by hand, and a README.
``pip install -e pgdl-measure-<name>`` makes ``pgdl-bench measures`` list it and ``pgdl-bench
score -m <name>`` score it, with no change to pgdl-bench.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

import measures
from task_loaders.errors import UsageError

NAME_RULE = re.compile(r"^[a-z][a-z0-9_]*$")

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "The {name} complexity measure for pgdl-bench"
requires-python = ">=3.10"
dependencies = ["pgdl-bench"]

[project.optional-dependencies]
test = ["pytest>=7"]

# pgdl-bench discovers measures declared here once the package is installed.
[project.entry-points."pgdl_bench.measures"]
{name} = "{package}:{name}"

[tool.setuptools]
packages = ["{package}"]
'''

MODULE = '''\
"""The {name} complexity measure, a pgdl-bench plugin.

Edit ``{name}`` below: it receives a ``measures.ModelView`` (its module docstring,
``measures.model_view``, is the whole contract: ``view.forward(x, layer, grad=...)`` batched
forward passes, ``view.sample(n)`` a class-stratified sample, ``view.activations(layer)`` cached
hidden representations, ``view.weight_layers()``, ``view.device``) and returns one float. Keyword
parameters with defaults become the measure's parameters (``pgdl-bench measures --json`` lists them;
``--param {name}.KEY=VALUE`` sets one).

Random draws: take them from ``view.rng()``, seeded by (task, repeat, measure) and the same for every
model of the task in a repeat (common random numbers: the models are compared on the same draws);
noise shaped like the model's parameters from ``view.torch_generator(parameter_name)``, identical for
models of the same architecture; ``view.rng(per_model=True)`` only if the draws must differ between
models. Never global random state.
"""

import numpy as np

from measures import measure


# sign: +1 when a larger value predicts a larger generalization gap, -1 when a smaller one does.
# stochastic defaults to True: the measure is rerun with every seed of ``--repeats K``. Declare
# stochastic=False only when the value depends on the weights and the full training split alone (no
# view.rng, no view.torch_generator, no view.sample), as this L1 norm does: it is then computed once.
@measure("{name}", source="your paper or idea here", sign=1, stochastic=False)
def {name}(view, include_biases: bool = True) -> float:
    """L1 norm of the trained weights (edit me); a larger value predicts a larger generalization gap.

    ``include_biases``: add the biases (and BatchNorm parameters) to the kernels.
    """
    total = 0.0
    for name, tensor in view.network.named_parameters():
        if include_biases or (name.endswith("weight") and tensor.dim() > 1):
            total += float(np.abs(tensor.detach().cpu().numpy().astype(np.float64)).sum())
    return total
'''

TEST = '''\
"""The measure on a network small enough to check by hand."""

import numpy as np
import pytest
import torch

import measures
from measures import ModelView
from task_loaders import build_network


def _view():
    net = build_network([{{"layer_name": "Dense", "units": 2}}], [3])
    kernel = np.array([[1.0, -2.0], [0.5, 0.0], [-1.5, 3.0]], dtype=np.float32)  # (in, out)
    bias = np.array([0.25, -0.75], dtype=np.float32)
    net.set_keras_weights([kernel, bias])
    x = torch.zeros(4, 3)
    y = torch.tensor([0, 1, 0, 1])
    return ModelView(net, (x, y), num_classes=2, model_id="0", task_name="test")


def test_{name}_by_hand():
    m = measures.get("{name}")
    assert m.sign == 1 and m.stochastic is False
    # |1| + |-2| + |0.5| + |0| + |-1.5| + |3| = 8, plus the biases |0.25| + |-0.75| = 1
    assert m(_view()) == pytest.approx(9.0)
    assert m(_view(), include_biases=False) == pytest.approx(8.0)


def test_{name}_is_discovered_through_its_entry_point():
    assert "{name}" in measures.available()
'''

README = '''\
# {dist}

The `{name}` complexity measure for pgdl-bench, discovered through the `pgdl_bench.measures`
entry point once installed.

```bash
pip install -e '.[test]'              # into pgdl-bench's environment (make run's: .venv/bin/pip); [test] adds pytest
pgdl-bench measures | grep {name}     # listed
pgdl-bench score -m {name}            # scored on the embedded zoos (or: pgdl-bench score TASK -m {name})
python -m pytest tests                # its test (with that environment's python)
```

Edit `{package}/__init__.py`; bump `version=` in `@measure(...)` when the definition changes, so
stored results are recomputed.
'''


def check_name(name: str) -> str:
    if not NAME_RULE.match(name) or keyword.iskeyword(name):
        raise UsageError(f"measure name {name!r}: use lower-case letters, digits and underscores, "
                         "starting with a letter (it becomes a Python function name)")
    return name


def new_measure(name: str, out: str | Path = ".") -> Path:
    """Write the plugin package for ``name`` under ``out``; returns its folder."""
    check_name(name)
    if name in measures.available():
        raise UsageError(f"measure name {name!r} is taken: {measures.get(name).origin} registers it; choose another")
    dist = "pgdl-measure-" + name.replace("_", "-")
    package = "pgdl_measure_" + name
    root = Path(out) / dist
    if root.exists():
        raise UsageError(f"{root}: already exists; choose another --out or remove it")
    fields = {"name": name, "dist": dist, "package": package}
    files = {
        root / "pyproject.toml": PYPROJECT,
        root / package / "__init__.py": MODULE,
        root / "tests" / f"test_{name}.py": TEST,
        root / "README.md": README,
    }
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**fields))
    return root
