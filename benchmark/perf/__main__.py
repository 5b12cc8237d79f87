"""``python -m benchmark.perf``: the performance suite (see ``benchmark.perf.suite``)."""

import sys

from .suite import main

sys.exit(main())
