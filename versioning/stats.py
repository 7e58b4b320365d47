"""Paired significance statistics for comparing a champion and a challenger classifier.

Everything here is a pure function of arrays or of a 2x2 contingency table in mlxtend's layout::

    [[a, b],      a: both right            b: champion right, challenger wrong
     [c, d]]      c: champion wrong, challenger right   d: both wrong

* ``contingency_table`` builds the table from labels (vectorized; tables of chunks can be summed).
* ``mcnemar_test`` / ``all_p_values`` run McNemar's test (exact, mid-p, corrected, asymptotic).
* ``accuracy_difference_ci`` gives a confidence interval for
  Δ = accuracy(challenger) − accuracy(champion) = (c − b) / n.

The p-values of the exact, corrected and asymptotic methods are computed through
``mlxtend.evaluate.mcnemar``, but only after the table has been validated and converted to exact
Python integers, and with the cases mlxtend gets wrong handled here (see ``_p_value``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from scipy.stats import binom, norm


def _mlxtend_mcnemar(table: np.ndarray, **options: bool) -> tuple[float | None, float]:
    """``mlxtend.evaluate.mcnemar``, imported on first use: the package imports matplotlib
    and its plotting helpers (~0.6 s), which a training step (scoring only) need not pay."""
    from mlxtend.evaluate import mcnemar

    return mcnemar(table, **options)


__all__ = [
    "AUTO_EXACT_BELOW",
    "CI_METHODS",
    "MCNEMAR_METHODS",
    "McNemarResult",
    "accuracy_difference_ci",
    "all_p_values",
    "contingency_table",
    "mcnemar_test",
]

MCNEMAR_METHODS: Final[tuple[str, ...]] = ("auto", "exact", "midp", "corrected", "asymptotic")
CI_METHODS: Final[tuple[str, ...]] = ("newcombe", "wald")

# "auto" uses the exact test below this many discordant pairs: the usual rule of thumb (also
# mlxtend's documentation) for when the chi-square approximation becomes adequate.
AUTO_EXACT_BELOW: Final[int] = 25

# Counts are handed to mlxtend/scipy as float64; up to 2**53 every integer is exact there, and the
# total also fits comfortably in int64 for the returned arrays.
_MAX_TOTAL: Final[int] = 2**53


@dataclass(frozen=True)
class McNemarResult:
    """Outcome of McNemar's test on one contingency table.

    ``statistic`` is the chi-square statistic for "corrected" and "asymptotic" and ``None`` for
    "exact" and "midp", which have no test statistic. ``method`` is the method actually used
    (never "auto"). ``b`` and ``c`` are the discordant counts the test is based on.
    """

    statistic: float | None
    p_value: float
    method: str
    b: int
    c: int


# --------------------------------------------------------------------------------------------
# Contingency table from labels
# --------------------------------------------------------------------------------------------


def _label_kind(name: str, arr: np.ndarray) -> str:
    """Classify a label array as "numeric", "str" or "bytes", rejecting missing labels."""
    kind = arr.dtype.kind
    if kind in "biu":
        return "numeric"
    if kind == "f":
        if np.isnan(arr).any():
            raise ValueError(f"{name} contains NaN labels; drop or impute those rows first")
        return "numeric"
    if kind == "U":
        return "str"
    if kind == "S":
        return "bytes"
    if kind != "O":
        raise ValueError(
            f"{name} has unsupported label dtype {arr.dtype}; "
            "use integer, float, bool or string labels"
        )
    # Object arrays (e.g. from pandas) are classified by the Python types they hold; map(type) over
    # a list is far cheaper than per-element isinstance checks in a Python loop.
    items = arr.tolist()
    kinds: set[str] = set()
    has_float = False
    for typ in set(map(type, items)):
        if typ is type(None):
            raise ValueError(f"{name} contains None labels; drop or impute those rows first")
        if issubclass(typ, str):
            kinds.add("str")
        elif issubclass(typ, bytes):
            kinds.add("bytes")
        elif issubclass(typ, (numbers.Real, np.bool_)):
            kinds.add("numeric")
            has_float = has_float or not issubclass(typ, (numbers.Integral, np.bool_))
        else:
            raise ValueError(
                f"{name} contains labels of unsupported type {typ.__name__}; use integer, float, "
                "bool or string labels"
            )
    if len(kinds) > 1:
        raise ValueError(
            f"{name} mixes label types ({', '.join(sorted(kinds))}); convert all labels to one type"
        )
    # NaN never equals itself, so a NaN label would silently count as a wrong prediction.
    if has_float and any(x != x for x in items):
        raise ValueError(f"{name} contains NaN labels; drop or impute those rows first")
    return kinds.pop()


def _as_label_arrays(**named: Any) -> list[np.ndarray]:
    """Validate 1-D, equal-length, non-empty label arrays of one comparable type.

    Returns the arrays as numpy arrays, in the order given. Object arrays (e.g. pandas string
    columns) are kept as they are: numpy compares them with fixed-width string arrays correctly,
    and converting 10^7 strings would cost more than the comparison itself.
    """
    arrays: list[np.ndarray] = []
    kinds: list[str] = []
    for name, values in named.items():
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise ValueError(
                f"{name} must be 1-D (one label per row), got shape {arr.shape}; "
                "flatten it with .ravel()"
            )
        if arr.shape[0] == 0:
            raise ValueError(f"{name} is empty; at least one row is needed")
        arrays.append(arr)
        kinds.append(_label_kind(name, arr))
    names = list(named)
    lengths = [arr.shape[0] for arr in arrays]
    if len(set(lengths)) > 1:
        detail = ", ".join(f"{name} has {length}" for name, length in zip(names, lengths))
        raise ValueError(
            f"label arrays have different lengths ({detail}); pass one label per row in each"
        )
    if len(set(kinds)) > 1:
        detail = ", ".join(f"{name} holds {kind} labels" for name, kind in zip(names, kinds))
        # mlxtend compares such arrays without complaint and counts every row as wrong.
        raise ValueError(f"label types are not comparable ({detail}); convert them to one type")
    return arrays


def contingency_table(y_true: Any, y_champion: Any, y_challenger: Any) -> np.ndarray:
    """Return the 2x2 McNemar table ``[[a, b], [c, d]]`` (int64) for champion vs challenger.

    A row counts as right for a model when its prediction equals the true label, so multi-class
    and string labels work. The result equals
    ``mlxtend.evaluate.mcnemar_table(y_target=y_true, y_model1=y_champion, y_model2=y_challenger)``
    on valid input, but inputs are validated first: 1-D, equal lengths, non-empty, no None/NaN
    labels, and label types that can be compared (strings are never compared with numbers).
    Tables of chunks of rows can be summed.
    """
    y_true_arr, champion_arr, challenger_arr = _as_label_arrays(
        y_true=y_true, y_champion=y_champion, y_challenger=y_challenger
    )
    champion_right = y_true_arr == champion_arr
    challenger_right = y_true_arr == challenger_arr
    n = int(y_true_arr.shape[0])
    n_champion = int(np.count_nonzero(champion_right))
    n_challenger = int(np.count_nonzero(challenger_right))
    # One AND and three popcounts instead of four masks keeps 10^7-row chunks cheap.
    both = int(np.count_nonzero(champion_right & challenger_right))
    b = n_champion - both
    c = n_challenger - both
    d = n - both - b - c
    return np.array([[both, b], [c, d]], dtype=np.int64)


# --------------------------------------------------------------------------------------------
# McNemar's test
# --------------------------------------------------------------------------------------------


def _count(value: Any) -> int:
    """Convert one table cell to an exact Python int, or raise ValueError."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError("table must hold counts, got a boolean cell; pass integer counts")
    if isinstance(value, numbers.Integral):
        count = int(value)
    elif isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"table contains a non-finite count ({number}); pass finite counts")
        if not number.is_integer():
            raise ValueError(f"table contains a non-integer count ({number}); pass whole numbers")
        count = int(number)
    else:
        raise ValueError(
            f"table contains a non-numeric cell ({value!r}); pass a 2x2 array of integer counts"
        )
    if count < 0:
        raise ValueError(f"table contains a negative count ({count}); counts must be >= 0")
    return count


def _table_counts(table: Any) -> tuple[int, int, int, int]:
    """Validate a 2x2 count table and return (a, b, c, d) as exact Python ints.

    Converting to Python ints before any arithmetic matters: mlxtend computes ``b - c`` and
    ``b + c`` in the table's own dtype, which wraps around silently for unsigned or small integer
    dtypes (e.g. uint8 [[0, 10], [200, 0]]) and returns a wrong p-value.
    """
    arr = np.asarray(table, dtype=object) if isinstance(table, (list, tuple)) else np.asarray(table)
    if arr.shape != (2, 2):
        raise ValueError(f"table must have shape (2, 2), got {arr.shape}; pass [[a, b], [c, d]]")
    if arr.dtype.kind not in "iufO":
        raise ValueError(f"table has dtype {arr.dtype}; pass a 2x2 array of integer counts")
    a, b, c, d = (_count(value) for value in arr.ravel().tolist())
    total = a + b + c + d
    if total > _MAX_TOTAL:
        raise ValueError(
            f"table total {total} exceeds 2**53 and cannot be handled exactly; check the counts"
        )
    return a, b, c, d


def _check_mcnemar_method(method: Any) -> str:
    if not isinstance(method, str) or method not in MCNEMAR_METHODS:
        raise ValueError(
            f"unknown McNemar method {method!r}; choose one of {', '.join(MCNEMAR_METHODS)}"
        )
    return method


def _resolve_method(method: str, b: int, c: int) -> str:
    if method != "auto":
        return method
    return "exact" if b + c < AUTO_EXACT_BELOW else "corrected"


def _clip_probability(p: float) -> float:
    return min(1.0, max(0.0, float(p)))


def _p_value(a: int, b: int, c: int, d: int, method: str) -> tuple[float | None, float]:
    """(statistic, p-value) of one resolved method on validated counts."""
    chi_square = method in ("corrected", "asymptotic")
    if b + c == 0:
        # No discordant pairs is no evidence of a difference; mlxtend would divide by zero and
        # return chi2 = inf, p = 0 (the strongest possible evidence) instead.
        return (0.0 if chi_square else None), 1.0
    if method == "corrected" and b == c:
        # (|b - c| - 1)^2 / (b + c) would be 1 / (b + c) > 0 here: the correction overshoots zero
        # and makes the corrected p smaller than the uncorrected p = 1. Like R's mcnemar.test, apply
        # the correction only when b != c. (mlxtend and statsmodels do return 1 / (b + c) here.)
        return 0.0, 1.0
    # float64 is exact for the validated counts (total <= 2**53) and cannot wrap around.
    counts = np.array([[a, b], [c, d]], dtype=np.float64)
    if method == "midp":
        # mlxtend has no mid-p; build it from mlxtend's exact p (Fagerland, Lydersen & Laake 2013).
        n = b + c
        if b == c:
            return None, _clip_probability(1.0 - 0.5 * float(binom.pmf(b, n, 0.5)))
        _, exact_p = _mlxtend_mcnemar(counts, exact=True)
        # exact_p = 2 * P(X <= k) >= 2 * P(X = k), so this subtraction loses no relative precision.
        return None, _clip_probability(float(exact_p) - float(binom.pmf(min(b, c), n, 0.5)))
    # mlxtend's exact path is 2 * scipy.stats.binom.cdf(min(b, c), b + c, 0.5) (capped at 1): a
    # regularized incomplete beta, which the test suite checks to 1e-9 relative against
    # independent computations up to b + c = 10^6 and which takes well under 1 ms even at 10^12.
    statistic, p = _mlxtend_mcnemar(
        counts, corrected=(method == "corrected"), exact=(method == "exact")
    )
    return (None if statistic is None else float(statistic)), _clip_probability(p)


def mcnemar_test(table: Any, method: str = "auto") -> McNemarResult:
    """McNemar's test on a 2x2 table ``[[a, b], [c, d]]`` (mlxtend layout).

    Methods:
        ``exact``: two-sided exact binomial test of b ~ Binomial(b + c, 1/2)
            (mlxtend ``exact=True``).
        ``midp``: mid-p McNemar (Fagerland, Lydersen & Laake 2013): exact p − P(X = min(b, c));
            for b == c, 1 − P(X = b) / 2.
        ``corrected``: chi-square (|b − c| − 1)² / (b + c), 1 df (mlxtend ``corrected=True``);
            when b == c the correction is not applied (statistic 0, p = 1), as in R's mcnemar.test.
        ``asymptotic``: chi-square (b − c)² / (b + c), 1 df (mlxtend ``corrected=False``).
        ``auto`` (default): ``exact`` when b + c < 25, else ``corrected``.

    With b + c = 0 (both models right on exactly the same rows) every method returns p = 1.0 and
    statistic 0.0 ("corrected", "asymptotic") or None ("exact", "midp", which have no statistic).
    p-values are clipped to [0, 1].
    """
    method = _check_mcnemar_method(method)
    a, b, c, d = _table_counts(table)
    resolved = _resolve_method(method, b, c)
    statistic, p_value = _p_value(a, b, c, d, resolved)
    return McNemarResult(statistic=statistic, p_value=p_value, method=resolved, b=b, c=c)


def all_p_values(table: Any) -> dict[str, float]:
    """p-values of all four McNemar methods (exact, midp, corrected, asymptotic) for one table."""
    a, b, c, d = _table_counts(table)
    return {
        method: _p_value(a, b, c, d, method)[1]
        for method in ("exact", "midp", "corrected", "asymptotic")
    }


# --------------------------------------------------------------------------------------------
# Confidence interval for the accuracy difference
# --------------------------------------------------------------------------------------------


def _wilson_interval(successes: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval for one binomial proportion."""
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denominator
    half_width = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denominator
    return centre - half_width, centre + half_width


def _newcombe_interval(a: int, b: int, c: int, d: int, z: float) -> tuple[float, float]:
    """Newcombe (1998) method 10 for p_challenger − p_champion = (c − b) / n."""
    n = a + b + c + d
    # Proportion 1 is the challenger (right in cells a and c), proportion 2 the champion (a and b):
    # the interval is then directly for Δ, with no negation and swapping of ends.
    right_1, wrong_1 = a + c, b + d
    right_2, wrong_2 = a + b, c + d
    p1, p2 = right_1 / n, right_2 / n
    l1, u1 = _wilson_interval(right_1, n, z)
    l2, u2 = _wilson_interval(right_2, n, z)
    # Newcombe's correlation estimate with its continuity correction (as in Fagerland et al.'s
    # contingencytables): ad − bc shrunk by n/2 towards 0 when positive; 0 when a margin is empty.
    margins = right_1 * wrong_1 * right_2 * wrong_2
    if margins == 0:
        phi = 0.0
    else:
        cross = a * d - b * c
        if cross > n / 2:
            shrunk = cross - n / 2
        elif cross >= 0:
            shrunk = 0.0
        else:
            shrunk = float(cross)
        phi = shrunk / math.sqrt(margins)
    estimate = p1 - p2
    below = max(0.0, (p1 - l1) ** 2 - 2.0 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    above = max(0.0, (u1 - p1) ** 2 - 2.0 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    return estimate - math.sqrt(below), estimate + math.sqrt(above)


def _wald_interval(a: int, b: int, c: int, d: int, z: float) -> tuple[float, float]:
    n = a + b + c + d
    estimate = (c - b) / n
    # Exact integer arithmetic for (b + c) − (c − b)² / n avoids cancellation on huge tables.
    variance_times_n2 = max(0.0, (b + c) - (c - b) ** 2 / n)
    half_width = z * math.sqrt(variance_times_n2) / n
    return estimate - half_width, estimate + half_width


def accuracy_difference_ci(
    table: Any, confidence: float = 0.95, method: str = "newcombe"
) -> tuple[float, float]:
    """Confidence interval for Δ = accuracy(challenger) − accuracy(champion) = (c − b) / n.

    ``newcombe``: Newcombe's (1998) hybrid score interval for paired proportions (method 10:
    Wilson score intervals of both accuracies combined with the continuity-corrected phi
    correlation; phi = 0 when a margin of the table is empty).
    ``wald``: (c − b)/n ± z·sqrt((b + c) − (c − b)²/n)/n; of zero width when b + c = 0.
    Both ends are clipped to [−1, 1].
    """
    if isinstance(confidence, (bool, np.bool_)) or not isinstance(confidence, numbers.Real):
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    level = float(confidence)
    if not 0.0 < level < 1.0:  # also rejects NaN
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}; e.g. 0.95 for 95%")
    if not isinstance(method, str) or method not in CI_METHODS:
        raise ValueError(
            f"unknown interval method {method!r}; choose one of {', '.join(CI_METHODS)}"
        )
    a, b, c, d = _table_counts(table)
    if a + b + c + d == 0:
        raise ValueError("table is empty (all counts are 0); the interval needs at least one row")
    z = float(norm.ppf(0.5 + level / 2.0))
    lower, upper = (_newcombe_interval if method == "newcombe" else _wald_interval)(a, b, c, d, z)
    return max(-1.0, lower), min(1.0, upper)
