"""Keras-2 HDF5 weight files (``model.save_weights(..., save_format="h5")``), read and written with h5py.

Layout: root attribute ``layer_names``; one group per layer with attribute ``weight_names``
(``conv2d_3/kernel:0``, ...); each weight a dataset at ``group[weight_name]``. Layers without weights
are listed with an empty ``weight_names``. Layer names are auto-generated and differ between a
model's two files, so weights are matched to layers by order, never by name. Keras splits an
attribute larger than 64 KiB into ``name0``, ``name1``, ...; both forms are read.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from .errors import TaskFormatError


def _read_attribute(node, name: str) -> list[str]:
    if name in node.attrs:
        values = node.attrs[name]
    else:
        chunks = []
        i = 0
        while f"{name}{i}" in node.attrs:
            chunks.extend(node.attrs[f"{name}{i}"])
            i += 1
        if not i:
            return []
        values = chunks
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()]


def read_weight_file(path: str | os.PathLike) -> list[tuple[str, list[np.ndarray]]]:
    """[(layer name, [weight arrays in stored order])] for every layer listed in the file, in order."""
    path = Path(path)
    if not path.is_file():
        raise TaskFormatError(f"{path}: weight file not found")
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f and "layer_names" not in f.attrs else f
            if "layer_names" not in root.attrs and "layer_names0" not in root.attrs:
                raise TaskFormatError(f"{path}: not a Keras weight file (no 'layer_names' attribute)")
            layers = []
            for layer in _read_attribute(root, "layer_names"):
                if layer not in root:
                    raise TaskFormatError(f"{path}: layer '{layer}' is listed but has no group")
                group = root[layer]
                arrays = []
                for weight in _read_attribute(group, "weight_names"):
                    if weight not in group:
                        raise TaskFormatError(f"{path}: weight '{weight}' of layer '{layer}' is missing")
                    arrays.append(np.asarray(group[weight]))
                layers.append((layer, arrays))
            return layers
    except TaskFormatError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise TaskFormatError(f"{path}: unreadable or truncated HDF5 weight file ({exc})") from None


def read_weights(path: str | os.PathLike) -> list[np.ndarray]:
    """All weight arrays of a file in ``model.get_weights()`` order (layer order, then stored order)."""
    return [a for _, arrays in read_weight_file(path) for a in arrays]


def write_weight_file(
    path: str | os.PathLike,
    layers: list[tuple[str, list[tuple[str, np.ndarray]]]],
    keras_version: str = "2.4.0",
) -> None:
    """Write [(layer name, [(weight name, array)])] as Keras 2's ``save_weights`` does.

    Weight names are stored as ``<layer>/<weight>:0``; layers without weights are kept in
    ``layer_names`` with an empty ``weight_names``, so a reader matching by order sees every layer.
    """
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = np.bytes_("tensorflow")
        f.attrs["keras_version"] = np.bytes_(keras_version)
        f.attrs["layer_names"] = np.array([name.encode("utf-8") for name, _ in layers])
        for name, weights in layers:
            group = f.create_group(name)
            full_names = [f"{name}/{w}:0" for w, _ in weights]
            group.attrs["weight_names"] = np.array([n.encode("utf-8") for n in full_names], dtype="S")
            for full_name, (_, array) in zip(full_names, weights):
                group.create_dataset(full_name, data=np.asarray(array, dtype=np.float32))


def write_network_weights(path: str | os.PathLike, network) -> None:
    """Write a ``KerasSequential``'s current weights as a Keras-2 weight file."""
    layers = []
    for name, module in network.named_children():
        layers.append((name, list(zip(module.keras_weight_names(), module.get_keras_weights()))))
    write_weight_file(path, layers)


def load_network_weights(network, path: str | os.PathLike) -> None:
    """Load a Keras-2 weight file into a ``KerasSequential``, matching layers by order."""
    stored = [(layer, arrays) for layer, arrays in read_weight_file(path) if arrays]
    expected = network.weighted_layers()
    if len(stored) != len(expected):
        raise TaskFormatError(
            f"{path}: {len(stored)} layers with weights, the layer list has {len(expected)} "
            f"({', '.join(n for n, _ in expected)})"
        )
    for (stored_name, arrays), (name, module) in zip(stored, expected):
        shapes = module.keras_weight_shapes()
        got = [tuple(a.shape) for a in arrays]
        if got != [tuple(s) for s in shapes]:
            raise TaskFormatError(
                f"{path}: layer '{stored_name}' holds weights of shapes {got}, "
                f"layer '{name}' ({module.keras_class}) of the layer list needs {[tuple(s) for s in shapes]}"
            )
    for (_, arrays), (_, module) in zip(stored, expected):
        module.set_keras_weights([np.asarray(a, dtype=np.float32) for a in arrays])
