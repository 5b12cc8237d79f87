"""Time the verdict statistics per measure and task (1000 joint test resamples x 3 repeats, all four
scores, intervals and the paired test) on a 32-, 96- and 150-model synthetic zoo:

    python -m scripts.perf_verdicts [--resamples 1000] [--loop-resamples 20] [--json out.json]

The work is ``scripts.perf.uncertainty`` (also section (f) of the perf suite); this is its command
outside the package.
"""

import sys

from scripts.perf.uncertainty import main

if __name__ == "__main__":
    sys.exit(main())
