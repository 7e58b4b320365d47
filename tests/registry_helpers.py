"""Helpers for the promotion-safety tests: registry snapshots, convergence checks, step processes.

Everything talks to a real MLflow store or server through ``MlflowClient``; nothing is mocked.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from tests.conftest import PROJECT_ROOT, SMALL_CONFIG, Tracking, _as_argv, temporary_store  # noqa: F401
from versioning import lineage, registry

# Version tags that describe where a model came from (copied when a test clones a version).
LINEAGE_TAGS = (lineage.FAMILY_TAG, lineage.TRAINING_RUN_TAG, lineage.DATA_RUN_TAG,
                lineage.DATA_DIGEST_TAG, lineage.TRAIN_DIGEST_TAG, lineage.TEST_DIGEST_TAG,
                "test_accuracy")


@dataclass
class ProcessResult:
    exit_code: int
    out: str
    err: str
    seconds: float

    def error_lines(self, step: str) -> list[str]:
        return error_lines(step, self.err)


def error_lines(step: str, err: str) -> list[str]:
    """The lines our code writes for a failure (``<step>: error: ...``)."""
    return [line for line in err.splitlines() if line.startswith(f"{step}: error:")]


def step_argv(name: str, *overrides: str, config: Path | str | None = SMALL_CONFIG) -> list[str]:
    argv = [sys.executable, "-m", f"steps.{name}"]
    if config is not None:
        argv += ["--config", str(config)]
    return argv + _as_argv(overrides)


def step_env(extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    env = os.environ.copy()
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_process(name: str, *overrides: str, env: Mapping[str, str | None] | None = None,
                config: Path | str | None = SMALL_CONFIG, timeout: float = 300) -> ProcessResult:
    """``python -m steps.<name>`` in its own process, with ``env`` on top of this one's."""
    started = time.monotonic()
    done = subprocess.run(step_argv(name, *overrides, config=config), cwd=PROJECT_ROOT,
                          env=step_env(env), capture_output=True, text=True, timeout=timeout)
    return ProcessResult(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def start_process(name: str, *overrides: str, env: Mapping[str, str | None] | None = None,
                  config: Path | str | None = SMALL_CONFIG) -> subprocess.Popen:
    return subprocess.Popen(step_argv(name, *overrides, config=config), cwd=PROJECT_ROOT,
                            env=step_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_all(processes: Iterable[subprocess.Popen], timeout: float = 300) -> list[ProcessResult]:
    started = time.monotonic()
    results = []
    for process in processes:
        out, err = process.communicate(timeout=max(1.0, timeout - (time.monotonic() - started)))
        results.append(ProcessResult(process.returncode, out, err, time.monotonic() - started))
    return results


def registry_snapshot(client: MlflowClient, names: Iterable[str] | None = None) -> dict:
    """Every registered model (or those ``names``) with its tags, aliases, and every live
    version's stage and tags."""
    snapshot = {}
    models = (client.search_registered_models(max_results=1000) if names is None
              else [client.get_registered_model(name) for name in names])
    for model in models:
        name = model.name
        versions = registry.live_versions(client, name)
        snapshot[name] = {
            "tags": sorted((model.tags or {}).items()),
            "aliases": sorted((model.aliases or {}).items()),
            "versions": sorted((int(v.version), v.current_stage, tuple(sorted(v.tags.items())))
                               for v in versions),
        }
    return snapshot


def champion_state(client: MlflowClient, name: str) -> tuple[str | None, list[str], str | None]:
    """(version holding alias champion, versions in Production, version holding alias challenger)."""
    aliases = client.get_registered_model(name).aliases or {}
    production = sorted(str(v.version) for v in registry.live_versions(client, name)
                        if v.current_stage == registry.PRODUCTION)
    champion = aliases.get(registry.CHAMPION)
    challenger = aliases.get(registry.CHALLENGER)
    return (None if champion is None else str(champion), production,
            None if challenger is None else str(challenger))


def assert_one_champion(client: MlflowClient, name: str, expected: str | None = None) -> str:
    """Exactly one champion: the alias is set, and its version is the only one in Production;
    the challenger alias is not on it. Returns the champion's version."""
    champion, production, challenger = champion_state(client, name)
    assert champion is not None, f"{name}: no champion alias (Production: {production})"
    assert production == [champion], f"{name}: champion v{champion} but Production {production}"
    assert challenger != champion, f"{name}: alias challenger still on champion v{champion}"
    tags = client.get_registered_model(name).tags or {}
    assert tags.get(registry.TAG_MODEL_CHAMPION) == champion, tags
    if expected is not None:
        assert champion == str(expected), f"{name}: champion v{champion}, expected v{expected}"
    return champion


def clone_version(client: MlflowClient, name: str, source: ModelVersion) -> ModelVersion:
    """Register ``source``'s model again, as a new version of ``name`` with the same lineage.

    A real registration of the same logged model: cheaper than training again, and the
    version is indistinguishable from one train_lr/train_rf registered.
    """
    try:
        client.get_registered_model(name)
    except Exception:  # noqa: BLE001 - not found: create it
        client.create_registered_model(name)
    tags = {key: source.tags[key] for key in LINEAGE_TAGS if key in source.tags}
    model_id = source.model_id or (source.source.split("/", 1)[1]
                                   if source.source.startswith("models:/m-") else None)
    version = client.create_model_version(name, source=source.source, run_id=source.run_id,
                                          tags=tags, model_id=model_id)
    for _ in range(100):
        if version.status == "READY":
            return version
        time.sleep(0.1)
        version = client.get_model_version(name, version.version)
    raise AssertionError(f"{name} v{version.version} never became READY")


def clone_pair(client: MlflowClient, name: str, champion_source: ModelVersion,
               challenger_source: ModelVersion) -> tuple[ModelVersion, ModelVersion]:
    """A registered model with v1 = champion (as after a bootstrap) and v2 = challenger."""
    champion = clone_version(client, name, champion_source)
    registry.make_challenger(client, champion)
    client.set_model_version_tag(name, champion.version, "promotion.decision", "bootstrap")
    registry.crown(client, client.get_model_version(name, champion.version))
    challenger = clone_version(client, name, challenger_source)
    registry.make_challenger(client, challenger)
    return client.get_model_version(name, champion.version), client.get_model_version(name, challenger.version)


def decision_record(client: MlflowClient, run_id: str, dst: Path) -> dict:
    dst.mkdir(parents=True, exist_ok=True)
    path = client.download_artifacts(run_id, "decision.json", str(dst))
    return json.loads(Path(path).read_text())


def runs_of(client: MlflowClient, experiment_id: str, step: str, model: str | None = None):
    filters = f"tags.`versioning.step` = '{step}'"
    if model is not None:
        filters += f" and params.registered_model_name = '{model}'"
    return client.search_runs([experiment_id], filters, order_by=["attributes.start_time DESC"])


def source_versions(client: MlflowClient, name: str) -> dict[str, ModelVersion]:
    """The versions of ``name`` by family (the newest of each)."""
    found: dict[str, ModelVersion] = {}
    for version in sorted(registry.live_versions(client, name), key=lambda v: int(v.version)):
        found[version.tags.get(lineage.FAMILY_TAG)] = version
    return found


@contextlib.contextmanager
def server_store(url: str, root: Path, experiment_name: str,
                 env: Mapping[str, str] | None = None) -> Iterator[Tracking]:
    """This process's mlflow pointed at a running server, in a new experiment, until the block
    ends; ``env`` (e.g. credentials) is set on top."""
    import mlflow

    from tests.fixtures_servers import point_mlflow_at

    root.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        point_mlflow_at(monkeypatch, url)
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        client = MlflowClient(url)
        experiment_id = client.create_experiment(experiment_name)
        monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
        mlflow.set_experiment(experiment_id=experiment_id)
        try:
            yield Tracking(url, experiment_id, client, root)
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()


def prepare_sources(tracking: Tracking, model: str) -> tuple[str, dict[str, ModelVersion]]:
    """One data run and one version of each family in registered model ``model``; returns
    (data run id, versions by family). In-process: the fast way to get real trained models."""
    for step in ("generate_data", "train_lr", "train_rf"):
        result = tracking.run_step(step, f"registered_model_name={model}")
        assert result.exit_code == 0, f"{step} failed while preparing {model}"
    data_run = runs_of(tracking.client, tracking.experiment_id, "generate_data")[0].info.run_id
    return data_run, source_versions(tracking.client, model)
