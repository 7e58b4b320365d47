"""Databricks path, proven offline through MLflow's own databricks backend and CLI.

The documented command ``python -m deploy.submit databricks ...`` runs, as a subprocess, in a
temp git checkout of the project that also holds decoys (a local store, a virtualenv, fake
secrets). It exports the commit and runs ``mlflow run <export> --backend databricks
--backend-config databricks/cluster-spec.json``. ``DATABRICKS_HOST`` points at a fake workspace
REST API on 127.0.0.1 (``tests.fakes.databricks_server``) and ``MLFLOW_TRACKING_URI=databricks``,
so every call MLflow makes -- tracking, DBFS upload, jobs/runs/submit -- lands there and is
checked: the shell command, the libraries, the cluster spec and the uploaded tarball.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.submit import main as submit_main
from tests.fakes import (
    DECOYS,
    TRACKED_DECOY,
    forbidden_members,
    planted_checkout,
)
from tests.fakes.databricks_server import FakeDatabricksWorkspace

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SPEC = REPO_ROOT / "databricks" / "cluster-spec.json"
EXPERIMENT = "/Users/tests@example.com/statistically-gated-versioning"
TAR_ROOT = "mlflow-project"
SUBMIT_TIMEOUT = 300


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, str]:
    return planted_checkout(tmp_path, REPO_ROOT)


@pytest.fixture
def workspace() -> Iterator[FakeDatabricksWorkspace]:
    with FakeDatabricksWorkspace() as fake:
        yield fake


def _databricks_env(host: str, home: Path) -> dict[str, str]:
    """The submitting shell: workspace host + token, tracking to Databricks, nothing inherited
    that could redirect MLflow or the SDK (profiles, proxies, other tracking URIs)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "DATABRICKS_", "KUBE_"))
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    home.mkdir(parents=True, exist_ok=True)  # no ~/.databrickscfg of the developer
    env.update(
        HOME=str(home),
        DATABRICKS_HOST=host,
        DATABRICKS_TOKEN="fake-token-for-tests",
        MLFLOW_TRACKING_URI="databricks",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    return env


def _pinned_mlflow() -> str:
    pins = (REPO_ROOT / "requirements.txt").read_text()
    return re.search(r"^mlflow==(\S+)", pins, re.M).group(1)


def test_compare_and_promote_is_submitted_to_a_new_job_cluster(
    checkout: tuple[Path, str], workspace: FakeDatabricksWorkspace, tmp_path: Path
) -> None:
    root, sha = checkout
    command = [
        sys.executable, "-m", "deploy.submit", "databricks",
        "-e", "compare_and_promote", "-P", "alpha=0.01", "-P", "primary_metric=f1",
        "--experiment-name", EXPERIMENT,
    ]  # fmt: skip
    # cwd=checkout: the command runs from a clean clone, importing its own deploy/ package.
    result = subprocess.run(
        command,
        cwd=root,
        env=_databricks_env(workspace.host, tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=SUBMIT_TIMEOUT,
    )
    logs = result.stdout + result.stderr
    assert result.returncode == 0, logs
    assert "--backend databricks --backend-config" in logs  # the `mlflow run` line is logged
    assert workspace.unhandled == [], [(r.method, r.path) for r in workspace.unhandled]

    # --- the experiment and run on the workspace's tracking server ---------------------------
    experiments = {e["name"]: e for e in workspace.tracking.experiments.values()}
    experiment_id = experiments[EXPERIMENT]["experiment_id"]
    (run_id,) = workspace.tracking.runs
    tags = workspace.run_tags(run_id)
    assert tags["mlflow.project.backend"] == "databricks"
    assert tags["mlflow.project.entryPoint"] == "compare_and_promote"
    assert tags["mlflow.source.git.commit"] == sha  # lineage survives the export
    assert tags["mlflow.databricks.shellJobRunID"] == "1001"

    # --- the one job run submitted ----------------------------------------------------------
    (submitted,) = workspace.submitted_runs
    spec = json.loads(CLUSTER_SPEC.read_text())
    assert submitted["new_cluster"] == spec["new_cluster"]
    assert submitted["libraries"] == [
        *spec.get("libraries", []),
        {"pypi": {"package": f"mlflow=={_pinned_mlflow()}"}},
    ]
    task = submitted["shell_command_task"]
    assert task["env_vars"] == {
        "MLFLOW_TRACKING_URI": "databricks",
        "MLFLOW_EXPERIMENT_ID": experiment_id,
    }
    assert task["command"][:2] == ["bash", "-c"]
    script_lines = [line.strip() for line in task["command"][2].strip().splitlines()]
    mlflow_run = shlex.split(script_lines[-1])
    project_dir = mlflow_run[2]
    assert mlflow_run[:2] == ["mlflow", "run"]
    assert project_dir.startswith("/databricks/mlflow/projects/")
    assert mlflow_run[3:] == [
        "--entry-point", "compare_and_promote",
        "-c", json.dumps({"_mlflow_local_backend_run_id": run_id}),
        "-P", "alpha=0.01", "-P", "primary_metric=f1",
    ]  # fmt: skip

    # --- the uploaded project tarball -------------------------------------------------------
    (dbfs_path,) = workspace.dbfs_files
    tarball = workspace.dbfs_files[dbfs_path]
    digest = hashlib.sha256(tarball).hexdigest()
    assert dbfs_path == f"/mlflow-experiments/{experiment_id}/projects-code/{digest}.tar.gz"
    assert f"/dbfs{dbfs_path}" in task["command"][2]  # the job extracts what was uploaded
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        names = archive.getnames()
        mlproject = archive.extractfile(f"{TAR_ROOT}/MLproject").read().decode()
        head = archive.extractfile(f"{TAR_ROOT}/.git/HEAD").read().decode().strip()
        git_config = archive.extractfile(f"{TAR_ROOT}/.git/config").read().decode()
    assert all(name == TAR_ROOT or name.startswith(f"{TAR_ROOT}/") for name in names)
    for needed in ("MLproject", "python_env.yaml", "requirements.txt", "configs/default.yaml",
                   "steps/compare_and_promote.py", "versioning/config.py"):  # fmt: skip
        assert f"{TAR_ROOT}/{needed}" in names, needed
    assert "python_env: python_env.yaml" in mlproject  # the cluster builds the pinned env
    assert head == sha  # a one-commit .git: lineage only
    assert "token" not in git_config.lower() and "@" not in git_config
    assert forbidden_members(names) == []
    for decoy in [*DECOYS, TRACKED_DECOY]:
        assert f"{TAR_ROOT}/{decoy}" not in names, decoy
    assert not any(name.endswith(("mlflow.db", ".env", ".pem")) for name in names)


@pytest.mark.parametrize(
    ("env", "extra_args", "spec", "message"),
    [
        ({"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}, ["--experiment-name", EXPERIMENT],
         None, "local store"),
        ({"MLFLOW_TRACKING_URI": "databricks"}, [], None, "needs an experiment"),
        ({"MLFLOW_TRACKING_URI": "databricks"}, ["--experiment-name", EXPERIMENT],
         {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "i3.xlarge"},
         "new_cluster"),
        ({"MLFLOW_TRACKING_URI": "databricks"}, ["--experiment-name", EXPERIMENT],
         {"new_cluster": {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "i3",
                          "spark_env_vars": {"MLFLOW_TRACKING_TOKEN": "dapi-literal"}}},
         "looks secret"),
    ],
    ids=["local-tracking", "no-experiment", "bare-cluster-spec", "secret-in-spec"],
)  # fmt: skip
def test_a_submission_that_cannot_work_is_refused_before_any_request(
    env: dict[str, str],
    extra_args: list[str],
    spec: dict | None,
    message: str,
    checkout: tuple[Path, str],
    workspace: FakeDatabricksWorkspace,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root, _ = checkout
    for key, value in _databricks_env(workspace.host, tmp_path / "home").items():
        if key.startswith(("DATABRICKS_", "HOME")):
            monkeypatch.setenv(key, value)
    for key in ("MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    import mlflow.tracking._tracking_service.utils as tracking_utils

    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)  # read MLFLOW_TRACKING_URI
    args = ["databricks", "-e", "compare_and_promote", "--project-root", str(root), *extra_args]
    if spec is not None:
        (tmp_path / "spec.json").write_text(json.dumps(spec))
        args += ["--cluster-spec", str(tmp_path / "spec.json")]

    assert submit_main(args) == 2
    assert message in caplog.text
    assert workspace.requests == []  # nothing was created, uploaded or submitted
