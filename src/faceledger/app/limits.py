"""Bounds of request options that every front end shares (a light module: the CLI imports it
at start-up to declare its options)."""

__all__ = ["TOP_K_MAX", "THRESHOLD_MAX"]

#: Most matches a search returns per probe face.
TOP_K_MAX = 1000
#: Largest distance a search may be asked to count as a match.
THRESHOLD_MAX = 2.0
