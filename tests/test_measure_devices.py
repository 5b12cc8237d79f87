"""No measure creates a tensor on a device of its own choosing.

Every call of a torch factory (``torch.zeros``, ``rand``, ``arange``, ...) in ``measures/`` must say
``device=``, and not as a literal naming an accelerator: tensors follow ``view.device`` (or a tensor
or generator already there). ``*_like`` factories inherit their argument's device and are fine.
"""

from __future__ import annotations

import ast
from pathlib import Path

import torch

from measures import ModelView
from task_loaders import build_network
from task_loaders.architectures import vgg

MEASURES = Path(__file__).parents[1] / "measures"
FACTORIES = {"zeros", "ones", "empty", "full", "rand", "randn", "randint", "randperm", "arange", "linspace",
             "logspace", "eye", "tensor", "normal", "bernoulli", "tril_indices", "triu_indices"}


def factory_calls_without_device(source: str, filename: str = "<source>") -> list[str]:
    """``file:line torch.NAME(...)`` for each factory call that lacks ``device=`` or hard-codes an accelerator."""
    wrong = []
    for node in ast.walk(ast.parse(source, filename)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"
                and node.func.attr in FACTORIES):
            continue
        device = next((k.value for k in node.keywords if k.arg == "device"), None)
        literal = isinstance(device, ast.Constant) and str(device.value).split(":")[0] in ("cuda", "mps")
        if device is None or literal:
            wrong.append(f"{filename}:{node.lineno} torch.{node.func.attr}(...)")
    return wrong


def test_every_torch_factory_call_in_the_measures_names_a_device():
    wrong = [w for path in sorted(MEASURES.rglob("*.py"))
             for w in factory_calls_without_device(path.read_text(), path.relative_to(MEASURES).as_posix())]
    assert not wrong, "tensors created without the view's device:\n" + "\n".join(wrong)


def test_the_walker_catches_what_it_should():
    assert factory_calls_without_device("import torch\nx = torch.zeros(3)\n") == ["<source>:2 torch.zeros(...)"]
    assert factory_calls_without_device("torch.arange(3, device='cuda:1')") == ["<source>:1 torch.arange(...)"]
    assert factory_calls_without_device("torch.randn(3, device=view.device)\ntorch.zeros_like(x)") == []
    assert factory_calls_without_device("torch.eye(2, dtype=d, device=g.device)") == []


def test_the_view_moves_the_network_and_every_batch_to_its_device():
    """On torch's "meta" device (shapes only, no data): what runs there must have been moved there."""
    net = build_network(vgg((8, 8, 1), 10, width=4, depth=1), (8, 8, 1))
    view = ModelView(net, (torch.rand(20, 1, 8, 8), torch.arange(20) % 10), device="meta")
    assert all(p.device.type == "meta" for p in view.network.parameters())
    logits = view.forward(view.x_train, batch_size=7)  # CPU inputs, moved batch by batch
    hidden = view.forward(view.x_train, "middle")
    assert logits.device.type == "meta" and logits.shape == (20, 10)
    assert hidden.device.type == "meta" and hidden.shape[0] == 20
    assert view.activations("last").device.type == "meta"
