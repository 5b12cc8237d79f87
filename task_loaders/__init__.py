"""Where models and data come from: the PGDL on-disk format (read and write) and in-house zoos.

Knows nothing of measures or scores.
"""

from .errors import TaskFormatError, UsageError
from .json_files import read_json, read_regular_file
from .datasets import Dataset, DatasetNotFound, load_cifar10, load_dataset, load_digits, load_fashion_mnist
from .keras_layers import SUPPORTED_LAYERS, KerasSequential, build_network, parameter_count
from .keras_weights import load_network_weights, read_weights, write_network_weights
from .model_configs import Grid, ModelRecord, canonical, read_model_configs, write_model_configs
from .task import LoadedModel, Task, load_task
from .tfrecord import read_split, write_split
from .writer import ExportedModel, write_model, write_task

__all__ = [
    "TaskFormatError", "UsageError", "read_json", "read_regular_file", "SUPPORTED_LAYERS", "KerasSequential", "build_network", "parameter_count",
    "load_network_weights", "read_weights", "write_network_weights", "Grid", "ModelRecord", "canonical",
    "read_model_configs", "write_model_configs", "LoadedModel", "Task", "load_task",
    "read_split", "write_split", "ExportedModel", "write_model", "write_task",
    "Dataset", "DatasetNotFound", "load_dataset", "load_digits", "load_fashion_mnist", "load_cifar10",
]
