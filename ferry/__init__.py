"""Ferry: run AI coding agents on real work, durably, on Temporal."""

__version__ = "0.1.0"
