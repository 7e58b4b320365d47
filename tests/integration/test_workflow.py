"""The workflow end to end on a real temporary sqlite store: the registry states it leaves."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import mlflow.projects
import pytest

from tests.conftest import PROJECT_ROOT, SMALL_CONFIG, Tracking
from versioning import registry

MODEL = "classifier"


def stage(tracking: Tracking, version: str) -> str:
    return tracking.client.get_model_version(MODEL, version).current_stage


def alias_version(tracking: Tracking, alias: str) -> str | None:
    found = registry.version_by_alias(tracking.client, MODEL, alias)
    return None if found is None else str(found.version)


def decision_of(tracking: Tracking, run_id: str) -> dict:
    path = tracking.client.download_artifacts(run_id, "decision.json", str(tracking.root))
    return json.loads(Path(path).read_text())


def last_run(tracking: Tracking, step_name: str) -> mlflow.entities.Run:
    return tracking.client.search_runs(
        [tracking.experiment_id], f"tags.`versioning.step` = '{step_name}'",
        order_by=["attributes.start_time DESC"], max_results=1,
    )[0]


def registry_snapshot(tracking: Tracking) -> dict:
    versions = tracking.client.search_model_versions(f"name = '{MODEL}'")
    return {
        "versions": sorted((str(v.version), v.current_stage, tuple(sorted(v.tags.items()))) for v in versions),
        "aliases": sorted(tracking.client.get_registered_model(MODEL).aliases.items()),
    }


@pytest.fixture
def after_main(tracking: Tracking, capsys) -> Tracking:
    """The registry after one in-process run of every step, as `main` runs them."""
    for name in ("generate_data", "train_lr", "train_rf", "compare_and_promote"):
        result = tracking.run_step(name, capsys=capsys)
        assert result.exit_code == 0, result.err
    return tracking


def test_default_flow_promotes_the_forest_and_archives_the_regression(after_main: Tracking):
    tracking = after_main
    champion = tracking.client.get_model_version_by_alias(MODEL, "champion")
    assert champion.tags["model.family"] == "random_forest"
    assert champion.current_stage == "Production"
    lr = next(v for v in tracking.client.search_model_versions(f"name = '{MODEL}'")
              if v.tags["model.family"] == "logistic_regression")
    assert lr.current_stage == "Archived"
    assert alias_version(tracking, "challenger") is None

    record = decision_of(tracking, last_run(tracking, "compare_and_promote").info.run_id)
    assert record["decision"] == "promote"
    assert record["p_value"] < record["alpha"] == 0.05
    assert record["champion"]["version"] == str(lr.version)
    assert record["challenger"]["version"] == str(champion.version)
    for role in ("champion", "challenger"):
        assert set(record[role]) >= {"name", "version", "run_id", "accuracy"}
    (a, b), (c, d) = record["table"]
    assert a + b + c + d == record["n"]
    assert record["challenger"]["accuracy"] == pytest.approx((a + c) / record["n"])
    assert record["champion"]["accuracy"] == pytest.approx((a + b) / record["n"])
    assert record["method"] == "corrected" and record["statistic"] > 0  # auto: b + c >= 25
    assert record["seeds"] == {"data": "16", "champion_training": "16", "challenger_training": "16"}
    assert set(record["p_values"]) == {"exact", "midp", "corrected", "asymptotic"}
    assert record["test_set"]["digest"] == last_run(tracking, "generate_data").data.tags["data.test_digest"]
    assert set(record["versions"]) >= {"mlflow", "scikit-learn", "mlxtend"}
    # The key numbers are also on both versions and in the run's metrics.
    # A registry reader sees why without opening the run: decision, p-value and method as
    # tags of their own, the rest in one JSON tag (few tags: each write costs a registry read).
    for version in (lr, champion):
        tags = tracking.client.get_model_version(MODEL, version.version).tags
        decision_tags = {key for key in tags if key.startswith(("promotion.", "mcnemar."))}
        assert decision_tags - {"promotion.previous_champion", "promotion.bootstrap_run_id"} == {
            "promotion.decision", "mcnemar.p_value", "mcnemar.method", "promotion.record"}
        assert tags["promotion.decision"] == "promote"
        assert float(tags["mcnemar.p_value"]) == pytest.approx(record["p_value"])
        assert tags["mcnemar.method"] == record["method"] == "corrected"
        recorded = json.loads(tags["promotion.record"])
        assert recorded == {
            "reason": record["reason"], "run_id": record["run_id"],
            "policy_digest": record["policy"]["digest"],
            "champion_version": record["champion"]["version"],
            "challenger_version": record["challenger"]["version"],
            "statistic": pytest.approx(record["statistic"]), "b": b, "c": c, "n": record["n"],
            "delta_accuracy": pytest.approx((c - b) / record["n"]), "alpha": record["alpha"],
        }
    metrics = last_run(tracking, "compare_and_promote").data.metrics
    assert metrics["p_value"] == pytest.approx(record["p_value"])
    assert metrics["b"] == b and metrics["c"] == c


def test_bootstrap_is_recorded_on_the_first_version(after_main: Tracking):
    tracking = after_main
    train_lr = last_run(tracking, "train_lr")
    record = decision_of(tracking, train_lr.info.run_id)
    assert record["decision"] == "bootstrap"
    version = train_lr.data.tags["registered_model_version"]
    tags = tracking.client.get_model_version(MODEL, version).tags
    assert tags["promotion.bootstrap_run_id"] == train_lr.info.run_id


def test_compare_again_changes_nothing_and_says_why(after_main: Tracking, capsys):
    before = registry_snapshot(after_main)
    result = after_main.run_step("compare_and_promote", capsys=capsys)
    assert result.exit_code == 0
    assert "no_challenger" in result.out and "Nothing to compare" in result.out
    assert registry_snapshot(after_main) == before


def test_retraining_the_same_forest_is_kept_with_p_equal_one(after_main: Tracking, capsys):
    tracking = after_main
    champion_before = alias_version(tracking, "champion")
    assert tracking.run_step("train_lr", capsys=capsys).exit_code == 0
    lr_version = alias_version(tracking, "challenger")
    assert tracking.run_step("train_rf", capsys=capsys).exit_code == 0
    rf_version = alias_version(tracking, "challenger")
    assert int(rf_version) == int(lr_version) + 1 and lr_version != champion_before
    assert stage(tracking, lr_version) == "Staging" and stage(tracking, rf_version) == "Staging"

    result = tracking.run_step("compare_and_promote", capsys=capsys)
    assert result.exit_code == 0, result.err
    record = decision_of(tracking, last_run(tracking, "compare_and_promote").info.run_id)
    assert record["decision"] == "keep"
    assert record["champion"]["version"] == champion_before
    assert record["challenger"]["version"] == rf_version
    assert record["b"] == record["c"] == 0 and record["p_value"] == 1.0
    assert alias_version(tracking, "champion") == champion_before

    # Same pair, same policy: nothing new to do, and it says so without touching the registry.
    before = registry_snapshot(tracking)
    again = tracking.run_step("compare_and_promote", capsys=capsys)
    assert again.exit_code == 0 and "unchanged" in again.out
    assert registry_snapshot(tracking) == before


def test_same_config_gives_same_digest_and_same_predictions(tracking: Tracking, capsys):
    digests, predictions = [], []
    for _ in range(2):
        assert tracking.run_step("generate_data", capsys=capsys).exit_code == 0
        data_run = last_run(tracking, "generate_data")
        digests.append(data_run.data.tags["data.digest"])
        assert tracking.run_step("train_rf", f"data_run_id={data_run.info.run_id}",
                                 "rf_n_jobs=-1", capsys=capsys).exit_code == 0
        train_run = last_run(tracking, "train_rf")
        version = train_run.data.tags["registered_model_version"]
        model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{version}")
        test = mlflow.artifacts.download_artifacts(run_id=data_run.info.run_id,
                                                   artifact_path="data/test.parquet",
                                                   dst_path=str(tracking.root / version))
        import pandas as pd

        frame = pd.read_parquet(test)
        predictions.append(model.predict(frame.drop(columns=["label"])))
    assert digests[0] == digests[1]
    assert (predictions[0] == predictions[1]).all()


@pytest.mark.slow
def test_main_through_mlflow_projects(tracking: Tracking):
    submitted = mlflow.projects.run(
        uri=str(PROJECT_ROOT), entry_point="main", parameters={"config": str(SMALL_CONFIG)},
        env_manager="local", experiment_id=tracking.experiment_id, synchronous=True,
    )
    parent = tracking.client.get_run(submitted.run_id)
    assert parent.info.status == "FINISHED"
    children = tracking.client.search_runs(
        [tracking.experiment_id], f"tags.`mlflow.parentRunId` = '{submitted.run_id}'")
    assert sorted(r.data.tags["versioning.step"] for r in children) == [
        "compare_and_promote", "generate_data", "train_lr", "train_rf"]
    assert all(r.info.status == "FINISHED" for r in children)
    champion = tracking.client.get_model_version_by_alias(MODEL, "champion")
    assert champion.tags["model.family"] == "random_forest"
    assert champion.current_stage == "Production"


def test_every_step_records_the_splits_it_read_as_dataset_inputs(after_main: Tracking):
    """Lineage: generate_data logs both splits as MLflow dataset inputs; each training run
    logs the same two datasets (same digests: the splits' own SHA-256), with their schema and
    row counts, so the registry version's run leads to the exact rows it saw."""
    tracking = after_main
    data_run = last_run(tracking, "generate_data")
    digests = {"train": data_run.data.tags["data.train_digest"][:10],
               "test": data_run.data.tags["data.test_digest"][:10]}
    rows = {"train": int(data_run.data.metrics["n_train"]), "test": int(data_run.data.metrics["n_test"])}
    expected_contexts = {"generate_data": {"train": "train", "test": "test"},
                         "train_lr": {"train": "training", "test": "evaluation"},
                         "train_rf": {"train": "training", "test": "evaluation"}}
    for step_name, contexts in expected_contexts.items():
        run = tracking.client.get_run(last_run(tracking, step_name).info.run_id)
        found = {}
        for item in run.inputs.dataset_inputs:
            split = item.dataset.name.split("-")[0]
            found[split] = item
            assert item.dataset.digest == digests[split]
            assert {tag.key: tag.value for tag in item.tags}["mlflow.data.context"] == contexts[split]
            assert json.loads(item.dataset.profile)["num_rows"] == rows[split]
            columns = [spec["name"] for spec in json.loads(item.dataset.schema)["mlflow_colspec"]]
            assert columns[-1] == "label" and len(columns) == 21
            source = json.loads(item.dataset.source)["tags"]
            assert source["data_run_id"] == data_run.info.run_id
            assert source["artifact_path"] == f"data/{split}.parquet"
        assert set(found) == {"train", "test"}, step_name
