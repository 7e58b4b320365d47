"""Model families: how each is built from config and what its saved form needs to load."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ModelFamily:
    name: str  # recorded in the version tag ``model.family``
    step: str  # the entry point that trains it
    # Types skops must be told to trust when loading, beyond its built-in safe list.
    # Kept minimal and explicit: anything else in a saved model fails to load.
    skops_trusted_types: tuple[str, ...]


LOGISTIC_REGRESSION = ModelFamily("logistic_regression", "train_lr", ())
RANDOM_FOREST = ModelFamily("random_forest", "train_rf", ("sklearn.tree._tree.Tree",))
FAMILIES: dict[str, ModelFamily] = {f.step: f for f in (LOGISTIC_REGRESSION, RANDOM_FOREST)}

# What a serving environment needs to load the model; written explicitly because MLflow's
# inference runs a subprocess for seconds and gets the list wrong.
_MODEL_REQUIREMENTS = ("mlflow", "scikit-learn", "skops", "numpy", "scipy", "pandas")


def build_estimator(family: ModelFamily, config: Mapping[str, Any]):
    """A fresh, seeded, unfitted estimator of ``family`` with hyper-parameters from config."""
    seed = config["seed"]
    if family is LOGISTIC_REGRESSION:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        # Scaling makes the solver converge on unscaled user data (digits, CSVs).
        return make_pipeline(
            StandardScaler(),
            LogisticRegression(C=config["lr_C"], max_iter=config["lr_max_iter"], random_state=seed),
        )
    if family is RANDOM_FOREST:
        from sklearn.ensemble import RandomForestClassifier

        # random_state fixes every tree's bootstrap and feature draws, so the fit is
        # bit-identical for any n_jobs.
        return RandomForestClassifier(
            n_estimators=config["rf_n_estimators"],
            max_depth=config["rf_max_depth"],
            min_samples_leaf=config["rf_min_samples_leaf"],
            n_jobs=config["rf_n_jobs"],
            random_state=seed,
        )
    raise ValueError(f"unknown model family {family!r}")


def hyper_parameters(family: ModelFamily, config: Mapping[str, Any]) -> dict[str, Any]:
    prefix = {"train_lr": "lr_", "train_rf": "rf_"}[family.step]
    return {key: value for key, value in config.items() if key.startswith(prefix)}


def fit(family: ModelFamily, config: Mapping[str, Any], features: pd.DataFrame, labels: np.ndarray):
    return build_estimator(family, config).fit(features, labels)


def pip_requirements() -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in _MODEL_REQUIREMENTS]
