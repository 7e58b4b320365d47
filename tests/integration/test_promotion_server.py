"""Crash safety and concurrency against real ``mlflow server`` processes (sqlite and PostgreSQL
backends, artifacts proxied by the server), with compare_and_promote run as its own process."""

from __future__ import annotations

import re
import secrets

import pytest

from tests.registry_helpers import (
    assert_one_champion,
    champion_state,
    clone_pair,
    decision_record,
    prepare_sources,
    registry_snapshot,
    run_process,
    server_store,
    start_process,
    wait_all,
)
from versioning import registry

ALLOWED_DECISIONS = {"promote", "superseded", "unchanged", "no_challenger"}
_RUN_ID = re.compile(r"\(run ([0-9a-f]{32})\)")


@pytest.fixture(scope="module")
def server(tracking_server, tmp_path_factory):
    """This module's experiment on ``tracking_server``, with one trained version per family."""
    suffix = secrets.token_hex(4)
    root = tmp_path_factory.mktemp(f"promotion-{tracking_server.backend}")
    with server_store(tracking_server.url, root, f"promotion-{suffix}") as tracking:
        _, tracking.sources = prepare_sources(tracking, f"source-{suffix}")
        tracking.suffix = suffix
        yield tracking


def _pair(server, label: str) -> str:
    model = f"{label}-{server.suffix}-{secrets.token_hex(3)}"
    clone_pair(server.client, model, server.sources["logistic_regression"],
               server.sources["random_forest"])
    return model


def test_killed_after_the_commit_converges_on_a_server(server, capsys):
    model = _pair(server, "crash")
    crashed = run_process("compare_and_promote", f"registered_model_name={model}",
                          env={registry.CRASH_AFTER_ENV: "champion_alias"})
    assert crashed.exit_code == 137, crashed.err[-2000:]
    assert champion_state(server.client, model) == ("2", ["1"], "2")  # alias moved, stages lag

    rerun = server.run_step("compare_and_promote", f"registered_model_name={model}", capsys=capsys)
    assert rerun.exit_code == 0, rerun.err
    assert "no_challenger" in rerun.out
    assert_one_champion(server.client, model, expected="2")
    before = registry_snapshot(server.client)
    again = server.run_step("compare_and_promote", f"registered_model_name={model}", capsys=capsys)
    assert again.exit_code == 0
    assert registry_snapshot(server.client) == before


@pytest.mark.slow
def test_eight_concurrent_promotions_end_with_exactly_one_champion(server):
    model = _pair(server, "race")
    processes = [start_process("compare_and_promote", f"registered_model_name={model}")
                 for _ in range(8)]
    results = wait_all(processes, timeout=600)

    decisions = []
    for index, result in enumerate(results):
        assert result.exit_code == 0, f"process {index}:\n{result.err[-3000:]}"
        assert "Traceback" not in result.err, result.err[-3000:]
        run_id = _RUN_ID.search(result.out)
        assert run_id, result.out
        run = server.client.get_run(run_id[1])
        assert run.info.status == "FINISHED"
        record = decision_record(server.client, run_id[1], server.root / f"race-{index}")
        assert record["decision"] == run.data.tags["promotion.decision"]
        decisions.append(record["decision"])
    assert set(decisions) <= ALLOWED_DECISIONS, decisions
    assert "promote" in decisions, decisions
    assert_one_champion(server.client, model, expected="2")
    assert server.client.get_model_version(model, "1").current_stage == registry.ARCHIVED
