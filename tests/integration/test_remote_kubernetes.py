"""Kubernetes path, proven offline through MLflow's own kubernetes backend.

``deploy.submit.submit_kubernetes`` exports a temp git checkout of the project and calls
``mlflow.projects.run(backend="kubernetes", synchronous=False, build_image=True)`` against a
real ``mlflow server`` on 127.0.0.1 (``tests.fixtures_servers``). Only the outermost boundary
is replaced (``tests.fakes``): the docker SDK client and the ``docker info`` CLI probe, and the
Kubernetes API (``load_kube_config``, ``BatchV1Api.create_namespaced_job``). The Job body MLflow
would send to the cluster is then checked field by field.

The shared server itself: ``deploy/tracking-server/start.sh`` is started against a throwaway
PostgreSQL database (``postgres_cluster`` from ``tests.fixtures_servers``) and must keep runs
in PostgreSQL and proxy artifacts (``mlflow-artifacts:/``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from deploy.checks import SubmissionError
from deploy.submit import submit_kubernetes
from tests.fakes import (
    DECOYS,
    TRACKED_DECOY,
    DockerRecorder,
    KubernetesApiRecorder,
    forbidden_members,
    install_fake_docker,
    planted_checkout,
)

if TYPE_CHECKING:
    from tests.servers import PostgresCluster

# Also declared by tests/conftest.py; repeated so this module's fixtures are explicit.
pytest_plugins = ["tests.fixtures_servers"]

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBE_DIR = REPO_ROOT / "deploy" / "kubernetes"
BUILD_CONTEXT_ROOT = "mlflow-project-docker-build-context"
PARAMS = {"alpha": "0.01", "primary_metric": "f1"}


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, str]:
    return planted_checkout(tmp_path, REPO_ROOT)


@pytest.fixture
def fake_cluster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[DockerRecorder, KubernetesApiRecorder]:
    """Docker daemon and Kubernetes API replaced; KUBE_MLFLOW_TRACKING_URI unset."""
    monkeypatch.delenv("KUBE_MLFLOW_TRACKING_URI", raising=False)
    docker = install_fake_docker(monkeypatch, tmp_path / "bin")
    kube = KubernetesApiRecorder().install(monkeypatch)
    return docker, kube


def _container(job: dict[str, Any]) -> dict[str, Any]:
    return job["body"]["spec"]["template"]["spec"]["containers"][0]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    entries = container["env"]
    names = [entry["name"] for entry in entries]
    assert len(names) == len(set(names)), f"duplicate env names shadow each other: {names}"
    return {entry["name"]: entry for entry in entries}


def point_mlflow_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    # Imported late: importing the plugin module before pytest registers it would keep pytest
    # from rewriting its asserts.
    from tests.fixtures_servers import point_mlflow_at as point

    point(monkeypatch, url)


def _exports_left() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("sgv-export-*")}


@pytest.mark.parametrize("tracking_server", ["sqlite"], indirect=True)
def test_compare_and_promote_becomes_a_kubernetes_job(
    tracking_uri: str,
    checkout: tuple[Path, str],
    fake_cluster: tuple[DockerRecorder, KubernetesApiRecorder],
    unique_name: Callable[[str], str],
) -> None:
    import mlflow

    root, sha = checkout
    docker, kube = fake_cluster
    config = json.loads((KUBE_DIR / "kubernetes_config.json").read_text())
    template = yaml.safe_load((KUBE_DIR / "job-template.yaml").read_text())
    experiment = unique_name("k8s")
    exports_before = _exports_left()

    submitted = submit_kubernetes(
        "compare_and_promote", PARAMS, project_root=root, experiment_name=experiment
    )

    # --- the image: FROM the dependency image, the commit at /mlflow/projects/code/project ----
    tag = f"{config['repository-uri']}:{sha[:7]}"
    assert [build["tag"] for build in docker.builds] == [tag]
    assert docker.pushes == [tag]
    context = docker.build_context()
    names = context.getnames()
    dockerfile = (
        context.extractfile(f"{BUILD_CONTEXT_ROOT}/{docker.builds[0]['dockerfile'].split('/')[-1]}")
        .read()
        .decode()
    )
    assert "FROM statistically-gated-versioning:base" in dockerfile
    assert "/mlflow/projects/code/" in dockerfile and "WORKDIR /mlflow/projects/code/" in dockerfile
    for needed in ("MLproject", "configs/default.yaml", "steps/compare_and_promote.py",
                   "versioning/config.py"):  # fmt: skip
        assert f"{BUILD_CONTEXT_ROOT}/project/{needed}" in names, needed
    # The stage's MLproject is the docker_env one MLflow submits with; the commit's own
    # (python_env) stays at the project root, so `main` can launch steps locally in the pod.
    stage_mlproject = yaml.safe_load(context.extractfile(f"{BUILD_CONTEXT_ROOT}/MLproject"))
    assert stage_mlproject["docker_env"]["image"] == "statistically-gated-versioning:base"
    project_mlproject = yaml.safe_load(
        context.extractfile(f"{BUILD_CONTEXT_ROOT}/project/MLproject")
    )
    assert "docker_env" not in project_mlproject
    assert project_mlproject["python_env"] == "python_env.yaml"
    assert forbidden_members(names) == []
    for decoy in [*DECOYS, TRACKED_DECOY]:
        assert f"{BUILD_CONTEXT_ROOT}/project/{decoy}" not in names, decoy

    # --- the Job MLflow sends to the API server --------------------------------------------
    assert kube.contexts == [None]  # no kube-context in the config: the current context
    assert len(kube.jobs) == 1
    job = kube.jobs[0]
    body = job["body"]
    assert job["namespace"] == body["metadata"]["namespace"] == template["metadata"]["namespace"]
    assert body["apiVersion"] == "batch/v1" and body["kind"] == "Job"
    assert body["spec"]["backoffLimit"] == 0
    assert body["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert body["metadata"]["name"].startswith("statistically-gated-versioning-")
    assert len(body["metadata"]["name"]) <= 63

    container = _container(job)
    assert container["name"] == "statistically-gated-versioning"
    assert container["workingDir"] == "/mlflow/projects/code/project"
    assert container["image"] == f"{tag}@{docker.digests[tag]}"
    assert container["command"] == shlex.split(
        "python -m steps.compare_and_promote --config configs/default.yaml"
        " --alpha 0.01 --primary_metric f1"
    )
    expected_resources = template["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert container["resources"] == expected_resources
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])

    env = _env(container)
    assert env["MLFLOW_TRACKING_URI"] == {"name": "MLFLOW_TRACKING_URI", "value": tracking_uri}
    assert env["MLFLOW_RUN_ID"]["value"] == submitted.run_id
    for name, key in (("MLFLOW_TRACKING_USERNAME", "username"),
                      ("MLFLOW_TRACKING_PASSWORD", "password")):  # fmt: skip
        assert "value" not in env[name], f"{name} must not be a literal"
        assert env[name]["valueFrom"]["secretKeyRef"] == {
            "name": "mlflow-tracking-credentials",
            "key": key,
        }

    # --- the run MLflow created on the shared server ---------------------------------------
    client = mlflow.MlflowClient()
    run = client.get_run(submitted.run_id)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    assert run.info.experiment_id == env["MLFLOW_EXPERIMENT_ID"]["value"] == experiment_id
    assert run.data.tags["mlflow.project.backend"] == "kubernetes"
    assert run.data.tags["mlflow.project.entryPoint"] == "compare_and_promote"
    assert run.data.tags["mlflow.source.git.commit"] == sha
    assert run.data.tags["mlflow.docker.image.uri"] == tag
    assert run.data.tags["mlflow.docker.image.id"] == docker.digests[tag]
    assert run.data.params == {"config": "configs/default.yaml", **PARAMS}
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")  # proxied by the server
    assert _exports_left() <= exports_before  # the export was cleaned up


@pytest.mark.parametrize("tracking_server", ["sqlite"], indirect=True)
def test_kube_tracking_uri_overrides_what_the_job_tracks_to(
    tracking_uri: str,
    checkout: tuple[Path, str],
    fake_cluster: tuple[DockerRecorder, KubernetesApiRecorder],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pods may reach the server by another name than the client (in-cluster Service DNS)."""
    root, _ = checkout
    _, kube = fake_cluster
    in_cluster = "http://mlflow.mlflow.svc.cluster.local:5000"
    monkeypatch.setenv("KUBE_MLFLOW_TRACKING_URI", in_cluster)

    submit_kubernetes("train_lr", {}, project_root=root, kube_context="team-cluster")

    assert kube.contexts == ["team-cluster"]
    env = _env(_container(kube.jobs[0]))
    assert env["MLFLOW_TRACKING_URI"]["value"] == in_cluster


@pytest.mark.parametrize(
    ("client_uri", "kube_uri", "message"),
    [
        ("http://mlflow.example.com", "sqlite:////srv/mlflow/mlflow.db", "local store"),
        ("http://mlflow.example.com", "file:///srv/mlflow/mlruns", "local store"),
        ("http://mlflow.example.com", "/srv/mlflow/mlruns", "local store"),
        ("sqlite:///mlflow.db", None, "local store"),
        ("http://mlflow.example.com", "http://bob:hunter2@mlflow.example.com", "credentials"),
    ],
    ids=["kube-sqlite", "kube-file", "kube-path", "client-sqlite", "creds-in-uri"],
)
def test_a_local_or_leaky_tracking_uri_is_refused_before_anything_happens(
    client_uri: str,
    kube_uri: str | None,
    message: str,
    checkout: tuple[Path, str],
    fake_cluster: tuple[DockerRecorder, KubernetesApiRecorder],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, _ = checkout
    docker, kube = fake_cluster
    point_mlflow_at(monkeypatch, client_uri)
    if kube_uri is not None:
        monkeypatch.setenv("KUBE_MLFLOW_TRACKING_URI", kube_uri)

    with pytest.raises(SubmissionError, match=message):
        submit_kubernetes("compare_and_promote", PARAMS, project_root=root)

    # Refused before any run, image or Job: nothing to clean up anywhere.
    assert docker.builds == [] and docker.pushes == [] and kube.jobs == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t["spec"].update(backoffLimit=3), "backoffLimit must be 0"),
        (
            lambda t: t["spec"]["template"]["spec"]["containers"][0]["env"].append(
                {
                    "name": "MLFLOW_TRACKING_URI",
                    "valueFrom": {"secretKeyRef": {"name": "mlflow", "key": "uri"}},
                }
            ),
            "MLFLOW_TRACKING_URI, which MLflow appends itself",
        ),
        (
            lambda t: t["spec"]["template"]["spec"]["containers"][0]["env"].append(
                {"name": "MLFLOW_TRACKING_PASSWORD", "value": "hunter2"}
            ),
            "must come from a Secret",
        ),
        (
            lambda t: t["spec"]["template"]["spec"]["containers"][0].pop("workingDir"),
            "workingDir must be /mlflow/projects/code/project",
        ),
    ],
    ids=["retries", "shadowed-tracking-uri", "literal-password", "working-dir"],
)
def test_a_job_template_mlflow_would_mangle_is_refused(
    edit: Callable[[dict[str, Any]], None],
    message: str,
    checkout: tuple[Path, str],
    fake_cluster: tuple[DockerRecorder, KubernetesApiRecorder],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    root, _ = checkout
    docker, kube = fake_cluster
    point_mlflow_at(monkeypatch, "http://mlflow.example.com")
    template = yaml.safe_load((KUBE_DIR / "job-template.yaml").read_text())
    edit(template)
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(template))
    config = json.loads((KUBE_DIR / "kubernetes_config.json").read_text())
    config["kube-job-template-path"] = "job.yaml"  # relative to the config file
    (tmp_path / "config.json").write_text(json.dumps(config))

    with pytest.raises(SubmissionError, match=message):
        submit_kubernetes(
            "compare_and_promote", {}, project_root=root, config_path=tmp_path / "config.json"
        )
    assert docker.builds == [] and kube.jobs == []


# --- the shared server the Jobs track to: deploy/tracking-server/start.sh -------------------
START_SH = REPO_ROOT / "deploy" / "tracking-server" / "start.sh"
SERVER_START_TIMEOUT = 90.0


def _recipe_env(**settings: str) -> dict[str, str]:
    """The server's environment: only what the recipe documents, nothing inherited."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "PG", "DATABRICKS_", "KUBE_"))
    }
    env["MLFLOW_BIN"] = str(Path(sys.executable).with_name("mlflow"))
    env.update(settings)
    return env


@pytest.fixture
def recipe_server(
    postgres_cluster: PostgresCluster, tmp_path: Path
) -> Iterator[tuple[str, Path, str]]:
    """``start.sh`` on a fresh PostgreSQL database, configured by PG* variables only.

    Yields (url, artifacts directory, database name); stopped by its process group id.
    """
    from tests.servers import free_port

    database = postgres_cluster.create_database().rsplit("/", 1)[1]
    artifacts = tmp_path / "artifacts"
    port = free_port()
    env = _recipe_env(
        PGHOST="127.0.0.1",
        PGPORT=str(postgres_cluster.port),
        PGUSER=postgres_cluster.superuser,
        PGDATABASE=database,
        MLFLOW_ARTIFACTS_DESTINATION=str(artifacts),
        MLFLOW_HOST="127.0.0.1",
        MLFLOW_PORT=str(port),
        MLFLOW_WORKERS="1",
    )
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["bash", str(START_SH)],
            cwd=tmp_path,  # a server must never drop mlflow.db/mlartifacts in the repo
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stopped by its id below
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not _healthy(f"{url}/health"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"start.sh did not come up:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url, artifacts, database
    finally:
        _stop_group(process)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return response.status == 200
    except OSError:
        return False


def _stop_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def test_tracking_server_recipe_keeps_runs_in_postgresql_and_proxies_artifacts(
    recipe_server: tuple[str, Path, str],
    postgres_cluster: PostgresCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlflow
    import psycopg2

    url, artifacts, database = recipe_server
    point_mlflow_at(monkeypatch, url)
    with mlflow.start_run() as run:
        mlflow.log_param("probe", "recipe")
        mlflow.log_text("proxied", "probe/check.txt")

    # Clients see mlflow-artifacts:/ and the bytes land in the server's destination.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    (stored,) = artifacts.rglob("check.txt")
    assert stored.read_text() == "proxied"
    assert mlflow.artifacts.load_text(f"{run.info.artifact_uri}/probe/check.txt") == "proxied"
    # ...and the run itself is a row in PostgreSQL.
    connection = psycopg2.connect(
        host="127.0.0.1", port=postgres_cluster.port, user=postgres_cluster.superuser,
        dbname=database, connect_timeout=10,
    )  # fmt: skip
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT status FROM runs WHERE run_uuid = %s", (run.info.run_id,))
            assert cursor.fetchall() == [("FINISHED",)]
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"MLFLOW_BACKEND_STORE_URI": "postgresql://mlflow:hunter2@db.internal/mlflow",
             "MLFLOW_ARTIFACTS_DESTINATION": "s3://bucket/mlflow"},
            "contains a password",
        ),
        (
            {"MLFLOW_BACKEND_STORE_URI": "sqlite:///mlflow.db",
             "MLFLOW_ARTIFACTS_DESTINATION": "s3://bucket/mlflow"},
            "must be a postgresql:// URI",
        ),
        ({"PGHOST": "db.internal", "PGUSER": "mlflow", "PGDATABASE": "mlflow"},
         "set MLFLOW_ARTIFACTS_DESTINATION"),
        ({"MLFLOW_ARTIFACTS_DESTINATION": "s3://bucket/mlflow"},
         "or PGHOST, PGUSER and PGDATABASE"),
    ],
    ids=["password-in-uri", "sqlite", "no-artifacts-destination", "no-database"],
)  # fmt: skip
def test_tracking_server_recipe_refuses_unsafe_settings(
    settings: dict[str, str], message: str, tmp_path: Path
) -> None:
    env = _recipe_env(**settings, MLFLOW_BIN="false")  # must exit before starting anything
    result = subprocess.run(
        ["bash", str(START_SH)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "hunter2" not in result.stderr


def test_parameters_mlflow_would_quote_literally_are_refused(
    checkout: tuple[Path, str],
    fake_cluster: tuple[DockerRecorder, KubernetesApiRecorder],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, _ = checkout
    docker, kube = fake_cluster
    point_mlflow_at(monkeypatch, "http://mlflow.example.com")

    with pytest.raises(SubmissionError, match="literal shell quotes: data_source=my data.csv"):
        submit_kubernetes("generate_data", {"data_source": "my data.csv"}, project_root=root)
    assert docker.builds == [] and kube.jobs == []
