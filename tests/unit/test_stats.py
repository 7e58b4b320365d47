"""Tests for versioning.stats against independent computations and published values.

Expected values never come from the code under test. They come from scipy (binomtest, binom,
chi2), statsmodels' mcnemar, exact rational arithmetic (fractions + math.comb), and the values
published by Fagerland, Lydersen & Laake (2013), as collected in
/work/shared/reference/mcnemar-published-values.md.

Tolerances: p-values are compared with a relative tolerance of 1e-9 (``REL``); the absolute
tolerance ``ABS`` = 1e-300 only lets values that underflow into subnormal floats (where relative
precision is lost by any implementation) compare as equal, so it never loosens a p-value of
practical size. Published values are compared to the precision they are published with.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from mlxtend.evaluate import mcnemar as mlxtend_mcnemar
from mlxtend.evaluate import mcnemar_table as mlxtend_mcnemar_table
from scipy.stats import binom, binomtest, chi2, norm
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from versioning.stats import (
    McNemarResult,
    accuracy_difference_ci,
    all_p_values,
    contingency_table,
    mcnemar_test,
)

REL = 1e-9
ABS = 1e-300
METHODS = ("exact", "midp", "corrected", "asymptotic")

# (a, b, c, d): b + c from 0 and 1 up to 10^6, balanced and very unbalanced.
TABLES = [
    (10, 0, 0, 5),
    (3, 1, 0, 0),
    (0, 0, 1, 0),
    (7, 1, 1, 2),
    (4, 2, 0, 4),
    (3, 3, 2, 2),
    (59, 6, 16, 80),
    (1, 1, 7, 12),
    (20, 5, 5, 1),
    (50, 12, 0, 3),
    (100, 10, 14, 9),
    (80, 13, 12, 4),
    (900, 0, 25, 75),
    (500, 30, 10, 60),
    (700, 40, 40, 20),
    (8000, 100, 150, 50),
    (90000, 1000, 1100, 400),
    (10**5, 5000, 4800, 2000),
    (10**6, 12345, 12000, 777),
    (1234, 0, 1000, 0),
    (10**6, 250000, 250300, 10**5),
    (0, 499000, 501000, 0),
    (10**7, 495000, 505000, 3),
    (5, 499999, 500001, 5),
    (0, 500000, 500000, 0),
    (1, 1, 999999, 1),
]
TABLE_IDS = [f"b={t[1]},c={t[2]}" for t in TABLES]


def _table(a: int, b: int, c: int, d: int) -> np.ndarray:
    return np.array([[a, b], [c, d]], dtype=np.int64)


def _independent_p(b: int, c: int, method: str) -> float:
    """p-value from scipy only (no mlxtend, no code under test)."""
    n = b + c
    if n == 0:
        return 1.0  # no discordant pairs: no evidence (by definition, see mcnemar_test)
    k = min(b, c)
    if method == "exact":
        return binomtest(k, n, 0.5).pvalue
    if method == "midp":
        if b == c:
            return 1.0 - 0.5 * binom.pmf(b, n, 0.5)
        return binomtest(k, n, 0.5).pvalue - binom.pmf(k, n, 0.5)
    if method == "corrected":
        # R's mcnemar.test convention: no continuity correction when b == c.
        return chi2.sf(max(abs(b - c) - 1, 0) ** 2 / n, 1)
    return chi2.sf((b - c) ** 2 / n, 1)


def _rational_p(b: int, c: int, method: str) -> Fraction:
    """Exact p-value as a fraction (exact and mid-p only), from integer binomial coefficients."""
    n, k = b + c, min(b, c)
    if n == 0:
        return Fraction(1)
    if b == c:
        return Fraction(1) if method == "exact" else 1 - Fraction(math.comb(n, b), 2 ** (n + 1))
    exact = min(Fraction(1), Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2 ** (n - 1)))
    return exact if method == "exact" else exact - Fraction(math.comb(n, k), 2**n)


def _ratio_sum_exact_p(b: int, c: int) -> float:
    """Two-sided exact p = 2·P(X <= k) summed term by term from P(X = k) with pmf ratios.

    An implementation independent of the incomplete-beta CDF that mlxtend and scipy's binomtest
    rely on: P(X = i - 1) / P(X = i) = i / (n - i + 1).
    """
    n, k = b + c, min(b, c)
    if b == c:
        return 1.0
    total, term = 1.0, 1.0
    for i in range(k, 0, -1):
        term *= i / (n - i + 1)
        total += term
        if term < 1e-18 * total:
            break
    return min(1.0, 2.0 * float(binom.pmf(k, n, 0.5)) * total)


# --------------------------------------------------------------------------------------------
# 1. Every method against independent computations
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("a", "b", "c", "d"), TABLES, ids=TABLE_IDS)
def test_p_value_matches_scipy(a: int, b: int, c: int, d: int, method: str) -> None:
    result = mcnemar_test(_table(a, b, c, d), method=method)
    assert result.p_value == pytest.approx(_independent_p(b, c, method), rel=REL, abs=ABS)
    assert (result.method, result.b, result.c) == (method, b, c)


# statsmodels differs by design where b + c = 0 (it returns nan or p = 1 without a statistic)
# and, for "corrected", where b == c; both cases have dedicated tests below.
STATSMODELS_CASES = [
    pytest.param(*table, method, exact, correction, id=f"{method}-{table_id}")
    for method, exact, correction in [
        ("exact", True, False),
        ("corrected", False, True),
        ("asymptotic", False, False),
    ]
    for table, table_id in zip(TABLES, TABLE_IDS)
    if table[1] + table[2] > 0 and not (method == "corrected" and table[1] == table[2])
]


@pytest.mark.parametrize(("a", "b", "c", "d", "method", "exact", "correction"), STATSMODELS_CASES)
def test_p_value_and_statistic_match_statsmodels(
    a: int, b: int, c: int, d: int, method: str, exact: bool, correction: bool
) -> None:
    expected = sm_mcnemar(_table(a, b, c, d), exact=exact, correction=correction)
    result = mcnemar_test(_table(a, b, c, d), method=method)
    assert result.p_value == pytest.approx(expected.pvalue, rel=REL, abs=ABS)
    if exact:
        assert result.statistic is None  # statsmodels reports min(b, c) instead; no chi-square here
    else:
        assert result.statistic == pytest.approx(expected.statistic, rel=REL)


@pytest.mark.parametrize("method", ["exact", "midp"])
@pytest.mark.parametrize(
    ("b", "c"),
    [(0, 0), (1, 0), (1, 1), (3, 2), (6, 16), (1, 7), (5, 5), (12, 0), (13, 12), (0, 25), (30, 10),
     (40, 40), (100, 150), (1000, 1100), (970, 1030)],
)
def test_exact_and_midp_match_rational_arithmetic(b: int, c: int, method: str) -> None:
    expected = _rational_p(b, c, method)
    assert mcnemar_test(_table(5, b, c, 5), method=method).p_value == pytest.approx(
        float(expected), rel=1e-12
    )


@pytest.mark.parametrize(
    ("b", "c"),
    [(6, 16), (1000, 1100), (12345, 12000), (49000, 51000), (499000, 501000), (495000, 505000),
     (499999, 500001), (480000, 520000), (300000, 700000)],
)
def test_mlxtend_exact_is_accurate_at_large_n(b: int, c: int) -> None:
    # Guards the decision to use mlxtend's exact path for every n (it is a closed-form incomplete
    # beta, not a sum): checked against a term-by-term sum to 1e-9 relative up to b + c = 10^6.
    expected = _ratio_sum_exact_p(b, c)
    _, mlxtend_p = mlxtend_mcnemar(_table(0, b, c, 0), exact=True)
    assert mlxtend_p == pytest.approx(expected, rel=REL, abs=ABS)
    result = mcnemar_test(_table(0, b, c, 0), method="exact")
    assert result.p_value == pytest.approx(expected, rel=REL, abs=ABS)


@pytest.mark.parametrize("method", METHODS)
def test_no_discordant_pairs_gives_p_one(method: str) -> None:
    result = mcnemar_test(_table(40, 0, 0, 7), method=method)
    assert result.p_value == 1.0
    assert result.statistic == (0.0 if method in ("corrected", "asymptotic") else None)
    # mlxtend alone divides by zero there and reports the strongest possible evidence.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        statistic, p = mlxtend_mcnemar(_table(40, 0, 0, 7))
    assert (statistic, p) == (math.inf, 0.0)


@pytest.mark.parametrize(("b", "c"), [(1, 1), (5, 5), (13, 13), (40, 40), (500000, 500000)])
def test_corrected_applies_no_correction_when_b_equals_c(b: int, c: int) -> None:
    # (|b - c| - 1)^2 / (b + c) = 1 / (b + c) would make the corrected p smaller than the
    # uncorrected p = 1; like R's mcnemar.test we use statistic 0, p = 1. statsmodels (and mlxtend)
    # use the formula literally, so they differ here.
    result = mcnemar_test(_table(3, b, c, 3), method="corrected")
    assert (result.statistic, result.p_value) == (0.0, 1.0)
    literal = sm_mcnemar(_table(3, b, c, 3), exact=False, correction=True)
    assert literal.statistic == pytest.approx(1 / (b + c), rel=REL)
    assert literal.pvalue < 1.0


@pytest.mark.parametrize(("a", "b", "c", "d"), TABLES, ids=TABLE_IDS)
def test_corrected_is_never_less_conservative_than_asymptotic(
    a: int, b: int, c: int, d: int
) -> None:
    table = _table(a, b, c, d)
    assert mcnemar_test(table, "corrected").p_value >= mcnemar_test(table, "asymptotic").p_value


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [(0, 0, "exact"), (1, 0, "exact"), (12, 12, "exact"), (24, 0, "exact"), (20, 4, "exact"),
     (25, 0, "corrected"), (13, 12, "corrected"), (6, 16, "exact"), (500, 400, "corrected")],
)
def test_auto_picks_exact_below_25_discordant_pairs(b: int, c: int, expected: str) -> None:
    result = mcnemar_test(_table(9, b, c, 9))
    assert result.method == expected
    assert result.p_value == pytest.approx(_independent_p(b, c, expected), rel=REL, abs=ABS)


@pytest.mark.parametrize(("a", "b", "c", "d"), TABLES, ids=TABLE_IDS)
def test_all_p_values_lists_every_method(a: int, b: int, c: int, d: int) -> None:
    p_values = all_p_values(_table(a, b, c, d))
    assert set(p_values) == set(METHODS)
    for method in METHODS:
        assert p_values[method] == pytest.approx(_independent_p(b, c, method), rel=REL, abs=ABS)
        assert 0.0 <= p_values[method] <= 1.0


def test_result_is_a_frozen_dataclass() -> None:
    result = mcnemar_test([[59, 6], [16, 80]], method="asymptotic")
    assert isinstance(result, McNemarResult)
    assert isinstance(result.statistic, float) and isinstance(result.p_value, float)
    assert isinstance(result.b, int) and isinstance(result.c, int)
    with pytest.raises(AttributeError):
        result.p_value = 0.5  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# 2. Published values (Fagerland, Lydersen & Laake 2013)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "method", "published", "decimals"),
    [
        ([[59, 6], [16, 80]], "asymptotic", 0.033006, 6),
        ([[59, 6], [16, 80]], "corrected", 0.055009, 6),
        ([[59, 6], [16, 80]], "exact", 0.052479, 6),
        ([[59, 6], [16, 80]], "midp", 0.034690, 6),
        ([[1, 1], [7, 12]], "exact", 0.0703125, 7),
        ([[1, 1], [7, 12]], "midp", 0.0390625, 7),
    ],
)
def test_published_p_values(
    table: list[list[int]], method: str, published: float, decimals: int
) -> None:
    assert round(mcnemar_test(table, method=method).p_value, decimals) == published


@pytest.mark.parametrize(
    ("method", "published_b_minus_c"),
    [("wald", (-0.1184, -0.0058)), ("newcombe", (-0.1186, -0.0046))],
)
def test_published_cavo_intervals(method: str, published_b_minus_c: tuple[float, float]) -> None:
    # Published for (b - c)/n; our Δ = (c - b)/n, so negate and swap the ends.
    expected = (-published_b_minus_c[1], -published_b_minus_c[0])
    lower, upper = accuracy_difference_ci([[59, 6], [16, 80]], confidence=0.95, method=method)
    assert (round(lower, 4), round(upper, 4)) == expected


# --------------------------------------------------------------------------------------------
# 3. The blog-post example (10 rows)
# --------------------------------------------------------------------------------------------

BLOG_ROWS = "A/A/B A/A/A B/A/A A/A/B A/B/B B/B/A B/A/B B/B/B A/A/A A/B/A".split()
BLOG_TRUE, BLOG_CHAMPION, BLOG_CHALLENGER = (
    np.array(column) for column in zip(*(row.split("/") for row in BLOG_ROWS))
)


def test_blog_example_table_and_accuracies() -> None:
    assert np.mean(BLOG_TRUE == BLOG_CHAMPION) == 0.6
    assert np.mean(BLOG_TRUE == BLOG_CHALLENGER) == 0.5
    table = contingency_table(BLOG_TRUE, BLOG_CHAMPION, BLOG_CHALLENGER)
    np.testing.assert_array_equal(table, [[3, 3], [2, 2]])
    assert table.dtype == np.int64


@pytest.mark.parametrize(
    ("method", "statistic", "p_value"),
    [
        ("exact", None, 1.0),  # 2·P(X <= 2 | n = 5) = 2·16/32, capped at 1
        ("midp", None, 1.0 - 10 / 32),  # 1 - P(X = 2 | n = 5) = 22/32
        ("corrected", 0.0, 1.0),  # (|3 - 2| - 1)^2 / 5 = 0
        ("asymptotic", 0.2, float(chi2.sf(0.2, 1))),  # (3 - 2)^2 / 5
        ("auto", None, 1.0),  # b + c = 5 < 25: exact
    ],
)
def test_blog_example_p_values(method: str, statistic: float | None, p_value: float) -> None:
    table = contingency_table(BLOG_TRUE, BLOG_CHAMPION, BLOG_CHALLENGER)
    result = mcnemar_test(table, method=method)
    assert (result.b, result.c) == (3, 2)
    assert result.p_value == pytest.approx(p_value, rel=1e-12)
    if statistic is None:
        assert result.statistic is None
    else:
        assert result.statistic == pytest.approx(statistic, rel=1e-12, abs=1e-15)


# --------------------------------------------------------------------------------------------
# contingency_table
# --------------------------------------------------------------------------------------------


def _labels(kind: str, seed: int, n: int = 997) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_classes = {"binary": 2, "multiclass": 5, "strings": 3, "object_strings": 4, "floats": 3}[kind]
    truth = rng.integers(0, n_classes, n)
    # Predictions right about 70% of the time, otherwise a random class.
    champion = np.where(rng.random(n) < 0.7, truth, rng.integers(0, n_classes, n))
    challenger = np.where(rng.random(n) < 0.75, truth, rng.integers(0, n_classes, n))
    if kind == "strings":
        names = np.array(["cat", "dog", "emu"])
        return names[truth], names[champion], names[challenger]
    if kind == "object_strings":
        names = np.array(["w", "x", "y", "z"], dtype=object)
        return names[truth], names[champion], np.array(names[challenger], dtype=str)
    if kind == "floats":
        return truth.astype(np.float64), champion, challenger.astype(np.float32)
    return truth, champion, challenger


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", ["binary", "multiclass", "strings", "object_strings", "floats"])
def test_contingency_table_equals_mlxtend(kind: str, seed: int) -> None:
    truth, champion, challenger = _labels(kind, seed)
    expected = mlxtend_mcnemar_table(y_target=truth, y_model1=champion, y_model2=challenger)
    table = contingency_table(truth, champion, challenger)
    np.testing.assert_array_equal(table, expected)
    assert table.dtype == np.int64 and table.shape == (2, 2)
    assert table.sum() == truth.shape[0]


def test_contingency_table_accepts_lists_and_pandas() -> None:
    pd = pytest.importorskip("pandas")
    truth = ["yes", "no", "no", "yes"]
    champion = ["yes", "no", "yes", "no"]
    challenger = ["yes", "yes", "no", "no"]
    expected = [[1, 1], [1, 1]]
    np.testing.assert_array_equal(contingency_table(truth, champion, challenger), expected)
    np.testing.assert_array_equal(
        contingency_table(pd.Series(truth), pd.Series(champion), np.array(challenger)), expected
    )


def test_contingency_tables_of_chunks_sum_to_the_whole() -> None:
    truth, champion, challenger = _labels("multiclass", seed=7, n=10_000)
    chunks = [slice(0, 3333), slice(3333, 6000), slice(6000, 10_000)]
    summed = sum(contingency_table(truth[s], champion[s], challenger[s]) for s in chunks)
    np.testing.assert_array_equal(summed, contingency_table(truth, champion, challenger))


def test_contingency_table_on_ten_million_rows() -> None:
    n = 10**7
    rng = np.random.default_rng(2024)
    truth = rng.integers(0, 2, n, dtype=np.int8)
    champion = np.where(rng.random(n) < 0.9, truth, 1 - truth).astype(np.int8)
    challenger = np.where(rng.random(n) < 0.92, truth, 1 - truth).astype(np.int8)
    # Independent count: encode (champion right, challenger right) as 2 bits and bincount.
    codes = 2 * (truth == champion).astype(np.int64) + (truth == challenger)
    # 0: both wrong, 1: only the challenger right, 2: only the champion right, 3: both right.
    counts = np.bincount(codes, minlength=4)
    table = contingency_table(truth, champion, challenger)
    np.testing.assert_array_equal(table, [[counts[3], counts[2]], [counts[1], counts[0]]])
    assert table.dtype == np.int64


# --------------------------------------------------------------------------------------------
# 4. Invalid input and integer-dtype pitfalls
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ([1, 2, 3, 4], r"shape \(2, 2\)"),
        ([[1, 2, 3], [4, 5, 6]], r"shape \(2, 2\)"),
        (np.zeros((2, 2, 1), dtype=int), r"shape \(2, 2\)"),
        ([[1, 2], [3]], r"shape \(2, 2\)"),
        ([[1, -2], [3, 4]], "negative count"),
        (np.array([[1, 2], [-3, 4]], dtype=np.int8), "negative count"),
        ([[1, float("nan")], [3, 4]], "non-finite"),
        (np.array([[1.0, 2.0], [np.inf, 4.0]]), "non-finite"),
        ([[1, 3.5], [3, 4]], "non-integer"),
        (np.array([[True, False], [False, True]]), "dtype bool"),
        ([["1", "2"], ["3", "4"]], "non-numeric"),
        (np.array([["1", "2"], ["3", "4"]]), "dtype <U1"),
        ([[0, 2**53], [1, 0]], "exceeds 2\\*\\*53"),
        (np.array([[0, 2**63], [2**63, 0]], dtype=np.uint64), "exceeds 2\\*\\*53"),
    ],
)
def test_invalid_table_raises(table: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mcnemar_test(table)
    with pytest.raises(ValueError, match=message):
        all_p_values(table)
    with pytest.raises(ValueError, match=message):
        accuracy_difference_ci(table)


def test_float_counts_that_are_whole_numbers_are_accepted() -> None:
    assert mcnemar_test(np.array([[59.0, 6.0], [16.0, 80.0]]), "exact").p_value == mcnemar_test(
        [[59, 6], [16, 80]], "exact"
    ).p_value


@pytest.mark.parametrize("method", ["fisher", "AUTO", "", None, 1])
def test_unknown_mcnemar_method_raises(method: object) -> None:
    with pytest.raises(ValueError, match="unknown McNemar method"):
        mcnemar_test([[1, 2], [3, 4]], method=method)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("table", "method", "mlxtend_kwargs"),
    [
        # b - c fits, but (b - c)^2 wraps around in uint8: 190^2 mod 256 = 4.
        ([[0, 200], [10, 0]], "asymptotic", {"corrected": False}),
        # b - c = 10 - 200 wraps around to 66.
        ([[0, 10], [200, 0]], "corrected", {"corrected": True}),
        # b + c = 300 wraps around to 44.
        ([[0, 100], [200, 0]], "exact", {"exact": True}),
    ],
)
def test_uint8_tables_are_converted_before_arithmetic(
    table: list[list[int]], method: str, mlxtend_kwargs: dict[str, bool]
) -> None:
    b, c = table[0][1], table[1][0]
    unsigned = np.array(table, dtype=np.uint8)
    for each in METHODS:
        expected = _independent_p(b, c, each)
        result = mcnemar_test(unsigned, method=each)
        assert result.p_value == pytest.approx(expected, rel=REL, abs=ABS)
    # mlxtend alone on the same uint8 table is off by orders of magnitude (expected p < 1e-8;
    # mlxtend reports 0.89, 7.3e-06 and 1.0 for these three tables).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, garbage = mlxtend_mcnemar(unsigned, **mlxtend_kwargs)
    expected = _independent_p(b, c, method)
    assert expected < 1e-8
    assert garbage > 1e6 * expected, (garbage, expected)


@pytest.mark.parametrize(
    ("y_true", "y_champion", "y_challenger", "message"),
    [
        (np.zeros((4, 1)), np.zeros(4), np.zeros(4), r"y_true must be 1-D .*shape \(4, 1\)"),
        (np.zeros(4), np.zeros((2, 2)), np.zeros(4), r"y_champion must be 1-D"),
        (np.int64(3), np.zeros(1), np.zeros(1), r"y_true must be 1-D .*shape \(\)"),
        ([0, 1, 1], [0, 1], [0, 1, 1], r"different lengths \(y_true has 3, y_champion has 2"),
        ([0, 1], [0, 1], [0, 1, 1], r"different lengths"),
        ([], [], [], r"y_true is empty"),
        (np.array([0.0, np.nan]), [0, 1], [0, 1], r"y_true contains NaN"),
        ([0, 1], np.array([0, None], dtype=object), [0, 1], r"y_champion contains None"),
        (["a", "b"], ["a", None], ["a", "b"], r"y_champion contains None"),
        ([0, 1], [0, 1], np.array([1.0, float("nan")], dtype=object), r"y_challenger contains NaN"),
        (["0", "1"], [0, 1], [0, 1], r"not comparable .*y_true holds str labels.*y_champion holds numeric"),
        ([0, 1], [0, 1], ["0", "1"], r"not comparable"),
        ([b"a", b"b"], ["a", "b"], ["a", "b"], r"not comparable .*bytes"),
        (np.array(["a", 1], dtype=object), ["a", "b"], ["a", "b"], r"y_true mixes label types"),
        (np.array([1 + 2j, 3j]), [1, 2], [1, 2], r"unsupported label dtype"),
        (np.array([{}, {}], dtype=object), [1, 2], [1, 2], r"unsupported type dict"),
    ],
)
def test_invalid_labels_raise(
    y_true: object, y_champion: object, y_challenger: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        contingency_table(y_true, y_champion, y_challenger)


def test_mlxtend_silently_counts_string_vs_int_labels_as_all_wrong() -> None:
    truth, predicted = np.array(["0", "1", "1"]), np.array([0, 1, 1])
    silent = mlxtend_mcnemar_table(y_target=truth, y_model1=predicted, y_model2=predicted)
    np.testing.assert_array_equal(silent, [[0, 0], [0, 3]])
    with pytest.raises(ValueError, match="not comparable"):
        contingency_table(truth, predicted, predicted)


@pytest.mark.parametrize("confidence", [0, 1, 1.5, -0.1, float("nan"), True, "0.95", None])
def test_bad_confidence_raises(confidence: object) -> None:
    with pytest.raises(ValueError, match="confidence must be"):
        accuracy_difference_ci([[59, 6], [16, 80]], confidence=confidence)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["score", "Newcombe", None])
def test_unknown_interval_method_raises(method: object) -> None:
    with pytest.raises(ValueError, match="unknown interval method"):
        accuracy_difference_ci([[59, 6], [16, 80]], method=method)  # type: ignore[arg-type]


def test_interval_of_empty_table_raises() -> None:
    with pytest.raises(ValueError, match="table is empty"):
        accuracy_difference_ci([[0, 0], [0, 0]])


# --------------------------------------------------------------------------------------------
# 5. Symmetry, and properties of the interval
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", (*METHODS, "auto"))
@pytest.mark.parametrize(("a", "b", "c", "d"), TABLES, ids=TABLE_IDS)
def test_p_value_is_symmetric_in_b_and_c(a: int, b: int, c: int, d: int, method: str) -> None:
    forward = mcnemar_test(_table(a, b, c, d), method=method)
    backward = mcnemar_test(_table(a, c, b, d), method=method)
    assert forward.p_value == backward.p_value
    assert forward.statistic == backward.statistic


@pytest.mark.parametrize("method", ["newcombe", "wald"])
@pytest.mark.parametrize(
    ("a", "b", "c", "d"),
    [(59, 6, 16, 80), (1, 1, 7, 12), (3, 3, 2, 2), (10, 0, 0, 5), (0, 0, 5, 0), (5, 0, 0, 0),
     (0, 3, 0, 0), (1000, 40, 55, 30), (10**6, 12345, 12000, 777)],
)
def test_interval_properties(a: int, b: int, c: int, d: int, method: str) -> None:
    n = a + b + c + d
    estimate = (c - b) / n
    lower, upper = accuracy_difference_ci(_table(a, b, c, d), confidence=0.95, method=method)
    assert -1.0 <= lower <= estimate <= upper <= 1.0
    # Swapping the models negates Δ: the interval is mirrored.
    swapped = accuracy_difference_ci(_table(a, c, b, d), confidence=0.95, method=method)
    assert swapped == pytest.approx((-upper, -lower), rel=1e-12, abs=1e-15)
    wider = accuracy_difference_ci(_table(a, b, c, d), confidence=0.99, method=method)
    assert wider[0] <= lower and wider[1] >= upper


@pytest.mark.parametrize(("a", "b", "c", "d"), [(59, 6, 16, 80), (1, 1, 7, 12), (1000, 40, 55, 30)])
@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
def test_wald_interval_matches_formula(a: int, b: int, c: int, d: int, confidence: float) -> None:
    n = a + b + c + d
    z = norm.isf((1 - confidence) / 2)
    # Variance of the mean of per-row differences (challenger right) - (champion right), with
    # values +1 (c rows), -1 (b rows) and 0: (b + c)/n - ((c - b)/n)^2, divided by n.
    half = z * math.sqrt(((b + c) / n - ((c - b) / n) ** 2) / n)
    expected = ((c - b) / n - half, (c - b) / n + half)
    interval = accuracy_difference_ci(_table(a, b, c, d), confidence, "wald")
    assert interval == pytest.approx(expected, rel=1e-12)
