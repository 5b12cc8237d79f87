"""Run unmodified PGDL competition submissions (``complexity.py``) under TensorFlow.

A submission folder holds ``complexity.py`` defining ``complexity(model, dataset)`` or
``complexity(model, dataset, program_dir)`` that returns a float (PGDL_FORMAT.md, last section).
``register_submission(DIR)`` registers it as the measure ``submission:<folder name>``; it then runs
like any other measure (one worker per task, results in the store, a per-model time budget of 300 s
by default, resuming), and each call gets what the competition gave:

* ``model``: the starting kit's model (``ingestion_program/model_utils.py``,
  ``model_def_to_keras_sequential``): a ``tf.keras.Sequential`` subclass whose call accepts
  ``tape=`` (it watches the input on that ``GradientTape``), built from the model's ``config.json``
  layer list, every layer an instance of a subclass of its Keras class that stores its latest input
  as ``_last_seen_input`` (each class instantiated with its keyword arguments, integral floats cast
  to int), built on ``[None] + input_shape`` (the kit builds on a batch of 0, which Keras 3 would
  keep as a fixed batch size), with the model's weights, and the attribute ``initial_weights``
  (numpy arrays in ``get_weights()`` order) when ``weights_init.hdf5`` exists.
  The weights come from this benchmark's own reader (the same arrays the native measures see), and
  only the layer classes this benchmark accepts are instantiated (the task folder is untrusted).
* ``dataset``: the training split, unbatched and unshuffled, as a ``tf.data.Dataset`` of
  ``(inputs float32 NHWC, label int32)``.
* ``program_dir``: the submission folder, passed as the keyword ``program_dir=`` when ``complexity``
  has a parameter of that name, as the kit's ingestion decides (``inspect.getfullargspec``); any
  other third parameter keeps its default (kV-Margin's ``shallow=``, for one).

TensorFlow's C++ logging is kept to errors (``TF_CPP_MIN_LOG_LEVEL=2``) unless the user's
environment sets the variable: ``submission_environment`` sets it (and ``KERAS_BACKEND``) when a
submission is registered, so the worker processes inherit it, and again in the worker before the
submission's ``complexity.py``, which imports TensorFlow itself, is imported. TensorFlow 2.21 still
prints one line (oneDNN's notice, ``port.cc``) before it reads the variable.

TensorFlow is an optional extra (``pip install -e '.[tf]'``: ``tensorflow-cpu``); it is imported in
the worker the first time a submission runs, with the Keras 3 TensorFlow backend. Registering a
submission checks that it is installed, so a missing TensorFlow stops the command before any model
is tried. Submissions were written for numpy 1.18: the worker that imports one gets numpy's removed
aliases back (``np.int``, ``np.float``, ``np.bool``, ``np.object``, ``np.complex``, ``np.str``,
``np.long``, ``np.unicode``: the Python builtins they always stood for). The submission's
module version is a hash of the folder's ``.py`` files, so an edited submission is recomputed.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path

import numpy as np

from measures import MeasureError, ModelView
from measures.registry import Measure, add

from .module_files import import_file

PREFIX = "submission:"
TF_HINT = "TensorFlow is needed to run PGDL submissions: pip install -e '.[tf]' (tensorflow-cpu==2.21.0)"


class SubmissionError(MeasureError):
    """A submission folder that cannot be run; the message names it."""


def submission_dir(path: str | os.PathLike) -> Path:
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise SubmissionError(f"{folder}: submission folder not found")
    if not (folder / "complexity.py").is_file():
        raise SubmissionError(f"{folder}: no complexity.py in this submission folder")
    return folder


def _version(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(folder.glob("*.py")):
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def register_submission(path: str | os.PathLike) -> str:
    """Register the submission in ``path`` as the measure ``submission:<name>``; returns the name.

    Fails (``SubmissionError``) when TensorFlow is not installed, before any model is tried.
    """
    folder = submission_dir(path)
    if importlib.util.find_spec("tensorflow") is None:
        raise SubmissionError(f"{folder}: {TF_HINT}")
    submission_environment()  # before any worker starts: they inherit it
    name = PREFIX + folder.name

    def run(view: ModelView) -> float:
        return run_submission(folder, view)

    add(Measure(
        name=name,
        fn=run,
        description=f"PGDL submission {folder.name} (complexity.py, run under TensorFlow)",
        source=str(folder),
        sign=1,
        version=_version(folder),
        params={},
        origin=f"{PREFIX}{folder}",  # registering the same folder again replaces the entry; another clashes
    ))
    return name


# -- TensorFlow side ---------------------------------------------------------------------------


_TF_THREADS_SET = False  # TensorFlow's thread pools can be sized once per process
TF_LOG_LEVEL = "2"  # TensorFlow's C++ logging: errors only (0 all, 1 no INFO, 2 no WARNING either, 3 none)


def submission_environment() -> None:
    """What TensorFlow reads when it is imported: the Keras 3 TensorFlow backend, and C++ logging kept to
    errors unless the user set ``TF_CPP_MIN_LOG_LEVEL``. Must run before anything imports TensorFlow."""
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)


def tensorflow(threads: int | None = None):
    """Import TensorFlow with the Keras 3 TensorFlow backend, or fail with how to install it."""
    keras = sys.modules.get("keras")
    if keras is not None:  # tf.keras is this module, whichever backend it was imported with
        backend = keras.backend.backend()
        if backend != "tensorflow":
            raise SubmissionError(f"keras is already loaded with the {backend!r} backend in this process; "
                                  "run submissions in worker processes (--backend local)")
    submission_environment()
    try:
        import tensorflow as tf
    except ImportError:
        raise SubmissionError(TF_HINT) from None
    global _TF_THREADS_SET
    if threads and not _TF_THREADS_SET:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass  # already initialized in this process
        _TF_THREADS_SET = True
    return tf


LEGACY_NUMPY_ALIASES = {"int": "int", "float": "float", "bool": "bool", "object": "object",
                        "complex": "complex", "str": "str", "long": "int", "unicode": "str"}


def legacy_numpy_aliases() -> None:
    """Give numpy back the aliases numpy 1.24 removed (``np.int`` is ``int``, ...), as submissions expect."""
    for alias, builtin in LEGACY_NUMPY_ALIASES.items():
        if alias not in np.__dict__:
            setattr(np, alias, getattr(builtins, builtin))


_WRAPPED: dict[type, type] = {}


def _recording(tf, cls: type) -> type:
    """The starting kit's ``wrap_layer``: a subclass of ``cls`` whose call stores its input as ``_last_seen_input``."""
    if cls not in _WRAPPED:
        def __call__(self, x, *args, **kwargs):
            self._last_seen_input = x
            return cls.__call__(self, x, *args, **kwargs)

        _WRAPPED[cls] = type(cls.__name__, (cls,), {"__call__": __call__, "__module__": __name__})
    return _WRAPPED[cls]


def _kit_sequential(tf) -> type:
    """The starting kit's ``Sequential``: ``model(x, tape=tape)`` watches ``x`` on ``tape`` first."""
    if tf.keras.Sequential not in _WRAPPED:
        def __call__(self, x, tape=False, *args, **kwargs):
            if tape:
                tape.watch(x)
            return tf.keras.Sequential.__call__(self, x, *args, **kwargs)

        _WRAPPED[tf.keras.Sequential] = type("Sequential", (tf.keras.Sequential,),
                                             {"__call__": __call__, "__module__": __name__})
    return _WRAPPED[tf.keras.Sequential]


def keras_model(tf, network, initial_network=None, where: str = "model"):
    """The starting kit's model of a ``KerasSequential``'s layer list (see the module docstring), weights loaded."""
    layers = []
    for index, spec in enumerate(network.layer_config):
        kwargs = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in spec.items()}
        cls = kwargs.pop("layer_name")
        try:
            layers.append(_recording(tf, getattr(tf.keras.layers, cls))(**kwargs))
        except Exception as exc:
            raise SubmissionError(f"{where}: layer {index} ({cls}): tf.keras refuses it: {exc}") from None
    model = _kit_sequential(tf)(layers)
    model.build([None, *network.input_shape])
    model.set_weights(network.get_keras_weights())
    if initial_network is not None:
        model.initial_weights = [np.array(w) for w in initial_network.get_keras_weights()]
    return model


def training_dataset(tf, view: ModelView):
    """The training split as the competition gave it: unbatched, unshuffled, NHWC float32, int32 labels."""
    x = view.x_train.detach().cpu().numpy().astype(np.float32)
    if x.ndim == 4:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    y = view.y_train.detach().cpu().numpy().astype(np.int32)
    return tf.data.Dataset.from_tensor_slices((x, y))


_MODULES: dict[Path, object] = {}


def load_complexity(folder: Path):
    """The submission's ``complexity`` function (its folder is put on ``sys.path`` for its imports)."""
    if folder not in _MODULES:
        submission_environment()  # complexity.py imports TensorFlow itself: the environment comes first
        legacy_numpy_aliases()
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        try:
            module = import_file(folder / "complexity.py", prefix="pgdl_submission_")
        except MeasureError:
            raise
        except Exception as exc:
            raise SubmissionError(f"{folder / 'complexity.py'}: cannot import ({type(exc).__name__}: {exc})") from None
        fn = getattr(module, "complexity", None)
        if not callable(fn):
            raise SubmissionError(f"{folder / 'complexity.py'}: defines no function complexity(model, dataset)")
        _MODULES[folder] = fn
    return _MODULES[folder]


def call_complexity(fn, model, dataset, folder: Path):
    """``fn(model, dataset, program_dir=folder)`` when ``fn`` has a parameter named ``program_dir``, else
    ``fn(model, dataset)``: the kit's ingestion rule, so a third parameter of another name keeps its default."""
    try:
        named = "program_dir" in inspect.getfullargspec(fn).args
    except TypeError:
        named = False
    return fn(model, dataset, program_dir=str(folder)) if named else fn(model, dataset)


def run_submission(folder: Path, view: ModelView) -> float:
    """Call the submission's ``complexity`` on one model, as the competition did."""
    import torch

    fn = load_complexity(folder)
    tf = tensorflow(threads=torch.get_num_threads())
    model = keras_model(tf, view.network, view.initial_network, where=f"model {view.model_id}")
    dataset = training_dataset(tf, view)
    with contextlib.redirect_stdout(sys.stderr):  # submissions print; stdout may carry --json output
        value = call_complexity(fn, model, dataset, folder)
    try:
        return float(value.numpy() if hasattr(value, "numpy") else value)
    except (TypeError, ValueError):
        raise SubmissionError(f"{folder / 'complexity.py'}: complexity() returned {value!r}, not a number") from None
