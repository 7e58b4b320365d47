"""Shared fixtures: a real, temporary MLflow tracking store and registry per test."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from versioning import entry_points, step

pytest_plugins = ["tests.fixtures_servers"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SMALL_CONFIG = PROJECT_ROOT / "tests" / "configs" / "small.yaml"


@dataclass
class StepResult:
    exit_code: int
    out: str
    err: str


@dataclass
class Tracking:
    uri: str
    experiment_id: str
    client: MlflowClient
    root: Path

    def run_step(self, name: str, *overrides: str, config: Path | str = SMALL_CONFIG,
                 capsys: pytest.CaptureFixture | None = None) -> StepResult:
        """Run an entry point in this process, exactly as ``python -m steps.<name>`` does."""
        argv = ["--config", str(config), *_as_argv(overrides)]
        code = step.main(name, entry_points.body(name), argv)
        if capsys is None:
            return StepResult(code, "", "")
        captured = capsys.readouterr()
        return StepResult(code, captured.out, captured.err)

    def run_step_process(self, name: str, *overrides: str, config: Path | str = SMALL_CONFIG,
                         timeout: float = 300) -> StepResult:
        """Run an entry point as its own process (``python -m steps.<name>``)."""
        argv = [sys.executable, "-m", f"steps.{name}", "--config", str(config), *_as_argv(overrides)]
        done = subprocess.run(argv, cwd=PROJECT_ROOT, env=os.environ.copy(), capture_output=True,
                              text=True, timeout=timeout)
        return StepResult(done.returncode, done.stdout, done.stderr)


def _as_argv(overrides: tuple[str, ...]) -> list[str]:
    argv: list[str] = []
    for item in overrides:
        key, value = item.split("=", 1)
        argv += [f"--{key}", value]
    return argv


@contextlib.contextmanager
def temporary_store(root: Path) -> Iterator[Tracking]:
    """What the ``tracking`` fixture gives, for fixtures of wider scope: a fresh sqlite store
    and registry under ``root``, this process's mlflow pointed at it until the block ends."""
    import mlflow

    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        # Entry points launched by MLflow Projects run `python`: make it this interpreter.
        monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        # The Default experiment's artifact root is made absolute from the working directory.
        monkeypatch.chdir(root)
        mlflow.set_tracking_uri(uri)
        client = MlflowClient(uri)
        experiment_id = client.create_experiment("tests", artifact_location=(root / "artifacts").as_uri())
        monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
        mlflow.set_experiment(experiment_id=experiment_id)
        try:
            yield Tracking(uri, experiment_id, client, root)
        finally:
            while mlflow.active_run() is not None:
                mlflow.end_run()
            mlflow.set_tracking_uri("")


@pytest.fixture
def tracking(tmp_path: Path) -> Iterator[Tracking]:
    """A fresh sqlite tracking store and registry, with artifacts under ``tmp_path``."""
    with temporary_store(tmp_path) as store:
        yield store


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT
