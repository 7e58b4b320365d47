"""Entry point ``train_lr``: fit and register a logistic regression."""

import sys

from versioning import step, train, training

if __name__ == "__main__":
    family = training.FAMILIES["train_lr"]
    sys.exit(step.main("train_lr", lambda ctx: train.run(ctx, family)))
