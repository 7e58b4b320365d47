"""Datasets: build or read them, check them, split them and fingerprint them.

Everything here is a function of its arguments (the only I/O is reading a user's file),
so the same config always yields the same frames and the same digests.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from versioning.errors import WorkflowError

SYNTHETIC_LABEL = "label"


def make_synthetic(
    n_samples: int, n_features: int, n_informative: int, n_classes: int, seed: int
) -> pd.DataFrame:
    """``make_classification`` as a frame with columns ``x00..`` and ``label``."""
    from sklearn.datasets import make_classification

    features, labels = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_classes=n_classes,
        random_state=seed,
    )
    width = len(str(n_features - 1))
    frame = pd.DataFrame(features, columns=[f"x{i:0{width}d}" for i in range(n_features)])
    frame[SYNTHETIC_LABEL] = labels
    return frame


def load_bundled(name: str) -> pd.DataFrame:
    """One of scikit-learn's bundled datasets (shipped with the package: no download)."""
    from sklearn import datasets

    loaders = {
        "iris": datasets.load_iris,
        "digits": datasets.load_digits,
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
    }
    if name not in loaders:
        raise WorkflowError(
            f"unknown bundled dataset {name!r}: use data_source=sklearn:<{'|'.join(loaders)}>"
        )
    bunch = loaders[name]()
    columns = [str(column).replace(" ", "_") for column in bunch.feature_names]
    frame = pd.DataFrame(bunch.data, columns=columns)
    frame[SYNTHETIC_LABEL] = bunch.target
    return frame


def read_user_file(path: str | Path) -> pd.DataFrame:
    """Read a user's ``.csv`` or ``.parquet`` file, with errors that say what to fix."""
    file_path = Path(path).expanduser()
    if not file_path.is_file():
        raise WorkflowError(
            f"data file {str(path)!r} not found: pass an existing .csv or .parquet path "
            "as -P data_source=<path> (relative paths are resolved from the project root)"
        )
    try:
        if file_path.suffix.lower() == ".csv":
            return pd.read_csv(file_path)
        return pd.read_parquet(file_path)
    except Exception as exc:  # pandas/pyarrow raise many types; the user needs one line
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WorkflowError(
            f"cannot read data file {str(path)!r}: {message}; pass a valid "
            f"{file_path.suffix.lower().lstrip('.') or 'CSV'} file with a header row and data rows"
        ) from None


def validate_frame(frame: pd.DataFrame, label_column: str, test_fraction: float) -> None:
    """Refuse data the models cannot learn from or that cannot be split fairly."""
    if label_column not in frame.columns:
        shown = ", ".join(map(str, list(frame.columns)[:10]))
        raise WorkflowError(
            f"label column {label_column!r} is not in the data (columns: {shown}): "
            "set -P label_column=<name>"
        )
    if frame.shape[1] < 2:
        raise WorkflowError("the data has no feature columns besides the label column")
    if frame.empty:
        raise WorkflowError(
            f"the data has a header but no rows (columns: {', '.join(map(str, frame.columns[:10]))}): "
            "pass a file with data rows"
        )
    missing = frame.isna().sum()
    missing = missing[missing > 0]
    if not missing.empty:
        detail = ", ".join(f"{column!r} ({count})" for column, count in missing.items())
        raise WorkflowError(
            f"the data has missing values in {detail}: impute or drop them before training"
        )
    features = frame.drop(columns=[label_column])
    non_numeric = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        raise WorkflowError(
            f"feature columns {non_numeric[:5]} are not numeric: encode them as numbers "
            "(the models take numeric features only)"
        )
    if not np.isfinite(features.to_numpy(dtype=float)).all():
        raise WorkflowError("the data has infinite feature values: replace them before training")
    counts = frame[label_column].value_counts()
    if len(counts) < 2:
        raise WorkflowError(
            f"label column {label_column!r} has a single class ({str(counts.index[0])!r}): "
            "a classifier needs at least two"
        )
    n_rows = len(frame)
    n_test = int(np.ceil(test_fraction * n_rows))
    if counts.min() < 2 or n_test < len(counts) or n_rows - n_test < len(counts):
        raise WorkflowError(
            f"cannot make a stratified split of {n_rows} rows with {len(counts)} classes "
            f"(smallest class has {counts.min()} rows) at test_fraction={test_fraction}: "
            "provide more rows per class or change test_fraction"
        )


def split(
    frame: pd.DataFrame, label_column: str, test_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded, stratified train/test split; indexes are reset so digests ignore them."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        frame, test_size=test_fraction, stratify=frame[label_column], random_state=seed
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's column names, dtypes and every value (index ignored)."""
    hasher = hashlib.sha256()
    hasher.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    hasher.update(np.ascontiguousarray(row_hashes).tobytes())
    return hasher.hexdigest()


def combined_digest(train_digest: str, test_digest: str) -> str:
    """The digest of a whole split: changes when either part changes."""
    return hashlib.sha256(f"{train_digest}:{test_digest}".encode()).hexdigest()


def features_and_labels(frame: pd.DataFrame, label_column: str) -> tuple[pd.DataFrame, np.ndarray]:
    return frame.drop(columns=[label_column]), frame[label_column].to_numpy()
