"""Entry point ``generate_data``: build or read the data, split it, log it with lineage."""

import sys

from versioning import entry_points, step

if __name__ == "__main__":
    sys.exit(step.main("generate_data", entry_points.body("generate_data")))
