"""Tests for versioning.decision: one row per branch of the promotion policy, plus validation."""

from __future__ import annotations

import math
import re

import pytest

from versioning.decision import (
    BOOTSTRAP,
    DECISIONS,
    KEEP,
    NO_CHALLENGER,
    PROMOTE,
    ROLLBACK,
    SUPERSEDED,
    UNCHANGED,
    Decision,
    PolicyOptions,
    decide,
    validate_policy_options,
)
from versioning.stats import McNemarResult


def _test(p: float, method: str = "corrected", b: int = 10, c: int = 40) -> McNemarResult:
    statistic = None if method in ("exact", "midp") else 1.0
    return McNemarResult(statistic=statistic, p_value=p, method=method, b=b, c=c)


CASES = [
    pytest.param(
        _test(1.4e-23), {"accuracy": 0.9005}, {"accuracy": 0.9635}, (0.05, 0.08), PolicyOptions(alpha=0.05),
        PROMOTE,
        "Promoted the challenger: accuracy 0.9635 vs 0.9005 and McNemar corrected p = 1.4e-23 < alpha 0.05.",
        id="promote",
    ),
    pytest.param(
        _test(1.0, "exact", 0, 0), {"accuracy": 0.9}, {"accuracy": 0.9}, (0.0, 0.0), PolicyOptions(alpha=0.05),
        KEEP,
        "Kept the champion: the difference is not significant (McNemar exact p = 1 ≥ alpha 0.05; "
        "both models are right on exactly the same rows, b + c = 0).",
        id="identical-predictions",
    ),
    pytest.param(
        _test(0.21, "exact", 3, 8), {"accuracy": 0.6}, {"accuracy": 0.65}, (-0.01, 0.11), PolicyOptions(alpha=0.05),
        KEEP,
        "Kept the champion: the difference is not significant (McNemar exact p = 0.21 ≥ alpha 0.05; b = 3, c = 8).",
        id="not-significant",
    ),
    pytest.param(
        _test(0.05, "midp"), {"accuracy": 0.6}, {"accuracy": 0.65}, (0.01, 0.11), PolicyOptions(alpha=0.05),
        KEEP,
        "Kept the champion: the difference is not significant (McNemar midp p = 0.05 ≥ alpha 0.05; b = 10, c = 40).",
        id="p-equal-to-alpha-is-not-significant",
    ),
    pytest.param(
        # 0.04996 would print as 0.05 with 2 digits: the reason must still show p below alpha.
        _test(0.04996), {"accuracy": 0.6}, {"accuracy": 0.65}, (0.01, 0.11), PolicyOptions(alpha=0.05),
        PROMOTE,
        "Promoted the challenger: accuracy 0.65 vs 0.6 and McNemar corrected p = 0.04996 < alpha 0.05.",
        id="p-just-below-alpha",
    ),
    pytest.param(
        _test(0.003, b=40, c=10), {"accuracy": 0.93}, {"accuracy": 0.91}, (-0.03, -0.01), PolicyOptions(alpha=0.05),
        KEEP,
        "Kept the champion: the difference is significant (McNemar corrected p = 0.003 < alpha 0.05) "
        "but the challenger is worse on accuracy (0.91 vs 0.93).",
        id="significant-but-worse",
    ),
    pytest.param(
        _test(0.003), {"accuracy": 0.9, "error_cost": 0.08}, {"accuracy": 0.95, "error_cost": 0.05},
        (0.01, 0.09), PolicyOptions(alpha=0.05, primary_metric="error_cost"),
        PROMOTE,
        "Promoted the challenger: error_cost 0.05 vs 0.08 (lower is better) and McNemar corrected p = 0.003 < alpha 0.05.",
        id="error-cost-lower-is-better",
    ),
    pytest.param(
        _test(0.003), {"error_cost": 0.1}, {"error_cost": 0.2}, (0.01, 0.09),
        PolicyOptions(alpha=0.05, primary_metric="error_cost"),
        KEEP,
        "Kept the champion: the difference is significant (McNemar corrected p = 0.003 < alpha 0.05) "
        "but the challenger is worse on error_cost (0.2 vs 0.1, lower is better).",
        id="error-cost-higher-is-worse",
    ),
    pytest.param(
        _test(0.003), {"f1": 0.5}, {"f1": 0.5 + 1e-13}, (0.01, 0.09), PolicyOptions(alpha=0.05, primary_metric="f1"),
        KEEP,
        "Kept the champion: the difference is significant (McNemar corrected p = 0.003 < alpha 0.05) "
        "but the challenger ties the champion on f1 (0.5) and no tie_breaker is set.",
        id="tie-within-1e-12-no-tie-breaker",
    ),
    pytest.param(
        _test(0.003), {"f1": 0.5}, {"f1": 0.5 + 1e-11}, (0.01, 0.09), PolicyOptions(alpha=0.05, primary_metric="f1"),
        PROMOTE,
        "Promoted the challenger: f1 0.50000000001 vs 0.5 and McNemar corrected p = 0.003 < alpha 0.05.",
        id="difference-above-tolerance-is-not-a-tie",
    ),
    pytest.param(
        _test(0.003), {"f1": 0.93, "accuracy": 0.9}, {"f1": 0.93, "accuracy": 0.91}, (0.002, 0.03),
        PolicyOptions(alpha=0.05, primary_metric="f1", tie_breaker="accuracy"),
        PROMOTE,
        "Promoted the challenger: f1 tied at 0.93, tie-breaker accuracy 0.91 vs 0.9 "
        "and McNemar corrected p = 0.003 < alpha 0.05.",
        id="tie-broken-in-favour",
    ),
    pytest.param(
        _test(0.003), {"f1": 0.5, "recall": 0.4}, {"f1": 0.5, "recall": 0.3}, (0.01, 0.09),
        PolicyOptions(alpha=0.05, primary_metric="f1", tie_breaker="recall"),
        KEEP,
        "Kept the champion: the difference is significant (McNemar corrected p = 0.003 < alpha 0.05) "
        "but the challenger ties the champion on f1 (0.5) and is worse on the tie-breaker recall (0.3 vs 0.4).",
        id="tie-broken-against",
    ),
    pytest.param(
        _test(0.003), {"f1": 0.5, "error_cost": 0.2}, {"f1": 0.5, "error_cost": 0.1}, (0.01, 0.09),
        PolicyOptions(alpha=0.05, primary_metric="f1", tie_breaker="error_cost"),
        PROMOTE,
        "Promoted the challenger: f1 tied at 0.5, tie-breaker error_cost 0.1 vs 0.2 (lower is better) "
        "and McNemar corrected p = 0.003 < alpha 0.05.",
        id="tie-breaker-lower-is-better",
    ),
    pytest.param(
        _test(0.003), {"f1": 0.5, "recall": 0.4}, {"f1": 0.5, "recall": 0.4}, (0.01, 0.09),
        PolicyOptions(alpha=0.05, primary_metric="f1", tie_breaker="recall"),
        KEEP,
        "Kept the champion: the difference is significant (McNemar corrected p = 0.003 < alpha 0.05) "
        "but the challenger ties the champion on f1 (0.5) and on the tie-breaker recall (0.4).",
        id="tied-on-both",
    ),
    pytest.param(
        _test(0.003), {"accuracy": 0.93}, {"accuracy": 0.95}, (0.002, 0.04), PolicyOptions(alpha=0.05, min_delta=0.01),
        KEEP,
        "Kept the champion: the difference is significant (McNemar corrected p = 0.003 < alpha 0.05) "
        "and the challenger is better (accuracy 0.95 vs 0.93) but the lower bound of the interval "
        "for Δaccuracy (0.002) does not exceed min_delta 0.01.",
        id="min-delta-not-met",
    ),
    pytest.param(
        _test(0.003), {"accuracy": 0.93}, {"accuracy": 0.95}, (0.01, 0.04), PolicyOptions(alpha=0.05, min_delta=0.01),
        KEEP,
        "Kept the champion: the difference is significant (McNemar corrected p = 0.003 < alpha 0.05) "
        "and the challenger is better (accuracy 0.95 vs 0.93) but the lower bound of the interval "
        "for Δaccuracy (0.01) does not exceed min_delta 0.01.",
        id="min-delta-equal-is-not-enough",
    ),
    pytest.param(
        _test(0.003), {"accuracy": 0.93}, {"accuracy": 0.95}, (0.0123, 0.04), PolicyOptions(alpha=0.05, min_delta=0.01),
        PROMOTE,
        "Promoted the challenger: accuracy 0.95 vs 0.93, McNemar corrected p = 0.003 < alpha 0.05 and the "
        "lower bound of the interval for Δaccuracy (0.012) exceeds min_delta 0.01.",
        id="min-delta-met",
    ),
    pytest.param(
        _test(0.003), {"accuracy": 0.93}, {"accuracy": 0.95}, (-0.001, 0.04), PolicyOptions(alpha=0.05, min_delta=-0.005),
        PROMOTE,
        "Promoted the challenger: accuracy 0.95 vs 0.93, McNemar corrected p = 0.003 < alpha 0.05 and the "
        "lower bound of the interval for Δaccuracy (-0.001) exceeds min_delta -0.005.",
        id="negative-min-delta",
    ),
    pytest.param(
        # The metric decides, not the sign of b - c: with precision as the primary metric a
        # challenger can be better even when it is less accurate.
        _test(0.01, b=30, c=12), {"precision": 0.8, "accuracy": 0.9}, {"precision": 0.85, "accuracy": 0.88},
        (-0.04, -0.005), PolicyOptions(alpha=0.05, primary_metric="precision"),
        PROMOTE,
        "Promoted the challenger: precision 0.85 vs 0.8 and McNemar corrected p = 0.01 < alpha 0.05.",
        id="primary-metric-decides",
    ),
    pytest.param(
        _test(0.003), {"accuracy": 0.9}, {"accuracy": 0.95}, (0.01, 0.09), PolicyOptions(alpha=0.001),
        KEEP,
        "Kept the champion: the difference is not significant (McNemar corrected p = 0.003 ≥ alpha 0.001; b = 10, c = 40).",
        id="strict-alpha",
    ),
]


@pytest.mark.parametrize(
    ("test", "champion", "challenger", "delta_ci", "options", "expected_decision", "expected_reason"), CASES
)
def test_decide(
    test: McNemarResult,
    champion: dict[str, float],
    challenger: dict[str, float],
    delta_ci: tuple[float, float],
    options: PolicyOptions,
    expected_decision: str,
    expected_reason: str,
) -> None:
    decision = decide(test, champion, challenger, delta_ci, options)
    assert decision == Decision(expected_decision, expected_reason)
    # One sentence: a single full stop at the very end (decimal points are never followed by space).
    assert decision.reason.endswith(".") and not re.search(r"\.\s", decision.reason)
    assert "\n" not in decision.reason


def test_decision_names() -> None:
    assert (PROMOTE, KEEP, BOOTSTRAP, NO_CHALLENGER, SUPERSEDED, UNCHANGED, ROLLBACK) == (
        "promote", "keep", "bootstrap", "no_challenger", "superseded", "unchanged", "rollback",
    )
    assert set(DECISIONS) == {PROMOTE, KEEP, BOOTSTRAP, NO_CHALLENGER, SUPERSEDED, UNCHANGED, ROLLBACK}


def test_dataclasses_are_frozen() -> None:
    options = PolicyOptions(alpha=0.05)
    assert (options.primary_metric, options.tie_breaker, options.min_delta) == ("accuracy", None, None)
    with pytest.raises(AttributeError):
        options.alpha = 0.1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Decision(KEEP, "x").decision = PROMOTE  # type: ignore[misc]


INVALID_OPTIONS = [
    pytest.param({"alpha": 0}, r"alpha must be a number in \(0, 1\)", id="alpha-0"),
    pytest.param({"alpha": 1}, r"alpha must be", id="alpha-1"),
    pytest.param({"alpha": -0.05}, r"alpha must be", id="alpha-negative"),
    pytest.param({"alpha": math.nan}, r"alpha must be", id="alpha-nan"),
    pytest.param({"alpha": True}, r"alpha must be", id="alpha-bool"),
    pytest.param({"alpha": "0.05"}, r"alpha must be", id="alpha-string"),
    pytest.param({"alpha": 0.05, "primary_metric": "auc"}, r"primary_metric 'auc' is not supported", id="primary-unknown"),
    pytest.param({"alpha": 0.05, "tie_breaker": "auc"}, r"tie_breaker 'auc' is not supported", id="tie-unknown"),
    pytest.param({"alpha": 0.05, "tie_breaker": "accuracy"}, r"tie_breaker must differ from primary_metric", id="tie-same"),
    pytest.param({"alpha": 0.05, "min_delta": math.nan}, r"min_delta must be None or a finite number", id="min-delta-nan"),
    pytest.param({"alpha": 0.05, "min_delta": math.inf}, r"min_delta must be", id="min-delta-inf"),
    pytest.param({"alpha": 0.05, "min_delta": 1.5}, r"min_delta must be", id="min-delta-above-1"),
    pytest.param({"alpha": 0.05, "min_delta": -1.01}, r"min_delta must be", id="min-delta-below-minus-1"),
    pytest.param({"alpha": 0.05, "min_delta": "0.01"}, r"min_delta must be", id="min-delta-string"),
]


@pytest.mark.parametrize(("fields", "message"), INVALID_OPTIONS)
def test_invalid_policy_options_raise(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PolicyOptions(**fields)


@pytest.mark.parametrize(("fields", "message"), INVALID_OPTIONS)
def test_validate_policy_options_checks_look_alikes(fields: dict, message: str) -> None:
    # validate_policy_options also checks objects that bypassed PolicyOptions' own check.
    class Options:
        alpha = 0.05
        primary_metric = "accuracy"
        tie_breaker = None
        min_delta = None

    options = Options()
    for name, value in fields.items():
        setattr(options, name, value)
    with pytest.raises(ValueError, match=message):
        validate_policy_options(options)


@pytest.mark.parametrize(
    "fields",
    [{"alpha": 0.05}, {"alpha": 1e-6, "min_delta": -1}, {"alpha": 0.999, "min_delta": 1},
     {"alpha": 0.1, "primary_metric": "error_cost", "tie_breaker": "accuracy", "min_delta": 0.0}],
)
def test_valid_policy_options(fields: dict) -> None:
    validate_policy_options(PolicyOptions(**fields))


@pytest.mark.parametrize(
    ("test", "champion", "challenger", "delta_ci", "options", "message"),
    [
        (_test(0.01), {"f1": 0.9}, {"accuracy": 0.9}, (0.0, 0.1), PolicyOptions(0.05), r"champion_metrics has no 'accuracy'"),
        (_test(0.01), {"accuracy": 0.9}, {"f1": 0.9}, (0.0, 0.1), PolicyOptions(0.05), r"challenger_metrics has no 'accuracy'"),
        (_test(0.01), {"accuracy": 0.9}, {"accuracy": 0.95}, (0.0, 0.1),
         PolicyOptions(0.05, tie_breaker="error_cost"), r"champion_metrics has no 'error_cost' \(error_cost exists for binary"),
        (_test(0.01), {"accuracy": math.nan}, {"accuracy": 0.9}, (0.0, 0.1), PolicyOptions(0.05),
         r"champion_metrics\['accuracy'\] must be a finite number"),
        (_test(0.01), {"accuracy": 0.9}, {"accuracy": 0.95}, (0.1, 0.0), PolicyOptions(0.05), r"lower bound 0.1 exceeds upper"),
        (_test(0.01), {"accuracy": 0.9}, {"accuracy": 0.95}, (math.nan, 0.1), PolicyOptions(0.05), r"two finite numbers"),
        (_test(0.01), {"accuracy": 0.9}, {"accuracy": 0.95}, (0.1,), PolicyOptions(0.05), r"\(lower, upper\) pair"),
        (_test(1.5), {"accuracy": 0.9}, {"accuracy": 0.95}, (0.0, 0.1), PolicyOptions(0.05), r"p_value must be a probability"),
        (_test(math.nan), {"accuracy": 0.9}, {"accuracy": 0.95}, (0.0, 0.1), PolicyOptions(0.05), r"p_value must be"),
    ],
)
def test_invalid_decide_input_raises(
    test: McNemarResult, champion: dict, challenger: dict, delta_ci: tuple, options: PolicyOptions, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        decide(test, champion, challenger, delta_ci, options)
