"""Entry point ``compare_and_promote``: McNemar-gated promotion of the challenger."""

import sys

from versioning import entry_points, step

if __name__ == "__main__":
    sys.exit(step.main("compare_and_promote", entry_points.body("compare_and_promote")))
