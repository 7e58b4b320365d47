"""Pure parts of the promotion safety net: row overlap, MLflow error lines, HTTP retry bounds."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from tests.conftest import PROJECT_ROOT
from versioning import fairness, mlflow_errors


def test_row_hashes_match_rows_whatever_the_column_order_and_number_type():
    ints = pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6], "label": [0, 1, 0]})
    floats = pd.DataFrame({"b": [4.0, 5.0, 7.0], "a": [1.0, 2.0, 3.0], "y": [1, 1, 1]})
    columns_i, hashed_i = fairness.row_hashes(ints, "label")
    columns_f, hashed_f = fairness.row_hashes(floats, "y")
    assert columns_i == columns_f == ("a", "b")
    # Rows (1, 4) and (2, 5) are shared; the label is not part of a row's identity.
    assert fairness.count_overlap(hashed_f, hashed_i) == 2
    assert fairness.count_overlap(hashed_f, np.empty(0, dtype=np.uint64)) == 0


def test_mlflow_permission_errors_become_one_line_naming_user_not_password(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret-password")
    denied = MlflowException(
        "API request to endpoint /api/2.0/mlflow/registered-models/alias failed with error "
        "code 403 != 200. Response body: 'Permission denied'", error_code="PERMISSION_DENIED")
    line = mlflow_errors.describe(denied, "http://mlflow:5000", "classifier")
    assert "\n" not in line and "alice" in line and "s3cret" not in line
    assert "registered model 'classifier'" in line and "EDIT" in line
    unauthenticated = MlflowException(
        "API request to endpoint /api/2.0/mlflow/runs/create failed with error code 401 != 200. "
        "Response body: 'You are not authenticated.'")
    assert "MLFLOW_TRACKING_PASSWORD" in mlflow_errors.describe(unauthenticated, "http://mlflow:5000")


def test_http_defaults_never_override_what_the_user_set():
    environ = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "9"}
    mlflow_errors.apply_http_defaults(environ)
    assert environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "9"
    assert environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == mlflow_errors.HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"]


@pytest.mark.slow
def test_a_server_lost_mid_run_fails_in_seconds_not_minutes():
    """MLflow's own retries against a dead server take about 4 minutes; with the step's
    defaults a request gives up in about 10 s, with one line naming the server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{probe.getsockname()[1]}"
    code = (
        "from versioning import mlflow_errors\n"
        "mlflow_errors.apply_http_defaults()\n"
        "from mlflow import MlflowClient\n"
        "from mlflow.exceptions import MlflowException\n"
        "try:\n"
        f"    MlflowClient({uri!r}).get_experiment('0')\n"
        "except MlflowException as exc:\n"
        f"    print(mlflow_errors.describe(exc, {uri!r}))\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    assert time.monotonic() - started < 60
    [line] = done.stdout.splitlines()
    assert line.startswith(f"lost the tracking server {uri}"), line


def test_a_loser_is_outranked_by_the_winner_only_if_not_better_on_the_policy_metrics():
    """outranked_by in promotion.record (several challengers): set only where decide() would keep the
    winner against this loser whatever the p-value, i.e. the loser is not better on the
    primary metric, nor tied on it and better on the tie-breaker."""
    from versioning.record import _not_better

    policy = {"primary_metric": "accuracy", "tie_breaker": "f1"}
    assert _not_better(policy, {"accuracy": 0.8, "f1": 0.9}, {"accuracy": 0.9, "f1": 0.1})
    assert not _not_better(policy, {"accuracy": 0.95, "f1": 0.0}, {"accuracy": 0.9, "f1": 1.0})
    assert not _not_better(policy, {"accuracy": 0.9, "f1": 0.8}, {"accuracy": 0.9, "f1": 0.7})
    assert _not_better(policy, {"accuracy": 0.9, "f1": 0.7}, {"accuracy": 0.9 + 1e-15, "f1": 0.7})
    lower = {"primary_metric": "error_cost", "tie_breaker": None}
    assert _not_better(lower, {"error_cost": 0.2}, {"error_cost": 0.1})
    assert not _not_better(lower, {"error_cost": 0.05}, {"error_cost": 0.1})


@pytest.mark.parametrize("reason", ["short", "p = 0.2 ≥ alpha; Δaccuracy", "x" * 6000, "é" * 4000,
                                    "\U0001F600" * 6000, '"\\\n' * 2000])
def test_the_record_tag_fits_mlflows_tag_limit_and_stays_json(reason: str):
    """promotion.record carries the reason: a long one (or one JSON must escape) is shortened,
    never the numbers, never past MLflow's 5,000 characters; other text is kept as written."""
    from versioning import record

    result = {"decision": "keep", "reason": reason, "run_id": "r" * 32,
              "policy": {"digest": "d" * 64}, "champion": {"version": "1"},
              "challenger": {"version": "2"}, "p_value": 0.5,
              "method": "exact", "statistic": float("inf"), "b": 3, "c": 4, "n": 10,
              "delta": {"value": 0.1}, "alpha": 0.05}
    tags = record.version_tags(result, {record.CHALLENGER_VERSIONS: [str(v) for v in range(20)]})
    assert len(tags[record.TAG_RECORD]) <= 5000
    recorded = json.loads(tags[record.TAG_RECORD])
    assert recorded["statistic"] == "inf" and recorded["b"] == 3 and recorded["alpha"] == 0.05
    assert len(recorded[record.CHALLENGER_VERSIONS]) == 20
    whole = json.dumps({**recorded, "reason": reason}, ensure_ascii=False)
    if len(whole) <= 5000:
        assert tags[record.TAG_RECORD] == whole  # untouched, and no \u escapes
    else:
        assert recorded["reason"].endswith("...") and reason.startswith(recorded["reason"][:-3])
    assert tags[record.TAG_P_VALUE] == "0.5" and tags[record.TAG_METHOD] == "exact"


@pytest.mark.parametrize("value", [None, "", "not json", "[1, 2]", '"text"'])
def test_a_missing_or_hand_edited_record_tag_reads_as_no_record(value):
    from mlflow.entities.model_registry import ModelVersion, ModelVersionTag

    from versioning import record

    tags = [] if value is None else [ModelVersionTag(record.TAG_RECORD, value)]
    version = ModelVersion("m", "2", 0, tags=tags)
    assert record.version_record(version) == {}
