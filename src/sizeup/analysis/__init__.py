"""Pure functions from stored results to the comparison a user reads. No I/O here."""

from sizeup.analysis.compare import compare, wilson_interval

__all__ = ["compare", "wilson_interval"]
