"""Model families: seeded, reproducible across core counts, saved with skops only."""

from __future__ import annotations

import numpy as np
import pytest

from versioning import data, training
from versioning.config import load_config


@pytest.fixture(scope="module")
def split():
    frame = data.make_synthetic(n_samples=1500, n_features=10, n_informative=5, n_classes=2, seed=16)
    train, test = data.split(frame, "label", 0.2, seed=16)
    return data.features_and_labels(train, "label"), data.features_and_labels(test, "label")


@pytest.mark.parametrize("step", ["train_lr", "train_rf"])
def test_fits_are_bit_reproducible(split, step):
    (train_x, train_y), (test_x, _) = split
    config = load_config(None, {"rf_n_estimators": "25"})
    family = training.FAMILIES[step]
    first = training.fit(family, config, train_x, train_y).predict_proba(test_x)
    second = training.fit(family, config, train_x, train_y).predict_proba(test_x)
    assert np.array_equal(first, second)


def test_forest_is_identical_on_one_core_and_on_all(split):
    (train_x, train_y), (test_x, _) = split
    family = training.FAMILIES["train_rf"]
    one = training.fit(family, load_config(None, {"rf_n_estimators": "25", "rf_n_jobs": "1"}), train_x, train_y)
    every = training.fit(family, load_config(None, {"rf_n_estimators": "25", "rf_n_jobs": "-1"}), train_x, train_y)
    assert np.array_equal(one.predict_proba(test_x), every.predict_proba(test_x))


def test_hyper_parameters_come_from_config():
    config = load_config(None, {"lr_C": "0.5", "rf_max_depth": "7"})
    lr = training.build_estimator(training.LOGISTIC_REGRESSION, config)
    rf = training.build_estimator(training.RANDOM_FOREST, config)
    assert lr[-1].C == 0.5 and lr[-1].random_state == 16
    assert rf.max_depth == 7 and rf.random_state == 16 and rf.n_jobs == -1
    assert training.hyper_parameters(training.RANDOM_FOREST, config)["rf_max_depth"] == 7


def test_skops_trusted_types_are_explicit_and_minimal():
    assert training.LOGISTIC_REGRESSION.skops_trusted_types == ()
    assert training.RANDOM_FOREST.skops_trusted_types == ("sklearn.tree._tree.Tree",)


@pytest.mark.parametrize("step", ["train_lr", "train_rf"])
def test_skops_refuses_what_is_not_trusted(tmp_path, split, step):
    """The saved form loads with exactly our list, and a shorter list is refused."""
    import skops.io as sio

    (train_x, train_y), _ = split
    family = training.FAMILIES[step]
    model = training.fit(family, load_config(None, {"rf_n_estimators": "5"}), train_x, train_y)
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    untrusted = set(sio.get_untrusted_types(file=path))
    assert untrusted == set(family.skops_trusted_types)


def test_pip_requirements_are_explicit_pins():
    requirements = training.pip_requirements()
    assert all("==" in line for line in requirements)
    assert any(line.startswith("scikit-learn==") for line in requirements)
    assert any(line.startswith("skops==") for line in requirements)
