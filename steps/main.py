"""Entry point ``main``: the four steps in order, as child runs of one parent run."""

import sys

from versioning import pipeline, step

if __name__ == "__main__":
    sys.exit(step.main("main", pipeline.run))
