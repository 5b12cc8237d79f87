"""Performance benchmarks: each compares a fast path with a baseline measured in the same process."""
