"""Step name -> the function that does its work, imported only when asked for.

Lazy imports keep a step's start-up to what it uses: compare_and_promote with nothing to
compare must not pay for importing training code.
"""

from __future__ import annotations

from collections.abc import Callable

from versioning.step import StepContext

ENTRY_POINTS = ("generate_data", "train_lr", "train_rf", "compare_and_promote", "rollback", "main")


def body(name: str) -> Callable[[StepContext], str]:
    if name == "generate_data":
        from versioning import generate

        return generate.run
    if name in ("train_lr", "train_rf"):
        from versioning import train, training

        family = training.FAMILIES[name]
        return lambda ctx: train.run(ctx, family)
    if name == "compare_and_promote":
        from versioning import promote

        return promote.run
    if name == "rollback":
        from versioning import rollback

        return rollback.run
    if name == "main":
        from versioning import pipeline

        return pipeline.run
    raise ValueError(f"unknown entry point {name!r}; expected one of {ENTRY_POINTS}")
