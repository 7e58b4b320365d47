"""The generate_data step: build or read the data, split it, log both splits with lineage."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd

from versioning import data, lineage
from versioning.config import PROJECT_ROOT, Config
from versioning.step import StepContext


def build_frame(config: Config) -> tuple[pd.DataFrame, str, str]:
    """The full dataset, its label column and a human-readable description of its source."""
    source = config["data_source"]
    if source == "synthetic":
        frame = data.make_synthetic(
            config["n_samples"], config["n_features"], config["n_informative"],
            config["n_classes"], config["seed"],
        )
        return frame, data.SYNTHETIC_LABEL, (
            f"sklearn.datasets.make_classification(n_samples={config['n_samples']}, "
            f"n_features={config['n_features']}, n_informative={config['n_informative']}, "
            f"n_classes={config['n_classes']}, random_state={config['seed']})"
        )
    if source.startswith("sklearn:"):
        name = source.split(":", 1)[1]
        return data.load_bundled(name), data.SYNTHETIC_LABEL, f"sklearn.datasets.load_{name}()"
    path = Path(source).expanduser()
    if not path.is_absolute() and not path.exists():
        path = PROJECT_ROOT / path
    return data.read_user_file(path), config["label_column"], str(path.resolve())


def run(ctx: StepContext) -> str:
    config = ctx.config
    frame, label_column, description = build_frame(config)
    data.validate_frame(frame, label_column, config["test_fraction"])
    train, test = data.split(frame, label_column, config["test_fraction"], config["seed"])
    train_digest, test_digest = data.frame_digest(train), data.frame_digest(test)
    digest = data.combined_digest(train_digest, test_digest)

    with tempfile.TemporaryDirectory() as tmp:
        for name, split in (("train", train), ("test", test)):
            path = Path(tmp) / f"{name}.parquet"
            # Row groups of 100k rows let compare_and_promote score a large test set in chunks.
            split.to_parquet(path, index=False, row_group_size=100_000)
            mlflow.log_artifact(str(path), artifact_path="data")
    for name, split, split_digest in (("train", train, train_digest), ("test", test, test_digest)):
        lineage.log_split_input(split, data_run_id=ctx.run_id, split=name, label_column=label_column,
                                digest=split_digest, description=description, context=name)
    counts = frame[label_column].value_counts()
    mlflow.log_metrics({
        "n_rows": len(frame), "n_train": len(train), "n_test": len(test),
        "n_features": frame.shape[1] - 1, "n_classes": len(counts),
    })
    mlflow.set_tags({
        lineage.DATA_DIGEST_TAG: digest,
        lineage.TRAIN_DIGEST_TAG: train_digest,
        lineage.TEST_DIGEST_TAG: test_digest,
        lineage.LABEL_COLUMN_TAG: label_column,
        "data.source": description[:500],
    })
    return (
        f"generate_data: {len(train)} train / {len(test)} test rows, {len(counts)} classes, "
        f"{frame.shape[1] - 1} features from {description}; digest {digest[:12]} "
        f"(run {ctx.run_id})"
    )
