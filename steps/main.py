"""Entry point ``main``: the four steps in order, as child runs of one parent run."""

import sys

from versioning import entry_points, step

if __name__ == "__main__":
    sys.exit(step.main("main", entry_points.body("main")))
