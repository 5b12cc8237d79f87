"""``python -m scripts.perf``: the performance suite (see ``scripts.perf.suite``)."""

import sys

from .suite import main

sys.exit(main())
