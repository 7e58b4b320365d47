"""Chunked scoring gives exactly the numbers of the unchunked computation."""

from __future__ import annotations

import numpy as np
import pytest

from versioning import evaluation, metrics, stats


def _chunked(y_true, y_champion, y_challenger, size):
    tally = evaluation.Tally()
    for start in range(0, len(y_true), size):
        part = slice(start, start + size)
        tally.add(y_true[part], y_champion[part], y_challenger[part])
    return tally


CASES = {
    "binary_int": (lambda rng, n: rng.integers(0, 2, n), None),
    "binary_str": (lambda rng, n: np.array(["no", "yes"], dtype=object)[rng.integers(0, 2, n)], "no"),
    "binary_bool": (lambda rng, n: rng.integers(0, 2, n).astype(bool), None),
    "multiclass": (lambda rng, n: rng.integers(0, 11, n), None),
    "multiclass_str": (lambda rng, n: np.array(list("abcde"))[rng.integers(0, 5, n)], None),
    "float_labels": (lambda rng, n: rng.integers(0, 3, n).astype(float), None),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chunked_equals_whole_arrays(case: str, seed: int):
    make, positive = CASES[case]
    rng = np.random.default_rng(seed)
    n = 5003
    y_true = make(rng, n)
    # Predictions: mostly right, with some of every kind of error.
    y_champion = np.where(rng.random(n) < 0.8, y_true, make(rng, n))
    y_challenger = np.where(rng.random(n) < 0.85, y_true, make(rng, n))
    tally = _chunked(y_true, y_champion, y_challenger, size=977)

    assert tally.n == n
    assert (tally.table == stats.contingency_table(y_true, y_champion, y_challenger)).all()
    for counts, predicted in ((tally.champion, y_champion), (tally.challenger, y_challenger)):
        options = dict(positive_label=positive, cost_false_positive=2.5, cost_false_negative=0.5)
        if case.startswith("multiclass") or case == "float_labels":
            options = {}
        expected = metrics.classification_metrics(y_true, predicted, **options)
        assert evaluation.metrics_from_counts(counts, n, **options) == expected  # exact


def test_degenerate_predictions_match_zero_division_rules():
    y_true = np.array([0, 0, 1, 1, 1])
    for predicted in (np.zeros(5, dtype=int), np.ones(5, dtype=int), np.array([1, 1, 0, 0, 0])):
        tally = _chunked(y_true, predicted, predicted, size=2)
        assert evaluation.metrics_from_counts(tally.champion, 5) == \
            metrics.classification_metrics(y_true, predicted)
    single = np.zeros(4, dtype=int)
    tally = _chunked(single, single, single, size=3)
    assert evaluation.metrics_from_counts(tally.champion, 4) == \
        metrics.classification_metrics(single, single)


def test_mixed_label_types_are_refused_per_chunk():
    tally = evaluation.Tally()
    with pytest.raises(ValueError, match="comparable"):
        tally.add(np.array([1, 0]), np.array(["1", "0"], dtype=object), np.array([1, 0]))


def test_read_ahead_yields_every_chunk_in_order_and_raises_where_the_source_failed():
    assert list(evaluation.read_ahead(iter(range(7)))) == list(range(7))

    def failing():
        yield 1
        yield 2
        raise OSError("disk gone")

    seen = []
    with pytest.raises(OSError, match="disk gone"):
        for chunk in evaluation.read_ahead(failing()):
            seen.append(chunk)
    assert seen == [1, 2]


def test_read_ahead_closes_its_source_when_the_consumer_stops():
    closed = []

    def source():
        try:
            yield from range(100)
        finally:
            closed.append(True)

    chunks = evaluation.read_ahead(source())
    assert next(chunks) == 0
    chunks.close()  # e.g. a model failed to predict on the first chunk
    assert closed == [True]
