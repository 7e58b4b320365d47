"""A floor for the cold run: what no implementation of the workflow can skip, and nothing else.

Run by benchmarks/run.py as an MLproject entry point on a fresh store: it imports mlflow and
opens the store (every step must log its run), imports the libraries the steps need
(scikit-learn to fit, skops to save, mlxtend to test), makes the default config's data, splits
it and fits both default models, and ends as the steps do (``gc.freeze()``). It logs,
registers, saves and compares nothing, so a cold run can only be slower than this.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))


def main() -> None:
    import mlflow

    mlflow.MlflowClient().search_experiments()
    import mlxtend.evaluate  # noqa: F401
    import skops.io  # noqa: F401

    from versioning import data, training
    from versioning.config import load_config

    config = load_config(None, {})
    frame = data.make_synthetic(config["n_samples"], config["n_features"], config["n_informative"],
                                config["n_classes"], config["seed"])
    train, _ = data.split(frame, data.SYNTHETIC_LABEL, config["test_fraction"], config["seed"])
    features, labels = train.drop(columns=[data.SYNTHETIC_LABEL]), train[data.SYNTHETIC_LABEL].to_numpy()
    for family in training.FAMILIES.values():
        training.fit(family, config, features, labels)
    gc.freeze()


if __name__ == "__main__":
    main()
