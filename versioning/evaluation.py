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

from versioning import decision, lineage, metrics, stats
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


def score(config: Config, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    try:
        return metrics.classification_metrics(
            y_true, y_pred,
            positive_label=resolve_positive_label(config, y_true),
            cost_false_positive=config["cost_false_positive"],
            cost_false_negative=config["cost_false_negative"],
        )
    except ValueError as exc:
        raise WorkflowError(f"cannot score predictions: {exc}") from None


def iter_test_chunks(client, data_run: lineage.DataRun) -> Iterator[pd.DataFrame]:
    """The test split of ``data_run`` in chunks of at most ``CHUNK_ROWS`` rows."""
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(data_run.run_id, lineage.SPLIT_ARTIFACTS["test"], tmp)
        parquet = pq.ParquetFile(Path(local))
        for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
            yield batch.to_pandas()


def _load(version: ModelVersion):
    import mlflow.pyfunc

    try:
        return mlflow.pyfunc.load_model(f"models:/{version.name}/{version.version}")
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
            f"run {data_run_id}: {_first_line(exc)}; check that it was trained on data with "
            "the same feature columns"
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
    champion_model, challenger_model = _load(champion), _load(challenger)

    truths, champion_predictions, challenger_predictions = [], [], []
    for chunk in iter_test_chunks(ctx.client, data_run):
        features = chunk.drop(columns=[data_run.label_column])
        truths.append(chunk[data_run.label_column].to_numpy())
        champion_predictions.append(_predict(champion_model, champion, features, data_run.run_id))
        challenger_predictions.append(_predict(challenger_model, challenger, features, data_run.run_id))
    y_true = np.concatenate(truths)
    y_champion = np.concatenate(champion_predictions)
    y_challenger = np.concatenate(challenger_predictions)

    try:
        table = stats.contingency_table(y_true, y_champion, y_challenger)
        test = stats.mcnemar_test(table, config["mcnemar_method"])
        p_values = stats.all_p_values(table)
        delta_ci = stats.accuracy_difference_ci(table, config["confidence"], config["ci_method"])
    except ValueError as exc:
        raise WorkflowError(f"cannot compare the predictions: {exc}") from None
    champion_metrics = score(config, y_true, y_champion)
    challenger_metrics = score(config, y_true, y_challenger)
    for metric in filter(None, (options.primary_metric, options.tie_breaker)):
        if metric not in champion_metrics:
            raise WorkflowError(
                f"metric {metric!r} needs binary labels, but the test set has "
                f"{len(pd.unique(y_true))} classes: set -P primary_metric=accuracy (or f1, "
                "precision, recall)"
            )
    verdict = decision.decide(test, champion_metrics, challenger_metrics, delta_ci, options)
    return Comparison(
        champion=champion, challenger=challenger, data_run=data_run, n_rows=len(y_true),
        table=table, test=test, p_values=p_values, champion_metrics=champion_metrics,
        challenger_metrics=challenger_metrics, delta_ci=delta_ci, verdict=verdict,
    )
