"""A promotion cannot half-happen, cannot act twice, cannot be judged unfairly.

Crash safety: kill the step after each registry write, run again, converge.

The crash is real: ``VERSIONING_CRASH_AFTER=<write>`` makes the step process end with
``os._exit(137)`` right after that write (no handler runs, the run stays RUNNING), exactly as
``kill -9`` at that moment would. The next compare_and_promote must find the registry in a
state it recognises and bring it to exactly one champion, the only version in Production.
All crash processes of a test run at once, each on its own registered model of one store.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.registry_helpers import (
    assert_one_champion,
    champion_state,
    clone_pair,
    clone_version,
    decision_record,
    error_lines,
    prepare_sources,
    registry_snapshot,
    run_process,
    runs_of,
    start_process,
    temporary_store,
    wait_all,
)
from versioning import registry

SOURCE_MODEL = "source"
# The writes of a promotion, in order (versioning/registry.py, "Write order").
PROMOTION_WRITES = ["promotion_tags", "previous_champion_tag", "champion_alias",
                    "production_stage", "champion_model_tag", "challenger_alias_removed"]
# The writes of train_lr placing the first version of a model, in order, up to its commit
# (the later ones are crown()'s, killed above on the way to a promotion).
BOOTSTRAP_WRITES = ["challenger_alias", "staging_stage", "bootstrap_tags", "champion_alias"]
COMMITTED = {"champion_alias", "production_stage", "champion_model_tag", "challenger_alias_removed"}
PARALLEL = 5  # crash processes at a time


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with temporary_store(tmp_path_factory.mktemp("crash-store")) as tracking:
        data_run, sources = prepare_sources(tracking, SOURCE_MODEL)
        tracking.data_run = data_run
        tracking.sources = sources
        yield tracking


def _crash_all(commands):
    """Start ((kind, crash point), step, overrides) processes PARALLEL at a time; results by key."""
    results = {}
    for start in range(0, len(commands), PARALLEL):
        batch = commands[start:start + PARALLEL]
        processes = [start_process(step, *overrides, env={registry.CRASH_AFTER_ENV: key[1]})
                     for key, step, overrides in batch]
        for (point, _, _), result in zip(batch, wait_all(processes)):
            results[point] = result
    return results


@pytest.fixture(scope="module")
def crashes(store):
    """All crashed processes, started together:

    * for each promotion write, a model with champion v1 and challenger v2 and a
      compare_and_promote process killed right after that write;
    * for each bootstrap write, train_lr on a new model, killed right after that write.
    """
    for point in PROMOTION_WRITES:
        clone_pair(store.client, f"promote-{point}", store.sources["logistic_regression"],
                   store.sources["random_forest"])
    results = _crash_all(
        [(("promote", point), "compare_and_promote", (f"registered_model_name=promote-{point}",))
         for point in PROMOTION_WRITES]
        + [(("bootstrap", point), "train_lr", (f"registered_model_name=bootstrap-{point}",
                                               f"data_run_id={store.data_run}"))
           for point in BOOTSTRAP_WRITES])
    return results


@pytest.fixture(scope="module")
def promotion_crashes(crashes):
    return {point: result for (kind, point), result in crashes.items() if kind == "promote"}


@pytest.fixture(scope="module")
def bootstrap_crashes(crashes):
    return {point: result for (kind, point), result in crashes.items() if kind == "bootstrap"}


@pytest.mark.parametrize("point", PROMOTION_WRITES)
def test_promotion_killed_after_each_write_converges(store, promotion_crashes, point, capsys):
    model = f"promote-{point}"
    crashed = promotion_crashes[point]
    assert crashed.exit_code == 137, crashed.err[-2000:]
    champion, production, challenger = champion_state(store.client, model)
    # Never zero or two champions: the alias names exactly one version at every moment.
    assert champion == ("2" if point in COMMITTED else "1")
    if point in ("promotion_tags", "previous_champion_tag"):
        assert production == ["1"] and challenger == "2"  # nothing that matters changed
    if point == "champion_alias":
        assert production == ["1"]  # stages lag behind the committed alias

    rerun = store.run_step("compare_and_promote", f"registered_model_name={model}", capsys=capsys)
    assert rerun.exit_code == 0, rerun.err
    assert_one_champion(store.client, model, expected="2")
    assert store.client.get_model_version(model, "1").current_stage == registry.ARCHIVED
    run = runs_of(store.client, store.experiment_id, "compare_and_promote", model)[0]
    record = decision_record(store.client, run.info.run_id, store.root / f"decision-{point}")
    if point in COMMITTED:
        # The crashed run committed the promotion; this one finishes it and says what it fixed.
        assert record["decision"] == "no_challenger"
        if point != "challenger_alias_removed":
            assert record["repairs"], record
    else:
        assert record["decision"] == "promote" and not record["repairs"]
        # Same data run for both: the evaluation rows are held out from both by construction.
        assert record["fairness"]["held_out"] is True
        assert {record["fairness"][r]["status"] for r in ("champion", "challenger")} == {
            "held_out_by_construction"}
    prev = store.client.get_model_version(model, "2").tags[registry.TAG_PREVIOUS_CHAMPION]
    assert prev == "1"

    # Converged means stable: another run changes nothing and says why.
    before = registry_snapshot(store.client)
    again = store.run_step("compare_and_promote", f"registered_model_name={model}", capsys=capsys)
    assert again.exit_code == 0 and "no_challenger" in again.out
    assert registry_snapshot(store.client) == before


@pytest.mark.parametrize("point", BOOTSTRAP_WRITES)
def test_bootstrap_killed_after_each_write_converges(store, bootstrap_crashes, point, capsys):
    model = f"bootstrap-{point}"
    crashed = bootstrap_crashes[point]
    assert crashed.exit_code == 137, crashed.err[-2000:]
    champion, production, challenger = champion_state(store.client, model)
    if point in COMMITTED:
        assert champion == "1"  # after the commit there is a champion, and only one
    else:
        assert champion is None and production == [] and challenger == "1"

    rerun = store.run_step("compare_and_promote", f"registered_model_name={model}", capsys=capsys)
    assert rerun.exit_code == 0, rerun.err
    assert_one_champion(store.client, model, expected="1")
    run = runs_of(store.client, store.experiment_id, "compare_and_promote", model)[0]
    record = decision_record(store.client, run.info.run_id, store.root / f"boot-{point}")
    # Before the commit the next compare performs the bootstrap; after it, it only repairs.
    assert record["decision"] == ("no_challenger" if point in COMMITTED else "bootstrap")

    before = registry_snapshot(store.client)
    again = store.run_step("compare_and_promote", f"registered_model_name={model}", capsys=capsys)
    assert again.exit_code == 0 and "no_challenger" in again.out
    assert registry_snapshot(store.client) == before


# --- idempotency ----------------------------------------------------------------------------


def test_the_same_pair_again_does_nothing_and_says_so(store, capsys):
    model = "idempotent"
    clone_pair(store.client, model, store.sources["logistic_regression"], store.sources["random_forest"])
    assert store.run_step("compare_and_promote", f"registered_model_name={model}", capsys=capsys).exit_code == 0
    before = registry_snapshot(store.client)
    for pair in ((), ("champion=1", "challenger=2")):  # default aliases, then named explicitly
        again = store.run_step("compare_and_promote", f"registered_model_name={model}", *pair,
                               capsys=capsys)
        assert again.exit_code == 0, again.err
        assert "no_challenger" in again.out or "unchanged" in again.out, again.out
        assert registry_snapshot(store.client) == before
    assert "is already the champion" in again.out


# --- rollback -------------------------------------------------------------------------------


def _last_record(store, step_name: str, model: str, label: str) -> dict:
    run = runs_of(store.client, store.experiment_id, step_name, model)[0]
    return decision_record(store.client, run.info.run_id, store.root / label)


def test_rollback_restores_the_previous_champion_and_records_why(store, capsys):
    model = "rollback-basic"
    clone_pair(store.client, model, store.sources["logistic_regression"], store.sources["random_forest"])
    assert store.run_step("compare_and_promote", f"registered_model_name={model}", capsys=capsys).exit_code == 0
    assert_one_champion(store.client, model, expected="2")
    why = "v2 misclassifies the new region"

    before = registry_snapshot(store.client)
    dry = store.run_step("rollback", f"registered_model_name={model}", "dry_run=true",
                         f"rollback_reason={why}", capsys=capsys)
    assert dry.exit_code == 0 and "[dry run: registry untouched] rollback" in dry.out, dry.err
    assert registry_snapshot(store.client) == before
    assert _last_record(store, "rollback", model, "rb-dry")["dry_run"] is True

    done = store.run_step("rollback", f"registered_model_name={model}", f"rollback_reason={why}",
                          capsys=capsys)
    assert done.exit_code == 0, done.err
    assert_one_champion(store.client, model, expected="1")
    assert store.client.get_model_version(model, "2").current_stage == registry.ARCHIVED
    run = runs_of(store.client, store.experiment_id, "rollback", model)[0]
    record = decision_record(store.client, run.info.run_id, store.root / "rb-done")
    assert record["decision"] == "rollback" and why in record["reason"]
    assert record["rollback"]["from_version"] == "2" and record["rollback"]["to_version"] == "1"
    assert record["champion"]["version"] == "1" and record["rolled_back"]["version"] == "2"
    restored = store.client.get_model_version(model, "1")
    assert restored.tags["promotion.decision"] == "rollback"
    assert why in json.loads(restored.tags["promotion.record"])["reason"]
    assert store.client.get_model_version(model, "2").tags["promotion.rolled_back_by_run_id"] == run.info.run_id

    # v1 was the bootstrap version: there is nothing before it, and the registry stays put.
    before = registry_snapshot(store.client)
    refused = store.run_step("rollback", f"registered_model_name={model}", capsys=capsys)
    assert refused.exit_code == 2 and "nothing to roll back to" in refused.err
    assert registry_snapshot(store.client) == before


def test_a_rollback_killed_after_its_commit_is_completed_not_repeated(store, capsys):
    model = "rollback-chain"
    client = store.client
    v1, v2 = clone_pair(client, model, store.sources["logistic_regression"], store.sources["random_forest"])
    registry.crown(client, v2, previous=v1)
    v3 = clone_version(client, model, store.sources["random_forest"])
    registry.make_challenger(client, v3)
    registry.crown(client, client.get_model_version(model, v3.version), previous=v2)
    assert_one_champion(client, model, expected="3")

    crashed = run_process("rollback", f"registered_model_name={model}",
                          env={registry.CRASH_AFTER_ENV: "champion_alias"})
    assert crashed.exit_code == 137, crashed.err[-2000:]
    assert champion_state(client, model)[:2] == ("2", ["3"])  # committed, stages behind

    # Running rollback again finishes that rollback; it does not go one further back to v1.
    again = store.run_step("rollback", f"registered_model_name={model}", capsys=capsys)
    assert again.exit_code == 0, again.err
    assert "Completed rollback run" in again.out
    assert_one_champion(client, model, expected="2")
    assert client.get_model_version(model, "3").current_stage == registry.ARCHIVED

    # A deliberate second rollback walks back one more promotion, then there is nothing left.
    assert store.run_step("rollback", f"registered_model_name={model}", capsys=capsys).exit_code == 0
    assert_one_champion(client, model, expected="1")
    assert store.run_step("rollback", f"registered_model_name={model}", capsys=capsys).exit_code == 2


# --- dry run --------------------------------------------------------------------------------


def test_dry_run_computes_and_records_everything_but_leaves_the_registry(store, capsys):
    model = "dry-run"
    clone_pair(store.client, model, store.sources["logistic_regression"], store.sources["random_forest"])
    before = registry_snapshot(store.client)
    result = store.run_step("compare_and_promote", f"registered_model_name={model}", "dry_run=true",
                            capsys=capsys)
    assert result.exit_code == 0, result.err
    assert "[dry run: registry untouched] promote" in result.out
    assert registry_snapshot(store.client) == before
    record = _last_record(store, "compare_and_promote", model, "dry")
    assert record["dry_run"] is True and record["decision"] == "promote"
    assert record["p_value"] < record["alpha"] and record["table"]
    run = runs_of(store.client, store.experiment_id, "compare_and_promote", model)[0]
    assert run.data.tags["promotion.dry_run"] == "true"

    # A registry left behind by a crash: a dry run reports the repairs and applies none.
    store.client.set_registered_model_alias(model, registry.CHAMPION, "2")
    before = registry_snapshot(store.client)
    result = store.run_step("compare_and_promote", f"registered_model_name={model}", "dry_run=true",
                            capsys=capsys)
    assert result.exit_code == 0, result.err
    assert registry_snapshot(store.client) == before
    repairs = _last_record(store, "compare_and_promote", model, "dry-repair")["repairs"]
    assert any("Production" in repair["action"] for repair in repairs), repairs


# --- fair comparisons -----------------------------------------------------------------------


def _csv(path, frame) -> str:
    frame.to_csv(path, index=False)
    return str(path)


def _overlap(client, evaluation_run: str, training_run: str, dst) -> tuple[int, int]:
    """(evaluation rows whose features appear in the training split, evaluation rows)."""
    import pandas as pd

    test = pd.read_parquet(client.download_artifacts(evaluation_run, "data/test.parquet", str(dst)))
    train = pd.read_parquet(client.download_artifacts(training_run, "data/train.parquet", str(dst)))
    features = [c for c in test.columns if c != "label"]
    seen = set(map(tuple, train[features].to_numpy().round(12)))
    return sum(tuple(row) in seen for row in test[features].to_numpy().round(12)), len(test)


def test_a_model_is_never_judged_on_rows_it_was_trained_on(store, capsys, tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(11)
    rows = pd.DataFrame(rng.normal(size=(600, 4)), columns=["f1", "f2", "f3", "f4"])
    rows["label"] = (rows["f1"] + rows["f2"] > 0).astype(int)
    model = "fair"

    def data_run(path: str, seed: int) -> str:
        assert store.run_step("generate_data", f"data_source={path}", f"seed={seed}", capsys=capsys).exit_code == 0
        return runs_of(store.client, store.experiment_id, "generate_data")[0].info.run_id

    # The champion trained on a split of the file; the challenger on the same rows, shuffled
    # and split again: its test rows are largely the champion's training rows.
    first = data_run(_csv(tmp_path / "a.csv", rows), 16)
    second = data_run(_csv(tmp_path / "b.csv", rows.sample(frac=1.0, random_state=5)), 99)
    for step_name, run_id in (("train_lr", first), ("train_rf", second)):
        assert store.run_step(step_name, f"registered_model_name={model}", f"data_run_id={run_id}",
                              capsys=capsys).exit_code == 0
    overlap, n_test = _overlap(store.client, second, first, tmp_path / "check")
    assert 0 < overlap < n_test

    before = registry_snapshot(store.client)
    refused = store.run_step("compare_and_promote", f"registered_model_name={model}", capsys=capsys)
    assert refused.exit_code == 2
    [line] = error_lines("compare_and_promote", refused.err)
    assert f"champion {model} v1 was trained on {overlap} of the {n_test} evaluation rows" in line
    assert "allow_training_overlap=true" in line
    assert registry_snapshot(store.client) == before

    allowed = store.run_step("compare_and_promote", f"registered_model_name={model}",
                             "allow_training_overlap=true", "dry_run=true", capsys=capsys)
    assert allowed.exit_code == 0, allowed.err
    fairness = _last_record(store, "compare_and_promote", model, "fair-override")["fairness"]
    assert fairness["override_used"] is True and fairness["held_out"] is False
    assert fairness["champion"]["status"] == "overlap" and fairness["champion"]["overlap_rows"] == overlap
    assert fairness["champion"]["data_run_id"] == first
    assert fairness["challenger"]["status"] == "held_out_by_construction"

    # New rows in another file: a different data run, checked row by row, nothing shared.
    fresh = pd.DataFrame(rng.normal(size=(300, 4)), columns=["f1", "f2", "f3", "f4"])
    fresh["label"] = (fresh["f1"] + fresh["f2"] > 0).astype(int)
    third = data_run(_csv(tmp_path / "c.csv", fresh), 16)
    assert store.run_step("train_rf", f"registered_model_name={model}", f"data_run_id={third}",
                          capsys=capsys).exit_code == 0
    result = store.run_step("compare_and_promote", f"registered_model_name={model}", "dry_run=true",
                            capsys=capsys)
    assert result.exit_code == 0, result.err
    fairness = _last_record(store, "compare_and_promote", model, "fair-fresh")["fairness"]
    assert fairness["champion"]["status"] == "no_overlap" and fairness["champion"]["overlap_rows"] == 0
    assert fairness["held_out"] is True and fairness["override_used"] is False


# --- model files ----------------------------------------------------------------------------


def test_every_registered_version_is_saved_with_skops_and_an_explicit_trust_list(store, tmp_path):
    import mlflow

    from versioning import training

    trusted = {family.name: list(family.skops_trusted_types) for family in training.FAMILIES.values()}
    versions = registry.live_versions(store.client, SOURCE_MODEL)
    assert {v.tags["model.family"] for v in versions} == set(trusted)
    for version in versions:
        uri = f"models:/{SOURCE_MODEL}/{version.version}"
        flavor = mlflow.models.get_model_info(uri).flavors["sklearn"]
        assert flavor["serialization_format"] == "skops"
        assert flavor["skops_trusted_types"] == trusted[version.tags["model.family"]]
        local = mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / str(version.version)))
        files = {p.name for p in Path(local).rglob("*") if p.is_file()}
        assert flavor["pickled_model"] == "model.skops" and "model.skops" in files
        assert not {f for f in files if f.endswith((".pkl", ".pickle", ".joblib"))}, files
