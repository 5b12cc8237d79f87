"""The PGDL competition's winning representation-based measures (MEASURES.md section 2), as their authors' code computes them.

- ``dbi_first_conv``, ``label_mixup_accuracy`` and their product ``dbi_times_lwm``: Natekar & Sharma,
  "Representation Based Complexity Measures for Predicting Generalization in Deep Learning",
  arXiv 2012.02775 (winner of the NeurIPS 2020 PGDL competition); code: github.com/parthnatekar/pgdl,
  ``complexitymeasures.py`` (``complexityDB``, ``complexityMixup``) and ``complexity.py`` (the winning
  score DBI x (1 - LWM)).
- ``vpm_label_variation``: Lassance et al., "Ranking Deep Learning Generalization using Label Variation
  in Latent Geometry Graphs", arXiv 2011.12737 (3rd place); code: github.com/cadurosar/pgdl,
  ``VPM_1/complexity.py`` (``complexity``, ``generate_laplacian``, ``smoothness``).

docs/fidelity.md lists, per measure, every remaining difference from the authors' code and the
agreement measured against it. Shared conventions (layer rule, tf.data sampling, forward passes) are
in ``pgdl_conventions.py``; the pooling and the graph statistics in ``measures.stats.representations``
and ``measures.stats.graphs``.

Randomness. Reruns repeat exactly. The DBI samples are TensorFlow's own draws under the authors'
fixed seeds (``dbi_seeds``), the same for every model of a task; the product
``dbi_times_lwm`` uses the same draws (the LWM factor draws nothing), so it equals
``dbi_first_conv * (1 - label_mixup_accuracy)`` with the same parameters, bit for bit. VPM's authors
set no seed; the port draws what their code draws under the seed 0 (``vpm_seed``: their call
preceded by ``tf.random.set_seed(0)`` and ``np.random.seed(0)``), the same for every model of a task.

Forward passes run through ``view.forward`` without gradients, in float32 as the authors' Keras models; the final
arithmetic is float64.
Impossible cases (no Conv2D/Dense layer, fewer than 2 classes, too few samples) raise ``MeasureError``
naming the model.
"""

from __future__ import annotations

import numpy as np
import torch

from ...citations import LASSANCE, NATEKAR_CODE, NATEKAR_SHARMA
from ...model_view import ModelView
from ...registry import MeasureError, measure
from ...stats.graphs import label_variation
from ...stats.representations import pooled_features
from ...stats import tf_random
from .pgdl_conventions import authors_seed, resolve_layer

_NATEKAR = f"{NATEKAR_SHARMA} (PGDL winner; {NATEKAR_CODE})"


# -- shared helpers -------------------------------------------------------------------------------


def _positive(view: ModelView, name: str, value, minimum: int = 1) -> int:
    try:
        ok = not isinstance(value, bool) and int(value) == value and int(value) >= minimum
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise MeasureError(f"model {view.model_id}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _labels(view: ModelView) -> np.ndarray:
    return torch.as_tensor(view.y_train).detach().cpu().numpy().astype(np.int64)


# -- DBI of the first hidden representation ----------------------------------------------------------


def dbi_seeds(view: ModelView) -> tuple[int, int]:
    """The shuffle's seeds in ``complexityDB``: ``shuffle(5000, seed=1)`` right after ``DataAugmentor``
    set TensorFlow's global seed to 0 (another op seed in repeats >= 1, ``authors_seed``)."""
    return tf_random.op_seeds(0, authors_seed(view, "dbi_first_conv", 1))


def _dbi(view: ModelView, layer, pool: int, rounds: int, samples: int, buffer: int) -> float:
    from sklearn.metrics import davies_bouldin_score

    name = resolve_layer(view, layer)
    rounds = _positive(view, "rounds", rounds)
    samples = _positive(view, "samples", samples, minimum=3)
    pool = _positive(view, "pool", pool, minimum=0)
    buffer = _positive(view, "buffer", buffer)
    labels = _labels(view)
    if len(np.unique(labels)) < 2:
        raise MeasureError(f"model {view.model_id}: the Davies-Bouldin index needs at least 2 classes "
                           f"in the training set")
    draws = tf_random.shuffle_draws(np.arange(len(labels)), rounds * samples, buffer, *dbi_seeds(view))
    scores = []
    for r in range(rounds):
        index = draws[r * samples : (r + 1) * samples]
        y = labels[index]
        if not 2 <= len(np.unique(y)) < samples:  # davies_bouldin_score's own requirement
            continue  # skipped, not redrawn
        h = view.forward(view.x_train[torch.as_tensor(index)], name, batch_size=samples).cpu()
        scores.append(float(davies_bouldin_score(pooled_features(h, pool), y)))
    if not scores:
        raise MeasureError(f"model {view.model_id}: no round of {samples} samples held between 2 and "
                           f"{samples - 1} classes; the Davies-Bouldin index is undefined")
    return float(np.mean(np.asarray(scores, dtype=np.float64)))


@measure("dbi_first_conv", source=f"{_NATEKAR}; sklearn.metrics.davies_bouldin_score", sign=1, version="3")
def dbi_first_conv(view: ModelView, layer=None, pool=4, rounds=10, samples=120, buffer=5000) -> float:
    """Davies-Bouldin index of the true-label clusters of the first conv layer's max-pooled output (sign +1).

    Natekar & Sharma's ``complexityDB``: higher = classes worse separated already at the first layer,
    which their winning score reads as a larger generalization gap (sign +1).

    Parameters:
        layer: None = the first layer with ``filters`` or ``units`` (the first Conv2D, its built-in
            activation included; the authors take the first of layers 0-2 with ``strides``, the same
            layer on every model whose first layer is a Conv2D); or an index into
            ``view.layer_names``; or a layer name.
        pool: max pooling window and stride (default 4, as the authors); see ``pooled_features``
            for the floor rule and maps smaller than the window; 0 or 1 = no pooling. A 2-D
            (N, features) representation is never pooled.
        rounds: number of rounds averaged (default 10).
        samples: training samples per round (default 120: the authors' three batches of 40).
        buffer: the shuffle buffer (default 5000): the ``rounds * samples`` samples are the first
            draws of ``tf.data``'s ``repeat().shuffle(buffer)`` over the training set
            (``tf_random.shuffle_draws`` with TensorFlow's draws under the authors' seeds, ``dbi_seeds``),
            consecutive rounds taking consecutive draws, so a set smaller
            than the buffer is sampled nearly with replacement, as in the authors' code.

    Each round: ``sklearn.metrics.davies_bouldin_score`` of the flattened pooled features (float64)
    with the true labels as clusters (the authors' ``db`` is sklearn's, line for line). A round whose
    sample holds fewer than 2 classes, or as many classes as samples, is skipped, not redrawn (the
    authors' code stops with an error there); the value is the mean over the rounds kept.
    """
    return _dbi(view, layer, pool, rounds, samples, buffer)


# -- label-wise mixup accuracy -------------------------------------------------------------------------


def _lwm(view: ModelView, batches: int, per_class: int) -> float:
    batches = _positive(view, "batches", batches)
    per_class = _positive(view, "per_class", per_class, minimum=2)
    labels = _labels(view)
    classes = int(labels.max()) + 1
    size = classes * per_class
    order = np.arange(batches * size) % len(labels)  # dataset.repeat(-1).batch(size), unshuffled
    accuracy: list[list[float]] = [[] for _ in range(classes)]
    for b in range(batches):
        index = order[b * size : (b + 1) * size]
        mixed, owners = [], []
        for c in range(classes):
            members = index[labels[index] == c]
            if len(members) < 2:
                continue
            x = view.x_train[torch.as_tensor(members)]
            i, j = np.triu_indices(len(members), k=1)
            mixed.append(0.5 * (x[torch.as_tensor(i)] + x[torch.as_tensor(j)]))
            owners.append(np.full(len(i), c, dtype=np.int64))
        if not mixed:
            continue
        predicted = view.forward(torch.cat(mixed)).argmax(dim=1).cpu().numpy()
        owner = np.concatenate(owners)
        for c in np.unique(owner):
            accuracy[c].append(float(np.mean(predicted[owner == c] == c)))
    per_class_mean = [np.mean(a) for a in accuracy if a]
    if not per_class_mean:
        raise MeasureError(f"model {view.model_id}: label-wise mixup needs a batch holding 2 images of one class")
    return float(np.mean(per_class_mean))


@measure("label_mixup_accuracy", source=f"{_NATEKAR} (label-wise mixup, LWM)", sign=-1, version="2",
         stochastic=False)
def label_mixup_accuracy(view: ModelView, batches=10, per_class=10) -> float:
    """Accuracy on midpoints of same-class training pairs, label-wise mixup (sign -1: higher predicts a smaller gap).

    Natekar & Sharma's ``complexityMixup``, which draws nothing at random: C = 1 + the largest
    training label; the training set in its stored order is cut into ``batches`` (default 10)
    consecutive batches of C x ``per_class`` (default 10) images, starting over at its end when it is
    shorter (``dataset.repeat(-1).batch``). Within a batch, every pair i < j of images of class c is
    mixed at lambda = 0.5, 0.5 * (x_i + x_j), and counts as correct when the network's argmax is c
    (ties: the lowest class). The value is the mean over classes of the mean over batches of the
    per-batch accuracy. A batch with fewer than 2 images of a class gives that class no accuracy (the
    authors' code then drops the class when it has none, and yields NaN when it has one).
    """
    return _lwm(view, batches, per_class)


@measure("dbi_times_lwm", source=f"{_NATEKAR} (the winning score DBI x (1 - LWM))", sign=1, version="3")
def dbi_times_lwm(view: ModelView, layer=None, pool=4, rounds=10, samples=120, buffer=5000, batches=10,
                  per_class=10) -> float:
    """dbi_first_conv x (1 - label_mixup_accuracy), the PGDL winner's score (sign +1).

    Both factors are computed exactly as the standalone measures with the same parameters and the
    same random draws (``dbi_seeds``), so the value equals the product of the two
    registered measures, as ``complexity(model, dataset, program_dir)`` of the authors' submission.
    """
    dbi = _dbi(view, layer, pool, rounds, samples, buffer)
    lwm = _lwm(view, batches, per_class)
    return float(dbi * (1.0 - lwm))


# -- label variation on the latent geometry graph (VPM) ------------------------------------------------


def mixup_sample(view: ModelView, seed: int, n: int, alpha: float,
                 buffer: int = 100) -> tuple[torch.Tensor, np.ndarray]:
    """The mixed inputs and soft labels of ``vpm_label_variation``: (x_mix (m, ...), Y (m, C) float64).

    What the authors' ``complexity`` draws when its call starts with ``tf.random.set_seed(seed)`` and
    ``np.random.seed(seed)`` (their code sets neither: see ``vpm_seed``), draw for draw:

    * per = n // C training images of each class c = 0..C-1 (C = ``view.num_classes``): the first
      ``per`` elements of ``filter(label == c).repeat().shuffle(buffer)`` over the class's images in
      stored order, stacked class by class. Each class's shuffle is an eager op without a seed: its
      op seed is the (c+1)-th of ``tf_random.eager_op_seeds(seed, C)`` (a class without images
      gives no images; the authors' code would wait for one forever);
    * a permutation perm of the m stacked images, ``tf.random.shuffle(range(m))`` inside their
      ``tf.function`` (the graph's first random op: op seed 0; an image may be its own partner);
    * lambda_i ~ Beta(alpha, alpha) from numpy's legacy generator (``np.random.beta``), cast to float32.

    x_mix_i = lambda_i x_i + (1 - lambda_i) x_perm[i] and Y_i = lambda_i onehot(y_i) + (1 - lambda_i)
    onehot(y_perm[i]), both in float32 as the authors' code computes them.
    """
    labels = _labels(view)
    classes = view.num_classes
    per = n // classes
    class_seeds = tf_random.eager_op_seeds(seed, classes)
    parts = [tf_random.shuffle_draws(np.flatnonzero(labels == c), per, buffer, *tf_random.op_seeds(seed, class_seeds[c]))
             for c in range(classes) if per > 0 and (labels == c).any()]
    index = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    m = len(index)
    perm = tf_random.random_shuffle(m, *tf_random.op_seeds(seed, 0))
    lam = np.random.RandomState(seed).beta(alpha, alpha, size=m).astype(np.float32)
    x = view.x_train[torch.as_tensor(index)]
    weight = torch.as_tensor(lam, dtype=x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
    x_mix = weight * x + (1 - weight) * x[torch.as_tensor(perm)]
    onehot = np.eye(max(classes, int(labels.max()) + 1), dtype=np.float32)[labels[index]]
    y_mix = lam[:, None] * onehot + (np.float32(1.0) - lam[:, None]) * onehot[perm]
    return x_mix, y_mix.astype(np.float64)


def vpm_seed(view: ModelView) -> int:
    """The seed of ``mixup_sample`` in this repeat: 0 in repeat 0, then another per repeat (``authors_seed``).

    The authors' code sets no seed, so each of its runs draws anew. The port draws what it draws
    under the seed 0 (their call preceded by ``tf.random.set_seed(0)`` and ``np.random.seed(0)``:
    ``python -m scripts.perf.fidelity --seed 0``), the same for every model of the task, as the
    authors' fixed seeds give Natekar & Sharma's ports.
    """
    return authors_seed(view, "vpm_label_variation", 0)


@measure("vpm_label_variation", source=LASSANCE, sign=1, version="5")
def vpm_label_variation(view: ModelView, n=500, alpha=2.0, k=1, layer=None, buffer=100) -> float:
    """Label variation tr(Y^T L Y) / (4 n) of mixup samples on the 1-NN graph of the last layer's input (sign +1).

    Lassance et al.'s VPM (``VPM_1/complexity.py``): the more the labels change between latent
    neighbours, the less smooth the learned geometry, read as a larger gap (sign +1).

    Parameters:
        n: nominal sample count (default 500): n // C images of each of the C classes (see
            ``mixup_sample``), each mixed with a random partner; the trace is divided by 4 n.
        alpha: lambda ~ Beta(alpha, alpha) (default 2), labels (one-hot) mixed with the same lambda.
        k: nearest neighbours per node (default 1); see ``knn_adjacency`` (directed, binary).
        layer: None = the input of the network's last layer (the authors'
            ``model.layers[-1]._last_seen_input``: the flattened features of a VGG-like model, the
            final conv's output before global pooling in NiN / all-conv models; the inputs themselves
            for a one-layer network); or an index into ``view.layer_names``, or a layer name (its output).
        buffer: the per-class shuffle buffer (default 100, as the authors).

    The draws (``mixup_sample``) are what the authors' code draws under the seed ``vpm_seed``: in
    repeat 0 the seed 0, the same for every model of the task; another repeat draws another.

    L = I - D^-1/2 A D^-1/2 with D the out-degrees (``normalized_laplacian``); the value is clipped
    to [0, 1000] as the authors clip it.
    """
    n = _positive(view, "n", n, minimum=2)
    k = _positive(view, "k", k)
    buffer = _positive(view, "buffer", buffer)
    if not alpha > 0:
        raise MeasureError(f"model {view.model_id}: alpha must be > 0, got {alpha!r}")
    names = view.layer_names
    name = resolve_layer(view, layer) if layer is not None else (names[-2] if len(names) > 1 else None)
    x_mix, y_mix = mixup_sample(view, vpm_seed(view), n, alpha, buffer)
    if len(x_mix) <= k:
        raise MeasureError(f"model {view.model_id}: vpm_label_variation needs more than k={k} samples, "
                           f"has {len(x_mix)} ({n} // {view.num_classes} per class)")
    features = x_mix if name is None else view.forward(x_mix, name).cpu()
    try:
        return label_variation(features.reshape(len(features), -1).to(torch.float64).numpy(), y_mix, k, n)
    except ValueError as exc:
        raise MeasureError(f"model {view.model_id}: layer {name or 'input'}: {exc}") from None
