"""The PGDL competition's winning representation-based measures (MEASURES.md section 2).

- ``dbi_first_conv``, ``label_mixup_accuracy`` and their product ``dbi_times_lwm``: Natekar & Sharma,
  "Representation Based Complexity Measures for Predicting Generalization in Deep Learning",
  arXiv 2012.02775 (winner of the NeurIPS 2020 PGDL competition): the Davies-Bouldin index (DBI) of
  the first conv layer's class clusters, and the accuracy on label-wise mixup (LWM) midpoints; the
  winning score is DBI x (1 - LWM).
- ``vpm_label_variation``: Lassance et al., "Ranking Deep Learning
  Generalization using Label Variation in Latent Geometry Graphs", arXiv 2011.12737 (3rd place):
  how much the (mixed) labels vary along a nearest-neighbour graph of the penultimate features.

Randomness. Every draw comes from ``view.rng(measure_name)``, so reruns repeat exactly. The product
``dbi_times_lwm`` draws its two factors from ``view.rng("dbi_first_conv")`` and
``view.rng("label_mixup_accuracy")``: it equals ``dbi_first_conv * (1 - label_mixup_accuracy)``
computed with the same parameters, bit for bit.

Forward passes run under ``torch.inference_mode()`` in batches of 256; the final arithmetic is float64.
Impossible cases (no hidden layer, fewer than 2 classes, too few samples) raise ``MeasureError``
naming the model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .model_view import ModelView
from .registry import MeasureError, measure

_NATEKAR = ("Natekar & Sharma, 'Representation Based Complexity Measures for Predicting Generalization "
            "in Deep Learning', arXiv 2012.02775 (PGDL winner)")
_LASSANCE = ("Lassance et al., 'Ranking Deep Learning Generalization using Label Variation in Latent "
             "Geometry Graphs', arXiv 2011.12737 (PGDL 3rd place)")
_BATCH = 256  # forward-pass batch size (results do not depend on it beyond float rounding)
_WEIGHT_LAYERS = ("Conv2D", "Dense")


# -- shared helpers -------------------------------------------------------------------------------


def _positive(view: ModelView, name: str, value, minimum: int = 1) -> int:
    try:
        ok = not isinstance(value, bool) and int(value) == value and int(value) >= minimum
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise MeasureError(f"model {view.model_id}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@torch.inference_mode()
def _forward(view: ModelView, x: torch.Tensor, layer: str | None = None) -> torch.Tensor:
    """Outputs of ``layer`` (the logits when None) for inputs ``x``, in batches of ``_BATCH``."""
    parts = []
    for start in range(0, len(x), _BATCH):
        chunk = x[start : start + _BATCH]
        parts.append(view.logits(chunk) if layer is None else view.forward_to(layer, chunk))
    return torch.cat(parts)


def _labels(view: ModelView) -> np.ndarray:
    return torch.as_tensor(view.y_train).detach().cpu().numpy().astype(np.int64)


def _resolve_layer(view: ModelView, layer) -> str:
    """``layer``: None (``view.hidden_layers[0]``), an index into ``view.hidden_layers`` or a layer name."""
    hidden = view.hidden_layers
    if layer is None or (isinstance(layer, int) and not isinstance(layer, bool)):
        if not hidden:
            raise MeasureError(f"model {view.model_id}: the network has no hidden layer "
                               f"(layers: {', '.join(view.layer_names)})")
        index = 0 if layer is None else layer
        if not -len(hidden) <= index < len(hidden):
            raise MeasureError(f"model {view.model_id}: hidden-layer index {index} is out of range "
                               f"(hidden layers: {', '.join(hidden)})")
        return hidden[index]
    if isinstance(layer, str):
        if layer not in view.layer_names:
            raise MeasureError(f"model {view.model_id}: no layer '{layer}' (layers: {', '.join(view.layer_names)})")
        return layer
    raise MeasureError(f"model {view.model_id}: layer must be None, an index into hidden_layers or a layer name; "
                       f"got {layer!r}")


# -- DBI of the first hidden representation ----------------------------------------------------------


def pooled_features(h, pool: int = 4) -> np.ndarray:
    """A representation max-pooled ``pool`` x ``pool`` (stride ``pool``) and flattened, float64 (N, F).

    ``h``: (N, C, H, W) conv maps or (N, F) dense features (never pooled). Pooling is "valid"
    (floor): a map of side s gives floor(s / pool) outputs and the last s mod pool rows/columns are
    dropped, as Keras' ``MaxPooling2D(pool_size=pool)`` does; along a side shorter than ``pool`` the
    window is the whole side (one output). ``pool`` 0 or 1: no pooling, just flattening.
    """
    h = torch.as_tensor(h).detach().cpu()
    if h.dim() == 4 and pool > 1:
        kh, kw = min(pool, h.shape[2]), min(pool, h.shape[3])
        h = F.max_pool2d(h, kernel_size=(kh, kw), stride=(kh, kw))
    return h.reshape(len(h), -1).to(torch.float64).numpy()


def _dbi(view: ModelView, rng: np.random.Generator, layer, pool: int, rounds: int, samples: int) -> float:
    from sklearn.metrics import davies_bouldin_score

    name = _resolve_layer(view, layer)
    rounds = _positive(view, "rounds", rounds)
    samples = _positive(view, "samples", samples, minimum=3)
    pool = _positive(view, "pool", pool, minimum=0)
    labels = _labels(view)
    if len(np.unique(labels)) < 2:
        raise MeasureError(f"model {view.model_id}: the Davies-Bouldin index needs at least 2 classes "
                           f"in the training set")
    size = min(samples, len(labels))
    scores = []
    for _ in range(rounds):
        index = np.sort(rng.choice(len(labels), size=size, replace=False))
        y = labels[index]
        if not 2 <= len(np.unique(y)) < size:  # davies_bouldin_score's own requirement
            continue  # skipped, not redrawn
        h = _forward(view, view.x_train[torch.as_tensor(index)], name)
        scores.append(float(davies_bouldin_score(pooled_features(h, pool), y)))
    if not scores:
        raise MeasureError(f"model {view.model_id}: no round of {size} samples held between 2 and {size - 1} "
                           f"classes; the Davies-Bouldin index is undefined")
    return float(np.mean(np.asarray(scores, dtype=np.float64)))


@measure("dbi_first_conv", source=f"{_NATEKAR}; sklearn.metrics.davies_bouldin_score", sign=1)
def dbi_first_conv(view: ModelView, layer=None, pool=4, rounds=10, samples=120) -> float:
    """Davies-Bouldin index of the true-label clusters of the first conv layer's max-pooled output (sign +1).

    Natekar & Sharma's DBI: higher = classes worse separated already at the first layer, which their
    winning score reads as a larger generalization gap (sign +1).

    Parameters:
        layer: None = ``view.hidden_layers[0]`` (in PGDL models the first Conv2D with its relu, the
            layer the winners used; in the in-house models the Activation after the first
            conv (+BatchNorm)); or an index into ``view.hidden_layers``; or a layer name.
        pool: max pooling window and stride (default 4, as the winners); see ``pooled_features``
            for the floor rule and maps smaller than the window; 0 or 1 = no pooling. A 2-D
            (N, features) representation is never pooled.
        rounds: number of rounds averaged (default 10).
        samples: training samples per round (default 120), drawn uniformly without replacement from
            the whole training set (all of it when smaller), independently in each round.

    Each round: ``sklearn.metrics.davies_bouldin_score`` of the flattened pooled features (float64)
    with the true labels as clusters (sklearn's conventions: 0 when all within-class distances or
    all centroid distances are 0; a pair of coinciding centroids contributes 0). A round whose sample
    holds fewer than 2 classes, or as many classes as samples (sklearn refuses both), is skipped,
    not redrawn; the value is the mean over the rounds kept (MeasureError when none is kept).
    """
    return _dbi(view, view.rng("dbi_first_conv"), layer, pool, rounds, samples)


# -- label-wise mixup accuracy -------------------------------------------------------------------------


def _lwm(view: ModelView, rng: np.random.Generator, batches: int, per_class: int) -> float:
    batches = _positive(view, "batches", batches)
    per_class = _positive(view, "per_class", per_class, minimum=2)
    labels = _labels(view)
    classes = np.unique(labels)
    members = [np.flatnonzero(labels == c) for c in classes]
    correct = total = 0
    for _ in range(batches):
        mixed, targets = [], []
        for c, group in zip(classes, members):
            picked = np.sort(rng.choice(group, size=min(per_class, len(group)), replace=False))
            if len(picked) < 2:
                continue
            x = view.x_train[torch.as_tensor(picked)]
            i, j = np.triu_indices(len(picked), k=1)
            mixed.append(0.5 * (x[torch.as_tensor(i)] + x[torch.as_tensor(j)]))
            targets.append(np.full(len(i), c, dtype=np.int64))
        if not mixed:
            continue
        predicted = _forward(view, torch.cat(mixed)).argmax(dim=1).numpy()
        target = np.concatenate(targets)
        correct += int((predicted == target).sum())
        total += len(target)
    if total == 0:
        raise MeasureError(f"model {view.model_id}: label-wise mixup needs a class with at least 2 training images")
    return float(np.float64(correct) / np.float64(total))


@measure("label_mixup_accuracy", source=f"{_NATEKAR} (label-wise mixup, LWM)", sign=-1)
def label_mixup_accuracy(view: ModelView, batches=10, per_class=10) -> float:
    """Accuracy on midpoints of same-class training pairs, label-wise mixup (sign -1: higher predicts a smaller gap).

    Natekar & Sharma's LWM. Each of ``batches`` batches (default 10) holds, for every class present
    in the training set, ``per_class`` (default 10) of its training images drawn uniformly without
    replacement (all of them when the class has fewer; batches are drawn independently). Within a
    batch, every pair i < j of images of the same class is mixed at lambda = 0.5, 0.5 * (x_i + x_j),
    and counts as correct when the network's argmax prediction is that class (ties go to the lowest
    class index, torch.argmax). The value is pooled: correct mixed images / all mixed images over all
    batches (with equal class sizes >= per_class every batch has the same number of pairs, so this
    equals the mean of the per-batch accuracies). Classes with a single image contribute no pair.
    """
    return _lwm(view, view.rng("label_mixup_accuracy"), batches, per_class)


@measure("dbi_times_lwm", source=f"{_NATEKAR} (the winning score DBI x (1 - LWM))", sign=1)
def dbi_times_lwm(view: ModelView, layer=None, pool=4, rounds=10, samples=120, batches=10,
                  per_class=10) -> float:
    """dbi_first_conv x (1 - label_mixup_accuracy), the PGDL winner's score (sign +1).

    Both factors are computed exactly as the standalone measures with the same parameters and the
    same random draws (``view.rng("dbi_first_conv")``, ``view.rng("label_mixup_accuracy")``), so the
    value equals the product of the two registered measures.
    """
    dbi = _dbi(view, view.rng("dbi_first_conv"), layer, pool, rounds, samples)
    lwm = _lwm(view, view.rng("label_mixup_accuracy"), batches, per_class)
    return float(dbi * (1.0 - lwm))


# -- label variation on the latent geometry graph (VPM) ------------------------------------------------


def knn_adjacency(features, k: int = 1) -> np.ndarray:
    """Symmetrized binary k-nearest-neighbour adjacency (N, N) of the rows of ``features`` (float64).

    Euclidean distances, self excluded; node i links to its ``k`` nearest rows (ties: the lower row
    index first); A = max(A, A^T). Distances come from the Gram matrix (|a|^2 + |b|^2 - 2 a.b).
    """
    f = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    n = len(f)
    if not 1 <= k < n:
        raise ValueError(f"knn_adjacency needs 1 <= k < number of rows ({n}), got k={k}")
    sq = np.einsum("ij,ij->i", f, f)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (f @ f.T), 0.0)
    np.fill_diagonal(d2, np.inf)
    neighbours = np.argsort(d2, axis=1, kind="stable")[:, :k]
    a = np.zeros((n, n), dtype=np.float64)
    a[np.repeat(np.arange(n), k), neighbours.ravel()] = 1.0
    return np.maximum(a, a.T)


def normalized_laplacian(adjacency) -> np.ndarray:
    """L = I - D^-1/2 A D^-1/2 (float64); an isolated node (degree 0) keeps a 0 row and column."""
    a = np.asarray(adjacency, dtype=np.float64)
    degree = a.sum(axis=1)
    scale = np.zeros_like(degree)
    scale[degree > 0] = 1.0 / np.sqrt(degree[degree > 0])
    return np.diag((degree > 0).astype(np.float64)) - scale[:, None] * a * scale[None, :]


def label_variation(features, soft_labels, k: int = 1) -> float:
    """trace(Y^T L Y) / N on the k-NN graph of the L2-normalized ``features`` rows (float64).

    ``features``: (N, ...) flattened to (N, F); rows scaled to unit L2 norm (an all-zero row stays
    zero); ``soft_labels`` Y: (N, C); L: ``normalized_laplacian(knn_adjacency(rows, k))``. Equal to
    1/(2N) sum_ij A_ij |Y_i / sqrt(d_i) - Y_j / sqrt(d_j)|^2: 0 when neighbours carry the same labels.
    """
    f = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    y = np.asarray(soft_labels, dtype=np.float64)
    if y.ndim != 2 or len(y) != len(f):
        raise ValueError(f"soft_labels must be (N, C) with N = {len(f)}, got shape {y.shape}")
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    f = f / np.where(norms > 0, norms, 1.0)
    lap = normalized_laplacian(knn_adjacency(f, k))
    return float(np.sum(y * (lap @ y)) / len(f))


def mixup_sample(view: ModelView, rng: np.random.Generator, n: int, alpha: float) -> tuple[torch.Tensor, np.ndarray]:
    """The mixed inputs and soft labels of ``vpm_label_variation``: (x_mix (m, ...), Y (m, C) float64).

    m = min(n, training set) samples drawn uniformly without replacement (sorted by index); partner
    of sample i = sample perm[i], perm a uniform random permutation of the m samples (a sample may be
    its own partner); lambda_i ~ Beta(alpha, alpha); x_mix_i = lambda_i x_i + (1 - lambda_i) x_perm[i]
    and Y_i = lambda_i onehot(y_i) + (1 - lambda_i) onehot(y_perm[i]), C = max(num_classes, max label + 1).
    Drawn in this order: the samples, the permutation, the lambdas.
    """
    labels = _labels(view)
    m = min(n, len(labels))
    index = np.sort(rng.choice(len(labels), size=m, replace=False))
    perm = rng.permutation(m)
    lam = rng.beta(alpha, alpha, size=m)
    x = view.x_train[torch.as_tensor(index)]
    weight = torch.as_tensor(lam, dtype=x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
    x_mix = weight * x + (1 - weight) * x[torch.as_tensor(perm)]
    onehot = np.eye(max(view.num_classes, int(labels.max()) + 1), dtype=np.float64)[labels[index]]
    y_mix = lam[:, None] * onehot + (1.0 - lam[:, None]) * onehot[perm]
    return x_mix, y_mix


def _penultimate_layer(view: ModelView, layer) -> str:
    """The layer whose output feeds the classifier (the last Conv2D/Dense), or ``layer`` when given."""
    if layer is not None:
        return _resolve_layer(view, layer)
    kinds = [type(module).__name__ for module in view.network.children()]
    weighted = [i for i, kind in enumerate(kinds) if kind in _WEIGHT_LAYERS]
    if len(weighted) < 2:
        raise MeasureError(f"model {view.model_id}: the network has no hidden layer before its classifier "
                           f"(layers: {', '.join(view.layer_names)})")
    return view.layer_names[weighted[-1] - 1]


@measure("vpm_label_variation", source=_LASSANCE, sign=1)
def vpm_label_variation(view: ModelView, n=500, alpha=2.0, k=1, layer=None) -> float:
    """Label variation tr(Y^T L Y) / n of mixup samples on the k-NN graph of penultimate features (sign +1).

    Lassance et al.'s VPM: the more the labels change between latent neighbours, the less smooth the
    learned geometry, read as a larger gap (sign +1).

    Parameters:
        n: number of training samples drawn at random (default 500; the whole set when smaller),
            each mixed with a random partner (see ``mixup_sample``).
        alpha: lambda ~ Beta(alpha, alpha) (default 2), labels (one-hot) mixed with the same lambda.
        k: nearest neighbours per node (default 1), Euclidean on the L2-normalized features, self
            excluded, adjacency symmetrized to max(A, A^T) (binary).
        layer: None = the penultimate representation, the input of the network's last Conv2D/Dense
            (the final Dense of VGG-like models; the final 1x1 conv before global pooling in NiN /
            all-conv models), i.e. the output of the layer just before it, flattened; or an index into
            ``view.hidden_layers``, or a layer name.

    L = I - D^-1/2 A D^-1/2 (normalized Laplacian). Dividing the trace by the number of samples
    (so the value is a mean per node and does not grow with ``n``) is our choice; the paper leaves
    the normalization open.
    """
    name = _penultimate_layer(view, layer)
    n = _positive(view, "n", n, minimum=2)
    k = _positive(view, "k", k)
    if not alpha > 0:
        raise MeasureError(f"model {view.model_id}: alpha must be > 0, got {alpha!r}")
    if min(n, view.num_train) <= k:
        raise MeasureError(f"model {view.model_id}: vpm_label_variation needs more than k={k} samples, "
                           f"has {min(n, view.num_train)}")
    x_mix, y_mix = mixup_sample(view, view.rng("vpm_label_variation"), n, alpha)
    features = _forward(view, x_mix, name)
    return label_variation(features.reshape(len(features), -1).to(torch.float64).numpy(), y_mix, k)
