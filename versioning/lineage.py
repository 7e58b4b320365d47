"""Finding runs and their data: the lineage that ties a model version to the rows it saw."""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.types import Schema

from versioning.errors import WorkflowError

# Tags every step sets on its run; our lookups use these, not MLflow's project tags, so they
# work however the step was launched (mlflow run, in-process, python -m).
STEP_TAG = "versioning.step"
DATA_DIGEST_TAG = "data.digest"
TRAIN_DIGEST_TAG = "data.train_digest"
TEST_DIGEST_TAG = "data.test_digest"
LABEL_COLUMN_TAG = "data.label_column"
DATA_RUN_TAG = "data.run_id"
FAMILY_TAG = "model.family"
TRAINING_RUN_TAG = "training.run_id"
SPLIT_ARTIFACTS = {"train": "data/train.parquet", "test": "data/test.parquet"}
SCHEMA_SAMPLE_ROWS = 1000
DATASET_DIGEST_CHARS = 10  # MLflow recommends at most 10 characters for a dataset digest


@dataclass(frozen=True)
class DataRun:
    run_id: str
    label_column: str
    digest: str
    train_digest: str
    test_digest: str


def newest_data_run_id(client: MlflowClient, experiment_id: str) -> str:
    """The newest FINISHED generate_data run of the experiment."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{STEP_TAG}` = 'generate_data' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        raise WorkflowError(
            "no finished generate_data run in this experiment: run "
            "`mlflow run . -e generate_data` first, or pass -P data_run_id=<run id>"
        )
    return runs[0].info.run_id


def get_data_run(client: MlflowClient, run_id: str) -> DataRun:
    """Load and check a generate_data run by id."""
    try:
        run: Run = client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") or "not found" in str(exc).lower():
            raise WorkflowError(
                f"data_run_id {run_id!r} does not exist: pass the id of a generate_data run "
                "or leave data_run_id unset to use the newest one"
            ) from None
        raise
    tags = run.data.tags
    if tags.get(STEP_TAG) != "generate_data":
        raise WorkflowError(
            f"data_run_id {run_id!r} is a {tags.get(STEP_TAG) or 'non-workflow'} run, not a "
            "generate_data run: pass the id of a generate_data run"
        )
    if run.info.status != "FINISHED":
        raise WorkflowError(
            f"data_run_id {run_id!r} is {run.info.status}, not FINISHED: "
            "re-run generate_data and use the new run"
        )
    return DataRun(
        run_id=run_id,
        label_column=tags[LABEL_COLUMN_TAG],
        digest=tags[DATA_DIGEST_TAG],
        train_digest=tags[TRAIN_DIGEST_TAG],
        test_digest=tags[TEST_DIGEST_TAG],
    )


def load_split(client: MlflowClient, data_run: DataRun, which: str) -> pd.DataFrame:
    """Download one split of a data run as a frame."""
    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(data_run.run_id, SPLIT_ARTIFACTS[which], tmp)
        return pd.read_parquet(Path(local))


@contextlib.contextmanager
def quiet_integer_schema_hint() -> Iterator[None]:
    """Silence MLflow's hint that integer columns cannot hold missing values.

    Our labels are integers and never missing (validate_frame refuses missing values), so
    the hint, repeated at every schema inference, is noise in the step's output.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        yield


def split_schema(frame: pd.DataFrame, sample_rows: int = SCHEMA_SAMPLE_ROWS) -> Schema:
    """The MLflow schema of a validated split, as ``mlflow.data.from_pandas`` would infer it.

    MLflow infers it by testing every value for None/NaN in Python: ~0.1 s for our 10,000
    rows, minutes for millions. A split has passed ``data.validate_frame`` (no missing
    values; numeric features), so the numeric columns' types and ``required`` flags follow
    from their dtypes and a sample shows them; a non-numeric column (only the label can be
    one) is inferred from all its values, as MLflow would.
    """
    from mlflow.models import infer_signature

    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    others = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    specs = {}
    with quiet_integer_schema_hint():
        if numeric:
            specs.update((str(spec.name), spec) for spec in
                         infer_signature(frame[numeric].head(sample_rows)).inputs.inputs)
        if others:
            specs.update((str(spec.name), spec) for spec in infer_signature(frame[others]).inputs.inputs)
    return Schema([specs[str(column)] for column in frame.columns])


class SplitDataset(PandasDataset):
    """A PandasDataset whose schema is given (see :func:`split_schema`) instead of inferred."""

    def __init__(self, df: pd.DataFrame, schema: Schema, **kwargs) -> None:
        self._given_schema = schema
        super().__init__(df, **kwargs)

    @property
    def schema(self) -> Schema:
        return self._given_schema


def log_split_input(frame: pd.DataFrame, *, data_run_id: str, split: str, label_column: str,
                    digest: str, description: str, context: str) -> None:
    """Record one split as an input of the active run (MLflow dataset lineage with digest).

    The source names the data run and artifact rather than a URI: MLflow has no dataset
    source for ``runs:/`` or ``mlflow-artifacts:/`` URIs. ``digest`` is the split's own
    SHA-256 (``data.train_digest`` / ``data.test_digest``); the dataset's digest is its first
    characters, covering every row (MLflow's own would hash the first 10,000 only).
    """
    import mlflow

    source = CodeDatasetSource(tags={
        "data_run_id": data_run_id,
        "artifact_path": SPLIT_ARTIFACTS[split],
        "description": description[:500],
    })
    dataset = SplitDataset(frame, split_schema(frame), source=source, targets=label_column,
                           name=f"{split}-{digest[:12]}", digest=digest[:DATASET_DIGEST_CHARS])
    mlflow.log_input(dataset, context=context)


def recorded_seeds(client: MlflowClient, data_run_id: str, training_run_ids: dict[str, str]) -> dict[str, str | None]:
    """The seeds behind a comparison, as logged: the data run's and each training run's."""
    def seed_of(run_id: str | None) -> str | None:
        if not run_id:
            return None
        try:
            return client.get_run(run_id).data.params.get("seed")
        except MlflowException:
            return None  # a deleted run: the record says unknown rather than failing the gate

    return {"data": seed_of(data_run_id),
            **{f"{role}_training": seed_of(run_id) for role, run_id in training_run_ids.items()}}
