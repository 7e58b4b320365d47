"""Fair comparisons: a model must never be judged on rows it was trained on.

compare_and_promote scores both models on the test split of the *challenger's* data run. That
split is held out from the challenger by construction (generate_data splits once, disjointly).
The champion may come from another data run, whose training rows can include evaluation rows
(a user CSV re-exported with new rows, a re-split of the same file): it would then be scored
partly on what it memorised and win unfairly. :func:`check` looks at each model's lineage
(version tags ``data.run_id``, ``data.train_digest``) and, when the data runs differ, hashes
the rows of both splits and intersects them.

Rows are compared on their feature values only (the label is left out: a model that saw a
feature vector with any label has seen that row), with columns matched by name and numbers
as float64, so a CSV read as ints in one run and floats in another still matches.

Pure functions (``row_hashes``, ``count_overlap``, ``assess``) carry the logic; :func:`check`
adds the downloads.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion

from versioning import lineage
from versioning.errors import WorkflowError

HELD_OUT_BY_CONSTRUCTION = "held_out_by_construction"  # same data run: disjoint split
NO_OVERLAP = "no_overlap"  # another data run, rows checked, none shared
OVERLAP = "overlap"  # another data run whose training rows include evaluation rows
UNKNOWN = "unknown"  # no lineage tags on the version (registered outside train_lr/train_rf)


@dataclass(frozen=True)
class ModelCheck:
    role: str  # "champion" | "challenger"
    version: str
    data_run_id: str | None
    train_digest: str | None
    status: str
    overlap_rows: int | None  # evaluation rows found in the model's training rows


def row_hashes(frame: pd.DataFrame, label_column: str | None) -> tuple[tuple[str, ...], np.ndarray]:
    """(feature column names in canonical order, one uint64 hash per row)."""
    features = frame.drop(columns=[label_column]) if label_column in frame.columns else frame
    columns = tuple(sorted(map(str, features.columns)))
    features = features.rename(columns=str)[list(columns)]
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(features[c])]
    if numeric:
        features = features.astype({c: "float64" for c in numeric})
    return columns, pd.util.hash_pandas_object(features, index=False).to_numpy()


def count_overlap(evaluation: np.ndarray, training: np.ndarray) -> int:
    """How many evaluation rows (with repeats) have a hash that is among the training rows."""
    if len(evaluation) == 0 or len(training) == 0:
        return 0
    return int(np.isin(evaluation, np.unique(training)).sum())


def assess(role: str, version: ModelVersion, evaluation_run: lineage.DataRun,
           training_hashes: Callable[[], int | None] | None = None) -> ModelCheck:
    """Classify one model; ``training_hashes()`` returns the overlap count when rows must be
    read (None when the model's training data can no longer be read)."""
    data_run_id = version.tags.get(lineage.DATA_RUN_TAG)
    train_digest = version.tags.get(lineage.TRAIN_DIGEST_TAG)
    common = dict(role=role, version=str(version.version), data_run_id=data_run_id,
                  train_digest=train_digest)
    if not data_run_id:
        return ModelCheck(**common, status=UNKNOWN, overlap_rows=None)
    if data_run_id == evaluation_run.run_id and evaluation_run.train_digest != evaluation_run.test_digest:
        return ModelCheck(**common, status=HELD_OUT_BY_CONSTRUCTION, overlap_rows=0)
    if training_hashes is None:
        return ModelCheck(**common, status=UNKNOWN, overlap_rows=None)
    overlap = training_hashes()
    if overlap is None:  # the training data run is gone: nothing left to check against
        return ModelCheck(**common, status=UNKNOWN, overlap_rows=None)
    return ModelCheck(**common, status=OVERLAP if overlap else NO_OVERLAP, overlap_rows=overlap)


def _split_hashes(client, run_id: str, split: str, label_column: str) -> tuple[tuple[str, ...], np.ndarray]:
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(run_id, lineage.SPLIT_ARTIFACTS[split], tmp)
        parquet = pq.ParquetFile(Path(local))
        columns: tuple[str, ...] = ()
        parts = []
        for batch in parquet.iter_batches(batch_size=250_000):
            columns, hashes = row_hashes(batch.to_pandas(), label_column)
            parts.append(hashes)
    return columns, (np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64))


def _checks(client, champion: ModelVersion, challengers: list[ModelVersion],
            evaluation_run: lineage.DataRun, allow_overlap: bool) -> tuple[list[ModelCheck], int | None]:
    cache: dict[str, Any] = {}

    def evaluation_hashes():
        if "evaluation" not in cache:
            cache["evaluation"] = _split_hashes(client, evaluation_run.run_id, "test",
                                                evaluation_run.label_column)
        return cache["evaluation"]

    def overlap_with(version: ModelVersion):
        def count() -> int | None:
            if version.tags.get(lineage.TRAIN_DIGEST_TAG) == evaluation_run.test_digest:
                return len(evaluation_hashes()[1])  # the very same rows, no need to read them
            try:
                training_run = lineage.get_data_run(client, version.tags[lineage.DATA_RUN_TAG])
            except WorkflowError:
                return None  # deleted or unusable data run: recorded as unknown
            columns, training = _split_hashes(client, training_run.run_id, "train",
                                              training_run.label_column)
            eval_columns, evaluation = evaluation_hashes()
            if columns != eval_columns:
                return 0  # different features: no row can be the same
            return count_overlap(evaluation, training)
        return count

    checks = [assess(role, version, evaluation_run, overlap_with(version))
              for role, version in (("champion", champion), *(("challenger", c) for c in challengers))]
    overlapping = [c for c in checks if c.status == OVERLAP]
    n_rows = len(cache["evaluation"][1]) if "evaluation" in cache else None
    if overlapping and not allow_overlap:
        raise WorkflowError(_refusal(champion.name, overlapping[0], evaluation_run, n_rows))
    return checks, n_rows


def check(client, champion: ModelVersion, challenger: ModelVersion,
          evaluation_run: lineage.DataRun, allow_overlap: bool) -> dict[str, Any]:
    """Check both models against the evaluation rows; refuse an overlap unless allowed.

    Returns the ``fairness`` section of decision.json.
    """
    checks, n_rows = _checks(client, champion, [challenger], evaluation_run, allow_overlap)
    return report(checks, evaluation_run, allow_overlap, n_rows)


def check_many(client, champion: ModelVersion, challengers: list[ModelVersion],
               evaluation_run: lineage.DataRun, allow_overlap: bool) -> dict[str, Any]:
    """:func:`check` for several challengers: the champion's training rows are read at most
    once. The section has ``challengers`` (one check each, in order) instead of ``challenger``."""
    checks, n_rows = _checks(client, champion, challengers, evaluation_run, allow_overlap)
    found = report(checks, evaluation_run, allow_overlap, n_rows)
    found["challenger"] = None
    found["challengers"] = [asdict(c) for c in checks[1:]]
    return found


def _refusal(name: str, found: ModelCheck, evaluation_run: lineage.DataRun, n_rows: int | None) -> str:
    of_rows = f" of the {n_rows}" if n_rows is not None else ""
    return (
        f"unfair comparison: {found.role} {name} v{found.version} was trained on "
        f"{found.overlap_rows}{of_rows} evaluation rows (the test split of data run "
        f"{evaluation_run.run_id} overlaps the train split of data run {found.data_run_id}); "
        "train both models on held-out data (e.g. the same generate_data run) or pass "
        "-P allow_training_overlap=true to compare anyway (recorded in decision.json)"
    )


def report(checks: Iterable[ModelCheck], evaluation_run: lineage.DataRun, allow_overlap: bool,
           n_rows: int | None) -> dict[str, Any]:
    checks = list(checks)
    by_role: Mapping[str, dict[str, Any]] = {c.role: asdict(c) for c in checks}
    overlapping = any(c.status == OVERLAP for c in checks)
    unknown = any(c.status == UNKNOWN for c in checks)
    return {
        "evaluation": {"data_run_id": evaluation_run.run_id,
                       "test_digest": evaluation_run.test_digest, "n_rows": n_rows},
        "champion": by_role.get("champion"),
        "challenger": by_role.get("challenger"),
        "held_out": None if unknown and not overlapping else not overlapping,
        "allow_training_overlap": bool(allow_overlap),
        "override_used": bool(overlapping and allow_overlap),
    }
