"""A fake Databricks workspace REST API on 127.0.0.1, for MLflow's ``databricks`` backend.

It answers exactly the calls that ``mlflow.projects.databricks`` (and the Databricks tracking
store behind ``MLFLOW_TRACKING_URI=databricks``) make when ``mlflow run --backend databricks``
submits a project:

* ``GET  /api/2.0/dbfs/get-status``            -- does the project tarball already exist?
* ``POST /dbfs/<path>``                          -- the project tarball upload (raw body)
* ``POST /api/2.0/jobs/runs/submit``            -- the one-time job run (captured)
* ``GET  /api/2.0/jobs/runs/get``               -- always TERMINATED / SUCCESS
* ``POST /api/2.0/jobs/runs/cancel``
* ``GET  /.well-known/databricks-config``      -- databricks-sdk's host-metadata probe
* ``/api/2.0/mlflow/...``                        -- the few tracking calls the client makes
  (experiment lookup, run create, params, tags, run get/update), kept in memory.

Anything else is answered 404 ``ENDPOINT_NOT_FOUND`` and recorded in :attr:`unhandled`, so a
test can show that MLflow called nothing we did not expect. Nothing leaves the machine: the
server binds to the loopback address on a free port and runs in a daemon thread.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

_logger = logging.getLogger(__name__)

DEFAULT_EXPERIMENT_ID = "0"
WORKSPACE_ID = "1234567890123456"


@dataclass
class RecordedRequest:
    """One request as the fake saw it (body parsed as JSON where it is JSON)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    json: Any = None
    body_size: int = 0


@dataclass
class _TrackingState:
    """The in-memory MLflow tracking store behind ``/api/2.0/mlflow/...``."""

    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)


class FakeDatabricksWorkspace:
    """A threaded HTTP server that stands in for one Databricks workspace.

    Use as a context manager; :attr:`host` is what ``DATABRICKS_HOST`` should be set to.
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.unhandled: list[RecordedRequest] = []
        self.dbfs_files: dict[str, bytes] = {}
        self.submitted_runs: list[dict[str, Any]] = []
        self.tracking = _TrackingState()
        self.tracking.experiments[DEFAULT_EXPERIMENT_ID] = _experiment(
            DEFAULT_EXPERIMENT_ID, "Default"
        )
        self._job_run_ids = itertools.count(1001)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def host(self) -> str:
        """Base URL of the fake workspace, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("the fake Databricks workspace is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeDatabricksWorkspace:
        """Bind to a free loopback port and serve in a daemon thread."""
        workspace = self

        class _Handler(_DatabricksHandler):
            fake = workspace

        # Port 0: the OS picks a free port, so parallel test runs never collide.
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll interval
            name="fake-databricks",
            daemon=True,
        )
        self._thread.start()
        _logger.info("Fake Databricks workspace listening on %s", self.host)
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeDatabricksWorkspace:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- request handling (called from the handler threads) -------------------------------
    def handle(self, request: RecordedRequest, raw_body: bytes) -> tuple[int, Any]:
        """Answer one request; returns (HTTP status, JSON-serialisable body)."""
        with self._lock:
            self.requests.append(request)
            path, method = request.path, request.method
            if path == "/.well-known/databricks-config":
                # databricks-sdk probes this before every request's auth; a real workspace
                # answers with its ids. (A 404 also works but makes the SDK warn each time.)
                return 200, {"oidc_endpoint": f"{self.host}/oidc", "workspace_id": WORKSPACE_ID}
            if path.startswith("/dbfs/") and method in ("POST", "PUT"):
                return self._dbfs_put(path, raw_body)
            if path == "/api/2.0/dbfs/get-status":
                return self._dbfs_get_status(request)
            if path == "/api/2.0/jobs/runs/submit" and method == "POST":
                return self._runs_submit(request.json or {})
            if path == "/api/2.0/jobs/runs/get":
                return self._runs_get(request)
            if path == "/api/2.0/jobs/runs/cancel" and method == "POST":
                return 200, {}
            if path.startswith("/api/2.0/mlflow/"):
                answer = self._mlflow(path.removeprefix("/api/2.0/mlflow/"), request)
                if answer is not None:
                    return answer
            self.unhandled.append(request)
            _logger.warning("Fake Databricks: unhandled %s %s", method, path)
            return 404, {
                "error_code": "ENDPOINT_NOT_FOUND",
                "message": f"fake workspace has no {method} {path}",
            }

    def _dbfs_put(self, path: str, raw_body: bytes) -> tuple[int, Any]:
        # MLflow posts the raw tarball to the FUSE-style path /dbfs/<dbfs path>.
        dbfs_path = path.removeprefix("/dbfs")
        if dbfs_path in self.dbfs_files:
            return 409, {
                "error_code": "RESOURCE_ALREADY_EXISTS",
                "message": "File already exists",
            }
        self.dbfs_files[dbfs_path] = raw_body
        return 200, {}

    def _dbfs_get_status(self, request: RecordedRequest) -> tuple[int, Any]:
        # MLflow sends the path in a JSON body even on GET; accept the query form too.
        dbfs_path = (request.json or {}).get("path") or request.query.get("path", [""])[0]
        if dbfs_path in self.dbfs_files:
            return 200, {
                "path": dbfs_path,
                "is_dir": False,
                "file_size": len(self.dbfs_files[dbfs_path]),
            }
        return 404, {
            "error_code": "RESOURCE_DOES_NOT_EXIST",
            "message": f"No file or directory exists on path {dbfs_path}.",
        }

    def _runs_submit(self, body: dict[str, Any]) -> tuple[int, Any]:
        run_id = next(self._job_run_ids)
        self.submitted_runs.append({"run_id": run_id, **body})
        return 200, {"run_id": run_id}

    def _runs_get(self, request: RecordedRequest) -> tuple[int, Any]:
        run_id = int(request.query.get("run_id", [(request.json or {}).get("run_id", 0)])[0])
        return 200, {
            "run_id": run_id,
            "job_id": 77,
            "run_page_url": f"{self.host}/#job/77/run/{run_id}",
            # The fake cluster "ran" the job already: MLflow's waiters stop at once.
            "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"},
        }

    # -- the MLflow tracking subset ---------------------------------------------------------
    def _mlflow(self, api: str, request: RecordedRequest) -> tuple[int, Any] | None:
        body = request.json or {}
        query = {k: v[0] for k, v in request.query.items()}
        args = {**query, **body}
        state = self.tracking
        if api == "experiments/get":
            experiment = state.experiments.get(str(args.get("experiment_id")))
            if experiment is None:
                return _not_found(f"experiment {args.get('experiment_id')}")
            return 200, {"experiment": experiment}
        if api == "experiments/get-by-name":
            for experiment in state.experiments.values():
                if experiment["name"] == args.get("experiment_name"):
                    return 200, {"experiment": experiment}
            return _not_found(f"experiment {args.get('experiment_name')}")
        if api == "experiments/create":
            experiment_id = str(100 + len(state.experiments))
            state.experiments[experiment_id] = _experiment(experiment_id, args["name"])
            return 200, {"experiment_id": experiment_id}
        if api == "runs/create":
            run_id = uuid.uuid4().hex
            experiment_id = str(args.get("experiment_id", DEFAULT_EXPERIMENT_ID))
            state.runs[run_id] = {
                "info": {
                    "run_id": run_id,
                    "run_uuid": run_id,
                    "experiment_id": experiment_id,
                    "user_id": args.get("user_id", ""),
                    "run_name": args.get("run_name", "fake-run"),
                    "status": "RUNNING",
                    "start_time": args.get("start_time", int(time.time() * 1000)),
                    "artifact_uri": f"dbfs:/databricks/mlflow-tracking/{experiment_id}/{run_id}"
                    "/artifacts",
                    "lifecycle_stage": "active",
                },
                "data": {"params": [], "metrics": [], "tags": list(args.get("tags", []))},
            }
            return 200, {"run": state.runs[run_id]}
        run_id = args.get("run_id") or args.get("run_uuid")
        run = state.runs.get(str(run_id)) if run_id else None
        if api in ("runs/get", "runs/log-batch", "runs/set-tag", "runs/update") and run is None:
            return _not_found(f"run {run_id}")
        if api == "runs/get":
            return 200, {"run": run}
        if api == "runs/log-batch":
            run["data"]["params"].extend(args.get("params", []))
            run["data"]["tags"].extend(args.get("tags", []))
            run["data"]["metrics"].extend(args.get("metrics", []))
            return 200, {}
        if api == "runs/set-tag":
            run["data"]["tags"].append({"key": args["key"], "value": args["value"]})
            return 200, {}
        if api == "runs/update":
            run["info"]["status"] = args.get("status", run["info"]["status"])
            return 200, {"run_info": run["info"]}
        return None

    # -- helpers for assertions ------------------------------------------------------------
    def run_tags(self, run_id: str) -> dict[str, str]:
        """Tags of one tracked run, last write wins."""
        return {tag["key"]: tag["value"] for tag in self.tracking.runs[run_id]["data"]["tags"]}


def _experiment(experiment_id: str, name: str) -> dict[str, Any]:
    return {
        "experiment_id": experiment_id,
        "name": name,
        "artifact_location": f"dbfs:/databricks/mlflow-tracking/{experiment_id}",
        "lifecycle_stage": "active",
    }


def _not_found(what: str) -> tuple[int, Any]:
    return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"No {what}"}


class _DatabricksHandler(BaseHTTPRequestHandler):
    """Parses one request and hands it to :class:`FakeDatabricksWorkspace`."""

    fake: FakeDatabricksWorkspace
    protocol_version = "HTTP/1.1"

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()  # the blank line after the last chunk
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        raw = self._read_body()
        parsed = urlparse(self.path)
        payload: Any = None
        if raw and not parsed.path.startswith("/dbfs/"):
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = None
        request = RecordedRequest(
            method=self.command,
            path=parsed.path,
            query=parse_qs(parsed.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            json=payload,
            body_size=len(raw),
        )
        status, answer = self.fake.handle(request, raw)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # Route the stdlib's per-request stderr lines into logging, where pytest captures them.
        _logger.debug("fake-databricks: " + format, *args)
