"""Several challengers at once (-P challengers=...) through the compare_and_promote entry point.

Real MLflow (a temporary sqlite store), real scikit-learn models trained by train_lr/train_rf on
one generate_data run of tests/configs/small.yaml (300 test rows); nothing is mocked. Each
model is trained once into registered model ``source``; a test builds its own registered
model from those (``clone_version``: the same logged model registered again with its lineage
tags), so tests do not share registry state.

Measured on the 300 test rows, against the champion (logistic regression, accuracy 0.853):

==============  ========  ============================  =====================================
source          accuracy  McNemar p (auto)              role
==============  ========  ============================  =====================================
lr_c03          0.853     1 (b = c = 0)                 no different
rf_depth1       0.720     4e-6                          significantly *worse*
rf_depth3       0.857     1                             no different
rf_depth4       0.880     0.22                          better, not significant
rf_depth6       0.897     0.021                         significant alone, not after Holm (×3)
rf              0.907     0.006                         truly better
rf_depth8       0.917     0.0008                        truly better, the best
==============  ========  ============================  =====================================

The tests assert these premises where they rely on them, so a change of data or library that
moves a p-value fails with a message saying which premise broke.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlxtend.evaluate import cochrans_q as mlxtend_cochrans_q
from statsmodels.stats.multitest import multipletests

from tests.registry_helpers import (
    assert_one_champion,
    clone_version,
    decision_record,
    error_lines,
    registry_snapshot,
    run_process,
    runs_of,
    temporary_store,
)
from versioning import lineage, record, registry, stats

ALPHA = 0.05
SOURCES = (
    ("lr", "train_lr", ()),  # the champion of every family below
    ("lr_c03", "train_lr", ("lr_C=0.3",)),
    ("rf_depth1", "train_rf", ("rf_max_depth=1",)),
    ("rf_depth3", "train_rf", ("rf_max_depth=3",)),
    ("rf_depth4", "train_rf", ("rf_max_depth=4",)),
    ("rf_depth6", "train_rf", ("rf_max_depth=6",)),
    ("rf", "train_rf", ()),
    ("rf_depth8", "train_rf", ("rf_max_depth=8",)),
)
ENTRY_KEYS = {"version", "table", "p_value", "p_adjusted", "metrics", "accuracy", "eligible",
              "selected", "why", "method", "n", "b", "c", "delta", "family", "run_id",
              "outranked_by"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with temporary_store(tmp_path_factory.mktemp("multi-store")) as tracking:
        assert tracking.run_step("generate_data").exit_code == 0
        data_run = runs_of(tracking.client, tracking.experiment_id, "generate_data")[0].info.run_id
        sources = {}
        for key, step, overrides in SOURCES:
            result = tracking.run_step(step, "registered_model_name=source",
                                       f"data_run_id={data_run}", *overrides)
            assert result.exit_code == 0, f"{step} {overrides} failed"
            number = runs_of(tracking.client, tracking.experiment_id, step)[0].data.tags[
                "registered_model_version"]
            sources[key] = tracking.client.get_model_version("source", number)
        tracking.data_run = data_run
        tracking.sources = sources
        yield tracking


def make_family(store, model: str, challengers: tuple[str, ...]) -> dict[str, str]:
    """Registered model ``model``: v1 the champion (source lr, as after a bootstrap), then one
    version per key of ``challengers``, each placed as train_* places it (alias challenger,
    stage Staging, tag versioning.staged). Returns version numbers by source key."""
    client = store.client
    champion = clone_version(client, model, store.sources["lr"])
    registry.make_challenger(client, champion)
    client.set_model_version_tag(model, champion.version, record.TAG_DECISION, "bootstrap")
    registry.crown(client, client.get_model_version(model, champion.version))
    numbers = {"lr": str(champion.version)}
    for key in challengers:
        version = clone_version(client, model, store.sources[key])
        registry.make_challenger(client, version)
        numbers[key] = str(version.version)
    return numbers


def compare(store, model: str, *overrides: str, capsys):
    return store.run_step("compare_and_promote", f"registered_model_name={model}", *overrides,
                          capsys=capsys)


def last_record(store, model: str, label: str) -> tuple[dict, str]:
    run = runs_of(store.client, store.experiment_id, "compare_and_promote", model)[0]
    return decision_record(store.client, run.info.run_id, store.root / label), run.info.run_id


def holm(p_values: list[float]) -> np.ndarray:
    # statsmodels' Holm branch calls gc.collect() (slow in a process that imported MLflow).
    collect, gc.collect = gc.collect, lambda *args: 0
    try:
        return multipletests(p_values, alpha=ALPHA, method="holm")[1]
    finally:
        gc.collect = collect


def predictions(store, model: str, numbers: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The test split's labels and each version's predictions, computed here (not by the
    workflow): the independent check of the recorded tables."""
    local = mlflow.artifacts.download_artifacts(
        run_id=store.data_run, artifact_path=lineage.SPLIT_ARTIFACTS["test"],
        dst_path=str(store.root / f"split-{model}"))
    frame = pd.read_parquet(local)
    features = frame.drop(columns=["label"])
    predicted = [np.asarray(mlflow.pyfunc.load_model(f"models:/{model}/{n}").predict(features))
                 for n in numbers]
    return frame["label"].to_numpy(), predicted


def by_version(record_: dict) -> dict[str, dict]:
    return {entry["version"]: entry for entry in record_["comparisons"]}


def check_comparisons(record_: dict) -> None:
    """What every several-challenger record must satisfy, whatever the data."""
    entries = record_["comparisons"]
    for entry in entries:
        assert ENTRY_KEYS <= set(entry), sorted(ENTRY_KEYS - set(entry))
        (a, b), (c, d) = entry["table"]
        assert a + b + c + d == entry["n"] == record_["n"]
        assert entry["accuracy"] == pytest.approx((a + c) / entry["n"])
        assert entry["p_value"] == stats.mcnemar_test(entry["table"], "auto").p_value
    # Holm, computed independently.
    expected = holm([e["p_value"] for e in entries])
    np.testing.assert_allclose([e["p_adjusted"] for e in entries], expected, rtol=1e-12)
    champion_accuracy = record_["champion"]["accuracy"]
    for entry in entries:
        # The policy (accuracy, no tie-breaker, no min_delta): eligible iff adjusted p < alpha
        # and better than the champion.
        assert entry["eligible"] == (entry["p_adjusted"] < ALPHA
                                     and entry["accuracy"] > champion_accuracy), entry["why"]
    eligible = [e for e in entries if e["eligible"]]
    selected = [e for e in entries if e["selected"]]
    if eligible:
        best = max(eligible, key=lambda e: (e["accuracy"], -e["p_adjusted"], -int(e["version"])))
        assert [e["version"] for e in selected] == [best["version"]]
        assert record_["decision"] == "promote"
        assert record_["challenger"]["version"] == best["version"]
        assert record_["p_adjusted"] == best["p_adjusted"]
    else:
        assert selected == [] and record_["decision"] == "keep"
    assert record_["correction"] == "holm"


# --- (a) the truly better one survives; the others keep their stage ------------------------


def test_staging_compares_every_staged_version_and_promotes_only_the_truly_better_one(
        store, capsys):
    model = "family-staging"
    numbers = make_family(store, model, ("lr_c03", "rf_depth1", "rf_depth8", "rf_depth4"))
    client = store.client

    result = compare(store, model, "challengers=staging", "cochrans_q=true", capsys=capsys)
    assert result.exit_code == 0, result.err
    assert "promote" in result.out
    found, run_id = last_record(store, model, "staging")
    check_comparisons(found)
    entries = by_version(found)
    challengers = [numbers[k] for k in ("lr_c03", "rf_depth1", "rf_depth8", "rf_depth4")]
    assert list(entries) == challengers  # every Staging version, by number
    # Only the truly better one survives the correction: the worse forest is significant too,
    # but worse; the others are not significant.
    assert [v for v, e in entries.items() if e["eligible"]] == [numbers["rf_depth8"]]
    assert entries[numbers["rf_depth1"]]["p_adjusted"] < ALPHA
    assert "worse on accuracy" in entries[numbers["rf_depth1"]]["why"]
    assert entries[numbers["rf_depth8"]]["why"].startswith("Selected:")
    assert "Holm-adjusted over 4 challengers" in entries[numbers["rf_depth8"]]["why"]
    assert found["decision"] == "promote" and found["skipped"] == []
    assert found["fairness"]["held_out"] is True
    assert [c["version"] for c in found["fairness"]["challengers"]] == challengers
    assert all(e["outranked_by"] == numbers["rf_depth8"]
               for v, e in entries.items() if v != numbers["rf_depth8"])

    # The tables, recomputed here from the models' own predictions, and the omnibus test
    # against mlxtend's cochrans_q.
    y_true, predicted = predictions(store, model, [numbers["lr"], *challengers])
    champion_right = predicted[0] == y_true
    for number, y_pred in zip(challengers, predicted[1:]):
        right = y_pred == y_true
        table = [[int(np.sum(champion_right & right)), int(np.sum(champion_right & ~right))],
                 [int(np.sum(~champion_right & right)), int(np.sum(~champion_right & ~right))]]
        assert entries[number]["table"] == table
    q, p = mlxtend_cochrans_q(y_true, *predicted)
    assert found["omnibus"]["statistic"] == pytest.approx(q, rel=1e-9)
    assert found["omnibus"]["p_value"] == pytest.approx(p, rel=1e-6)
    assert found["omnibus"]["n_models"] == 5 and found["policy"]["cochrans_q"] is True

    # The winner is promoted exactly as a single challenger; the losers keep Staging.
    winner = numbers["rf_depth8"]
    assert_one_champion(client, model, expected=winner)
    assert client.get_model_version(model, numbers["lr"]).current_stage == registry.ARCHIVED
    for number in challengers:
        version = client.get_model_version(model, number)
        tags, recorded = version.tags, record.version_record(version)
        if number == winner:
            assert tags[record.TAG_DECISION] == "promote"
            assert tags[registry.TAG_PREVIOUS_CHAMPION] == numbers["lr"]
            assert tags[registry.TAG_STAGED] == "false"
        else:
            assert version.current_stage == registry.STAGING
            assert tags[record.TAG_DECISION] == "keep" and recorded[record.REASON] == entries[number]["why"]
        assert recorded[record.FAMILY_DECISION] == "promote"
        assert recorded[record.CHALLENGER_VERSION] == number
        assert recorded[record.CHALLENGER_VERSIONS] == list(challengers)
        assert recorded[record.P_ADJUSTED] == entries[number]["p_adjusted"]
        assert float(tags["mcnemar.p_value"]) == entries[number]["p_value"]

    # Run metrics per challenger; the report shows every comparison.
    metrics = client.get_run(run_id).data.metrics
    for number in challengers:
        assert metrics[f"v{number}_p_adjusted"] == pytest.approx(entries[number]["p_adjusted"])
        assert metrics[f"v{number}_p_value"] == pytest.approx(entries[number]["p_value"])
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"decision.json", "report.html", "contingency.png"} <= artifacts
    page = Path(client.download_artifacts(run_id, "report.html", str(store.root / "report"))).read_text()
    assert "All challengers (4)" in page and "p adjusted (holm, 4 challengers)" in page
    assert found["reason"].startswith(f"Promoted challenger v{winner}, the only eligible one "
                                      "among 4 challengers after Holm's correction")

    # Again: the losers lost to the version now champion on the same rows and are not better
    # than it, so nothing is compared, nothing written.
    before = registry_snapshot(client, [model])
    again = compare(store, model, "challengers=staging", "cochrans_q=true", capsys=capsys)
    assert again.exit_code == 0, again.err
    assert "unchanged" in again.out and f"lost to v{winner}, now champion" in again.out
    assert registry_snapshot(client, [model]) == before
    skipped, _ = last_record(store, model, "staging-again")
    assert [s["version"] for s in skipped["skipped"]] == [v for v in challengers if v != winner]


def test_an_explicit_list_of_aliases_numbers_and_uris(store, capsys):
    model = "family-list"
    numbers = make_family(store, model, ("rf", "rf_depth8", "rf_depth1"))
    assert registry.version_by_alias(store.client, model, "challenger").version == int(numbers["rf_depth1"])
    listed = f"{numbers['rf']},models:/{model}/{numbers['rf_depth8']},challenger"

    result = compare(store, model, f"challengers={listed}", capsys=capsys)
    assert result.exit_code == 0, result.err
    found, _ = last_record(store, model, "list")
    check_comparisons(found)
    entries = by_version(found)
    assert list(entries) == [numbers["rf"], numbers["rf_depth8"], numbers["rf_depth1"]]
    assert found["omnibus"] is None and found["policy"]["cochrans_q"] is False
    # Two survive the correction; the better one is chosen, the other says why it lost.
    rf, rf8 = entries[numbers["rf"]], entries[numbers["rf_depth8"]]
    assert rf["eligible"] and rf8["eligible"] and rf8["selected"] and not rf["selected"]
    assert rf["why"].startswith(f"Eligible but not selected: v{numbers['rf_depth8']} is better "
                                "on accuracy")
    assert_one_champion(store.client, model, expected=numbers["rf_depth8"])
    for key in ("rf", "rf_depth1"):
        assert store.client.get_model_version(model, numbers[key]).current_stage == registry.STAGING
    # The loser keeps its alias too: only a winner's challenger alias is removed.
    assert str(registry.version_by_alias(store.client, model, "challenger").version) == numbers["rf_depth1"]


# --- (b) significant alone, not after Holm --------------------------------------------------


def test_a_challenger_significant_alone_is_not_eligible_after_holm(store, capsys):
    model = "family-holm"
    numbers = make_family(store, model, ("rf_depth6", "lr_c03", "rf_depth3"))
    client = store.client
    listed = ",".join(numbers[k] for k in ("rf_depth6", "lr_c03", "rf_depth3"))
    before = registry_snapshot(client, [model])

    # Alone (a dry run: nothing written), the forest would be promoted ...
    alone = compare(store, model, f"challengers={numbers['rf_depth6']}", "dry_run=true",
                    capsys=capsys)
    assert alone.exit_code == 0, alone.err
    single, _ = last_record(store, model, "holm-alone")
    assert single["decision"] == "promote" and single["dry_run"] is True, single["reason"]
    assert "comparisons" not in single  # one challenger: the single-challenger record
    assert registry_snapshot(client, [model]) == before

    # ... among three it is not: the same raw p, Holm-adjusted, is no longer below alpha.
    dry = compare(store, model, f"challengers={listed}", "dry_run=true", capsys=capsys)
    assert dry.exit_code == 0 and "[dry run: registry untouched] keep" in dry.out, dry.out
    assert registry_snapshot(client, [model]) == before
    result = compare(store, model, f"challengers={listed}", capsys=capsys)
    assert result.exit_code == 0, result.err
    found, _ = last_record(store, model, "holm")
    check_comparisons(found)
    forest = by_version(found)[numbers["rf_depth6"]]
    assert forest["p_value"] == single["p_value"]
    assert forest["p_value"] < ALPHA <= forest["p_adjusted"], (
        f"premise: raw p {forest['p_value']} < {ALPHA} <= Holm-adjusted {forest['p_adjusted']}")
    assert forest["accuracy"] > found["champion"]["accuracy"]
    assert not forest["eligible"] and "Holm-adjusted over 3 challengers" in forest["why"]
    assert found["decision"] == "keep"
    assert found["challenger"]["version"] == numbers["rf_depth6"]  # the closest one
    assert "none of the 3 challengers is eligible after Holm's correction" in found["reason"]
    assert_one_champion(client, model, expected=numbers["lr"])
    for key in ("rf_depth6", "lr_c03", "rf_depth3"):
        version = client.get_model_version(model, numbers[key])
        assert version.current_stage == registry.STAGING
        assert version.tags[record.TAG_DECISION] == "keep"

    # The same family again: every keep stands; nothing compared, nothing written.
    before = registry_snapshot(client, [model])
    again = compare(store, model, f"challengers={listed}", capsys=capsys)
    assert again.exit_code == 0 and "unchanged" in again.out, again.out
    assert "were already compared with champion" in again.out
    assert registry_snapshot(client, [model]) == before
    # Nor does naming one of them alone re-test it (multiplicity across runs).
    one = compare(store, model, f"challengers={numbers['rf_depth6']}", capsys=capsys)
    assert one.exit_code == 0 and "unchanged" in one.out, one.out
    assert registry_snapshot(client, [model]) == before


# --- (c) bad values: one line, exit 2, registry unchanged -----------------------------------


@pytest.fixture(scope="module")
def bad_store(store):
    """family-bad: champion v1, challengers v2 and v3 in Staging (alias challenger on v3), v4 a
    version of another data run; family-nochamp: two Staging versions and no champion."""
    client = store.client
    numbers = make_family(store, "family-bad", ("rf", "rf_depth8"))
    other = clone_version(client, "family-bad", store.sources["rf_depth4"])
    client.set_model_version_tag("family-bad", other.version, lineage.DATA_RUN_TAG, "another-data-run")
    numbers["other"] = str(other.version)
    for key in ("rf", "rf_depth8"):
        version = clone_version(client, "family-nochamp", store.sources[key])
        registry.make_challenger(client, version)
    return store


@pytest.mark.parametrize(("model", "overrides", "message"), [
    ("family-bad", ("challengers=2,,3",), "has an empty item"),
    ("family-bad", ("challengers=2,3,2",), "names '2' twice"),
    ("family-bad", ("challengers=3,challenger",), "names family-bad v3 twice ('3' and 'challenger')"),
    ("family-bad", ("challengers=1,2",), "names '1', which is the champion (family-bad v1)"),
    ("family-bad", ("challengers=champion,2",), "which is the champion"),
    ("family-bad", ("challengers=2,99",), "version 99 of registered model 'family-bad' does not exist"),
    ("family-bad", ("challengers=2,candidate",), "challenger alias 'candidate' (in challengers) is not set"),
    ("family-bad", ("challengers=staging,2",), "may be 'staging' alone"),
    ("family-bad", ("challengers=2,a b",), "not an alias, a version number or a models:/ URI"),
    ("family-bad", ("challenger=2", "challengers=2,3"), "'challenger' ('2') and 'challengers' ('2,3') disagree"),
    ("family-bad", ("challengers=2,4",), "the challengers were trained on different data runs"),
    ("family-nochamp", ("challengers=staging",), "has no champion, and challengers names 2 versions"),
])
def test_bad_challengers_fail_in_one_line_and_change_nothing(bad_store, model, overrides, message,
                                                             capsys):
    before = registry_snapshot(bad_store.client)
    result = compare(bad_store, model, *overrides, capsys=capsys)
    assert result.exit_code == 2
    lines = error_lines("compare_and_promote", result.err)
    assert len(lines) == 1 and message in lines[0], result.err
    assert "Traceback" not in result.err
    assert registry_snapshot(bad_store.client) == before


# --- staging finds hand-staged versions; crash safety --------------------------------------


def test_staging_finds_versions_staged_by_hand(store, caplog):
    model = "family-hand"
    client = store.client
    numbers = make_family(store, model, ("rf",))
    by_hand = clone_version(client, model, store.sources["rf_depth8"])
    registry.transition(client, by_hand, registry.STAGING, archive_existing=False)  # no tag
    left = clone_version(client, model, store.sources["rf_depth4"])
    registry.make_challenger(client, left)
    registry.transition(client, left, registry.ARCHIVED, archive_existing=False)  # tag left behind

    with caplog.at_level(logging.WARNING, logger="versioning.registry"):
        found = registry.versions_in_stage(client, model, registry.STAGING)
    assert [str(v.version) for v in found] == [numbers["rf"], str(by_hand.version)]
    assert any("without tag 'versioning.staged=true'" in r.getMessage() for r in caplog.records)
    caplog.clear()
    registry.make_challenger(client, client.get_model_version(model, by_hand.version))
    with caplog.at_level(logging.WARNING, logger="versioning.registry"):
        found = registry.versions_in_stage(client, model, registry.STAGING)
    assert [str(v.version) for v in found] == [numbers["rf"], str(by_hand.version)]
    assert not caplog.records  # all tagged now: one query, no full scan


def test_a_family_promotion_killed_before_its_commit_is_compared_again_whole(store, capsys):
    model = "family-crash"
    numbers = make_family(store, model, ("lr_c03", "rf_depth8", "rf_depth1"))
    client = store.client
    crashed = run_process("compare_and_promote", f"registered_model_name={model}",
                          "challengers=staging", env={registry.CRASH_AFTER_ENV: "promotion_tags"})
    assert crashed.exit_code == 137, crashed.err[-2000:]
    # Killed after the tags, before crown(): the losers say keep, but their family promoted.
    assert_one_champion(client, model, expected=numbers["lr"])
    loser = client.get_model_version(model, numbers["lr_c03"])
    assert loser.tags[record.TAG_DECISION] == "keep"
    assert record.version_record(loser)[record.FAMILY_DECISION] == "promote"

    rerun = compare(store, model, "challengers=staging", capsys=capsys)
    assert rerun.exit_code == 0, rerun.err
    found, _ = last_record(store, model, "crash")
    assert found["decision"] == "promote" and found["skipped"] == []
    assert len(found["comparisons"]) == 3  # the whole family again, not the winner alone
    assert_one_champion(client, model, expected=numbers["rf_depth8"])
    before = registry_snapshot(client, [model])
    again = compare(store, model, "challengers=staging", capsys=capsys)
    assert again.exit_code == 0 and "unchanged" in again.out, again.out
    assert registry_snapshot(client, [model]) == before
