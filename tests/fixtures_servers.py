"""Pytest fixtures that run real MLflow tracking servers on 127.0.0.1.

Enable with ``pytest_plugins = ["tests.fixtures_servers"]`` in the root conftest (or
``-p tests.fixtures_servers``).

* ``postgres_cluster`` (session): one throwaway PostgreSQL cluster, started only when needed.
* ``tracking_server`` (session, params ``sqlite``/``postgresql``): a real ``mlflow server`` with
  proxied artifacts; ``.url``, ``.backend``, ``.pid``. Tests share it, so they must use unique
  experiment / registered-model names (``unique_name``).
* ``tracking_uri`` (function): points the fluent ``mlflow`` API of this process at
  ``tracking_server`` and undoes it afterwards (no global state leaks between tests).
* ``auth_server`` (session): basic-auth server (sqlite), admin credentials, user/permission
  helpers (see ``tests.servers.AuthServer``).

Servers are stopped by PID (their process group) in the fixtures' finalizers, which pytest runs
even when tests fail or on Ctrl-C; ``tests.servers`` also stops leftovers at interpreter exit.
"""

from __future__ import annotations

import re
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import (
    AuthServer,
    MlflowServer,
    PostgresCluster,
    start_basic_auth_server,
    start_mlflow_server,
)

BACKENDS = ["sqlite", "postgresql"]


@dataclass(frozen=True)
class TrackingServer:
    backend: str  # "sqlite" | "postgresql"
    server: MlflowServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def backend_store_uri(self) -> str:
        return self.server.backend_store_uri

    @property
    def artifacts_dir(self) -> Path:
        return self.server.artifacts_dir

    @property
    def startup_seconds(self) -> float | None:
        return self.server.startup_seconds


_STARTUP_REPORT: list[str] = []


def _report(config: pytest.Config, message: str) -> None:
    """Remember a line for the terminal summary (see pytest_terminal_summary)."""
    _STARTUP_REPORT.append(message)


def pytest_terminal_summary(terminalreporter) -> None:
    if _STARTUP_REPORT:
        terminalreporter.section("test servers")
        for line in _STARTUP_REPORT:
            terminalreporter.write_line(line)


_previous_sigterm = None


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt(f"received signal {signum}")


def _teardown_on_sigterm() -> None:
    """Turn SIGTERM (e.g. ``timeout 600 pytest``, a CI cancel) into KeyboardInterrupt so that
    pytest still runs the finalizers that stop servers and the PostgreSQL cluster. Only when
    nobody installed a SIGTERM handler; restored in pytest_unconfigure."""
    global _previous_sigterm
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        _previous_sigterm = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


def pytest_unconfigure(config) -> None:
    if _previous_sigterm is not None and signal.getsignal(signal.SIGTERM) is _sigterm_as_interrupt:
        signal.signal(signal.SIGTERM, _previous_sigterm)


@pytest.fixture(scope="session")
def postgres_cluster(request: pytest.FixtureRequest) -> Iterator[PostgresCluster]:
    # Not under tmp_path_factory: /tmp/pytest-of-root is 0700 root, which the `postgres` OS
    # user cannot traverse. PostgresCluster makes (and removes) its own temp dir.
    _teardown_on_sigterm()
    cluster = PostgresCluster()
    try:
        cluster.start()
        _report(
            request.config,
            f"postgres cluster on port {cluster.port} (pid {cluster.pid}) "
            f"started in {cluster.startup_seconds:.1f}s",
        )
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session", params=BACKENDS, ids=BACKENDS)
def tracking_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TrackingServer]:
    backend: str = request.param
    _teardown_on_sigterm()
    work = tmp_path_factory.mktemp(f"mlflow-server-{backend}")
    if backend == "sqlite":
        backend_uri = f"sqlite:///{work / 'mlflow.db'}"
    else:
        # Looked up lazily so that a run selecting only [sqlite] needs no PostgreSQL.
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        backend_uri = cluster.create_database(f"mlflow_{secrets.token_hex(4)}")
    server = start_mlflow_server(backend_uri, work / "artifacts", log_path=work / "server.log")
    try:
        _report(
            request.config,
            f"mlflow server [{backend}] {server.url} (pid {server.pid}) "
            f"started in {server.startup_seconds:.1f}s",
        )
        yield TrackingServer(backend, server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def auth_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthServer]:
    _teardown_on_sigterm()
    server = start_basic_auth_server(tmp_path_factory.mktemp("mlflow-server-auth"))
    try:
        _report(
            request.config,
            f"mlflow server [basic-auth] {server.url} (pid {server.pid}) "
            f"started in {server.server.startup_seconds:.1f}s",
        )
        yield server
    finally:
        server.stop()


def point_mlflow_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Make the fluent ``mlflow`` API and new ``MlflowClient()``s of this process use ``url``
    for tracking and registry, reverted by ``monkeypatch`` at teardown.

    Resets the globals ``mlflow.set_tracking_uri`` / ``set_registry_uri`` /
    ``set_experiment`` write, so neither an earlier test nor the code under test leaks them.
    """
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils
    import mlflow.tracking.fluent as fluent

    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    for var in (
        "MLFLOW_REGISTRY_URI",
        "MLFLOW_EXPERIMENT_NAME",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_RUN_ID",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_TOKEN",
    ):
        # setenv first: delenv(raising=False) of an unset variable records no undo, so a value
        # set later by the code under test (set_registry_uri, ...) would survive the test.
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    monkeypatch.setattr(registry_utils, "_registry_uri", None)
    monkeypatch.setattr(fluent, "_active_experiment_id", None)


def _end_active_runs() -> None:
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run(status="KILLED")


@pytest.fixture
def tracking_uri(tracking_server: TrackingServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """URL of ``tracking_server``, with this process's mlflow pointed at it for one test."""
    point_mlflow_at(monkeypatch, tracking_server.url)
    try:
        yield tracking_server.url
    finally:
        _end_active_runs()


@pytest.fixture
def auth_tracking_uri(auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """URL of ``auth_server``, mlflow pointed at it, authenticated as the admin (tests switch
    user with ``monkeypatch.setenv`` and ``UserCredentials.env()``)."""
    point_mlflow_at(monkeypatch, auth_server.url)
    for key, value in auth_server.admin.env().items():
        monkeypatch.setenv(key, value)
    try:
        yield auth_server.url
    finally:
        _end_active_runs()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``unique_name("model")`` -> ``"model-<test name>-<random>"``: names that do not collide
    on the shared session servers (or across repeated runs against the same server)."""
    test = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:40]

    def make(prefix: str = "t") -> str:
        return f"{prefix}-{test}-{int(time.time())}-{secrets.token_hex(3)}"

    return make
