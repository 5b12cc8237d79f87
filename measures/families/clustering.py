"""Clustering of hidden representations, as complexity measures (one number per model).

Two readings of "clustering" (Potgieter, Mouton & Davel, arXiv 2501.14441, did not publish their
metric; both readings are documented in ``measures.stats.representations``):

- implicit clusters (Haasbroek & Davel, SACAIR 2020): the samples that switch a channel on;
  ``cluster_purity`` and ``cluster_perplexity`` say how class-specific those sets are;
- label-based cluster quality of the representations: ``davies_bouldin``, ``silhouette``,
  ``calinski_harabasz`` (scikit-learn) with the true labels as clusters.

Signs. Davies-Bouldin: +1, as in the PGDL winner (Natekar & Sharma, arXiv 2012.02775), whose
score DBI x (1 - LWM) grows with the gap (higher DB = worse-separated classes). Silhouette and
Calinski-Harabasz: -1 by the same reasoning (for them higher = better clusters); the winner did not
score them, so this is our choice. Implicit clusters: the BatchNorm paper finds "more advantageous"
clustering in the better-generalizing BN models but does not define it nor relate it to the gap; we
read "advantageous" as class-purer, so purity -1 and perplexity +1 (our choice; work on single-unit
class selectivity does not settle the direction).

Parameters shared by every measure here: ``layer`` (default "all") and ``n``, read by
``per_layer.layer_average``, whose docstring says what they accept.
"""

from __future__ import annotations

from ..stats import representations as rep
from .per_layer import layer_average
from ..citations import HAASBROEK, POTGIETER
from ..model_view import ModelView
from ..registry import measure

_IMPLICIT = f"{HAASBROEK} (implicit clusters); {POTGIETER} (clustering with and without BatchNorm)"


@measure("cluster_purity", source=_IMPLICIT, sign=-1)
def cluster_purity(view: ModelView, layer="all", n=None, reduce="max", threshold=0.0) -> float:
    """Mean class purity of the samples that switch each live channel on (sign -1: chosen).

    Default layer: "all", the mean over ``view.hidden_layers`` (module docstring).

    A sample switches channel c on when ``reduce`` ("max" or "mean") of its feature map exceeds
    ``threshold``; purity = largest class fraction of that set; unweighted mean over channels that
    some sample switches on. ``reduce="none"``: every channel at every position is a unit of its own.
    See ``representations.implicit_clusters``.
    """
    return layer_average(view, "cluster_purity", layer, n, lambda h, y: rep.cluster_purity(
        h, y, num_classes=view.num_classes, reduce=reduce, threshold=threshold))


@measure("cluster_perplexity", source=_IMPLICIT, sign=1)
def cluster_perplexity(view: ModelView, layer="all", n=None, reduce="max", threshold=0.0) -> float:
    """Mean class perplexity 2**entropy of the samples that switch each live channel on (sign +1: chosen).

    Default layer: "all", the mean over ``view.hidden_layers`` (module docstring).

    1 when each channel's set is one class, the number of classes when uniform; same sets as
    ``cluster_purity``. See ``representations.implicit_clusters``.
    """
    return layer_average(view, "cluster_perplexity", layer, n, lambda h, y: rep.cluster_perplexity(
        h, y, num_classes=view.num_classes, reduce=reduce, threshold=threshold))


@measure("davies_bouldin", sign=1,
         source="Davies & Bouldin, IEEE TPAMI 1979; on representations as in Natekar & Sharma, arXiv 2012.02775 "
                "(PGDL winner, DBI x LWM); sklearn.metrics.davies_bouldin_score")
def davies_bouldin(view: ModelView, layer="all", n=None, pool=None, pca=None) -> float:
    """Davies-Bouldin index of the true-label clusters of the hidden representations (sign +1).

    Default layer: "all", the mean over ``view.hidden_layers`` (module docstring).

    ``pool``: None (flatten), "avg" or "max" (global spatial pooling to one value per channel);
    ``pca``: None or a number of principal components. Undefined (an error) when all class
    centroids coincide. The winner's variant (first conv layer, 4x4 max pooling, times 1 - LWM) is
    a different measure.
    """
    return layer_average(view, "davies_bouldin", layer, n,
                             lambda h, y: rep.davies_bouldin(h, y, pool=pool, pca=pca))


@measure("silhouette", sign=-1,
         source="Rousseeuw, J. Comput. Appl. Math. 1987; sklearn.metrics.silhouette_score; "
                "as a label-based clustering reading of arXiv 2501.14441")
def silhouette(view: ModelView, layer="all", n=None, pool=None, pca=None) -> float:
    """Mean silhouette of the true-label clusters of the hidden representations (sign -1: chosen).

    Default layer: "all", the mean over ``view.hidden_layers`` (module docstring).

    Euclidean, all ``n`` samples (O(n^2) distances per layer); ``pool`` and ``pca`` as for
    ``davies_bouldin``.
    """
    return layer_average(view, "silhouette", layer, n,
                             lambda h, y: rep.silhouette(h, y, pool=pool, pca=pca))


@measure("calinski_harabasz", sign=-1,
         source="Calinski & Harabasz, Comm. Statistics 1974; sklearn.metrics.calinski_harabasz_score; "
                "as a label-based clustering reading of arXiv 2501.14441")
def calinski_harabasz(view: ModelView, layer="all", n=None, pool=None, pca=None) -> float:
    """Calinski-Harabasz variance ratio of the true-label clusters of the hidden representations (sign -1: chosen).

    Default layer: "all", the mean over ``view.hidden_layers`` (module docstring).

    ``pool`` and ``pca`` as for ``davies_bouldin``. Its scale differs between layers, so
    ``layer="all"`` is dominated by the layers with the largest ratios.
    """
    return layer_average(view, "calinski_harabasz", layer, n,
                             lambda h, y: rep.calinski_harabasz(h, y, pool=pool, pca=pca))
