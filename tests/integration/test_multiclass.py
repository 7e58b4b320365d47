"""Multi-class and string labels through the workflow: McNemar is on right/wrong per row."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_iris

from tests.conftest import Tracking


def compare_record(tracking: Tracking) -> dict:
    run = tracking.client.search_runs(
        [tracking.experiment_id], "tags.`versioning.step` = 'compare_and_promote'",
        order_by=["attributes.start_time DESC"], max_results=1)[0]
    path = tracking.client.download_artifacts(run.info.run_id, "decision.json", str(tracking.root))
    return json.loads(Path(path).read_text())


def run_all(tracking: Tracking, capsys, *overrides: str) -> dict:
    for name in ("generate_data", "train_lr", "train_rf", "compare_and_promote"):
        result = tracking.run_step(name, *overrides, capsys=capsys)
        assert result.exit_code == 0, result.err
    return compare_record(tracking)


def test_digits_ends_with_a_correct_explained_decision(tracking: Tracking, capsys):
    record = run_all(tracking, capsys, "data_source=sklearn:digits")
    (a, b), (c, d) = record["table"]
    assert a + b + c + d == record["n"] == 360  # 20% of 1,797 rows, rounded up
    assert record["decision"] in ("promote", "keep")
    assert "p = " in record["reason"] and "alpha 0.05" in record["reason"]
    assert set(record["p_values"]) == {"exact", "midp", "corrected", "asymptotic"}
    assert record["champion"]["accuracy"] == (a + b) / record["n"]
    assert record["challenger"]["accuracy"] == (a + c) / record["n"]
    # Multi-class: f1/precision/recall are macro averages and error_cost (binary only) is absent.
    assert "error_cost" not in record["challenger"]["metrics"]


def test_string_labels_from_a_users_csv(tracking: Tracking, capsys, tmp_path):
    iris = load_iris(as_frame=True)
    frame = iris.data.copy()
    frame.columns = [c.replace(" ", "_").replace("(", "").replace(")", "") for c in frame.columns]
    frame["species"] = iris.target_names[iris.target]
    path = tmp_path / "iris.csv"
    frame.to_csv(path, index=False)
    record = run_all(tracking, capsys, f"data_source={path}", "label_column=species")
    assert record["n"] == 30
    assert record["decision"] in ("promote", "keep")
    assert 0 < record["challenger"]["accuracy"] <= 1
