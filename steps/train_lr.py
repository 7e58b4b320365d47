"""Entry point ``train_lr``: fit and register a logistic regression."""

import sys

from versioning import entry_points, step

if __name__ == "__main__":
    sys.exit(step.main("train_lr", entry_points.body("train_lr")))
