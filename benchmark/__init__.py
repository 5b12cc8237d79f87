"""Orchestration: runs measures over tasks, scores them against true gaps, and the ``pgdl-bench`` CLI."""
