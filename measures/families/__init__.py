"""The built-in measures, one module per family of ``-m family:NAME``: thin ``@measure`` adapters.

Each adapter reads what it needs through ``ModelView`` (the contract, ``measures.model_view``), calls
the statistics of ``measures.stats`` and checks its parameters. Importing this package registers
them all. A family is the module (or, for ``winners``, the subpackage) its measures are defined in.
"""

from . import clustering, flatness, fragmentation, kv_margins, margins, norms, reference, sparsity, winners  # noqa: F401
