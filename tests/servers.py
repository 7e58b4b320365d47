"""Real MLflow tracking servers (and a throwaway PostgreSQL cluster) for integration tests.

Plain helpers, no pytest dependency; the fixtures live in ``tests/fixtures_servers.py``.

* :func:`start_mlflow_server` launches ``<venv>/bin/mlflow server`` on 127.0.0.1 in its own
  process group and waits for ``GET /health``. :meth:`MlflowServer.stop` kills that process
  group (SIGTERM, then SIGKILL) and reaps it.
* :class:`PostgresCluster` runs ``initdb``/``pg_ctl`` from ``/usr/lib/postgresql/*/bin`` on a
  temp data dir, as the ``postgres`` OS user when we are root (PostgreSQL refuses to run as
  root). ``scripts/install_system_deps.sh`` installs the binaries.
* :func:`start_basic_auth_server` runs ``mlflow server --app-name basic-auth`` with a generated
  auth config; :class:`AuthServer` creates users and grants permissions through MLflow's public
  ``AuthServiceClient``. Credentials only ever travel in ``MLFLOW_TRACKING_USERNAME`` /
  ``MLFLOW_TRACKING_PASSWORD``, never in a tracking URI.

Linux-only where it matters (``/proc`` is used to check port ownership and leftover processes).
"""

from __future__ import annotations

import atexit
import configparser
import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
SERVER_START_TIMEOUT = float(os.environ.get("MLFLOW_TEST_SERVER_START_TIMEOUT", "60"))
STOP_TIMEOUT = 15.0
REPO_ROOT = Path(__file__).resolve().parents[1]
CI_POSTGRES_SCRIPT = REPO_ROOT / "scripts" / "install_system_deps.sh"

# Environment variables that must not leak from the test process into a server: a server
# must be configured only by its own command line and the `env` passed to it.
_SERVER_ENV_DENYLIST_PREFIXES = ("MLFLOW_TRACKING_", "MLFLOW_AUTH_")
_SERVER_ENV_DENYLIST = {
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_RUN_ID",
    "MLFLOW_FLASK_SERVER_SECRET_KEY",
}

# Everything started here and not yet stopped; stopped at interpreter exit as a last resort
# (normal cleanup is the fixtures' finalizers).
_LIVE: list = []


class ServerStartError(RuntimeError):
    pass


class PostgresNotInstalledError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------
# Ports and processes
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, process group id) of ``pid`` from /proc, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2])


def live_pids_in_group(pgid: int) -> list[int]:
    """PIDs of non-zombie processes whose process group is ``pgid`` (Linux /proc scan)."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is not None and stat[1] == pgid and stat[0] not in ("Z", "X"):
            pids.append(int(entry.name))
    return pids


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                    inodes.add(cols[9])
    return inodes


def group_listens_on(pgid: int, port: int) -> bool:
    """Whether a process of group ``pgid`` owns the listening socket on ``port``.

    Guards against the free_port() race: another process grabbing the port between our probe
    and the server's bind would otherwise answer our health check.
    """
    if not Path("/proc/net/tcp").exists():  # not Linux: cannot tell, trust the health check
        return True
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not wanted:
        return False
    for pid in live_pids_in_group(pgid):
        with contextlib.suppress(OSError):
            for fd in os.scandir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(fd.path) in wanted:
                        return True
    return False


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM this process when the process that started it dies (Linux), so a
    test run killed with SIGKILL does not orphan its servers (the mlflow CLI forwards SIGTERM
    to its uvicorn worker)."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return "<no log>"
    return "\n".join(text.splitlines()[-lines:])


def pid_exists(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _proc_stat(pid)  # None: no /proc, or it vanished just now
    return stat is None or stat[0] not in ("Z", "X")


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` is gone; a zombie counts as gone once ``timeout`` is over."""
    deadline = time.monotonic() + timeout
    reaped_deadline = None
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        now = time.monotonic()
        if not pid_exists(pid):  # zombie: give its parent a moment to reap it
            reaped_deadline = reaped_deadline or min(now + 2.0, deadline)
            if now > reaped_deadline:
                return True
        elif now > deadline:
            return False
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# MLflow server
# --------------------------------------------------------------------------------------------


def mlflow_executable() -> Path:
    """The ``mlflow`` CLI of the interpreter running the tests (the venv's)."""
    candidate = Path(sys.executable).parent / "mlflow"
    if candidate.exists():
        return candidate
    found = shutil.which("mlflow")
    if found:
        return Path(found)
    raise FileNotFoundError(f"No `mlflow` executable next to {sys.executable} or on PATH")


def _server_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _SERVER_ENV_DENYLIST and not k.startswith(_SERVER_ENV_DENYLIST_PREFIXES)
    }
    env["PYTHONUNBUFFERED"] = "1"
    # The job runner (huey consumer for GenAI jobs) is an extra process tree we do not need;
    # disabling it keeps startup fast and leaves nothing behind.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env.update(extra or {})
    return env


@dataclass(eq=False)
class MlflowServer:
    """A running ``mlflow server``; ``pid`` is also its process-group id."""

    process: subprocess.Popen = field(repr=False)
    url: str
    port: int
    backend_store_uri: str
    artifacts_dir: Path
    log_path: Path
    app_name: str | None = None
    startup_seconds: float | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_running(self) -> bool:
        return self.process.poll() is None

    def live_pids(self) -> list[int]:
        """All still-running processes of the server (CLI process + uvicorn worker)."""
        return live_pids_in_group(self.pid)

    def log_tail(self, lines: int = 60) -> str:
        return _tail(self.log_path, lines)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the process group, SIGKILL after ``timeout``; reap; idempotent."""
        pgid = self.pid
        if self.process.poll() is None or live_pids_in_group(pgid):
            _kill_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(pgid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
            # The CLI forwards SIGTERM to uvicorn and waits for it, but make sure no other
            # member of the group outlives the leader.
            while live_pids_in_group(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if live_pids_in_group(pgid):
                _kill_group(pgid, signal.SIGKILL)
                time.sleep(0.2)
        with contextlib.suppress(ValueError):
            _LIVE.remove(self)

    def __enter__(self) -> MlflowServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (local URL)
            return resp.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def start_mlflow_server(
    backend_store_uri: str,
    artifacts_dir: Path,
    *,
    app_name: str | None = None,
    env: Mapping[str, str] | None = None,
    log_path: Path,
    workers: int = 1,
    timeout: float = SERVER_START_TIMEOUT,
    cwd: Path | None = None,
    extra_args: tuple[str, ...] = (),
    attempts: int = 3,
) -> MlflowServer:
    """Start ``mlflow server`` on 127.0.0.1:<free port> and wait until it is healthy.

    Artifacts are proxied (``--serve-artifacts`` is the default), so clients see
    ``mlflow-artifacts:/`` URIs and the files land in ``artifacts_dir``. The server runs in
    ``cwd`` (default: the log's directory) so it never drops ``mlruns``/``mlflow.db`` in the
    repository. Retries on another port if the chosen one was taken meanwhile.

    On Linux the server gets SIGTERM when the *thread* that started it exits (PR_SET_PDEATHSIG),
    so call this from the main thread (pytest fixtures do), not from a short-lived worker thread.
    """
    artifacts_dir = Path(artifacts_dir)
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cwd = Path(cwd) if cwd is not None else log_path.parent
    server_env = _server_env(env)

    last_error: ServerStartError | None = None
    for attempt in range(1, attempts + 1):
        port = free_port()
        cmd = [
            str(mlflow_executable()),
            "server",
            "--host", HOST,
            "--port", str(port),
            "--workers", str(workers),
            "--backend-store-uri", backend_store_uri,
            "--artifacts-destination", str(artifacts_dir),
            *(["--app-name", app_name] if app_name else []),
            *extra_args,
        ]  # fmt: skip
        with open(log_path, "ab") as log:
            log.write(f"\n=== attempt {attempt}: {shlex.join(cmd)}\n".encode())
            log.flush()
            started = time.monotonic()
            process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=server_env,
                start_new_session=True,  # own session => own process group, pgid == pid
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        server = MlflowServer(
            process=process,
            url=f"http://{HOST}:{port}",
            port=port,
            backend_store_uri=backend_store_uri,
            artifacts_dir=artifacts_dir,
            log_path=log_path,
            app_name=app_name,
        )
        _LIVE.append(server)
        try:
            _wait_until_healthy(server, started + timeout)
        except ServerStartError as e:
            server.stop()
            last_error = e
            if "address already in use" in e.args[0].lower() and attempt < attempts:
                continue
            raise
        server.startup_seconds = time.monotonic() - started
        return server
    assert last_error is not None
    raise last_error


def _wait_until_healthy(server: MlflowServer, deadline: float) -> None:
    health = f"{server.url}/health"
    while True:
        if server.process.poll() is not None:
            raise ServerStartError(
                f"mlflow server exited with code {server.process.returncode} before becoming "
                f"healthy ({server.url}). Log tail ({server.log_path}):\n{server.log_tail()}"
            )
        if _http_ok(health) and group_listens_on(server.pid, server.port):
            return
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"mlflow server at {server.url} not healthy after {SERVER_START_TIMEOUT:.0f}s. "
                f"Log tail ({server.log_path}):\n{server.log_tail()}"
            )
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------

_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def find_postgres_bin_dir() -> Path:
    """Directory holding initdb and pg_ctl: $MLFLOW_TEST_PG_BIN, the newest
    /usr/lib/postgresql/<ver>/bin, or PATH."""

    def complete(d: Path) -> bool:
        return all(os.access(d / exe, os.X_OK) for exe in ("initdb", "pg_ctl"))

    candidates: list[Path] = []
    if os.environ.get("MLFLOW_TEST_PG_BIN"):
        candidates.append(Path(os.environ["MLFLOW_TEST_PG_BIN"]))

    def version(p: Path) -> float:
        try:
            return float(p.parent.name)
        except ValueError:
            return -1.0

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    if which := shutil.which("pg_ctl"):
        candidates.append(Path(which).parent)
    for d in candidates:
        if complete(d):
            return d
    raise PostgresNotInstalledError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin, "
        f"$MLFLOW_TEST_PG_BIN or PATH. Install them with: bash {CI_POSTGRES_SCRIPT}"
    )


class PostgresCluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1:<free port> with trust auth.

    Use as a context manager or call start()/stop(). Everything (data, unix socket, log) lives
    in one temp dir that is removed on stop. When running as root, initdb/pg_ctl run as the
    ``postgres`` OS user (``runuser``); otherwise as the current user.
    """

    superuser = "postgres"

    def __init__(self, base_dir: Path | None = None, *, os_user: str = "postgres"):
        self._requested_base = Path(base_dir) if base_dir else None
        self._os_user = os_user
        self.base_dir: Path | None = None
        self.port: int | None = None
        self.bin_dir: Path | None = None
        self.startup_seconds: float | None = None
        self._started = False

    # -- paths -----------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self._base / "data"

    @property
    def socket_dir(self) -> Path:
        return self._base / "sock"

    @property
    def log_path(self) -> Path:
        return self._base / "postgres.log"

    @property
    def _base(self) -> Path:
        if self.base_dir is None:
            raise RuntimeError("PostgresCluster not started")
        return self.base_dir

    @property
    def pid(self) -> int | None:
        """The postmaster PID (first line of postmaster.pid), None when not running."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError, RuntimeError):
            return None

    # -- lifecycle -------------------------------------------------------------------------
    def _as_owner(self, cmd: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", self._os_user, "--", *cmd]
        return cmd

    def _run(self, cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        res = subprocess.run(
            self._as_owner(cmd),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",  # the owner may not be allowed into our cwd
        )
        if res.returncode != 0:
            log = _tail(self.log_path) if self.base_dir else ""
            raise RuntimeError(
                f"{shlex.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}\n"
                f"postgres log tail:\n{log}"
            )
        return res

    def start(self) -> PostgresCluster:
        if self._started:
            return self
        started = time.monotonic()
        self.bin_dir = find_postgres_bin_dir()
        if self._requested_base:
            self._requested_base.mkdir(parents=True, exist_ok=True)
            self.base_dir = Path(tempfile.mkdtemp(prefix="pg-", dir=self._requested_base))
        else:
            self.base_dir = Path(tempfile.mkdtemp(prefix="mlflow-test-pg-"))
        _LIVE.append(self)
        try:
            self.socket_dir.mkdir()
            if os.geteuid() == 0:
                shutil.chown(self.base_dir, self._os_user, self._os_user)
                shutil.chown(self.socket_dir, self._os_user, self._os_user)
            self._run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D", str(self.data_dir),
                    "-U", self.superuser,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                    "--no-instructions",
                ]
            )  # fmt: skip
            self._pg_ctl_start()
        except BaseException:
            self.stop()
            raise
        self._started = True
        self.startup_seconds = time.monotonic() - started
        return self

    def _pg_ctl_start(self, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            self.port = free_port()
            opts = [
                "-k", str(self.socket_dir),
                "-p", str(self.port),
                "-c", f"listen_addresses={HOST}",
                # Test data is disposable: skip durability work.
                "-c", "fsync=off",
                "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off",
            ]  # fmt: skip
            try:
                self._run(
                    [
                        str(self.bin_dir / "pg_ctl"),
                        "start",
                        "-D", str(self.data_dir),
                        "-l", str(self.log_path),
                        "-w", "-t", "60",
                        "-o", shlex.join(opts),
                    ]
                )  # fmt: skip
                return
            except RuntimeError as e:
                if "already in use" in str(e) and attempt < attempts:
                    continue
                raise

    def stop(self) -> None:
        """pg_ctl stop -m fast (SIGKILL the postmaster if that fails); remove the temp dir."""
        if self.base_dir is None:
            return
        pid = self.pid
        if pid is not None and self.bin_dir is not None:
            try:
                self._run(
                    [str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir),
                     "-m", "fast", "-w", "-t", "30"],
                    timeout=60,
                )  # fmt: skip
            except (RuntimeError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            # The postmaster is not our child (pg_ctl detaches it): wait until it is gone, and
            # briefly for init to reap it so that os.kill(pid, 0) fails afterwards.
            wait_for_exit(pid, timeout=10)
        shutil.rmtree(self.base_dir, ignore_errors=True)
        self.base_dir = None
        self._started = False
        with contextlib.suppress(ValueError):
            _LIVE.remove(self)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- databases -------------------------------------------------------------------------
    def uri(self, database: str) -> str:
        """SQLAlchemy URI of ``database`` for ``--backend-store-uri``; no password (trust auth).

        The driver is explicit: SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3,
        which is not installed (the project pins psycopg2-binary).
        """
        return f"postgresql+psycopg2://{self.superuser}@{HOST}:{self.port}/{database}"

    def libpq_uri(self, database: str) -> str:
        """The same database as a libpq URI, for ``psycopg2.connect`` / ``psql``."""
        return f"postgresql://{self.superuser}@{HOST}:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """CREATE DATABASE ``name`` (default: a random one) and return its URI."""
        import psycopg2
        from psycopg2 import sql

        name = name or f"mlflow_{secrets.token_hex(6)}"
        if not _DB_NAME.match(name):
            raise ValueError(f"Database name must match {_DB_NAME.pattern}: {name!r}")
        conn = psycopg2.connect(
            host=HOST, port=self.port, user=self.superuser, dbname="postgres", connect_timeout=10
        )
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()
        return self.uri(name)


# --------------------------------------------------------------------------------------------
# Basic auth
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserCredentials:
    username: str
    password: str = field(repr=False)

    def env(self) -> dict[str, str]:
        """Environment variables that make MLflow clients authenticate as this user."""
        return {"MLFLOW_TRACKING_USERNAME": self.username, "MLFLOW_TRACKING_PASSWORD": self.password}


@contextlib.contextmanager
def credentials_env(creds: UserCredentials) -> Iterator[None]:
    """Temporarily authenticate MLflow clients of this process as ``creds`` (not thread-safe).

    Previous values are restored afterwards. Prefer ``monkeypatch.setenv`` inside tests.
    """
    keys = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
    saved = {k: os.environ.get(k) for k in keys}
    try:
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        os.environ.update(creds.env())
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# NO_PERMISSIONS: a user sees nothing unless granted explicitly, so a test that passes proves the
# grant works (with READ as default, a "READ user" test would pass even if the grant were a
# no-op), and it mirrors a locked-down production server. Note that without workspaces any
# authenticated user may still create experiments/models and gets MANAGE on what they create.
DEFAULT_AUTH_PERMISSION = "NO_PERMISSIONS"


def write_basic_auth_config(
    path: Path,
    *,
    database_uri: str,
    admin: UserCredentials,
    default_permission: str = DEFAULT_AUTH_PERMISSION,
    auth_cache_ttl_seconds: int = 300,
) -> Path:
    """Write the ini that ``mlflow server --app-name basic-auth`` reads from
    ``MLFLOW_AUTH_CONFIG_PATH`` (keys as in mlflow/server/auth/basic_auth.ini)."""
    config = configparser.ConfigParser()
    config["mlflow"] = {
        "default_permission": default_permission,
        "database_uri": database_uri,
        "admin_username": admin.username,
        # Used only to bootstrap the admin in the fresh auth DB; must be >= 12 characters.
        "admin_password": admin.password,
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
        "grant_default_workspace_access": "false",
        # Cache successful credential checks: otherwise every request pays a PBKDF2 hash
        # (~0.2-0.5 s here). Only (user, password) verification is cached, never permissions,
        # and a single worker invalidates its cache on password/user changes made over HTTP.
        "auth_cache_ttl_seconds": str(auth_cache_ttl_seconds),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        config.write(f)
    return path


@dataclass(eq=False)
class AuthServer:
    """A basic-auth ``mlflow server`` plus admin credentials and permission helpers."""

    server: MlflowServer
    admin: UserCredentials
    config_path: Path
    default_permission: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def admin_username(self) -> str:
        return self.admin.username

    @property
    def admin_password(self) -> str:
        return self.admin.password

    def stop(self) -> None:
        self.server.stop()

    def client(self):
        """MLflow's ``AuthServiceClient`` for this server (credentials come from env)."""
        from mlflow.server import get_app_client

        return get_app_client("basic-auth", tracking_uri=self.url)

    @contextlib.contextmanager
    def as_admin(self) -> Iterator[None]:
        with credentials_env(self.admin):
            yield

    def create_user(self, username: str | None = None, password: str | None = None):
        creds = UserCredentials(
            username or f"user-{secrets.token_hex(5)}", password or secrets.token_urlsafe(24)
        )
        with self.as_admin():
            self.client().create_user(creds.username, creds.password)
        return creds

    def grant(self, username: str, resource_type: str, resource_id: str, permission: str) -> None:
        from mlflow.server.auth.permissions import ALL_PERMISSIONS

        if permission not in ALL_PERMISSIONS:
            raise ValueError(f"Unknown permission {permission!r}; one of {sorted(ALL_PERMISSIONS)}")
        with self.as_admin():
            self.client().grant_user_permission(
                username=username,
                resource_type=resource_type,
                resource_id=str(resource_id),
                permission=permission,
            )

    def grant_registered_model_permission(self, username: str, name: str, permission: str):
        self.grant(username, "registered_model", name, permission)

    def grant_experiment_permission(self, username: str, experiment_id: str, permission: str):
        self.grant(username, "experiment", experiment_id, permission)

    def create_user_with_permission(
        self,
        permission: str,
        *,
        registered_model: str | None = None,
        experiment_id: str | None = None,
    ) -> UserCredentials:
        """New user holding ``permission`` (READ, USE, EDIT, MANAGE, ...) on the given
        registered model and/or experiment."""
        creds = self.create_user()
        if registered_model is not None:
            self.grant_registered_model_permission(creds.username, registered_model, permission)
        if experiment_id is not None:
            self.grant_experiment_permission(creds.username, experiment_id, permission)
        return creds


def start_basic_auth_server(
    work_dir: Path,
    *,
    backend_store_uri: str | None = None,
    default_permission: str = DEFAULT_AUTH_PERMISSION,
    timeout: float = SERVER_START_TIMEOUT,
) -> AuthServer:
    """``mlflow server --app-name basic-auth`` with a sqlite backend (unless given), a sqlite
    auth DB, and a per-call admin user/password and Flask secret key, all under ``work_dir``."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    admin = UserCredentials(f"admin-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    config_path = write_basic_auth_config(
        work_dir / "basic_auth.ini",
        database_uri=f"sqlite:///{work_dir / 'basic_auth.db'}",
        admin=admin,
        default_permission=default_permission,
    )
    server = start_mlflow_server(
        backend_store_uri or f"sqlite:///{work_dir / 'mlflow.db'}",
        work_dir / "artifacts",
        app_name="basic-auth",
        env={
            "MLFLOW_AUTH_CONFIG_PATH": str(config_path),
            # Required by the basic-auth app (CSRF protection); the server refuses to start
            # without it.
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(32),
        },
        log_path=work_dir / "server.log",
        timeout=timeout,
    )
    return AuthServer(server, admin, config_path, default_permission)


@atexit.register
def _stop_leftovers() -> None:
    for item in list(reversed(_LIVE)):
        with contextlib.suppress(Exception):
            item.stop()
