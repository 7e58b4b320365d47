"""Entry point ``train_rf``: fit and register a random forest."""

import sys

from versioning import entry_points, step

if __name__ == "__main__":
    sys.exit(step.main("train_rf", entry_points.body("train_rf")))
