"""The benchmarks: ``make bench`` (``python -m bench.run``) and ``make bench-image``."""
