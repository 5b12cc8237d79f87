"""Performance benchmarks: each compares a fast path with a baseline measured in the same process.

``python -m scripts.perf [--out DIR] [--quick] [--skip SECTION ...]`` runs them all and writes
``DIR/perf_report.json`` and ``DIR/perf_report.md`` (see ``scripts.perf.suite``); each module also
runs alone: ``cmi``, ``tfrecord``, ``activations``, ``fragmentation``, ``end_to_end``, ``measure_times``.
"""
