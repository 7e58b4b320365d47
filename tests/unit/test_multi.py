"""Tests for versioning.multi: Holm, Cochran's Q, and choosing among several challengers."""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import time
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from mlxtend.evaluate import cochrans_q as mlxtend_cochrans_q
from scipy.stats import chi2
from statsmodels.stats.multitest import multipletests

from versioning import decision, metrics, multi, stats
from versioning.decision import KEEP, PROMOTE, PolicyOptions
from versioning.multi import Candidate, OmnibusResult

# --------------------------------------------------------------------------------------------
# Holm
# --------------------------------------------------------------------------------------------


def test_holm_hand_example():
    # sorted: 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04;
    # running maximum 0.02, 0.03, 0.06, 0.06; back in the input order:
    got = multi.holm_adjust([0.01, 0.04, 0.03, 0.005])
    assert got == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)


def test_holm_clips_to_one_and_keeps_single_and_empty():
    assert multi.holm_adjust([0.5, 0.6, 0.9]) == [1.0, 1.0, 1.0]
    assert multi.holm_adjust([0.0371]) == [0.0371]
    assert multi.holm_adjust([]) == []
    assert multi.holm_adjust(np.array([0.0, 1.0])) == [0.0, 1.0]


def _random_p_vectors():
    rng = np.random.default_rng(20240501)
    for trial in range(400):
        m = int(rng.integers(1, 25))
        kind = trial % 4
        if kind == 0:
            p = rng.random(m)
        elif kind == 1:
            p = rng.random(m) ** 4  # many small values
        elif kind == 2:
            p = rng.choice([0.0, 0.001, 0.01, 0.02, 0.05, 0.5, 1.0], size=m)  # ties, 0 and 1
        else:
            p = np.round(rng.random(m), 2)  # ties
        yield p


def test_holm_equals_statsmodels_on_many_random_vectors(monkeypatch):
    # statsmodels 0.15's Holm branch calls gc.collect() on every call: ~0.1 s each in a process
    # that has imported MLflow, so 400 calls would take a minute. It has no effect on the result.
    monkeypatch.setattr(gc, "collect", lambda *args: 0)
    for p in _random_p_vectors():
        expected = multipletests(p, alpha=0.05, method="holm")[1]
        got = multi.holm_adjust(p.tolist())
        np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0)


def test_holm_is_monotone_and_never_below_the_raw_p():
    for p in _random_p_vectors():
        adjusted = np.array(multi.holm_adjust(p))
        assert np.all(adjusted >= p - 1e-15) and np.all(adjusted <= 1.0)
        order = np.argsort(p, kind="stable")
        assert np.all(np.diff(adjusted[order]) >= 0)


@pytest.mark.parametrize(
    ("p_values", "message"),
    [
        ([0.1, float("nan")], r"p_values\[1\] must be a probability in \[0, 1\], got nan"),
        ([-0.01], r"p_values\[0\] must be a probability in \[0, 1\], got -0.01"),
        ([1.5], r"p_values\[0\] must be a probability"),
        ([0.1, "0.2"], r"p_values\[1\] must be a number in \[0, 1\], got '0.2'"),
        ([True], r"p_values\[0\] must be a number"),
        ([None], r"p_values\[0\] must be a number"),
        (np.array([[0.1, 0.2]]), r"p_values\[0\] must be a number"),
        ("0.1", "must be a sequence of numbers, got str"),
        (0.1, "must be a sequence of numbers, got float"),
    ],
)
def test_holm_rejects_invalid_input(p_values, message):
    with pytest.raises(ValueError, match=message):
        multi.holm_adjust(p_values)


# --------------------------------------------------------------------------------------------
# Cochran's Q
# --------------------------------------------------------------------------------------------


def _q_by_hand(y_true: np.ndarray, *predictions: np.ndarray) -> tuple[float, float]:
    """Cochran's Q from the textbook formula on the rows x models 0/1 matrix (numpy + scipy)."""
    x = np.column_stack([(y_true == p).astype(float) for p in predictions])
    k = x.shape[1]
    columns, rows = x.sum(axis=0), x.sum(axis=1)
    total = x.sum()
    q = (k - 1) * (k * np.sum(columns**2) - total**2) / (k * total - np.sum(rows**2))
    return float(q), float(chi2.sf(q, k - 1))


def _random_models(rng, n: int, k: int, accuracies=None, labels: int = 2):
    y = rng.integers(0, labels, n)
    predictions = []
    for j in range(k):
        accuracy = 0.8 if accuracies is None else accuracies[j]
        right = rng.random(n) < accuracy
        predictions.append(np.where(right, y, (y + rng.integers(1, labels, n)) % labels))
    return y, predictions


def test_cochrans_q_matches_the_formula_by_hand_and_mlxtend():
    rng = np.random.default_rng(7)
    for trial in range(60):
        k = int(rng.integers(2, 7))
        n = int(rng.integers(5, 400))
        accuracies = rng.uniform(0.5, 0.95, k)
        y, predictions = _random_models(rng, n, k, accuracies, labels=int(rng.integers(2, 5)))
        hand_q, hand_p = _q_by_hand(y, *predictions)
        if math.isnan(hand_q):
            continue  # all agree: covered below
        result = multi.cochrans_q_omnibus(y, *predictions)
        assert result.statistic == pytest.approx(hand_q, rel=1e-12, abs=1e-12)
        assert result.p_value == pytest.approx(hand_p, rel=1e-9, abs=1e-300)
        assert (result.df, result.n_models, result.n_rows, result.all_agree) == (k - 1, k, n, False)
        mlxtend_q, mlxtend_p = mlxtend_cochrans_q(y, *predictions)
        assert result.statistic == pytest.approx(float(mlxtend_q), rel=1e-12, abs=1e-12)
        assert result.p_value == pytest.approx(float(mlxtend_p), rel=1e-9, abs=1e-300)


def test_cochrans_q_with_two_models_is_the_uncorrected_mcnemar_statistic():
    rng = np.random.default_rng(3)
    y, (champion, challenger) = _random_models(rng, 2000, 2, [0.8, 0.83])
    table = stats.contingency_table(y, champion, challenger)
    mcnemar = stats.mcnemar_test(table, "asymptotic")
    result = multi.cochrans_q_omnibus(y, champion, challenger)
    assert result.statistic == pytest.approx(mcnemar.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(mcnemar.p_value, rel=1e-9)


def test_cochrans_q_when_all_models_agree_is_zero_with_p_one_where_mlxtend_gives_nan():
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    same = y.copy()
    all_wrong_on_two = y.copy()
    all_wrong_on_two[[1, 4]] = 1 - all_wrong_on_two[[1, 4]]
    for predictions in ([same, same.copy(), same.copy()],
                        [all_wrong_on_two, all_wrong_on_two.copy()],
                        [1 - y, 1 - y, 1 - y, 1 - y]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mlxtend_q, mlxtend_p = mlxtend_cochrans_q(y, *predictions)
        assert math.isnan(mlxtend_q) and math.isnan(mlxtend_p)
        result = multi.cochrans_q_omnibus(y, *predictions)
        assert (result.statistic, result.p_value, result.all_agree) == (0.0, 1.0, True)


def test_cochrans_q_counts_add_up_over_chunks():
    rng = np.random.default_rng(11)
    y, predictions = _random_models(rng, 1000, 4, [0.7, 0.75, 0.8, 0.85])
    per_model = np.zeros(4, dtype=np.int64)
    histogram = np.zeros(5, dtype=np.int64)
    for start in range(0, 1000, 300):
        chunk = slice(start, start + 300)
        c, h = multi.correct_counts(y[chunk], *(p[chunk] for p in predictions))
        per_model += c
        histogram += h
    whole = multi.cochrans_q_omnibus(y, *predictions)
    assert multi.cochrans_q_from_counts(per_model.tolist(), histogram.tolist()) == whole


def test_cochrans_q_is_linear_in_the_number_of_models():
    # mlxtend's implementation loops over 2**k right/wrong patterns: at 16 models on 50,000
    # rows it would take minutes. The count formula takes a fraction of a second.
    rng = np.random.default_rng(5)
    y, predictions = _random_models(rng, 50_000, 16, np.linspace(0.80, 0.82, 16))
    started = time.perf_counter()
    result = multi.cochrans_q_omnibus(y, *predictions)
    elapsed = time.perf_counter() - started
    hand_q, hand_p = _q_by_hand(y, *predictions)
    assert result.statistic == pytest.approx(hand_q, rel=1e-12)
    assert result.p_value == pytest.approx(hand_p, rel=1e-9)
    assert elapsed < 5.0


def test_cochrans_q_exact_for_huge_counts():
    # Sums of squares beyond 2**63 must not wrap around.
    big = 3 * 10**9
    result = multi.cochrans_q_from_counts([big, big - 10**6], [10**6, 10**6, big - 10**6])
    # k = 2: Q is McNemar's (b - c)^2 / (b + c) with b = 10**6, c = 0
    assert result.statistic == pytest.approx(10**6, rel=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: multi.cochrans_q_omnibus(np.array([0, 1]), np.array([0, 1])),
         "needs predictions of at least 2 models, got 1"),
        (lambda: multi.cochrans_q_omnibus(np.array([0, 1]), np.array([0, 1]), np.array([0])),
         "different lengths"),
        (lambda: multi.cochrans_q_omnibus(np.array([0, 1]), np.array(["0", "1"]), np.array([0, 1])),
         "not comparable"),
        (lambda: multi.cochrans_q_omnibus(np.array([0.0, np.nan]), np.array([0, 1]), np.array([0, 1])),
         "NaN"),
        (lambda: multi.cochrans_q_from_counts([3], [0, 3]), "at least 2 models, got 1"),
        (lambda: multi.cochrans_q_from_counts([3, 2], [0, 3]), "must have k \\+ 1 = 3 entries"),
        (lambda: multi.cochrans_q_from_counts([3, 2], [0, 0, 0]), "no rows"),
        (lambda: multi.cochrans_q_from_counts([3, 2], [0, 1, 3]), "inconsistent counts"),
        (lambda: multi.cochrans_q_from_counts([3, -1], [0, 1, 1]), r"correct_per_model\[1\] must be >= 0"),
        (lambda: multi.cochrans_q_from_counts([3, 2.5], [0, 1, 1]), "must be an integer count"),
    ],
)
def test_cochrans_q_rejects_invalid_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------------------------
# Selection: helpers that build real prediction arrays with known discordant counts
# --------------------------------------------------------------------------------------------

N_ROWS = 1000
CHAMPION_RIGHT = 800  # a + b for every challenger


@dataclasses.dataclass
class Bench:
    y: np.ndarray
    champion: np.ndarray
    rng: np.random.Generator

    @property
    def champion_metrics(self) -> dict[str, float]:
        return metrics.classification_metrics(self.y, self.champion)

    def predictions(self, b: int, c: int) -> np.ndarray:
        """A challenger wrong on b of the champion's right rows, right on c of its wrong rows."""
        champion_right = np.flatnonzero(self.y == self.champion)
        champion_wrong = np.flatnonzero(self.y != self.champion)
        right = np.zeros(len(self.y), dtype=bool)
        right[champion_right] = True
        right[self.rng.choice(champion_right, size=b, replace=False)] = False
        right[self.rng.choice(champion_wrong, size=c, replace=False)] = True
        return np.where(right, self.y, 1 - self.y)

    def candidate(self, version: str, b: int, c: int, method: str = "auto") -> Candidate:
        predicted = self.predictions(b, c)
        table = stats.contingency_table(self.y, self.champion, predicted)
        assert (int(table[0, 1]), int(table[1, 0])) == (b, c)
        return Candidate(
            version=version,
            table=table,
            test=stats.mcnemar_test(table, method),
            metrics=metrics.classification_metrics(self.y, predicted),
            delta_ci=stats.accuracy_difference_ci(table),
        )


@pytest.fixture
def bench() -> Bench:
    rng = np.random.default_rng(2024)
    y = rng.integers(0, 2, N_ROWS)
    right = np.zeros(N_ROWS, dtype=bool)
    right[rng.choice(N_ROWS, size=CHAMPION_RIGHT, replace=False)] = True
    return Bench(y=y, champion=np.where(right, y, 1 - y), rng=rng)


OPTIONS = PolicyOptions(alpha=0.05)

# (version, b, c): "better" is truly better (p ~ 1e-5); "lucky" is better and significant on its
# own (corrected p ~ 0.034, ~ 0.036) but not once three or more tests are corrected for.
BETTER = ("7", 20, 60)
LUCKY = ("8", 30, 50)
WORSE = ("9", 60, 20)
EQUAL = ("10", 40, 40)
LUCKY_TOO = ("11", 31, 51)
FAMILIES = {
    3: [LUCKY, BETTER, EQUAL],
    4: [LUCKY, BETTER, WORSE, EQUAL],
    5: [LUCKY, EQUAL, BETTER, LUCKY_TOO, WORSE],
}


@pytest.mark.parametrize("k", sorted(FAMILIES))
def test_only_the_truly_better_challenger_survives_holm(bench: Bench, k: int):
    candidates = [bench.candidate(*spec) for spec in FAMILIES[k]]
    selection = multi.select_winner(bench.champion_metrics, candidates, 0.05, OPTIONS)

    assert selection.decision == PROMOTE
    assert selection.winner is not None and selection.winner.version == "7"
    by_version = {record.version: record for record in selection.records}
    assert [r.version for r in selection.records] == [spec[0] for spec in FAMILIES[k]]
    assert [v for v, r in by_version.items() if r.eligible] == ["7"]
    assert [v for v, r in by_version.items() if r.selected] == ["7"]
    np.testing.assert_allclose(
        [r.p_adjusted for r in selection.records],
        multipletests([r.p_value for r in selection.records], method="holm")[1], rtol=1e-15,
    )
    # The lucky ones would be promoted by a test at alpha on their own: the correction matters.
    for version in ("8", "11"):
        if version not in by_version:
            continue
        record = by_version[version]
        candidate = next(c for c in candidates if c.version == version)
        alone = decision.decide(candidate.test, bench.champion_metrics, candidate.metrics,
                                candidate.delta_ci, OPTIONS)
        assert record.p_value < 0.05 <= record.p_adjusted
        assert alone.decision == PROMOTE
        assert record.why.startswith("Not eligible: the difference is not significant (McNemar ")
        assert f"Holm-adjusted over {k} challengers p = " in record.why
        assert "≥ alpha 0.05" in record.why
    if "9" in by_version:
        assert by_version["9"].why.startswith("Not eligible: the difference is significant (")
        assert "the challenger is worse on accuracy (0.76 vs 0.8)" in by_version["9"].why
    assert by_version["7"].why.startswith("Selected: accuracy ")
    assert selection.reason.startswith(
        f"Promoted challenger v7, the only eligible one among {k} challengers after Holm's correction: "
        "accuracy 0.84 vs 0.8 and McNemar corrected p = "
    )
    comparisons = selection.comparisons()
    json.dumps(comparisons)  # decision.json must be able to hold them
    assert {"version", "table", "p_value", "p_adjusted", "metrics", "eligible", "why"} <= set(comparisons[0])
    assert comparisons[0]["table"] == candidates[0].table.tolist()


def test_the_best_eligible_challenger_wins_and_the_others_say_why(bench: Bench):
    candidates = [bench.candidate(*spec) for spec in
                  [("3", 20, 60), ("4", 10, 70), ("5", 60, 20), ("6", 40, 40), ("12", 30, 50)]]
    selection = multi.select_winner(bench.champion_metrics, candidates, None, OPTIONS)
    assert selection.winner.version == "4"
    records = {r.version: r for r in selection.records}
    assert records["3"].eligible and not records["3"].selected
    assert records["3"].why.startswith(
        "Eligible but not selected: v4 is better on accuracy (0.86 vs 0.84); this challenger: "
        "accuracy 0.84 vs 0.8 and McNemar corrected p = "
    )
    assert selection.reason.startswith("Promoted challenger v4, the best of 2 eligible among 5 challengers")


def test_no_challenger_eligible_keeps_the_champion(bench: Bench):
    candidates = [bench.candidate(*spec) for spec in [LUCKY, WORSE, EQUAL, LUCKY_TOO]]
    selection = multi.select_winner(bench.champion_metrics, candidates, 0.05, OPTIONS)
    assert selection.decision == KEEP and selection.winner is None
    assert not any(r.eligible or r.selected for r in selection.records)
    assert selection.reason.startswith(
        "Kept the champion: none of the 4 challengers is eligible after Holm's correction at "
        "alpha 0.05 (3 not significant (smallest adjusted p = "
    )
    assert selection.reason.endswith(" for v8), 1 significant but not better under the policy).")


# --------------------------------------------------------------------------------------------
# Tie-breaking, on hand-made candidates (metrics are inputs of the pure function)
# --------------------------------------------------------------------------------------------


def _hand_candidate(version: str, b: int, c: int, **extra_metrics: float) -> Candidate:
    a, d = CHAMPION_RIGHT - b, N_ROWS - CHAMPION_RIGHT - c
    table = [[a, b], [c, d]]
    return Candidate(version, table, stats.mcnemar_test(table),
                     {"accuracy": (a + c) / N_ROWS, **extra_metrics}, stats.accuracy_difference_ci(table))


CHAMPION = {"accuracy": 0.8, "f1": 0.8, "error_cost": 0.2}


def test_tie_on_primary_metric_is_broken_by_the_tie_breaker():
    options = PolicyOptions(alpha=0.05, tie_breaker="f1")
    candidates = [_hand_candidate("2", 20, 60, f1=0.83), _hand_candidate("3", 20, 60, f1=0.85)]
    selection = multi.select_winner(CHAMPION, candidates, 0.05, options)
    assert selection.winner.version == "3"
    loser = selection.records[0]
    assert loser.eligible and loser.why.startswith(
        "Eligible but not selected: v3 ties on accuracy and is better on f1 (0.85 vs 0.83)"
    )


def test_lower_is_better_tie_breaker():
    options = PolicyOptions(alpha=0.05, tie_breaker="error_cost")
    candidates = [_hand_candidate("2", 20, 60, error_cost=0.15),
                  _hand_candidate("3", 20, 60, error_cost=0.17)]
    selection = multi.select_winner(CHAMPION, candidates, 0.05, options)
    assert selection.winner.version == "2"
    assert "is better on error_cost (0.15 vs 0.17, lower is better)" in selection.records[1].why


def test_lower_is_better_primary_metric():
    options = PolicyOptions(alpha=0.05, primary_metric="error_cost")
    candidates = [_hand_candidate("2", 20, 60, error_cost=0.17),
                  _hand_candidate("3", 20, 60, error_cost=0.15)]
    selection = multi.select_winner(CHAMPION, candidates, 0.05, options)
    assert selection.winner.version == "3"


def test_tie_on_metrics_is_broken_by_the_lower_adjusted_p_then_the_lower_version():
    # Same accuracy (c - b = 40), different discordant totals: b=10, c=50 has the smaller p.
    candidates = [_hand_candidate("5", 20, 60), _hand_candidate("6", 10, 50)]
    selection = multi.select_winner(CHAMPION, candidates, 0.05, OPTIONS)
    assert selection.winner.version == "6"
    assert "v6 ties on the metrics and has the lower adjusted p" in selection.records[0].why

    # Identical on everything: the lower version number, compared as a number (9 < 10).
    candidates = [_hand_candidate("10", 20, 60), _hand_candidate("9", 20, 60)]
    selection = multi.select_winner(CHAMPION, candidates, 0.05, OPTIONS)
    assert selection.winner.version == "9"
    assert selection.records[0].why.startswith(
        "Eligible but not selected: v9 ties on every criterion and has the lower version number"
    )


def test_result_does_not_depend_on_the_order_of_the_candidates():
    candidates = [_hand_candidate("2", 20, 60), _hand_candidate("3", 10, 70),
                  _hand_candidate("4", 10, 70), _hand_candidate("5", 30, 50)]
    first = multi.select_winner(CHAMPION, candidates, 0.05, OPTIONS)
    second = multi.select_winner(CHAMPION, candidates[::-1], 0.05, OPTIONS)
    assert first.winner == second.winner and first.winner.version == "3"
    assert first.reason == second.reason
    assert sorted(first.records, key=lambda r: r.version) == sorted(second.records, key=lambda r: r.version)


def test_min_delta_is_applied_to_each_candidate():
    options = PolicyOptions(alpha=0.05, min_delta=0.03)
    # v2: Δ = 0.04 but its interval reaches below 0.03; v3: Δ = 0.09, clearly above.
    candidates = [_hand_candidate("2", 20, 60), _hand_candidate("3", 5, 95)]
    selection = multi.select_winner(CHAMPION, candidates, 0.05, options)
    assert selection.winner.version == "3"
    assert not selection.records[0].eligible
    assert "does not exceed min_delta 0.03" in selection.records[0].why


# --------------------------------------------------------------------------------------------
# One candidate: exactly the single-challenger decision
# --------------------------------------------------------------------------------------------


def test_single_candidate_equals_the_single_challenger_decision():
    rng = np.random.default_rng(99)
    option_sets = [
        PolicyOptions(alpha=0.05),
        PolicyOptions(alpha=0.01, tie_breaker="f1"),
        PolicyOptions(alpha=0.10, min_delta=0.0),
        PolicyOptions(alpha=0.05, primary_metric="f1", tie_breaker="accuracy", min_delta=-0.01),
    ]
    seen = set()
    for trial in range(300):
        n = int(rng.integers(20, 3000))
        champion_right = int(rng.integers(1, n))
        b = int(rng.integers(0, min(champion_right, 80) + 1))
        c = int(rng.integers(0, min(n - champion_right, 80) + 1))
        a, d = champion_right - b, n - champion_right - c
        table = [[a, b], [c, d]]
        method = ["auto", "exact", "midp", "corrected", "asymptotic"][trial % 5]
        test = stats.mcnemar_test(table, method)
        f1 = float(rng.choice([0.5, 0.7, 0.9]))
        champion = {"accuracy": (a + b) / n, "f1": 0.7}
        challenger = {"accuracy": (a + c) / n, "f1": f1}
        delta_ci = stats.accuracy_difference_ci(table)
        options = option_sets[trial % len(option_sets)]
        expected = decision.decide(test, champion, challenger, delta_ci, options)
        selection = multi.select_winner(
            champion, [Candidate(str(trial + 1), table, test, challenger, delta_ci)], None, options
        )
        assert (selection.decision, selection.reason) == (expected.decision, expected.reason)
        (record,) = selection.records
        assert record.p_adjusted == record.p_value == test.p_value
        assert record.eligible == record.selected == (expected.decision == PROMOTE)
        assert record.why == expected.reason
        seen.add(expected.decision)
    assert seen == {PROMOTE, KEEP}


# --------------------------------------------------------------------------------------------
# Omnibus gate
# --------------------------------------------------------------------------------------------


def test_a_non_significant_omnibus_closes_the_gate(bench: Bench):
    candidates = [bench.candidate(*spec) for spec in [BETTER, LUCKY, WORSE]]
    open_gate = OmnibusResult(40.0, 1e-8, 3, 4, N_ROWS, False)
    closed_gate = OmnibusResult(2.1, 0.55, 3, 4, N_ROWS, False)
    assert multi.select_winner(bench.champion_metrics, candidates, 0.05, OPTIONS,
                               omnibus=open_gate).winner.version == "7"
    selection = multi.select_winner(bench.champion_metrics, candidates, 0.05, OPTIONS,
                                    omnibus=closed_gate)
    assert selection.decision == KEEP and selection.winner is None
    assert selection.reason == (
        "Kept the champion: the omnibus test over the champion and 3 challengers is not "
        "significant (Cochran's Q = 2.1, df = 3, p = 0.55 ≥ alpha 0.05), so none is promoted."
    )
    assert all(not r.eligible and r.why.startswith("Not eligible: the omnibus test") for r in selection.records)
    assert selection.records[0].p_adjusted < 0.05  # still recorded for the audit


def test_real_omnibus_on_the_bench(bench: Bench):
    specs = [BETTER, LUCKY, WORSE]
    predictions = [bench.predictions(b, c) for _, b, c in specs]
    omnibus = multi.cochrans_q_omnibus(bench.y, bench.champion, *predictions)
    assert omnibus.n_models == 4 and omnibus.p_value < 1e-6
    assert omnibus.as_dict()["test"] == "cochrans_q"


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: (CHAMPION, []), "candidates is empty"),
        (lambda: (CHAMPION, "2"), "must be a sequence of Candidate"),
        (lambda: (CHAMPION, [("2", 20, 60)]), r"candidates\[0\] must be a versioning.multi.Candidate"),
        (lambda: ([0.8], [_hand_candidate("2", 20, 60)]), "champion_metrics must be a mapping"),
        (lambda: (CHAMPION, [_hand_candidate("2", 20, 60), _hand_candidate("02", 10, 60)]),
         r"version 2 appears twice \(candidates\[0\] and candidates\[1\]\)"),
        (lambda: (CHAMPION, [dataclasses.replace(_hand_candidate("2", 20, 60), version="latest")]),
         "must be a registry version number such as '3', got 'latest'"),
        (lambda: (CHAMPION, [dataclasses.replace(_hand_candidate("2", 20, 60),
                                                 test=stats.mcnemar_test([[780, 20], [61, 139]]))]),
         r"the test was run on b = 20, c = 61 but the table has b = 20, c = 60"),
        (lambda: (CHAMPION, [dataclasses.replace(_hand_candidate("2", 20, 60), table=[[1, 2]])]),
         r"candidates\[0\] \(v2\): table must have shape \(2, 2\)"),
        (lambda: (CHAMPION, [_hand_candidate("2", 20, 60),
                             Candidate("3", [[770, 20], [60, 150]], stats.mcnemar_test([[770, 20], [60, 150]]),
                                       {"accuracy": 0.83}, (0.0, 0.1))]),
         "candidates v2 and v3 were not compared on the same rows: n = 1000 vs 1000, champion right on 800 vs 790"),
        (lambda: ({"accuracy": 0.7}, [_hand_candidate("2", 20, 60)]),
         "champion accuracy 0.7 does not match its contingency table"),
        (lambda: (CHAMPION, [dataclasses.replace(_hand_candidate("2", 20, 60), metrics={"accuracy": 0.9})]),
         r"candidates\[0\] \(v2\) accuracy 0.9 does not match"),
    ],
)
def test_select_winner_rejects_invalid_input(build, message):
    champion, candidates = build()
    with pytest.raises(ValueError, match=message):
        multi.select_winner(champion, candidates, None, OPTIONS)


def test_select_winner_rejects_inconsistent_alpha_and_omnibus():
    candidates = [_hand_candidate("2", 20, 60)]
    with pytest.raises(ValueError, match="alpha 0.01 differs from options.alpha 0.05"):
        multi.select_winner(CHAMPION, candidates, 0.01, OPTIONS)
    with pytest.raises(ValueError, match="omnibus was computed on 3 models and 1000 rows, but there are 2 models"):
        multi.select_winner(CHAMPION, candidates, None, OPTIONS,
                            omnibus=OmnibusResult(1.0, 0.5, 2, 3, N_ROWS, False))
    with pytest.raises(ValueError, match="primary_metric 'auc' is not supported"):
        multi.select_winner(CHAMPION, candidates, None,
                            SimpleNamespace(alpha=0.05, primary_metric="auc", tie_breaker=None, min_delta=None))
