"""Entry point ``generate_data``: build or read the data, split it, log it with lineage."""

import sys

from versioning import generate, step

if __name__ == "__main__":
    sys.exit(step.main("generate_data", generate.run))
