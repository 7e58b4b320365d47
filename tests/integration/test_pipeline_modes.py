"""`main` with its steps in one process vs through mlflow.projects.run: the same runs, the same outcome.

Real MLflow on a temporary sqlite store, small config. The two launches write to two
registered models of one store (so their versions cannot mix) with the cache off (so neither
reuses the other's runs).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import PROJECT_ROOT, Tracking
from versioning import pipeline, step, training
from versioning.config import load_config
from versioning.step import StepContext

STEPS = ("generate_data", "train_lr", "train_rf", "compare_and_promote")
# Tags whose values must be equal whichever way the steps ran (run-specific ones excluded).
SAME_VALUE_TAGS = (
    "mlflow.project.entryPoint", "mlflow.source.type", "mlflow.source.name",
    "mlflow.source.git.repoURL", "mlflow.user", "mlflow.project.backend", "versioning.step",
)


def head() -> str | None:
    done = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def run_main(tracking: Tracking, capsys, model: str, launcher: str) -> dict:
    result = tracking.run_step("main", f"launcher={launcher}", f"registered_model_name={model}",
                               "use_cache=false", capsys=capsys)
    assert result.exit_code == 0, result.err
    parent = tracking.client.search_runs(
        [tracking.experiment_id], "tags.`versioning.step` = 'main'",
        order_by=["attributes.start_time DESC"], max_results=1)[0]
    assert parent.data.tags["versioning.launcher"] == launcher
    children = tracking.client.search_runs(
        [tracking.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    by_step = {run.data.tags["versioning.step"]: run for run in children}
    assert sorted(by_step) == sorted(STEPS)
    return {"parent": parent, "children": by_step}


def artifacts(tracking: Tracking, run_id: str, path: str | None = None) -> list[str]:
    found = []
    for item in tracking.client.list_artifacts(run_id, path):
        found += artifacts(tracking, run_id, item.path) if item.is_dir else [item.path]
    return sorted(found)


def registry_outcome(tracking: Tracking, model: str, launched: dict) -> dict:
    client = tracking.client
    champion = client.get_model_version_by_alias(model, "champion")
    compare = launched["children"]["compare_and_promote"]
    path = client.download_artifacts(compare.info.run_id, "decision.json", str(tracking.root))
    record = json.loads(Path(path).read_text())
    return {
        "champion": (str(champion.version), champion.tags["model.family"], champion.current_stage),
        "stages": sorted((str(v.version), v.tags["model.family"], v.current_stage)
                         for v in client.search_model_versions(f"name = '{model}'")),
        "aliases": sorted(client.get_registered_model(model).aliases),
        "decision": (record["decision"], record["table"], record["p_value"]),
    }


@pytest.mark.slow
def test_in_process_and_projects_give_the_same_runs_and_registry_outcome(tracking, capsys):
    commit, code = head(), step.code_version()
    in_process = run_main(tracking, capsys, "inproc", "in_process")
    projects = run_main(tracking, capsys, "viaprojects", "projects")
    # Other work in the same checkout may commit or edit meanwhile; compare what did not move.
    same_commit, same_code = commit == head(), code == step.code_version()

    assert registry_outcome(tracking, "inproc", in_process) == \
        registry_outcome(tracking, "viaprojects", projects)
    assert registry_outcome(tracking, "inproc", in_process)["champion"][1:] == \
        ("random_forest", "Production")

    for name in STEPS:
        mine, theirs = in_process["children"][name], projects["children"][name]
        assert mine.info.status == theirs.info.status == "FINISHED"
        assert set(mine.data.tags) == set(theirs.data.tags), name
        for key in SAME_VALUE_TAGS:
            assert mine.data.tags.get(key) == theirs.data.tags.get(key), (name, key)
        git_commit = "mlflow.source.git.commit"
        assert (git_commit in mine.data.tags) == (git_commit in theirs.data.tags) == (commit is not None)
        if same_commit:
            assert mine.data.tags.get(git_commit) == theirs.data.tags.get(git_commit) == commit
        if same_code:
            assert mine.data.tags["versioning.code_version"] == \
                theirs.data.tags["versioning.code_version"] == code
        assert mine.data.tags["mlflow.parentRunId"] == in_process["parent"].info.run_id
        assert theirs.data.tags["mlflow.parentRunId"] == projects["parent"].info.run_id
        assert set(mine.data.params) == set(theirs.data.params), name
        differing = {key for key in mine.data.params
                     if mine.data.params[key] != theirs.data.params[key]}
        assert differing <= {"registered_model_name", "launcher", "data_run_id"}, (name, differing)
        assert artifacts(tracking, mine.info.run_id) == artifacts(tracking, theirs.info.run_id), name


def test_step_failure_in_process_fails_its_run_and_main(tracking, capsys):
    result = tracking.run_step("main", "data_run_id=0123456789abcdef0123456789abcdef",
                               capsys=capsys)
    assert result.exit_code == 2
    assert "train_lr: error: data_run_id '0123456789abcdef0123456789abcdef' does not exist" in result.err
    assert "main: error: step train_lr failed" in result.err
    failed = tracking.client.search_runs(
        [tracking.experiment_id], "tags.`mlflow.project.entryPoint` = 'train_lr'")
    assert [run.info.status for run in failed] == ["FAILED"]
    parent = tracking.client.search_runs(
        [tracking.experiment_id], "tags.`versioning.step` = 'main'")[0]
    assert parent.info.status == "FAILED"


def test_main_on_a_remote_backend_launches_through_projects(tracking):
    config = load_config(None, {})
    for backend, expected in ((None, "in_process"), ("local", "in_process"),
                              ("databricks", "projects"), ("kubernetes", "projects")):
        tags = {} if backend is None else {"mlflow.project.backend": backend}
        run = tracking.client.create_run(tracking.experiment_id, tags=tags)
        ctx = StepContext("main", config, tracking.client, run.info.run_id, tracking.experiment_id)
        assert pipeline.choose_launcher(ctx)[0] == expected, backend
        tracking.client.set_terminated(run.info.run_id)
    projects = load_config(None, {"launcher": "projects"})
    ctx = StepContext("main", projects, tracking.client, run.info.run_id, tracking.experiment_id)
    assert pipeline.choose_launcher(ctx)[0] == "projects"


def test_random_forest_on_all_cores_is_bit_identical_to_one_core():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(600, 6))
    labels = (features[:, 0] + features[:, 1] ** 2 > 0.5).astype(int)
    base = dict(load_config(None, {"rf_n_estimators": "25"}))
    probabilities = []
    for n_jobs in (1, -1, 2):
        model = training.fit(training.RANDOM_FOREST, {**base, "rf_n_jobs": n_jobs}, features, labels)
        probabilities.append(model.predict_proba(features))
    assert all(np.array_equal(probabilities[0], other) for other in probabilities[1:])
