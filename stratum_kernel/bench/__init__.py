"""Benchmarks: one module per area, run by ``stratum bench <area>``."""
