"""The main step: run the four steps in order as child runs of one parent run.

Two launchers give the same runs, tags, artifacts and registry outcome:

* ``in_process`` (default): each step is its own MLflow run, a child of ``main``'s run,
  created with the tags and params MLflow Projects gives it (see :func:`project_run_tags`) and
  executed in this process. Imports (mlflow, scikit-learn, skops: seconds per process) are paid
  once for the whole workflow instead of once per step. Whatever ``--env-manager`` started
  ``main``, its steps ran in main's own environment before too (``env_manager="local"``), so
  running them in main's process changes nothing about their environment.
* ``projects``: each step through ``mlflow.projects.run(env_manager="local")``, a process of its
  own. Chosen by ``-P launcher=projects``, and automatically when ``main`` itself runs on a
  non-local MLflow Projects backend (its run carries ``mlflow.project.backend`` = databricks or
  kubernetes from the start; a local ``mlflow run`` sets that tag only when it ends).

Either way, ``generate_data``, ``train_lr`` and ``train_rf`` are first looked up in the step
cache (:mod:`versioning.cache`, off with ``-P use_cache=false``): a FINISHED run with the same
entry point, params, code version and input data is reused instead of run again, and its id is
passed on (a reused data run becomes the training steps' ``data_run_id``). A reused training run
registers no new version; its version is already in the registry where the gate left it.
``compare_and_promote`` always runs. The parent run records what happened to each step in a tag
``versioning.cache.<step>`` = ``hit:<run id>`` (reused), ``miss:<run id>`` (ran: nothing to
reuse) or ``off:<run id>`` (ran: cache disabled or not applicable), and the launcher in
``versioning.launcher``; they are written when main ends, also when a step fails. Each reuse is
also logged and printed (``<step>: reused run <id> (cache hit)``).
"""

from __future__ import annotations

import getpass
import logging
import os
import shlex
import subprocess
import sys
import urllib.parse
from collections.abc import Mapping
from functools import lru_cache

import mlflow
from mlflow.entities import Param
from mlflow.exceptions import MlflowException

from versioning import cache, entry_points, promote, registry, step
from versioning.config import PROJECT_ROOT, load_config
from versioning.errors import WorkflowError
from versioning.step import StepContext

_log = logging.getLogger(__name__)
STEPS = ("generate_data", "train_lr", "train_rf", "compare_and_promote")
IN_PROCESS, PROJECTS = "in_process", "projects"
LAUNCHER_TAG = "versioning.launcher"
CACHE_TAG_PREFIX = "versioning.cache."
# The MLflow tags a project run carries (mlflow.utils.mlflow_tags; written out to use only
# public API: MlflowClient.create_run with tags).
TAG_USER = "mlflow.user"
TAG_SOURCE_NAME = "mlflow.source.name"
TAG_SOURCE_TYPE = "mlflow.source.type"
TAG_ENTRY_POINT = "mlflow.project.entryPoint"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_GIT_REPO_URL = "mlflow.source.git.repoURL"
TAG_PARENT_RUN_ID = "mlflow.parentRunId"
TAG_BACKEND = "mlflow.project.backend"
_LOCAL_BACKENDS = (None, "", "local")


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def _strip_credentials(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme in ("http", "https") and (parsed.username or parsed.password):
        host = parsed.hostname + (f":{parsed.port}" if parsed.port else "")
        return urllib.parse.urlunsplit(parsed._replace(netloc=host))
    return url


@lru_cache(maxsize=4)
def _source_tags(parent_run_id: str) -> tuple[tuple[str, str], ...]:
    """Source name, git commit and repository URL of the project, as MLflow Projects sets them.

    Read once per ``main`` run (the key), as each of its steps would read them at launch.
    """
    tags: dict[str, str] = {}
    root = os.path.abspath(PROJECT_ROOT)
    toplevel = _git("rev-parse", "--show-toplevel")
    if toplevel is None:
        tags[TAG_SOURCE_NAME] = root
        return tuple(tags.items())
    relative = os.path.relpath(root, toplevel)
    tags[TAG_SOURCE_NAME] = f"file://{toplevel}" + ("" if relative == "." else f"#{relative}")
    commit = _git("rev-parse", "HEAD")
    if commit is not None:
        tags[TAG_GIT_COMMIT] = commit
    remotes = _git("config", "--get-regexp", r"^remote\..*\.url$")
    if remotes:
        tags[TAG_GIT_REPO_URL] = _strip_credentials(remotes.splitlines()[0].split(" ", 1)[1])
    return tuple(tags.items())


def project_run_tags(entry_point: str, parent_run_id: str) -> dict[str, str]:
    """The tags ``mlflow.projects.run`` gives a run of ``entry_point`` on the local backend."""
    try:
        user = getpass.getuser()
    except (ImportError, KeyError, OSError):
        user = "unknown"
    return {
        TAG_USER: user,
        **dict(_source_tags(parent_run_id)),
        TAG_SOURCE_TYPE: "PROJECT",
        TAG_ENTRY_POINT: entry_point,
        TAG_PARENT_RUN_ID: parent_run_id,
        TAG_BACKEND: "local",
    }


def choose_launcher(ctx: StepContext) -> tuple[str, str]:
    """The launcher to use and why."""
    configured = ctx.config["launcher"]
    if configured == PROJECTS:
        return PROJECTS, "launcher=projects"
    active = mlflow.active_run()
    run = active if active is not None and active.info.run_id == ctx.run_id else ctx.client.get_run(ctx.run_id)
    backend = run.data.tags.get(TAG_BACKEND)
    if backend not in _LOCAL_BACKENDS:
        return PROJECTS, f"main runs on the {backend} backend"
    return IN_PROCESS, "launcher=in_process"


def _step_config(parameters: Mapping[str, str]):
    return load_config(parameters["config"], {k: v for k, v in parameters.items() if k != "config"})


def launch_in_process(ctx: StepContext, entry_point: str, parameters: dict[str, str]) -> str:
    """Run one entry point in this process as a child run made like MLflow Projects makes it."""
    client = ctx.client
    child = client.create_run(ctx.experiment_id, tags=project_run_tags(entry_point, ctx.run_id))
    run_id = child.info.run_id
    # MLflow Projects logs the parameters it was given, shell-quoted as it passes them on.
    client.log_batch(run_id, params=[Param(k, shlex.quote(str(v))) for k, v in parameters.items()])
    _log.info("main: running %s in this process as run %s with %s", entry_point, run_id, parameters)
    try:
        # The context manager marks the run FAILED if the step raises, FINISHED otherwise.
        with mlflow.start_run(run_id=run_id, nested=True):
            summary = step.run_in_active_run(entry_point, _step_config(parameters),
                                             entry_points.body(entry_point))
    except WorkflowError as exc:
        print(f"{entry_point}: error: {exc}", file=sys.stderr, flush=True)
        raise WorkflowError(f"step {entry_point} failed (run {run_id}): {exc}") from None
    except MlflowException as exc:
        # As the step's own process would report it (versioning.step.main), then fail main.
        from versioning import mlflow_errors

        message = mlflow_errors.describe(exc, mlflow.get_tracking_uri(),
                                         ctx.config["registered_model_name"])
        print(f"{entry_point}: error: {message}", file=sys.stderr, flush=True)
        raise WorkflowError(f"step {entry_point} failed (run {run_id}): {message}") from None
    print(summary, flush=True)
    return run_id


def launch_projects(ctx: StepContext, entry_point: str, parameters: dict[str, str]) -> str:
    """Run one entry point through MLflow Projects as a child of the active run."""
    import mlflow.projects
    from mlflow.exceptions import ExecutionException

    _log.info("main: launching %s through mlflow.projects.run with %s", entry_point, parameters)
    try:
        submitted = mlflow.projects.run(
            uri=str(PROJECT_ROOT), entry_point=entry_point, parameters=parameters,
            env_manager="local", experiment_id=ctx.experiment_id, synchronous=True,
        )
    except ExecutionException as exc:
        raise WorkflowError(f"step {entry_point} failed ({exc}); its error is printed above") from None
    return submitted.run_id


# Kept under its old name: the launcher every earlier release used.
launch = launch_projects
_LAUNCHERS = {IN_PROCESS: launch_in_process, PROJECTS: launch_projects}


def reusable_run(ctx: StepContext, entry_point: str, parameters: dict[str, str]) -> str | None:
    """The id of a FINISHED run that ``entry_point`` with ``parameters`` would repeat, if any."""
    config = _step_config(parameters)
    key = cache.key_for(entry_point, config, cache.stored_params(entry_point, config, parameters),
                        step.code_version(), ctx.client)
    if key is None:
        return None
    found = cache.find_reusable(ctx.client, ctx.experiment_id, key, config)
    return None if found is None else found.info.run_id


def run_step(ctx: StepContext, launcher: str, entry_point: str, parameters: dict[str, str],
             outcomes: dict[str, str]) -> str:
    """Reuse a cached run of ``entry_point`` or launch it; returns the run id either way."""
    if entry_point in cache.CACHEABLE_STEPS and ctx.config["use_cache"]:
        reused = reusable_run(ctx, entry_point, parameters)
        if reused is not None:
            _log.info("main: reusing %s run %s (same entry point, params, code version and "
                      "input data); use -P use_cache=false to run it again", entry_point, reused)
            print(f"{entry_point}: reused run {reused} (cache hit)", flush=True)
            outcomes[entry_point] = f"hit:{reused}"
            return reused
        outcome = "miss"
    else:
        outcome = "off"
    run_id = _LAUNCHERS[launcher](ctx, entry_point, parameters)
    outcomes[entry_point] = f"{outcome}:{run_id}"
    return run_id


def run(ctx: StepContext) -> str:
    config = ctx.config
    launcher, why = choose_launcher(ctx)
    _log.info("main: launching steps %s (%s)", "in this process" if launcher == IN_PROCESS
              else "through mlflow.projects.run", why)
    parameters = {"config": str(config.source), **config.overrides}
    outcomes: dict[str, str] = {}
    try:
        data_run_id = config["data_run_id"]
        if data_run_id is None:
            data_run_id = run_step(ctx, launcher, "generate_data", parameters, outcomes)
        training_parameters = {**parameters, "data_run_id": data_run_id}
        for entry_point in ("train_lr", "train_rf"):
            run_step(ctx, launcher, entry_point, training_parameters, outcomes)
        compare_run_id = run_step(ctx, launcher, "compare_and_promote", parameters, outcomes)
    finally:
        # One write for all of them (each step's own run is visible as soon as it starts).
        mlflow.set_tags({LAUNCHER_TAG: launcher,
                         **{CACHE_TAG_PREFIX + name: value for name, value in outcomes.items()}})

    name = config["registered_model_name"]
    outcome = ctx.client.get_run(compare_run_id).data.tags
    reused = [f"{name_} (run {value[4:]})" for name_, value in outcomes.items() if value.startswith("hit:")]
    reused_text = f" Reused: {', '.join(reused)}." if reused else ""
    champion = promote.summarize_champion(ctx.client, name)
    if champion is None:
        return (f"main: {name} has no champion (decision: {outcome.get('promotion.decision')})."
                f"{reused_text}")
    return (
        f"main: champion of {name} is now v{champion['version']} ({champion['family']}, "
        f"stage {champion['stage']}, alias '{registry.CHAMPION}'). Last decision: "
        f"{outcome.get('promotion.decision')}. {outcome.get('promotion.reason')}{reused_text}"
    )
