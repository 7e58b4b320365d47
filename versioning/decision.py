"""The promotion policy: whether a challenger replaces the champion, and why, in one sentence.

``decide`` is pure: it takes a McNemar result, both models' metrics and the interval for
Δaccuracy, and returns a ``Decision``. Promote iff

1. McNemar's p < alpha, and
2. the challenger is better on the primary metric (direction from ``METRIC_DIRECTIONS``; on an
   exact tie, within 1e-12, the tie-breaker metric decides if one is set; tied on both is not
   better), and
3. if ``min_delta`` is set, the interval's lower bound for Δaccuracy exceeds ``min_delta``.

Otherwise keep the champion; the reason names the first condition that failed, with the numbers.
The other decision names are for the orchestration, which records them without calling ``decide``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

# versioning.metrics and versioning.stats import scikit-learn, scipy.stats and mlxtend (seconds);
# they are imported where used, so that reading the decision names stays cheap (see
# promote.run's fast path).
if TYPE_CHECKING:
    from versioning.stats import McNemarResult

__all__ = [
    "BOOTSTRAP",
    "DECISIONS",
    "KEEP",
    "NO_CHALLENGER",
    "PROMOTE",
    "ROLLBACK",
    "SUPERSEDED",
    "TIE_TOLERANCE",
    "UNCHANGED",
    "Decision",
    "PolicyOptions",
    "decide",
    "validate_policy_options",
]

PROMOTE: Final = "promote"
KEEP: Final = "keep"
BOOTSTRAP: Final = "bootstrap"
NO_CHALLENGER: Final = "no_challenger"
SUPERSEDED: Final = "superseded"
UNCHANGED: Final = "unchanged"  # a decision is already recorded for this exact pair
ROLLBACK: Final = "rollback"
DECISIONS: Final[tuple[str, ...]] = (
    PROMOTE,
    KEEP,
    BOOTSTRAP,
    NO_CHALLENGER,
    SUPERSEDED,
    UNCHANGED,
    ROLLBACK,
)

# Metrics computed on the same rows are ratios of small integers; differences below this are
# floating-point noise, not a real difference between the models.
TIE_TOLERANCE: Final[float] = 1e-12


@dataclass(frozen=True)
class PolicyOptions:
    """How strict the gate is; validated on construction (see ``validate_policy_options``)."""

    alpha: float
    primary_metric: str = "accuracy"  # accuracy | f1 | precision | recall | error_cost
    tie_breaker: str | None = None  # another metric, consulted only when the primary metric ties
    min_delta: float | None = None  # if set: also require CI lower bound of Δaccuracy > min_delta

    def __post_init__(self) -> None:
        validate_policy_options(self)


@dataclass(frozen=True)
class Decision:
    """The gate's outcome and one sentence, with the numbers, that a registry reader understands."""

    decision: str
    reason: str


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def validate_policy_options(options: Any) -> None:
    """Raise ValueError naming the option if ``options`` (a PolicyOptions or look-alike) is invalid.

    alpha must be in (0, 1); primary_metric and tie_breaker must be supported metrics, with the
    tie_breaker different from the primary metric; min_delta must be finite and in [-1, 1].
    """
    alpha = getattr(options, "alpha", None)
    if not _is_real(alpha) or not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}; e.g. 0.05")
    from versioning.metrics import SUPPORTED_METRICS

    primary = getattr(options, "primary_metric", None)
    if primary not in SUPPORTED_METRICS:
        raise ValueError(
            f"primary_metric {primary!r} is not supported; "
            f"choose one of {', '.join(SUPPORTED_METRICS)}"
        )
    tie_breaker = getattr(options, "tie_breaker", None)
    if tie_breaker is not None:
        if tie_breaker not in SUPPORTED_METRICS:
            raise ValueError(
                f"tie_breaker {tie_breaker!r} is not supported; choose one of "
                f"{', '.join(SUPPORTED_METRICS)} or None"
            )
        if tie_breaker == primary:
            raise ValueError(
                f"tie_breaker must differ from primary_metric (both are {primary!r}); "
                "pick another metric or None"
            )
    min_delta = getattr(options, "min_delta", None)
    if min_delta is not None and not (
        _is_real(min_delta) and math.isfinite(float(min_delta)) and -1.0 <= float(min_delta) <= 1.0
    ):
        raise ValueError(f"min_delta must be None or a finite number in [-1, 1], got {min_delta!r}")


# --------------------------------------------------------------------------------------------
# Number formatting for reasons
# --------------------------------------------------------------------------------------------


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}g}"


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def _fmt_against(x: float, reference: float, digits: int) -> str:
    """Format ``x`` with at least ``digits`` significant digits, and as many more as it takes for
    the printed value to sit on the same side of ``reference`` as ``x`` itself.

    Otherwise a reason could print "p = 0.05 < alpha 0.05" for p = 0.04996.
    """
    while digits < 17 and _sign(float(_fmt(x, digits)) - reference) != _sign(x - reference):
        digits += 1
    return _fmt(x, digits)


def _fmt_values(challenger: float, champion: float) -> str:
    """'0.9635 vs 0.9005' (challenger first), with enough digits to show which is larger."""
    wanted = _sign(challenger - champion) if abs(challenger - champion) > TIE_TOLERANCE else 0
    digits = 4
    while digits < 17:
        if _sign(float(_fmt(challenger, digits)) - float(_fmt(champion, digits))) == wanted:
            break
        digits += 1
    return f"{_fmt(challenger, digits)} vs {_fmt(champion, digits)}"


def _fmt_metric(name: str, challenger: float, champion: float) -> str:
    """'accuracy 0.9635 vs 0.9005'; 'error_cost 0.05 vs 0.08 (lower is better)'."""
    from versioning.metrics import METRIC_DIRECTIONS

    note = " (lower is better)" if METRIC_DIRECTIONS[name] < 0 else ""
    return f"{name} {_fmt_values(challenger, champion)}{note}"


def _fmt_metric_parenthesized(name: str, challenger: float, champion: float) -> str:
    """'accuracy (0.91 vs 0.93)'; 'error_cost (0.2 vs 0.1, lower is better)'."""
    from versioning.metrics import METRIC_DIRECTIONS

    note = ", lower is better" if METRIC_DIRECTIONS[name] < 0 else ""
    return f"{name} ({_fmt_values(challenger, champion)}{note})"


def _fmt_p(test: McNemarResult, alpha: float) -> str:
    """'McNemar exact p = 0.003 < alpha 0.05' (or '≥')."""
    p_value = float(test.p_value)
    relation = "<" if p_value < alpha else "≥"
    return f"McNemar {test.method} p = {_fmt_against(p_value, alpha, 2)} {relation} alpha {alpha:g}"


# --------------------------------------------------------------------------------------------
# Policy
# --------------------------------------------------------------------------------------------


def _metric(metrics: Mapping[str, float], name: str, role: str) -> float:
    if name not in metrics:
        hint = " (error_cost exists for binary labels only)" if name == "error_cost" else ""
        raise ValueError(
            f"{role}_metrics has no {name!r}{hint}; compute it or change the policy's metric"
        )
    value = metrics[name]
    if not _is_real(value) or not math.isfinite(float(value)):
        raise ValueError(f"{role}_metrics[{name!r}] must be a finite number, got {value!r}")
    return float(value)


def _compare(name: str, challenger: float, champion: float) -> int:
    """+1 if the challenger is better on ``name``, -1 if worse, 0 if tied within TIE_TOLERANCE."""
    from versioning.metrics import METRIC_DIRECTIONS

    difference = (challenger - champion) * METRIC_DIRECTIONS[name]
    if abs(difference) <= TIE_TOLERANCE:
        return 0
    return 1 if difference > 0 else -1


def _validate_inputs(test: Any, delta_ci: Any) -> tuple[float, float]:
    p_value = getattr(test, "p_value", None)
    if not _is_real(p_value) or not 0.0 <= float(p_value) <= 1.0:
        raise ValueError(f"test.p_value must be a probability in [0, 1], got {p_value!r}")
    if not isinstance(getattr(test, "method", None), str):
        raise ValueError("test must be a McNemarResult from versioning.stats.mcnemar_test")
    try:
        lower, upper = delta_ci
    except (TypeError, ValueError) as error:
        raise ValueError(f"delta_ci must be a (lower, upper) pair, got {delta_ci!r}") from error
    if not (_is_real(lower) and _is_real(upper) and math.isfinite(lower) and math.isfinite(upper)):
        raise ValueError(f"delta_ci must hold two finite numbers, got {delta_ci!r}")
    if lower > upper:
        raise ValueError(
            f"delta_ci lower bound {lower} exceeds upper bound {upper}; pass (lower, upper)"
        )
    return float(lower), float(upper)


def decide(
    test: McNemarResult,
    champion_metrics: Mapping[str, float],
    challenger_metrics: Mapping[str, float],
    delta_ci: tuple[float, float],
    options: PolicyOptions,
) -> Decision:
    """Apply the promotion policy (see the module docstring) and explain the outcome."""
    validate_policy_options(options)
    lower, _ = _validate_inputs(test, delta_ci)
    alpha = float(options.alpha)
    primary = options.primary_metric
    tie_breaker = options.tie_breaker
    champion_primary = _metric(champion_metrics, primary, "champion")
    challenger_primary = _metric(challenger_metrics, primary, "challenger")
    # Check the tie-breaker up front so a misconfigured policy fails on every run, not only on ties.
    if tie_breaker is not None:
        champion_tie = _metric(champion_metrics, tie_breaker, "champion")
        challenger_tie = _metric(challenger_metrics, tie_breaker, "challenger")

    p_text = _fmt_p(test, alpha)
    if not test.p_value < alpha:
        discordant = test.b + test.c
        detail = (
            "both models are right on exactly the same rows, b + c = 0"
            if discordant == 0
            else f"b = {test.b}, c = {test.c}"
        )
        return Decision(
            KEEP, f"Kept the champion: the difference is not significant ({p_text}; {detail})."
        )

    significant = f"the difference is significant ({p_text})"
    comparison = _compare(primary, challenger_primary, champion_primary)
    if comparison == 0:
        tied_text = f"the challenger ties the champion on {primary} ({_fmt(challenger_primary, 4)})"
        if tie_breaker is None:
            return Decision(
                KEEP,
                f"Kept the champion: {significant} but {tied_text} and no tie_breaker is set.",
            )
        comparison = _compare(tie_breaker, challenger_tie, champion_tie)
        if comparison == 0:
            return Decision(
                KEEP,
                f"Kept the champion: {significant} but {tied_text} "
                f"and on the tie-breaker {tie_breaker} ({_fmt(challenger_tie, 4)}).",
            )
        if comparison < 0:
            return Decision(
                KEEP,
                f"Kept the champion: {significant} but {tied_text} and is worse on the tie-breaker "
                f"{_fmt_metric_parenthesized(tie_breaker, challenger_tie, champion_tie)}.",
            )
        better_text = (
            f"{primary} tied at {_fmt(challenger_primary, 4)}, "
            f"tie-breaker {_fmt_metric(tie_breaker, challenger_tie, champion_tie)}"
        )
    elif comparison < 0:
        return Decision(
            KEEP,
            f"Kept the champion: {significant} but the challenger is worse on "
            f"{_fmt_metric_parenthesized(primary, challenger_primary, champion_primary)}.",
        )
    else:
        better_text = _fmt_metric(primary, challenger_primary, champion_primary)

    min_delta = options.min_delta
    if min_delta is not None:
        min_delta = float(min_delta)
        min_delta_text = f"{min_delta:g}"
        lower_text = _fmt_against(lower, min_delta, 2)
        if not lower > min_delta:
            return Decision(
                KEEP,
                f"Kept the champion: {significant} and the challenger is better ({better_text}) "
                f"but the lower bound of the interval for Δaccuracy ({lower_text}) "
                f"does not exceed min_delta {min_delta_text}.",
            )
        return Decision(
            PROMOTE,
            f"Promoted the challenger: {better_text}, {p_text} and the lower bound of the interval "
            f"for Δaccuracy ({lower_text}) exceeds min_delta {min_delta_text}.",
        )
    return Decision(PROMOTE, f"Promoted the challenger: {better_text} and {p_text}.")
