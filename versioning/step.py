"""What every step shares: its context, its run, its tags, and the one-line error contract."""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import logging
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import mlflow
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from versioning import cache
from versioning.config import PROJECT_ROOT, STEP_KEYS, Config, load_config, parse_overrides
from versioning.errors import WorkflowError
from versioning.lineage import STEP_TAG

CONFIG_DIGEST_TAG = "versioning.config_digest"
CODE_VERSION_TAG = "versioning.code_version"
_CODE_PATHS = ("MLproject", "versioning", "steps", "configs")
_REACHABILITY_TIMEOUT_S = 10
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepContext:
    step: str
    config: Config
    client: MlflowClient
    run_id: str
    experiment_id: str


def code_version(root: Path = PROJECT_ROOT) -> str:
    """SHA-256 of the code and configs that define a step's behaviour.

    A content hash rather than the git commit: it also changes with uncommitted edits and
    works where there is no git (a Databricks upload, a Docker image).
    """
    hasher = hashlib.sha256()
    for top in _CODE_PATHS:
        base = root / top
        files = [base] if base.is_file() else sorted(base.rglob("*"))
        for path in files:
            if path.is_file() and path.suffix in ("", ".py", ".yaml", ".yml") and "__pycache__" not in path.parts:
                hasher.update(str(path.relative_to(root)).encode())
                hasher.update(path.read_bytes())
    return hasher.hexdigest()


def check_tracking_server_reachable(uri: str) -> None:
    """Fail in seconds, naming the URI, instead of minutes of MLflow's HTTP retries."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=_REACHABILITY_TIMEOUT_S)
    except urllib.error.HTTPError:
        return  # it answered: auth or routing is the server's business, not reachability
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WorkflowError(
            f"tracking server {uri} is unreachable ({reason}): start it or set "
            "MLFLOW_TRACKING_URI to a reachable server (or sqlite:///mlflow.db)"
        ) from None


def log_step_metadata(step: str, config: Config) -> None:
    """Params, tags and the effective config of a step, logged into the active run.

    The tags include the step's cache key (see :mod:`versioning.cache`), so that a later
    ``main`` can reuse this run, however it was launched.
    """
    run = mlflow.active_run()
    client = MlflowClient()
    already = client.get_run(run.info.run_id).data.params
    # `mlflow run` has already logged the -P values as given ("1e-2"); re-logging the parsed
    # value ("0.01") would be refused as a change, so only missing keys are added.
    params = {k: str(v) for k, v in config.for_step(step).items() if k not in already}
    if params:
        mlflow.log_params(params)
    code = code_version()
    tags = {
        STEP_TAG: step,
        CONFIG_DIGEST_TAG: config.digest(STEP_KEYS[step]),
        CODE_VERSION_TAG: code,
    }
    key = cache.key_for(step, config, {**already, **params}, code, client)
    if key is not None:
        tags.update(cache.tag_values(key))
    mlflow.set_tags(tags)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
        mlflow.log_artifact(str(path))


@contextlib.contextmanager
def long_lived_heap_frozen() -> Iterator[None]:
    """Keep the cyclic garbage collector off what already exists while a step runs.

    By the time a step runs, the process holds millions of objects from imports (mlflow,
    scikit-learn, pandas, SQLAlchemy) that live until it ends. Every full collection rescans
    them all, and a step that allocates a lot (reading 1,000 registry versions into ORM
    objects, say) triggers many: ~40% of a registry call's time on a large registry. Frozen,
    they are skipped; the step's own objects are still collected. Unfrozen afterwards so a
    long-lived process (the tests, main running four steps) does not pin its cycles forever.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def run_in_active_run(step: str, config: Config, body: Callable[[StepContext], str]) -> str:
    run = mlflow.active_run()
    with long_lived_heap_frozen():
        log_step_metadata(step, config)
        context = StepContext(
            step=step, config=config, client=MlflowClient(),
            run_id=run.info.run_id, experiment_id=run.info.experiment_id,
        )
        return body(context)


def parse_arguments(argv: Sequence[str] | None) -> tuple[str | None, dict[str, str]]:
    parser = argparse.ArgumentParser(add_help=True)
    parser.add_argument("--config", default=None, help="YAML config (default configs/default.yaml)")
    known, rest = parser.parse_known_args(argv)
    return known.config, parse_overrides(rest)


def main(step: str, body: Callable[[StepContext], str], argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m steps.<step>``: returns the process exit code.

    ``argv=None`` means "this process's command line": the process ends right after, so the
    objects it made are frozen out of the garbage collector, which spares the interpreter a
    final collection over everything mlflow, scikit-learn and pandas allocated (about a second
    of shutdown; atexit handlers still run). Tests pass ``argv`` and keep collecting.
    """
    code = _main(step, body, argv)
    if argv is None:
        gc.freeze()
    return code


def _main(step: str, body: Callable[[StepContext], str], argv: Sequence[str] | None) -> int:
    """Entry point of ``python -m steps.<step>``: returns the process exit code.

    A :class:`WorkflowError` becomes one line on stderr and exit code 2; the run (if one was
    started) is marked FAILED by ``mlflow.start_run``'s context manager.
    """
    logging.basicConfig(level=os.environ.get("VERSIONING_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from versioning import mlflow_errors

    mlflow_errors.apply_http_defaults()  # seconds, not minutes, of retries (user's values win)
    config: Config | None = None
    try:
        config_path, overrides = parse_arguments(argv)
        config = load_config(config_path, overrides)
        check_tracking_server_reachable(mlflow.get_tracking_uri())
        mlflow_errors.check_credentials(mlflow.get_tracking_uri())
        with mlflow.start_run():
            summary = run_in_active_run(step, config, body)
    except WorkflowError as exc:
        print(f"{step}: error: {exc}", file=sys.stderr)
        return 2
    except MlflowException as exc:
        # Permission and server errors: one line naming the cause, not a traceback.
        model = config["registered_model_name"] if config is not None else None
        print(f"{step}: error: {mlflow_errors.describe(exc, mlflow.get_tracking_uri(), model)}",
              file=sys.stderr)
        return 3
    print(summary)
    return 0
