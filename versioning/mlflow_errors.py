"""MLflow's refusals as one line a user can act on, and HTTP retry limits that fail in seconds.

``describe`` turns an :class:`~mlflow.exceptions.MlflowException` into the one line
``step.main`` prints: a permission error names the user (never the password), the server and
the permission to ask for; anything else keeps MLflow's first line and error code.

``apply_http_defaults`` bounds MLflow's HTTP retries for the step process. MLflow's own
defaults (7 retries, backoff factor 2, 120 s per request) turn a server that dies mid-run
into minutes of silence; ours give up after about 15 s of retries. A value the user set in
the environment is never overridden.
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping

from mlflow.exceptions import MlflowException

HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",  # MLflow: 7
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # MLflow: 2 (sleeps 1, 2, 4 s instead of 2..128 s)
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",  # MLflow: 120 s per request
}
_DENIED = ("PERMISSION_DENIED",)
_UNAUTHENTICATED = ("UNAUTHENTICATED",)
_ENDPOINT = re.compile(r"endpoint (/\S+)")


def apply_http_defaults(environ: MutableMapping[str, str] = os.environ) -> None:
    for key, value in HTTP_DEFAULTS.items():
        environ.setdefault(key, value)


def _is_unauthenticated(exc: MlflowException) -> bool:
    status = getattr(exc, "get_http_status_code", lambda: None)()
    return exc.error_code in _UNAUTHENTICATED or status == 401 or " 401 " in _first_line(exc)


def check_credentials(uri: str) -> None:
    """Fail first, and plainly, when an http(s) tracking server refuses our credentials.

    Without this, MLflow's first request of a step (looking up MLFLOW_EXPERIMENT_ID) turns a
    401 into "experiment ... does not exist", which sends the user after the wrong problem.
    One cheap request; other errors are left to surface where they happen.
    """
    if not uri.startswith(("http://", "https://")):
        return
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except MlflowException as exc:
        if _is_unauthenticated(exc):
            raise


def _first_line(exc: MlflowException) -> str:
    text = str(getattr(exc, "message", exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _resource(endpoint: str | None) -> str:
    if endpoint and ("registered-models" in endpoint or "model-versions" in endpoint):
        return "the registered model"
    if endpoint and ("/runs/" in endpoint or "/experiments/" in endpoint or "/logged-models" in endpoint
                     or "/artifacts" in endpoint):
        return "the experiment"
    return "the experiment and the registered model"


def describe(exc: MlflowException, uri: str, model: str | None = None) -> str:
    """One line for ``exc``; no secret ever goes into it (only the user name)."""
    text = _first_line(exc)
    code = exc.error_code
    status = getattr(exc, "get_http_status_code", lambda: None)()
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    who = f"user {user!r}" if user else "an anonymous client (MLFLOW_TRACKING_USERNAME is not set)"
    if _is_unauthenticated(exc):
        return (f"{uri} did not accept the credentials of {who} (HTTP 401): set "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to a valid account")
    if code in _DENIED or status == 403 or " 403 " in text:
        match = _ENDPOINT.search(text)
        endpoint = match[1] if match else None
        resource = _resource(endpoint)
        if resource == "the registered model" and model:
            resource = f"registered model {model!r}"
        elif resource == "the experiment and the registered model" and model:
            resource = f"the experiment and registered model {model!r}"
        where = f" ({endpoint})" if endpoint else ""
        return (f"permission denied for {who} on {uri}{where}: this step writes to "
                f"{resource}; ask an MLflow admin for EDIT permission on it (READ is not "
                "enough), or run as a user who has it")
    if "failed with exception" in text and ("Max retries exceeded" in text or "timed out" in text.lower()):
        cause = "timed out" if "timed out" in text.lower() else "connection failed"
        return (f"lost the tracking server {uri} during the step ({cause} after "
                f"{os.environ.get('MLFLOW_HTTP_REQUEST_MAX_RETRIES', '?')} retries): check the "
                "server and run the step again (an interrupted promotion is repaired or "
                "completed by the next run)")
    return f"MLflow refused the request ({code}): {text}"
