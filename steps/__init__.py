"""Entry points of the MLproject: thin shells run as ``python -m steps.<name>``."""
