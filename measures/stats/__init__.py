"""Pure statistics: functions of arrays, tensors and networks, with no knowledge of measures.

Nothing here imports the contract (``measures.model_view``, ``measures.registry``, the catalogue,
the plugins); only ``measures.checks`` for argument checks (``tests/test_import_graph.py`` checks it).
Bad arguments raise ``ValueError`` or ``TypeError``; the measures of ``measures.families`` turn them
into a ``MeasureError`` naming the model.

- ``margins``: output margins and the margin scale gamma;
- ``norms``: spectral and Frobenius norms, the path norm;
- ``batchnorm_folding``: BatchNorm folded into the preceding Conv2D/Dense;
- ``representations``: sparsity and clustering statistics of one layer's representation, pooling;
- ``graphs``: k-NN graphs, their Laplacian, label variation on them;
- ``planes``: grids on planes through samples, class regions and class changes (fragmentation);
- ``augmentations``: the PGDL winners' augmentations and mixup partners;
- ``kv_margins``: W1 between equal-size uniform samples (the k-variance), the kV-margin draws and
  gradient norms;
- ``tf_random``: TensorFlow's random draws (Philox, ``tf.data`` shuffle), reproduced in numpy.
"""
