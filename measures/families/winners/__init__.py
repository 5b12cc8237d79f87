"""The winners family: the PGDL competition's top measures, as their authors' code computes them.

``representations``: Natekar & Sharma's DBI of the first layer, label-wise mixup accuracy and their
product, and Lassance et al.'s label variation (VPM); ``augmented``: Natekar & Sharma's margins on
plain, mixed and augmented inputs, and Aithal et al.'s robustness to augmentations;
``pgdl_conventions``: what their code shares (layer, sampling, seeds, forward passes).
"""

from . import augmented, representations  # noqa: F401
