"""Classification metrics that the promotion policy can compare champion and challenger on.

``classification_metrics`` is a pure function of two label arrays; ``METRIC_DIRECTIONS`` says
which way is better for each metric so the policy never has to special-case one.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Final

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from versioning.stats import _as_label_arrays

__all__ = ["METRIC_DIRECTIONS", "SUPPORTED_METRICS", "classification_metrics"]

# +1: higher is better, -1: lower is better.
METRIC_DIRECTIONS: Final[dict[str, int]] = {
    "accuracy": 1,
    "f1": 1,
    "precision": 1,
    "recall": 1,
    "error_cost": -1,
}
SUPPORTED_METRICS: Final[tuple[str, ...]] = tuple(METRIC_DIRECTIONS)


def _check_cost(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    cost = float(value)
    if not math.isfinite(cost) or cost < 0.0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return cost


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    *,
    positive_label: Any = None,
    cost_false_positive: float = 1.0,
    cost_false_negative: float = 1.0,
) -> dict[str, float]:
    """Accuracy, F1, precision and recall of ``y_pred`` against ``y_true`` (plus error cost).

    The labels are the union of those in ``y_true`` and ``y_pred``. With at most two labels the
    task is binary: F1, precision and recall are for ``positive_label`` (default: the larger of the
    sorted labels), and ``error_cost`` = (cost_false_positive·FP + cost_false_negative·FN) / n is
    added (lower is better). With more labels F1, precision and recall are macro averages,
    ``error_cost`` is omitted and ``positive_label`` must be None. Undefined ratios (no predicted
    or no actual positives) count as 0, as with scikit-learn's ``zero_division=0``.
    """
    cost_fp = _check_cost("cost_false_positive", cost_false_positive)
    cost_fn = _check_cost("cost_false_negative", cost_false_negative)
    truth, predicted = _as_label_arrays(y_true=y_true, y_pred=y_pred)
    try:
        labels = sorted(set(np.unique(truth).tolist()) | set(np.unique(predicted).tolist()))
    except TypeError as error:
        # Defensive: labels were checked to be all numbers or all strings, which always sort.
        raise ValueError(
            f"labels cannot be sorted ({error}); use labels of one orderable type"
        ) from error

    metrics = {"accuracy": float(accuracy_score(truth, predicted))}
    if len(labels) > 2:
        if positive_label is not None:
            shown = ", ".join(map(repr, labels[:5])) + (", ..." if len(labels) > 5 else "")
            raise ValueError(
                f"positive_label applies to binary labels only, but there are {len(labels)} "
                f"labels ({shown}); set it to None"
            )
        averaged = {"average": "macro", "labels": labels, "zero_division": 0}
        metrics["f1"] = float(f1_score(truth, predicted, **averaged))
        metrics["precision"] = float(precision_score(truth, predicted, **averaged))
        metrics["recall"] = float(recall_score(truth, predicted, **averaged))
        return metrics

    positive = pick_positive_label(labels, positive_label)

    is_positive_truth = truth == positive
    is_positive_pred = predicted == positive
    n = truth.shape[0]
    true_positive = int(np.count_nonzero(is_positive_truth & is_positive_pred))
    false_positive = int(np.count_nonzero(is_positive_pred)) - true_positive
    false_negative = int(np.count_nonzero(is_positive_truth)) - true_positive

    binary = {"average": "binary", "pos_label": positive, "zero_division": 0}
    if len(labels) == 1:
        # scikit-learn infers the negative class from the data; with one label it has none to find.
        binary["labels"] = labels
    metrics["f1"] = float(f1_score(truth, predicted, **binary))
    metrics["precision"] = float(precision_score(truth, predicted, **binary))
    metrics["recall"] = float(recall_score(truth, predicted, **binary))
    metrics["error_cost"] = (cost_fp * false_positive + cost_fn * false_negative) / n
    return metrics


def pick_positive_label(labels: list[Any], positive_label: Any) -> Any:
    """The positive class of binary ``labels`` (sorted): ``positive_label``, or the larger one.

    The label is looked up in ``labels`` so callers get the type the arrays hold.
    """
    if positive_label is None:
        return labels[-1]
    matches = [label for label in labels if label == positive_label]
    if not matches:
        raise ValueError(
            f"positive_label {positive_label!r} is not one of the labels {labels}; "
            "pick one of them"
        )
    return matches[0]
