"""Squared distance of the weights from their initial values, using model.initial_weights."""

import numpy as np


def complexity(model, dataset):
    final = model.get_weights()
    initial = model.initial_weights
    return float(sum(np.sum(np.square(w.astype(np.float64) - w0.astype(np.float64)))
                     for w, w0 in zip(final, initial)))
