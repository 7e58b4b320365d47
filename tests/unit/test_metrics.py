"""Tests for versioning.metrics against confusion counts worked out by hand in each case."""

from __future__ import annotations

import numpy as np
import pytest

from versioning.metrics import METRIC_DIRECTIONS, SUPPORTED_METRICS, classification_metrics

# 10 rows; positive label 1: TP = 5, FN = 1 (row 8), FP = 2 (rows 2, 3), TN = 2.
Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
Y_PRED = [0, 0, 1, 1, 1, 1, 1, 1, 0, 1]

CASES = [
    pytest.param(
        Y_TRUE, Y_PRED, {},
        # accuracy 7/10; precision 5/7; recall 5/6; f1 2·5/(2·5 + 2 + 1); cost (2 + 1)/10
        {"accuracy": 0.7, "precision": 5 / 7, "recall": 5 / 6, "f1": 10 / 13, "error_cost": 0.3},
        id="binary-default-positive-1",
    ),
    pytest.param(
        Y_TRUE, Y_PRED, {"cost_false_positive": 1.0, "cost_false_negative": 10.0},
        {"accuracy": 0.7, "precision": 5 / 7, "recall": 5 / 6, "f1": 10 / 13, "error_cost": (2 + 10) / 10},
        id="binary-costs",
    ),
    pytest.param(
        # Positive label 0: TP = 2, FP = 1 (row 8), FN = 2 (rows 2, 3).
        Y_TRUE, Y_PRED, {"positive_label": 0, "cost_false_negative": 10},
        {"accuracy": 0.7, "precision": 2 / 3, "recall": 2 / 4, "f1": 4 / 7, "error_cost": (1 + 10 * 2) / 10},
        id="binary-positive-0",
    ),
    pytest.param(
        # Strings: the default positive label is the larger one, "yes". TP = 1, FP = 1, FN = 1.
        ["no", "yes", "yes"], ["yes", "yes", "no"], {},
        {"accuracy": 1 / 3, "precision": 1 / 2, "recall": 1 / 2, "f1": 1 / 2, "error_cost": 2 / 3},
        id="binary-strings",
    ),
    pytest.param(
        # Float truth, int predictions and an int positive label that matches 1.0.
        [0.0, 1.0, 1.0, 0.0], [1, 1, 0, 0], {"positive_label": 1, "cost_false_positive": 0.5},
        {"accuracy": 0.5, "precision": 1 / 2, "recall": 1 / 2, "f1": 1 / 2, "error_cost": (0.5 + 1) / 4},
        id="binary-float-vs-int",
    ),
    pytest.param(
        # No predicted and no actual positives: precision, recall and f1 are 0 (zero_division=0).
        [0, 0, 0], [0, 1, 0], {},
        {"accuracy": 2 / 3, "precision": 0.0, "recall": 0.0, "f1": 0.0, "error_cost": 1 / 3},
        id="binary-zero-division",
    ),
    pytest.param(
        # Positive label present only in y_true and never predicted: precision 0 by zero_division.
        [1, 1, 0, 0], [0, 0, 0, 0], {},
        {"accuracy": 0.5, "precision": 0.0, "recall": 0.0, "f1": 0.0, "error_cost": 2 / 4},
        id="binary-never-predicts-positive",
    ),
    pytest.param(
        # One label only: it is the positive label and every row is a true positive.
        [1, 1, 1], [1, 1, 1], {},
        {"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "error_cost": 0.0},
        id="single-label",
    ),
    pytest.param(
        # Class 0: TP 2, FP 1, FN 0 -> P 2/3, R 1, F1 0.8; classes 1 and 2: TP 0 -> 0. Macro = mean.
        [0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1], {},
        {"accuracy": 2 / 6, "precision": (2 / 3) / 3, "recall": 1 / 3, "f1": 0.8 / 3},
        id="multiclass-macro",
    ),
    pytest.param(
        # y_true has two labels but y_pred adds a third: three labels, so macro averaging.
        # Class a: TP 1, FP 0, FN 1 -> P 1, R 1/2, F1 2/3; class b: TP 1, FP 0, FN 0 -> 1, 1, 1;
        # class c: never true, predicted once -> 0, 0, 0.
        ["a", "a", "b"], ["a", "c", "b"], {},
        {"accuracy": 2 / 3, "precision": 2 / 3, "recall": 1.5 / 3, "f1": (2 / 3 + 1) / 3},
        id="multiclass-extra-predicted-label",
    ),
]


@pytest.mark.parametrize(("y_true", "y_pred", "kwargs", "expected"), CASES)
def test_classification_metrics(
    y_true: list, y_pred: list, kwargs: dict, expected: dict[str, float]
) -> None:
    result = classification_metrics(y_true, y_pred, **kwargs)
    assert set(result) == set(expected)
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name
        assert type(result[name]) is float


def test_numpy_and_list_inputs_agree() -> None:
    from_arrays = classification_metrics(np.array(Y_TRUE), np.array(Y_PRED))
    assert from_arrays == classification_metrics(Y_TRUE, Y_PRED)


def test_metric_directions() -> None:
    expected = {"accuracy": 1, "f1": 1, "precision": 1, "recall": 1, "error_cost": -1}
    assert METRIC_DIRECTIONS == expected
    assert set(SUPPORTED_METRICS) == set(METRIC_DIRECTIONS)
    # Every metric classification_metrics can return has a direction.
    assert set(classification_metrics(Y_TRUE, Y_PRED)) <= set(SUPPORTED_METRICS)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "kwargs", "message"),
    [
        (Y_TRUE, Y_PRED, {"positive_label": 2}, r"positive_label 2 is not one of the labels \[0, 1\]"),
        (Y_TRUE, Y_PRED, {"positive_label": "1"}, r"positive_label '1' is not one of the labels"),
        ([0, 1, 2], [0, 1, 2], {"positive_label": 1}, r"positive_label applies to binary labels only"),
        (Y_TRUE, Y_PRED, {"cost_false_positive": -1.0}, r"cost_false_positive must be finite and >= 0"),
        (Y_TRUE, Y_PRED, {"cost_false_negative": float("nan")}, r"cost_false_negative must be finite"),
        (Y_TRUE, Y_PRED, {"cost_false_negative": float("inf")}, r"cost_false_negative must be finite"),
        (Y_TRUE, Y_PRED, {"cost_false_positive": "1"}, r"cost_false_positive must be a non-negative number"),
        (Y_TRUE, Y_PRED, {"cost_false_positive": True}, r"cost_false_positive must be a non-negative number"),
        ([0, 1], [0, 1, 1], {}, r"different lengths"),
        ([], [], {}, r"y_true is empty"),
        (["0", "1"], [0, 1], {}, r"not comparable"),
        ([0.0, float("nan")], [0, 1], {}, r"y_true contains NaN"),
        (np.zeros((2, 2)), np.zeros(4), {}, r"y_true must be 1-D"),
    ],
)
def test_invalid_input_raises(y_true: object, y_pred: object, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classification_metrics(y_true, y_pred, **kwargs)
