"""Entry point ``rollback``: restore the champion that the current champion replaced."""

import sys

from versioning import entry_points, step

if __name__ == "__main__":
    sys.exit(step.main("rollback", entry_points.body("rollback")))
