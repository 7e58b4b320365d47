"""Datasets: seeded, stratified, fingerprinted, and refused when unusable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from versioning import data
from versioning.errors import WorkflowError


@pytest.fixture
def synthetic() -> pd.DataFrame:
    return data.make_synthetic(n_samples=1000, n_features=6, n_informative=3, n_classes=2, seed=16)


def test_synthetic_data_is_seeded(synthetic):
    again = data.make_synthetic(n_samples=1000, n_features=6, n_informative=3, n_classes=2, seed=16)
    other = data.make_synthetic(n_samples=1000, n_features=6, n_informative=3, n_classes=2, seed=17)
    assert data.frame_digest(synthetic) == data.frame_digest(again)
    assert data.frame_digest(synthetic) != data.frame_digest(other)
    assert list(synthetic.columns) == ["x0", "x1", "x2", "x3", "x4", "x5", "label"]


def test_split_is_stratified_disjoint_and_reproducible(synthetic):
    train, test = data.split(synthetic, "label", 0.2, seed=16)
    assert len(test) == 200 and len(train) == 800
    assert abs(train["label"].mean() - test["label"].mean()) < 0.01
    train_rows = set(pd.util.hash_pandas_object(train, index=False))
    test_rows = set(pd.util.hash_pandas_object(test, index=False))
    assert not train_rows & test_rows
    train2, test2 = data.split(synthetic, "label", 0.2, seed=16)
    assert data.frame_digest(test) == data.frame_digest(test2)


def test_digest_sees_every_value_and_ignores_the_index(synthetic):
    reindexed = synthetic.set_axis(range(5000, 6000))
    assert data.frame_digest(reindexed) == data.frame_digest(synthetic)
    changed = synthetic.copy()
    changed.iloc[999, 0] += 1e-9  # last row: MLflow's own digest samples only the head
    assert data.frame_digest(changed) != data.frame_digest(synthetic)
    assert data.combined_digest("a", "b") != data.combined_digest("b", "a")


@pytest.mark.parametrize("name, n_classes", [("iris", 3), ("digits", 10), ("breast_cancer", 2), ("wine", 3)])
def test_bundled_datasets_load_offline(name, n_classes):
    frame = data.load_bundled(name)
    assert frame["label"].nunique() == n_classes
    data.validate_frame(frame, "label", 0.2)


@pytest.mark.parametrize("mutate, phrase", [
    (lambda f: f.drop(columns=["label"]), "label column 'label' is not in the data"),
    (lambda f: f.assign(x0=f["x0"].where(f.index != 3)), "missing values in 'x0' (1)"),
    (lambda f: f.assign(label=0), "single class"),
    (lambda f: f.assign(x1="a"), "not numeric"),
    (lambda f: f.assign(x2=np.inf), "infinite"),
    (lambda f: f.assign(label=np.r_[np.zeros(len(f) - 1, int), 1]), "cannot make a stratified split"),
    (lambda f: f[["label"]], "no feature columns"),
])
def test_unusable_data_is_refused_with_a_clear_message(synthetic, mutate, phrase):
    with pytest.raises(WorkflowError) as error:
        data.validate_frame(mutate(synthetic), "label", 0.2)
    assert phrase in str(error.value)


def test_user_csv_and_parquet_round_trip(tmp_path, synthetic):
    csv, parquet = tmp_path / "d.csv", tmp_path / "d.parquet"
    synthetic.to_csv(csv, index=False)
    synthetic.to_parquet(parquet, index=False)
    assert data.read_user_file(parquet).equals(synthetic)
    assert data.read_user_file(csv).shape == synthetic.shape


def test_unreadable_user_files_are_named(tmp_path):
    with pytest.raises(WorkflowError, match="not found"):
        data.read_user_file(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(WorkflowError, match="cannot read data file"):
        data.read_user_file(empty)


def _frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(3)
    n = 2500
    base = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    return {
        "float features, int label": base.assign(label=rng.integers(0, 3, n)),
        "string label": base.assign(label=rng.choice(["cat", "dog"], n)),
        "mixed numeric dtypes": base.assign(
            small=rng.integers(0, 9, n).astype("int8"), flag=rng.integers(0, 2, n).astype(bool),
            single=rng.normal(size=n).astype("float32"), count=rng.integers(0, 10**9, n),
            label=rng.integers(0, 2, n)),
        "label first, numeric column names": pd.DataFrame(
            {"label": rng.integers(0, 2, n), 0: rng.normal(size=n), 1: rng.normal(size=n)}),
    }


@pytest.mark.parametrize("name", list(_frames()))
@pytest.mark.parametrize("sample_rows", [1, 1000])
def test_split_schema_is_what_mlflow_infers_from_every_row(name, sample_rows):
    """The dataset schema logged with a split comes from a sample of its numeric columns (MLflow
    tests every value in Python: minutes for millions of rows); on validated data it must be
    exactly what mlflow.data.from_pandas infers from all of them."""
    import mlflow.data

    from versioning import lineage

    frame = _frames()[name]
    data.validate_frame(frame, "label", 0.2)
    with lineage.quiet_integer_schema_hint():
        expected = mlflow.data.from_pandas(frame, targets="label").schema
    assert lineage.split_schema(frame, sample_rows=sample_rows).to_dict() == expected.to_dict()
