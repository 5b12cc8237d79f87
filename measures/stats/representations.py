"""Per-layer statistics of hidden representations: sparsity and clustering.

After Potgieter, Mouton & Davel, "Impact of Batch Normalization on Convolutional Network
Representations" (arXiv 2501.14441), who compare the sparsity and the clustering of post-ReLU
representations of networks trained with and without BatchNorm, and Haasbroek & Davel (SACAIR 2020),
who call the set of samples that switch a node on an "implicit cluster".

Every statistic is a small pure function of one representation ``h``: a tensor or array of shape
(N, C, *spatial) (NCHW for conv layers) or (N, F) for dense layers, holding one layer's outputs
for N samples. A "channel" is one of the C feature maps (for (N, F) a channel is a unit). The
clustering statistics also take the samples' true ``labels`` (N,).

``measures.families.per_layer`` computes them for the layers of a model (``layer_statistics``,
``layer_average``); the sparsity and clustering families register them as measures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F


# -- inputs ---------------------------------------------------------------------------------------


def _representation(h, name: str = "h") -> torch.Tensor:
    """``h`` as a CPU tensor of shape (N, C, *spatial), validated: numeric, non-empty, finite."""
    if isinstance(h, np.ndarray):
        if h.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold real numbers, got dtype {h.dtype}")
        h = torch.from_numpy(np.ascontiguousarray(h))
    elif not isinstance(h, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(h).__name__}")
    h = h.detach().cpu()
    if h.is_complex():
        raise ValueError(f"{name} must hold real numbers, got dtype {h.dtype}")
    if not h.is_floating_point():
        h = h.to(torch.float64)
    if h.ndim < 2:
        raise ValueError(f"{name} must have shape (N, C, ...) or (N, F), got shape {tuple(h.shape)}")
    if h.shape[0] == 0 or math.prod(h.shape[1:]) == 0:
        raise ValueError(f"{name} is empty: shape {tuple(h.shape)}")
    if not _finite(h):
        raise ValueError(f"{name} contains NaN or infinite values")
    return h


def _finite(h: torch.Tensor) -> bool:
    """No NaN and no infinity in ``h``: its smallest and largest entries are finite (one pass, no mask;
    NaN propagates into both)."""
    low, high = torch.aminmax(h)
    return bool(torch.isfinite(low) & torch.isfinite(high))


def _labels(labels, n: int, num_classes: int | None = None) -> np.ndarray:
    """``labels`` as an int64 array of length ``n`` with values in [0, num_classes)."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(f"labels must have shape ({n},) to match the representation, got {labels.shape}")
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be non-negative class indices")
    if num_classes is not None and labels.size and labels.max() >= num_classes:
        raise ValueError(f"label {labels.max()} is out of range for num_classes={num_classes}")
    return labels


# -- sparsity -------------------------------------------------------------------------------------


def _zero_maps(h: torch.Tensor) -> torch.Tensor:
    """(N, C) bool: channel c of sample i is exactly zero over its whole feature map (its smallest and
    largest entries are 0; ``h`` is finite)."""
    low, high = torch.aminmax(h.reshape(h.shape[0], h.shape[1], -1), dim=2)
    return (low == 0) & (high == 0)


def channel_sparsity(h) -> float:
    """Fraction of channels whose whole feature map is exactly zero, averaged over samples.

    Potgieter, Mouton & Davel (arXiv 2501.14441) report "average channel sparsity" per layer.
    For each sample, count the channels c with h[i, c, ...] == 0 everywhere and divide by C; then
    average over the N samples. For (N, F) a channel is a unit, so this equals ``element_sparsity``.
    Range [0, 1]; 1 means every channel is off for every sample. Exact zeros only (post-ReLU).
    """
    h = _representation(h)
    return float(_zero_maps(h).double().mean())


def element_sparsity(h) -> float:
    """Fraction of exactly-zero activations in ``h`` (all samples, channels and positions).

    The "number of non-zero elements" reading of sparsity (arXiv 2501.14441), as a fraction of
    zeros so that larger means sparser. Range [0, 1].
    """
    h = _representation(h)
    return float(h.numel() - torch.count_nonzero(h)) / h.numel()


def dead_units(h) -> float:
    """Fraction of channels that are exactly zero for every sample (and every position).

    A channel dead on the sample: its whole feature map is zero for all N samples (arXiv 2501.14441,
    "dead units"). Range [0, 1]. Depends on the sample: a larger sample can only revive channels.
    """
    h = _representation(h)
    return float(_zero_maps(h).all(dim=0).double().mean())


def hoyer_sparsity(h) -> float:
    """Hoyer's sparsity (sqrt(n) - |x|_1 / |x|_2) / (sqrt(n) - 1), per sample, averaged over samples.

    Hoyer, "Non-negative matrix factorization with sparseness constraints", JMLR 5 (2004). x is one
    sample's flattened representation (n = C*H*W elements, absolute values). It is 1 for a vector
    with a single non-zero element and 0 for a vector whose elements all have the same magnitude.
    Convention: an all-zero sample (no active element at all) scores 1, the sparsest possible,
    consistent with ``element_sparsity`` = 1 for it. Needs n >= 2. Computed in float64.
    """
    h = _representation(h)
    flat = h.reshape(h.shape[0], -1)
    n = flat.shape[1]
    if n < 2:
        raise ValueError("Hoyer's measure needs at least 2 elements per sample")
    l1 = torch.linalg.vector_norm(flat, ord=1, dim=1, dtype=torch.float64)
    l2 = torch.linalg.vector_norm(flat, ord=2, dim=1, dtype=torch.float64)
    root = math.sqrt(n)
    ratio = torch.where(l2 > 0, l1 / torch.where(l2 > 0, l2, torch.ones_like(l2)), torch.ones_like(l2))
    per_sample = ((root - ratio) / (root - 1)).clamp(0.0, 1.0)  # clamp: rounding at the ends only
    return float(per_sample.mean())


# -- implicit clusters (per-channel sample clusters) ----------------------------------------------

_REDUCTIONS = ("max", "mean", "none")


def channel_activity(h, *, reduce: str = "max", threshold: float = 0.0) -> torch.Tensor:
    """(N, U) bool: which samples switch each unit on.

    With ``reduce`` "max" or "mean" a unit is a channel (U = C): a sample switches channel c on when
    that reduction of its feature map h[i, c, ...] exceeds ``threshold`` (strictly). The default,
    max > 0, means "not an all-zero feature map" for post-ReLU activations: the complement of what
    ``channel_sparsity`` counts. With ``reduce="none"`` every channel at every spatial position is its
    own unit (U = C x H x W, in ``h[i].reshape(-1)`` order): the conv layer's actual ReLU neurons,
    each switched on when its own activation exceeds ``threshold``. For (N, F) each unit is a
    channel and ``reduce`` makes no difference.
    """
    h = _representation(h)
    if reduce not in _REDUCTIONS:
        raise ValueError(f"reduce must be one of {_REDUCTIONS}, got {reduce!r}")
    if reduce == "none":
        return h.reshape(h.shape[0], -1) > float(threshold)
    maps = h.reshape(h.shape[0], h.shape[1], -1)
    pooled = maps.amax(dim=2) if reduce == "max" else maps.mean(dim=2, dtype=torch.float64)
    return pooled > float(threshold)


def implicit_clusters(h, labels, *, num_classes: int | None = None, reduce: str = "max",
                      threshold: float = 0.0) -> dict[str, np.ndarray]:
    """Per-channel implicit clusters: their size, class purity and class perplexity.

    Haasbroek & Davel (SACAIR 2020): the set S_c of samples that switch channel c on (see
    ``channel_activity`` for ``reduce`` and ``threshold``) is an implicit cluster. Returns arrays
    of length C:

    - ``size``: |S_c| / N, the fraction of samples in the cluster;
    - ``purity``: max_k p_k, where p_k is the fraction of S_c with class k;
    - ``perplexity``: 2 ** H, with H = -sum_k p_k log2 p_k (0 log 0 = 0): the effective number of
      classes in the cluster, 1 (one class) to the number of classes (uniform);
    - ``live``: bool, S_c is not empty. Purity and perplexity are NaN for dead channels.

    With ``reduce="none"`` the units are the channels at each spatial position (arrays of length
    C x H x W).

    Class fractions are not corrected for class imbalance of the sample (``ModelView`` samples are
    stratified, so the classes are as balanced as the data allows).
    """
    h = _representation(h)
    y = _labels(labels, h.shape[0], num_classes)
    active = channel_activity(h, reduce=reduce, threshold=threshold).numpy()  # (N, U) bool
    k = int(num_classes) if num_classes is not None else int(y.max()) + 1
    # (U, K): members of each class in each cluster; per-class sums keep memory at the bool matrix
    counts = np.stack([active[y == c].sum(axis=0) for c in range(k)], axis=1).astype(np.float64)
    members = counts.sum(axis=1)
    live = members > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        p = counts / members[:, None]
        purity = np.where(live, p.max(axis=1), np.nan)
        entropy = -np.sum(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0), axis=1)
    perplexity = np.where(live, np.exp2(entropy), np.nan)
    return {"size": members / h.shape[0], "purity": purity, "perplexity": perplexity, "live": live}


def _live_mean(values: np.ndarray, live: np.ndarray) -> float:
    """Mean over live channels; NaN when every channel is dead (nothing to average)."""
    return float(np.mean(values[live])) if live.any() else float("nan")


def cluster_size(h, labels, **options) -> float:
    """Mean implicit-cluster size over live channels (dead channels excluded; see ``dead_units``).

    See ``implicit_clusters`` for the definition and ``options``. NaN when every channel is dead.
    """
    c = implicit_clusters(h, labels, **options)
    return _live_mean(c["size"], c["live"])


def cluster_purity(h, labels, **options) -> float:
    """Mean class purity of the implicit clusters of live channels (1 = every channel one class).

    See ``implicit_clusters``; unweighted mean over channels, dead channels excluded (NaN when all
    are dead).
    """
    c = implicit_clusters(h, labels, **options)
    return _live_mean(c["purity"], c["live"])


def cluster_perplexity(h, labels, **options) -> float:
    """Mean class perplexity 2**entropy of the implicit clusters of live channels (1 = pure).

    See ``implicit_clusters``; unweighted mean over channels, dead channels excluded (NaN when all
    are dead).
    """
    c = implicit_clusters(h, labels, **options)
    return _live_mean(c["perplexity"], c["live"])


# -- label-based cluster quality ------------------------------------------------------------------

_POOLS = (None, "avg", "max")


def representation_features(h, *, pool: str | None = None, pca: int | None = None,
                            random_state: int = 0) -> np.ndarray:
    """The (N, D) float32 feature matrix the cluster-quality indices are computed on.

    ``pool``: None flattens h[i] (D = C*H*W); "avg" or "max" first pool each feature map over its
    spatial positions (D = C); an (N, F) representation has nothing to pool and is kept as is.
    ``pca``: None, or keep that many principal components (PCA fitted on these N samples, centred,
    not whitened; clamped to min(N, D); ``random_state`` fixes sklearn's randomized solver).
    """
    h = _representation(h)
    if pool not in _POOLS:
        raise ValueError(f"pool must be one of {_POOLS}, got {pool!r}")
    if pool is not None and h.ndim > 2:
        dims = tuple(range(2, h.ndim))
        h = h.mean(dim=dims) if pool == "avg" else h.amax(dim=dims)
    x = h.reshape(h.shape[0], -1).to(torch.float32).numpy()
    if pca is not None:
        if isinstance(pca, bool) or not isinstance(pca, (int, np.integer)) or pca < 1:
            raise ValueError(f"pca must be None or a positive number of components, got {pca!r}")
        from sklearn.decomposition import PCA

        k = min(int(pca), x.shape[0], x.shape[1])
        x = PCA(n_components=k, random_state=random_state).fit_transform(x).astype(np.float32)
    return np.ascontiguousarray(x)


def _clustering_inputs(h, labels, pool, pca) -> tuple[np.ndarray, np.ndarray]:
    x = representation_features(h, pool=pool, pca=pca)
    y = _labels(labels, x.shape[0])
    k = len(np.unique(y))
    if not 2 <= k <= x.shape[0] - 1:
        raise ValueError(f"cluster quality needs 2 <= number of classes <= N - 1; got {k} classes in {x.shape[0]} samples")
    return x, y


def _all_identical(x: np.ndarray) -> bool:
    return bool(np.all(x == x[0]))


def davies_bouldin(h, labels, *, pool: str | None = None, pca: int | None = None) -> float:
    """Davies-Bouldin index of the true-label clusters of the representations (lower = better).

    Davies & Bouldin, "A Cluster Separation Measure", IEEE TPAMI 1(2), 1979;
    ``sklearn.metrics.davies_bouldin_score`` on ``representation_features(h, pool, pca)``: for each
    class i, S_i = mean Euclidean distance of its samples to its centroid; R_ij = (S_i + S_j) /
    |c_i - c_j|; DB = mean over i of max_{j != i} R_ij. 0 is the best; no upper bound.
    Convention: NaN when all class centroids coincide (sklearn would return 0, "perfect", for
    classes that cannot be told apart at all).
    """
    from sklearn.metrics import davies_bouldin_score
    from sklearn.metrics.pairwise import pairwise_distances

    x, y = _clustering_inputs(h, labels, pool, pca)
    centroids = np.stack([x[y == k].mean(axis=0, dtype=np.float64) for k in np.unique(y)])
    if np.allclose(pairwise_distances(centroids), 0.0):
        return float("nan")
    return float(davies_bouldin_score(x, y))


def silhouette(h, labels, *, pool: str | None = None, pca: int | None = None) -> float:
    """Mean silhouette coefficient of the true-label clusters of the representations (higher = better).

    Rousseeuw, "Silhouettes", J. Comput. Appl. Math. 20, 1987; the value of
    ``sklearn.metrics.silhouette_score`` (Euclidean, all N samples) on
    ``representation_features(h, pool, pca)``, computed by ``silhouette_score``: per sample
    (b - a) / max(a, b), a = mean distance to its own class, b = mean distance to the nearest other
    class. Range [-1, 1]. Costs O(N^2 D). Convention: NaN when all N representations are identical.
    """
    x, y = _clustering_inputs(h, labels, pool, pca)
    if _all_identical(x):
        return float("nan")
    return silhouette_score(x, y)


def silhouette_score(x, labels, chunk: int = 8192) -> float:
    """``sklearn.metrics.silhouette_score(x, labels)`` (Euclidean) by exact pairwise distances in torch.

    The Gram matrix x x^T (N x N) is computed in float64 (its upper triangle by row blocks, see
    ``_gram``), accumulated over chunks of ``chunk`` features so that a float32 (N, D) input is
    never copied whole to float64; distances are sqrt(max(|x_i|^2 + |x_j|^2 - 2 x_i.x_j, 0)) with a
    zero diagonal, as sklearn computes them (sklearn rounds them to float32 for a float32 input: the
    two agree to about 1e-7). A sample alone in its class scores 0, as in sklearn.
    """
    x = torch.as_tensor(x)
    y = torch.as_tensor(np.unique(np.asarray(labels), return_inverse=True)[1].reshape(-1), device=x.device)
    gram = _gram(x, chunk)
    squared = gram.diagonal().clone()
    distances = (squared[:, None] + squared[None, :] - 2.0 * gram).clamp_(min=0.0).sqrt_()
    distances.fill_diagonal_(0.0)
    onehot = torch.nn.functional.one_hot(y, int(y.max()) + 1).to(torch.float64)
    sums = distances @ onehot  # (N, K): summed distance of each sample to each class
    sizes = onehot.sum(dim=0)
    own = sizes[y]
    a = sums.gather(1, y[:, None]).squeeze(1) / (own - 1).clamp(min=1)
    means = sums / sizes
    means.scatter_(1, y[:, None], torch.inf)
    b = means.min(dim=1).values
    score = torch.nan_to_num((b - a) / torch.maximum(a, b)) * (own > 1)
    return float(score.mean())


def _gram(x: torch.Tensor, chunk: int, blocks: int = 8) -> torch.Tensor:
    """x x^T in float64, by row blocks on and above the diagonal only, mirrored (the Gram matrix is
    symmetric: about half the multiply-adds of one full product), over chunks of ``chunk`` features."""
    n = x.shape[0]
    gram = torch.zeros((n, n), dtype=torch.float64, device=x.device)
    edges = np.linspace(0, n, min(blocks, n) + 1).astype(int)
    for start in range(0, x.shape[1], chunk):
        part = x[:, start : start + chunk].to(torch.float64)
        for low, high in zip(edges[:-1], edges[1:]):
            gram[low:high, low:].addmm_(part[low:high], part[low:].T)
    upper = torch.triu(gram, diagonal=1)
    return upper + upper.T + torch.diag(gram.diagonal())


def calinski_harabasz(h, labels, *, pool: str | None = None, pca: int | None = None) -> float:
    """Calinski-Harabasz index (variance ratio) of the true-label clusters (higher = better).

    Calinski & Harabasz, "A dendrite method for cluster analysis", Comm. in Statistics 3(1), 1974;
    ``sklearn.metrics.calinski_harabasz_score`` (as ``calinski_harabasz_score`` computes it) on
    ``representation_features(h, pool, pca)``:
    [tr(B) / (k - 1)] / [tr(W) / (N - k)] for k classes. Range [0, inf). Conventions: NaN when all
    N representations are identical; +inf when every class collapses to one point but the classes
    differ (sklearn would return 1.0).
    """
    x, y = _clustering_inputs(h, labels, pool, pca)
    if _all_identical(x):
        return float("nan")
    if all(_all_identical(x[y == k]) for k in np.unique(y)):
        return float("inf")
    return calinski_harabasz_score(x, y)


def calinski_harabasz_score(x, labels, chunk: int = 8192) -> float:
    """``sklearn.metrics.calinski_harabasz_score(x, labels)``, in float64 torch over chunks of ``chunk`` features.

    sklearn's sums, the same way: B = sum_k n_k |m_k - m|^2 and W = sum_k sum_{i in k} |x_i - m_k|^2
    (m the mean, m_k the mean of class k, all in float64), score (B / (k - 1)) / (W / (N - k)), 1.0
    when W = 0; by feature chunks, so that a float32 (N, D) input is never copied whole to float64.
    The class means are one matrix product, so the sums round differently from sklearn's (to ~1e-15).
    """
    x = torch.as_tensor(x)
    y = torch.as_tensor(np.unique(np.asarray(labels), return_inverse=True)[1].reshape(-1), device=x.device)
    onehot = torch.nn.functional.one_hot(y, int(y.max()) + 1).to(torch.float64)
    sizes = onehot.sum(dim=0)
    between = within = 0.0
    for start in range(0, x.shape[1], chunk):
        part = x[:, start : start + chunk].to(torch.float64)
        means = (onehot.T @ part) / sizes[:, None]
        between += float((sizes * (means - part.mean(dim=0)).square().sum(dim=1)).sum())
        within += float((part - means[y]).square().sum())
    n, k = x.shape[0], len(sizes)
    return 1.0 if within == 0.0 else float(between * (n - k) / (within * (k - 1.0)))


# -- every statistic of one representation ---------------------------------------------------------

STATISTICS = (
    "channel_sparsity", "element_sparsity", "dead_units", "hoyer_sparsity",
    "cluster_size", "cluster_purity", "cluster_perplexity",
    "davies_bouldin", "silhouette", "calinski_harabasz",
)


def representation_statistics(h, labels, *, num_classes: int | None = None, statistics: Iterable[str] | None = None,
                              reduce: str = "max", threshold: float = 0.0, pool: str | None = None,
                              pca: int | None = None) -> dict[str, float]:
    """The statistics named in ``statistics`` (default: all of ``STATISTICS``) of one representation."""
    wanted = statistic_names(statistics)
    h = _representation(h)
    out: dict[str, float] = {}
    plain = {"channel_sparsity": channel_sparsity, "element_sparsity": element_sparsity,
             "dead_units": dead_units, "hoyer_sparsity": hoyer_sparsity}
    quality = {"davies_bouldin": davies_bouldin, "silhouette": silhouette, "calinski_harabasz": calinski_harabasz}
    clusters = None
    for name in wanted:
        if name in plain:
            out[name] = plain[name](h)
        elif name in quality:
            out[name] = quality[name](h, labels, pool=pool, pca=pca)
        else:  # one implicit-cluster computation serves size, purity and perplexity
            if clusters is None:
                clusters = implicit_clusters(h, labels, num_classes=num_classes, reduce=reduce, threshold=threshold)
            out[name] = _live_mean(clusters[name.removeprefix("cluster_")], clusters["live"])
    return out


def statistic_names(statistics: Iterable[str] | None) -> list[str]:
    """The statistics asked for (None: all of ``STATISTICS``); ValueError naming an unknown one."""
    if statistics is None:
        return list(STATISTICS)
    wanted = [statistics] if isinstance(statistics, str) else list(statistics)
    unknown = [s for s in wanted if s not in STATISTICS]
    if unknown:
        raise ValueError(f"unknown statistic {unknown[0]!r} (statistics: {', '.join(STATISTICS)})")
    return wanted


# -- pooling, as the PGDL winner reads a representation ----------------------------------------------


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
