"""The server fixtures start real MLflow tracking servers that behave like production ones:
proxied artifacts, Model Registry aliases, a real PostgreSQL backend, basic-auth permissions,
and clean shutdown."""

from __future__ import annotations

import os
import warnings

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from tests.fixtures_servers import point_mlflow_at
from tests.servers import (
    PostgresCluster,
    ServerStartError,
    live_pids_in_group,
    start_mlflow_server,
)


def _tiny_model() -> tuple[LogisticRegression, np.ndarray]:
    X = np.array([[0.0, 0.1], [0.2, 0.0], [1.0, 0.9], [0.8, 1.1]])
    y = np.array([0, 0, 1, 1])
    return LogisticRegression().fit(X, y), X


def test_tracking_server_roundtrip(tracking_server, tracking_uri, unique_name, tmp_path):
    client = MlflowClient(tracking_uri=tracking_uri)
    assert client.search_experiments(max_results=1) is not None  # REST API reachable

    experiment_id = mlflow.set_experiment(unique_name("exp")).experiment_id
    assert client.get_experiment(experiment_id).artifact_location.startswith("mlflow-artifacts:/")

    model, X = _tiny_model()
    note = tmp_path / "note.txt"
    note.write_text("hello from the test")
    with mlflow.start_run() as run:
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("accuracy", 0.75)
        mlflow.log_artifact(str(note))
        model_info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="skops",
            skops_trusted_types=[],
            pip_requirements=["scikit-learn"],
        )
    run_id = run.info.run_id

    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    data = client.get_run(run_id).data
    assert data.params == {"C": "1.0"}
    assert data.metrics == {"accuracy": 0.75}

    downloaded = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="note.txt", dst_path=str(tmp_path / "download")
    )
    assert open(downloaded).read() == "hello from the test"
    # The server proxied the upload into its own artifacts directory.
    assert any(p.read_text() == "hello from the test"
               for p in tracking_server.artifacts_dir.rglob("note.txt"))  # fmt: skip

    model_name = unique_name("model")
    version = mlflow.register_model(model_info.model_uri, model_name)
    client.set_registered_model_alias(model_name, "champion", version.version)

    by_alias = client.get_model_version_by_alias(model_name, "champion")
    assert (by_alias.version, by_alias.run_id) == (version.version, run_id)
    assert client.get_registered_model(model_name).aliases == {"champion": version.version}

    loaded = mlflow.sklearn.load_model(f"models:/{model_name}@champion")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))

    with warnings.catch_warnings():  # stages are deprecated but still served
        warnings.simplefilter("ignore")
        client.transition_model_version_stage(model_name, version.version, "Staging")
        assert client.get_model_version(model_name, version.version).current_stage == "Staging"


def _mlflow_globals() -> tuple:
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils
    import mlflow.tracking.fluent as fluent

    return (
        tracking_utils._tracking_uri,
        registry_utils._registry_uri,
        fluent._active_experiment_id,
        {k: v for k, v in os.environ.items() if k.startswith(("MLFLOW_TRACKING", "MLFLOW_REG",
                                                              "MLFLOW_EXPERIMENT"))},
    )


def test_point_mlflow_at_is_undone(tracking_server, unique_name):
    before = _mlflow_globals()
    mp = pytest.MonkeyPatch()
    try:
        point_mlflow_at(mp, tracking_server.url)
        # What workflow code typically does to global state:
        mlflow.set_tracking_uri(tracking_server.url)
        mlflow.set_registry_uri(tracking_server.url)
        mlflow.set_experiment(unique_name("exp"))
        assert mlflow.get_tracking_uri() == tracking_server.url
    finally:
        mp.undo()
    assert _mlflow_globals() == before


def test_postgresql_backend_is_really_postgres(tracking_server, tracking_uri, unique_name):
    if tracking_server.backend != "postgresql":
        pytest.skip("postgresql backend only")
    import psycopg2

    name = unique_name("exp")
    mlflow.create_experiment(name)
    libpq_uri = tracking_server.backend_store_uri.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(libpq_uri) as conn, conn.cursor() as cur:
        cur.execute("SHOW listen_addresses")
        assert cur.fetchone() == ("127.0.0.1",)
        cur.execute("SELECT count(*) FROM experiments WHERE name = %s", (name,))
        assert cur.fetchone() == (1,)
    conn.close()


def _set_user(monkeypatch, creds) -> None:
    for key, value in creds.env().items():
        monkeypatch.setenv(key, value)


def test_auth_server_permissions(auth_server, auth_tracking_uri, unique_name, monkeypatch):
    assert "@" not in auth_server.url  # credentials never travel in the URI
    client = MlflowClient(tracking_uri=auth_tracking_uri)

    # As admin: a model with one version (no real model needed to test the registry ACL).
    experiment_id = mlflow.create_experiment(unique_name("exp"))
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_text("weights", "model/weights.txt")
    model_name = unique_name("model")
    client.create_registered_model(model_name)
    version = client.create_model_version(
        model_name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )

    reader = auth_server.create_user_with_permission("READ", registered_model=model_name)
    editor = auth_server.create_user_with_permission("EDIT", registered_model=model_name)
    stranger = auth_server.create_user()  # default_permission = NO_PERMISSIONS

    _set_user(monkeypatch, stranger)
    with pytest.raises(MlflowException, match="403"):
        client.get_registered_model(model_name)

    _set_user(monkeypatch, reader)
    assert client.get_registered_model(model_name).name == model_name
    with pytest.raises(MlflowException) as denied:
        client.set_registered_model_alias(model_name, "champion", version.version)
    # The auth app answers a plain-text 403, so the client raises a bare MlflowException (not
    # a RestException, which needs a JSON error body) with error_code PERMISSION_DENIED.
    assert denied.value.error_code == "PERMISSION_DENIED"
    assert "failed with error code 403 != 200" in denied.value.message
    assert "Permission denied" in denied.value.message

    _set_user(monkeypatch, auth_server.admin)
    assert client.get_registered_model(model_name).aliases == {}  # nothing changed

    _set_user(monkeypatch, editor)
    client.set_registered_model_alias(model_name, "champion", version.version)
    assert client.get_model_version_by_alias(model_name, "champion").version == version.version

    _set_user(monkeypatch, reader)
    assert client.get_model_version_by_alias(model_name, "champion").version == version.version


def test_auth_server_rejects_anonymous(auth_server, auth_tracking_uri, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    with pytest.raises(MlflowException, match="401"):
        MlflowClient(tracking_uri=auth_tracking_uri).search_experiments()


def test_experiment_permission_helper(auth_server, auth_tracking_uri, unique_name, monkeypatch):
    client = MlflowClient(tracking_uri=auth_tracking_uri)
    experiment_id = client.create_experiment(unique_name("exp"))
    reader = auth_server.create_user_with_permission("READ", experiment_id=experiment_id)
    editor = auth_server.create_user_with_permission("EDIT", experiment_id=experiment_id)

    _set_user(monkeypatch, reader)
    assert client.get_experiment(experiment_id).experiment_id == experiment_id
    with pytest.raises(MlflowException, match="403"):
        client.create_run(experiment_id)

    _set_user(monkeypatch, editor)
    assert client.create_run(experiment_id).info.experiment_id == experiment_id


def test_stop_leaves_no_process(tmp_path):
    server = start_mlflow_server(
        f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts", log_path=tmp_path / "log"
    )
    try:
        pids = live_pids_in_group(server.pid)
        assert server.pid in pids and len(pids) >= 2  # CLI process + uvicorn worker
    finally:
        server.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert live_pids_in_group(server.pid) == []
    server.stop()  # idempotent


def test_failed_start_reports_log_tail(tmp_path):
    with pytest.raises(ServerStartError, match="exited with code") as failed:
        start_mlflow_server(
            "bogus-scheme://nowhere", tmp_path / "artifacts", log_path=tmp_path / "log", timeout=30
        )
    assert "Log tail" in str(failed.value)


def test_postgres_cluster_lifecycle():
    with PostgresCluster() as cluster:
        pid, base = cluster.pid, cluster.base_dir
        uri = cluster.create_database("lifecycle_check")
        assert uri == f"postgresql+psycopg2://postgres@127.0.0.1:{cluster.port}/lifecycle_check"
        assert pid is not None and os.kill(pid, 0) is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not base.exists()
