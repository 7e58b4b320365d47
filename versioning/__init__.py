"""Statistically gated model versioning on MLflow: the logic behind the MLproject's steps.

Modules are imported by name (``versioning.stats``, ``versioning.workflow``, ...); importing
the package itself does nothing, so ``python -m steps.<name>`` pays only for what it uses.
"""
