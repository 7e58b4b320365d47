"""Entry point ``train_rf``: fit and register a random forest."""

import sys

from versioning import step, train, training

if __name__ == "__main__":
    family = training.FAMILIES["train_rf"]
    sys.exit(step.main("train_rf", lambda ctx: train.run(ctx, family)))
