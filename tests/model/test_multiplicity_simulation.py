"""Monte-Carlo check that Holm keeps false promotions at or below alpha with several challengers.

Every replication draws, with its own seed, a champion and K challengers that are all equally
good: each row is right with probability ACCURACY, independently per model. Any promotion is
then a false promotion. Each challenger is tested against the champion exactly as the workflow
does it (stats.contingency table counts -> stats.mcnemar_test with the configured method ->
decision policy), once through multi.select_winner (Holm) and once uncorrected (every
challenger judged by decision.decide at alpha on its own, promote if any passes).

Monte-Carlo tolerance: a rate estimated from REPLICATIONS Bernoulli trials has standard error
sqrt(alpha (1 - alpha) / REPLICATIONS) = 0.0031 at alpha = 0.05 and 5,000 replications; the test
allows 3 standard errors (0.0092): a true rate of exactly alpha fails the Holm assertion with
probability about 1 in 700. The uncorrected rate must exceed alpha + tolerance = 0.059; it comes
out near 0.076 with the configured method ("auto", here the continuity-corrected test, which is
conservative; and only a challenger that looks better is promoted, so each one alone is promoted
with probability about 0.016), more than 4 of its own standard errors (0.0037) above that
threshold, and near 0.09 with mid-p, the least conservative method. The seeds are fixed, so the
result is reproducible; the margins say it does not hinge on the particular seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from versioning import decision, multi, stats
from versioning.config import load_config

K = 5
N_ROWS = 500
ACCURACY = 0.85
REPLICATIONS = 5000
BASE_SEED = 20240611


pytestmark = pytest.mark.slow  # about 5 s per method


def _simulate(method: str) -> tuple[float, float, float]:
    config = load_config()
    alpha = float(config["alpha"])
    confidence, ci_method = config["confidence"], config["ci_method"]
    options = decision.PolicyOptions(alpha=alpha, primary_metric="accuracy")

    holm_promotions = 0
    uncorrected_promotions = 0
    for replication in range(REPLICATIONS):
        rng = np.random.default_rng([BASE_SEED, replication])
        right = rng.random((K + 1, N_ROWS)) < ACCURACY  # row 0: champion
        champion, challengers = right[0], right[1:]
        # The table straight from the right/wrong vectors, as stats.contingency_table counts it.
        both = np.count_nonzero(challengers & champion, axis=1)
        b = int(np.count_nonzero(champion)) - both
        c = np.count_nonzero(challengers, axis=1) - both
        d = N_ROWS - both - b - c
        champion_metrics = {"accuracy": int(np.count_nonzero(champion)) / N_ROWS}

        candidates = []
        for j in range(K):
            table = [[int(both[j]), int(b[j])], [int(c[j]), int(d[j])]]
            candidates.append(multi.Candidate(
                version=str(j + 2),
                table=table,
                test=stats.mcnemar_test(table, method),
                metrics={"accuracy": (both[j] + c[j]) / N_ROWS},
                delta_ci=stats.accuracy_difference_ci(table, confidence, ci_method),
            ))

        selection = multi.select_winner(champion_metrics, candidates, alpha, options)
        holm_promotions += selection.decision == decision.PROMOTE
        uncorrected_promotions += any(
            decision.decide(cand.test, champion_metrics, cand.metrics, cand.delta_ci, options).decision
            == decision.PROMOTE
            for cand in candidates
        )
    tolerance = 3 * math.sqrt(alpha * (1 - alpha) / REPLICATIONS)
    return holm_promotions / REPLICATIONS, uncorrected_promotions / REPLICATIONS, tolerance


@pytest.mark.parametrize("method", ["configured", "midp"])
def test_holm_keeps_the_false_promotion_rate_at_alpha_and_no_correction_does_not(method: str):
    config = load_config()
    alpha = float(config["alpha"])
    method = config["mcnemar_method"] if method == "configured" else method
    holm_rate, uncorrected_rate, tolerance = _simulate(method)
    print(f"\nfalse-promotion rate over {REPLICATIONS} replications, k = {K} equally good "
          f"challengers, n = {N_ROWS}, McNemar {method}: Holm {holm_rate:.4f}, "
          f"uncorrected {uncorrected_rate:.4f}, "
          f"alpha {alpha}, Monte-Carlo tolerance {tolerance:.4f}")
    assert holm_rate <= alpha + tolerance
    assert uncorrected_rate > alpha + tolerance
