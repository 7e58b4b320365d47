"""Score a champion and a challenger on the same held-out rows and judge the difference."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion

from versioning import decision, fairness, lineage, metrics, stats
from versioning.config import Config
from versioning.errors import WorkflowError
from versioning.step import StepContext

_log = logging.getLogger(__name__)
# Rows per scoring chunk: features of one chunk are freed before the next is read, so memory
# is bounded by the chunk plus three label arrays, however long the test set is.
CHUNK_ROWS = 250_000


@dataclass(frozen=True)
class Comparison:
    champion: ModelVersion
    challenger: ModelVersion
    data_run: lineage.DataRun
    n_rows: int
    table: np.ndarray
    test: stats.McNemarResult
    p_values: dict[str, float]
    champion_metrics: dict[str, float]
    challenger_metrics: dict[str, float]
    delta_ci: tuple[float, float]
    verdict: decision.Decision
    fairness: dict[str, Any] | None = None  # the held-out check (versioning.fairness)
    seeds: dict[str, Any] | None = None  # data and training seeds, as their runs logged them


def policy_options(config: Config) -> decision.PolicyOptions:
    try:
        return decision.PolicyOptions(
            alpha=config["alpha"], primary_metric=config["primary_metric"],
            tie_breaker=config["tie_breaker"], min_delta=config["min_delta"],
        )
    except ValueError as exc:
        raise WorkflowError(f"invalid promotion policy: {exc}") from None


def resolve_positive_label(config: Config, labels: np.ndarray) -> Any:
    """Config's positive label, matched to the labels' own type (-P values arrive as text)."""
    wanted = config["positive_label"]
    if wanted is None:
        return None
    present = pd.unique(labels)
    for label in present:
        if str(label) == wanted:
            return label
    raise WorkflowError(
        f"positive_label {wanted!r} is not one of the labels "
        f"{sorted(map(str, present))[:10]}: set -P positive_label=<one of them> or null"
    )


def require_policy_metrics(options: decision.PolicyOptions, scored: dict[str, float],
                           n_classes: int) -> None:
    """Refuse a policy metric the labels cannot give (error_cost needs binary labels)."""
    for metric in filter(None, (options.primary_metric, options.tie_breaker)):
        if metric not in scored:
            raise WorkflowError(
                f"metric {metric!r} needs binary labels, but the test set has "
                f"{n_classes} classes: set -P primary_metric=accuracy (or f1, "
                "precision, recall)"
            )


def _metric_options(config: Config, truth_labels: np.ndarray) -> dict[str, Any]:
    """The metric keyword arguments config asks for, shared by both ways of scoring."""
    return {
        "positive_label": resolve_positive_label(config, truth_labels),
        "cost_false_positive": config["cost_false_positive"],
        "cost_false_negative": config["cost_false_negative"],
    }


def score(config: Config, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    try:
        return metrics.classification_metrics(y_true, y_pred, **_metric_options(config, y_true))
    except ValueError as exc:
        raise WorkflowError(f"cannot score predictions: {exc}") from None


def _local_artifact(client, run_id: str, artifact_path: str) -> Path | None:
    """The artifact's own file when the run's artifact store is a local directory, else None."""
    from urllib.parse import unquote, urlparse

    uri = client.get_run(run_id).info.artifact_uri
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        root = Path(unquote(parsed.path))
    elif parsed.scheme == "" and uri.startswith("/"):
        root = Path(uri)
    else:
        return None
    path = root / artifact_path
    return path if path.is_file() else None


def iter_test_chunks(client, data_run: lineage.DataRun) -> Iterator[pd.DataFrame]:
    """The test split of ``data_run`` in chunks of at most ``CHUNK_ROWS`` rows.

    A local artifact store is read in place (a 10-million-row split is gigabytes: copying it
    costs more than scoring it); any other store is downloaded to a temporary directory first.
    """
    import pyarrow.parquet as pq

    artifact = lineage.SPLIT_ARTIFACTS["test"]
    with tempfile.TemporaryDirectory() as tmp:
        local = _local_artifact(client, data_run.run_id, artifact)
        if local is None:
            local = Path(client.download_artifacts(data_run.run_id, artifact, tmp))
        # pre_buffer=False: pyarrow's default read-ahead keeps every column chunk it has read
        # buffered until the file is closed (1.6 GB for a 10-million-row split).
        parquet = pq.ParquetFile(local, pre_buffer=False)
        for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
            yield batch.to_pandas()


def read_ahead(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Yield the chunks of ``chunks``, reading the next one in a thread meanwhile.

    Decoding Parquet (pyarrow) and predicting (scikit-learn) both release the GIL, so the next
    chunk is decoded while the models score this one. At most two chunks wait besides the one
    being scored. An error while reading is raised here, in order.
    """
    import queue
    import threading

    buffer: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        buffer.put((chunk, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put((done, None))
        except BaseException as exc:  # handed to the consumer, raised there
            buffer.put((done, exc))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=produce, name="read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            chunk, error = buffer.get()
            if chunk is done:
                if error is not None:
                    raise error
                return
            yield chunk
    finally:
        stop.set()
        while reader.is_alive():
            try:
                buffer.get(timeout=0.1)
            except queue.Empty:
                pass
        reader.join()


class Tally:
    """Counts accumulated over chunks of (truth, champion, challenger) predictions."""

    def __init__(self) -> None:
        self.table = np.zeros((2, 2), dtype=np.int64)
        self.champion: dict[tuple[Any, Any], int] = {}
        self.challenger: dict[tuple[Any, Any], int] = {}
        self.n = 0

    def add(self, y_true: np.ndarray, y_champion: np.ndarray, y_challenger: np.ndarray) -> None:
        # contingency_table validates the chunk (lengths, missing labels, comparable types).
        self.table += stats.contingency_table(y_true, y_champion, y_challenger)
        _add_confusion(self.champion, y_true, y_champion)
        _add_confusion(self.challenger, y_true, y_challenger)
        self.n += len(y_true)

    def truth_labels(self) -> np.ndarray:
        seen = dict.fromkeys(truth for truth, _ in self.champion)
        return np.array(list(seen), dtype=object)


def _add_confusion(counts: dict[tuple[Any, Any], int], y_true: np.ndarray, y_pred: np.ndarray) -> None:
    """Add the (true label, predicted label) pair counts of one chunk to ``counts``."""
    # Both arrays were validated as comparable (contingency_table): one factorization of
    # both gives equal codes to equal labels.
    codes, uniques = pd.factorize(np.concatenate([y_true, y_pred]))
    width = len(uniques)
    pairs = np.bincount(codes[: len(y_true)] * width + codes[len(y_true):], minlength=width * width)
    values = [value.item() if isinstance(value, np.generic) else value for value in uniques]
    for index in np.flatnonzero(pairs):
        key = (values[index // width], values[index % width])
        counts[key] = counts.get(key, 0) + int(pairs[index])


def metrics_from_counts(counts: dict[tuple[Any, Any], int], n: int, *, positive_label: Any = None,
                        cost_false_positive: float = 1.0,
                        cost_false_negative: float = 1.0) -> dict[str, float]:
    """:func:`versioning.metrics.classification_metrics` from (true, predicted) pair counts.

    The same definitions, labels and zero-division rules, computed from counts instead of
    label arrays, so chunked scoring gives exactly the numbers of the unchunked computation
    (tests/unit/test_chunked_scoring.py checks equality).
    """
    cost_fp = metrics._check_cost("cost_false_positive", cost_false_positive)
    cost_fn = metrics._check_cost("cost_false_negative", cost_false_negative)
    try:
        labels = sorted({label for pair in counts for label in pair})
    except TypeError as error:
        raise ValueError(f"labels cannot be sorted ({error}); use labels of one orderable type") from error
    hits: dict[Any, int] = {}
    predicted_as: dict[Any, int] = {}
    truly: dict[Any, int] = {}
    for (truth, predicted), count in counts.items():
        if truth == predicted:
            hits[truth] = hits.get(truth, 0) + count
        predicted_as[predicted] = predicted_as.get(predicted, 0) + count
        truly[truth] = truly.get(truth, 0) + count
    found = {"accuracy": sum(hits.values()) / n}

    def per_label(label: Any) -> tuple[int, int, int]:
        return hits.get(label, 0), predicted_as.get(label, 0), truly.get(label, 0)

    def ratios(tp: int, predicted: int, true: int) -> tuple[float, float, float]:
        precision = tp / predicted if predicted else 0.0
        recall = tp / true if true else 0.0
        denominator = 1.0 * true + predicted
        f1 = 2.0 * tp / denominator if denominator else 0.0
        return precision, recall, f1

    if len(labels) > 2:
        if positive_label is not None:
            shown = ", ".join(map(repr, labels[:5])) + (", ..." if len(labels) > 5 else "")
            raise ValueError(
                f"positive_label applies to binary labels only, but there are {len(labels)} "
                f"labels ({shown}); set it to None"
            )
        precisions, recalls, f1s = (np.array(values, dtype=np.float64) for values in
                                    zip(*(ratios(*per_label(label)) for label in labels)))
        # Macro averages as scikit-learn takes them: np.mean of the per-label values.
        found["f1"] = float(np.mean(f1s))
        found["precision"] = float(np.mean(precisions))
        found["recall"] = float(np.mean(recalls))
        return found

    positive = metrics.pick_positive_label(labels, positive_label)
    tp, predicted, true = per_label(positive)
    precision, recall, f1 = ratios(tp, predicted, true)
    found["f1"], found["precision"], found["recall"] = f1, precision, recall
    found["error_cost"] = (cost_fp * (predicted - tp) + cost_fn * (true - tp)) / n
    return found


def score_counts(config: Config, counts: dict[tuple[Any, Any], int], n: int,
                 truth_labels: np.ndarray) -> dict[str, float]:
    """:func:`score` from pair counts (see :func:`metrics_from_counts`)."""
    try:
        return metrics_from_counts(counts, n, **_metric_options(config, truth_labels))
    except ValueError as exc:
        raise WorkflowError(f"cannot score predictions: {exc}") from None


def model_uri(version: ModelVersion) -> str:
    """Where to load ``version`` from: its logged model when it has one (MLflow 3 sources are
    ``models:/m-<id>``), else ``models:/<name>/<version>``.

    The logged model is the same artifact the registry would hand out, found without asking
    the registry: MLflow's client reads every version of the registered model before it
    answers ``models:/<name>/<version>`` (see docs/performance.md).
    """
    if (version.source or "").startswith("models:/m-"):
        return version.source
    return f"models:/{version.name}/{version.version}"


def _load(version: ModelVersion):
    import mlflow.pyfunc

    try:
        return mlflow.pyfunc.load_model(model_uri(version))
    except Exception as exc:  # flavours raise many types; the user needs one line
        raise WorkflowError(
            f"cannot load {version.name} v{version.version}: {_first_line(exc)}"
        ) from None


def _predict(model, version: ModelVersion, features: pd.DataFrame, data_run_id: str) -> np.ndarray:
    try:
        predicted = model.predict(features)
    except Exception as exc:  # a model's own failure; report which model and which data
        raise WorkflowError(
            f"{version.name} v{version.version} failed to predict on the test split of data "
            f"run {data_run_id}: {_column_mismatch(model, features) or _first_line(exc)}; "
            "compare models trained on data with the same feature columns"
        ) from None
    if isinstance(predicted, pd.DataFrame):
        predicted = predicted.iloc[:, 0]
    predicted = np.asarray(predicted)
    if predicted.ndim != 1 or len(predicted) != len(features):
        raise WorkflowError(
            f"{version.name} v{version.version} returned predictions of shape "
            f"{predicted.shape} for {len(features)} rows: it must return one label per row"
        )
    return predicted


def _column_mismatch(model, features: pd.DataFrame) -> str | None:
    """'expects columns ... but the data has ...' when the model's signature explains a failure."""
    try:
        expected = list(model.metadata.get_input_schema().input_names())
    except Exception:  # no signature, or not a named-column schema
        return None
    present = [str(c) for c in features.columns]
    if expected == present:
        return None
    missing = [c for c in expected if c not in present]

    def shown(names: list) -> str:
        return ", ".join(map(str, names[:5])) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")

    return (f"it expects the columns [{shown(expected)}] but the split has [{shown(present)}]"
            + (f", {len(missing)} of its columns missing" if missing else ""))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def test_data_run(client, challenger: ModelVersion) -> lineage.DataRun:
    data_run_id = challenger.tags.get(lineage.DATA_RUN_TAG)
    if not data_run_id:
        raise WorkflowError(
            f"{challenger.name} v{challenger.version} has no '{lineage.DATA_RUN_TAG}' tag, so "
            "its held-out test split is unknown: register challengers with train_lr/train_rf"
        )
    return lineage.get_data_run(client, data_run_id)


def compare(ctx: StepContext, champion: ModelVersion, challenger: ModelVersion) -> Comparison:
    """Predict with both models on the challenger's held-out split, test and decide."""
    config = ctx.config
    options = policy_options(config)
    data_run = test_data_run(ctx.client, challenger)
    # Before any model is loaded: refuse to score a model on rows it was trained on.
    held_out = fairness.check(ctx.client, champion, challenger, data_run,
                              bool(config.get("allow_training_overlap", False)))
    champion_model, challenger_model = _load(champion), _load(challenger)

    # Chunk by chunk: only counts are kept (the McNemar table, each model's confusion
    # counts), so memory does not grow with the test set; the results equal those of the
    # whole arrays (tables of chunks add up, and so do confusion counts).
    tally = Tally()
    try:
        for chunk in read_ahead(iter_test_chunks(ctx.client, data_run)):
            features = chunk.drop(columns=[data_run.label_column])
            y_true = chunk[data_run.label_column].to_numpy()
            del chunk
            y_champion = _predict(champion_model, champion, features, data_run.run_id)
            y_challenger = _predict(challenger_model, challenger, features, data_run.run_id)
            del features
            tally.add(y_true, y_champion, y_challenger)
        table = tally.table
        test = stats.mcnemar_test(table, config["mcnemar_method"])
        p_values = stats.all_p_values(table)
        delta_ci = stats.accuracy_difference_ci(table, config["confidence"], config["ci_method"])
    except ValueError as exc:
        raise WorkflowError(f"cannot compare the predictions: {exc}") from None
    truth_labels = tally.truth_labels()
    champion_metrics = score_counts(config, tally.champion, tally.n, truth_labels)
    challenger_metrics = score_counts(config, tally.challenger, tally.n, truth_labels)
    require_policy_metrics(options, champion_metrics, len(truth_labels))
    verdict = decision.decide(test, champion_metrics, challenger_metrics, delta_ci, options)
    return Comparison(
        champion=champion, challenger=challenger, data_run=data_run, n_rows=tally.n,
        table=table, test=test, p_values=p_values, champion_metrics=champion_metrics,
        challenger_metrics=challenger_metrics, delta_ci=delta_ci, verdict=verdict,
        fairness=held_out,
        seeds=lineage.recorded_seeds(ctx.client, data_run.run_id,
                                     {"champion": champion.run_id, "challenger": challenger.run_id}),
    )


# --------------------------------------------------------------------------------------------
# Several challengers at once (-P challengers=...): one pass over the rows, Holm over the tests
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChallengerResult:
    """One challenger's comparison with the champion, on the rows all challengers share."""

    version: ModelVersion
    table: np.ndarray
    test: stats.McNemarResult
    p_values: dict[str, float]
    metrics: dict[str, float]
    delta_ci: tuple[float, float]


@dataclass(frozen=True)
class ManyComparison:
    champion: ModelVersion
    challengers: tuple[ChallengerResult, ...]
    data_run: lineage.DataRun
    n_rows: int
    champion_metrics: dict[str, float]
    selection: Any  # versioning.multi.Selection
    fairness: dict[str, Any] | None = None
    seeds: dict[str, Any] | None = None


class ManyTally:
    """Counts accumulated over chunks of (truth, champion, challengers...) predictions."""

    def __init__(self, k: int, cochrans_q: bool) -> None:
        self.tables = [np.zeros((2, 2), dtype=np.int64) for _ in range(k)]
        self.champion: dict[tuple[Any, Any], int] = {}
        self.challengers: list[dict[tuple[Any, Any], int]] = [{} for _ in range(k)]
        self.n = 0
        # Cochran's Q's sufficient statistics (versioning.multi.correct_counts), summed.
        self.correct = np.zeros(k + 1, dtype=np.int64) if cochrans_q else None
        self.by_level = np.zeros(k + 2, dtype=np.int64) if cochrans_q else None

    def add(self, y_true: np.ndarray, y_champion: np.ndarray, predictions: list[np.ndarray]) -> None:
        for table, counts, y_challenger in zip(self.tables, self.challengers, predictions):
            table += stats.contingency_table(y_true, y_champion, y_challenger)
            _add_confusion(counts, y_true, y_challenger)
        _add_confusion(self.champion, y_true, y_champion)
        if self.correct is not None:
            from versioning import multi

            per_model, histogram = multi.correct_counts(y_true, y_champion, *predictions)
            self.correct += np.asarray(per_model, dtype=np.int64)
            self.by_level += np.asarray(histogram, dtype=np.int64)
        self.n += len(y_true)

    def truth_labels(self) -> np.ndarray:
        seen = dict.fromkeys(truth for truth, _ in self.champion)
        return np.array(list(seen), dtype=object)


def common_data_run(client, challengers: list[ModelVersion]) -> lineage.DataRun:
    """The one data run whose test split every challenger is judged on.

    Holm's correction and the choice by metric compare the challengers with each other, so they
    must all be scored on the same rows: the held-out split of their common training data run.
    """
    by_run: dict[str | None, list[str]] = {}
    for version in challengers:
        by_run.setdefault(version.tags.get(lineage.DATA_RUN_TAG), []).append(str(version.version))
    if None in by_run or "" in by_run:
        untagged = by_run.get(None, []) + by_run.get("", [])
        raise WorkflowError(
            f"{challengers[0].name} v{untagged[0]} has no '{lineage.DATA_RUN_TAG}' tag, so its "
            "held-out test split is unknown: register challengers with train_lr/train_rf"
        )
    if len(by_run) > 1:
        groups = "; ".join(f"v{', v'.join(versions)} on data run {run_id}"
                           for run_id, versions in by_run.items())
        raise WorkflowError(
            f"the challengers were trained on different data runs ({groups}): several "
            "challengers are compared on one shared test split, so name challengers of one "
            "data run (-P challengers=<versions>) or compare the others in another run"
        )
    return test_data_run(client, challengers[0])


def compare_many(ctx: StepContext, champion: ModelVersion,
                 challengers: list[ModelVersion]) -> ManyComparison:
    """Score the champion and every challenger on the challengers' common held-out split,
    McNemar-test each challenger against the champion, and select at most one winner with
    Holm's correction (versioning.multi.select_winner)."""
    from versioning import multi

    config = ctx.config
    options = policy_options(config)
    data_run = common_data_run(ctx.client, challengers)
    # Before any model is loaded: refuse to score a model on rows it was trained on.
    held_out = fairness.check_many(ctx.client, champion, challengers, data_run,
                                   bool(config.get("allow_training_overlap", False)))
    champion_model = _load(champion)
    models = [_load(version) for version in challengers]

    tally = ManyTally(len(challengers), bool(config["cochrans_q"]))
    try:
        for chunk in iter_test_chunks(ctx.client, data_run):
            features = chunk.drop(columns=[data_run.label_column])
            y_true = chunk[data_run.label_column].to_numpy()
            del chunk
            y_champion = _predict(champion_model, champion, features, data_run.run_id)
            predictions = [_predict(model, version, features, data_run.run_id)
                           for model, version in zip(models, challengers)]
            del features
            tally.add(y_true, y_champion, predictions)
        tests = [stats.mcnemar_test(table, config["mcnemar_method"]) for table in tally.tables]
        p_values = [stats.all_p_values(table) for table in tally.tables]
        intervals = [stats.accuracy_difference_ci(table, config["confidence"], config["ci_method"])
                     for table in tally.tables]
        omnibus = (multi.cochrans_q_from_counts(tally.correct.tolist(), tally.by_level.tolist())
                   if tally.correct is not None else None)
    except ValueError as exc:
        raise WorkflowError(f"cannot compare the predictions: {exc}") from None
    truth_labels = tally.truth_labels()
    champion_metrics = score_counts(config, tally.champion, tally.n, truth_labels)
    require_policy_metrics(options, champion_metrics, len(truth_labels))
    results = []
    for index, version in enumerate(challengers):
        results.append(ChallengerResult(
            version=version, table=tally.tables[index], test=tests[index],
            p_values=p_values[index],
            metrics=score_counts(config, tally.challengers[index], tally.n, truth_labels),
            delta_ci=intervals[index],
        ))
    candidates = [multi.Candidate(version=str(r.version.version), table=r.table.tolist(),
                                  test=r.test, metrics=r.metrics, delta_ci=r.delta_ci)
                  for r in results]
    try:
        selection = multi.select_winner(champion_metrics, candidates, None, options, omnibus=omnibus)
    except ValueError as exc:
        raise WorkflowError(f"cannot select among the challengers: {exc}") from None
    seeds = lineage.recorded_seeds(ctx.client, data_run.run_id, {
        "champion": champion.run_id,
        **{f"v{r.version.version}": r.version.run_id for r in results},
    })
    return ManyComparison(
        champion=champion, challengers=tuple(results), data_run=data_run, n_rows=tally.n,
        champion_metrics=champion_metrics, selection=selection, fairness=held_out, seeds=seeds,
    )
