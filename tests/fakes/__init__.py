"""Stand-ins for the outermost external boundaries of remote runs, and a throwaway checkout.

Only what leaves the machine is faked; MLflow's own submission code runs for real:

* :class:`FakeDockerClient` replaces what ``docker.from_env()`` returns (the docker SDK talks
  to the daemon through it: ``images.build``, ``images.push``, ``images.get_registry_data``).
* :func:`install_fake_docker_cli` puts a ``docker`` executable on PATH that answers only
  ``docker info`` -- MLflow's ``validate_docker_installation`` shells out to it.
* :class:`KubernetesApiRecorder` replaces ``kubernetes.config.load_kube_config`` and
  ``kubernetes.client.BatchV1Api.create_namespaced_job`` and keeps what was sent.
* :mod:`tests.fakes.databricks_server` is a fake Databricks workspace REST API.

:func:`make_git_checkout` copies the project into a temp git repository (one commit) and
:func:`plant_decoys` adds local stores and fake secrets beside it, so a test can prove that an
export leaves them out.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: Files and folders of the project that a checkout for remote-run tests needs.
PROJECT_ITEMS = (
    ".gitignore",
    ".dockerignore",
    "Dockerfile",
    "MLproject",
    "python_env.yaml",
    "conda.yaml",
    "requirements.txt",
    "configs",
    "steps",
    "versioning",
    "deploy",
    "databricks",
)

#: Decoys planted in a checkout: relative path -> content. None of them may leave the machine.
DECOYS: dict[str, str] = {
    "mlflow.db": "SQLite format 3\0 (decoy local store)",
    "mlartifacts/1/abc/artifacts/model.pkl": "decoy artifact",
    "mlruns/0/meta.yaml": "name: Default  # decoy file store",
    ".venv/bin/python": "#!/bin/sh\n# decoy virtualenv\n",
    ".env": "MLFLOW_TRACKING_PASSWORD=decoy-password\n",
    "secrets/service-account.pem": "-----BEGIN PRIVATE KEY-----\ndecoy\n",
    "credentials.json": '{"token": "decoy-token"}\n',
    ".databrickscfg": "[DEFAULT]\nhost = https://example\ntoken = decoy-token\n",
}
#: A decoy that is (wrongly) committed, to prove the export's second guard drops it anyway.
TRACKED_DECOY = "configs/deploy-key.pem"

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "tests",
    "GIT_AUTHOR_EMAIL": "tests@localhost",
    "GIT_COMMITTER_NAME": "tests",
    "GIT_COMMITTER_EMAIL": "tests@localhost",
}


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **_GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def make_git_checkout(source_root: Path, dest: Path) -> str:
    """Copy the project files of ``source_root`` into ``dest``, commit them; return the SHA.

    A commit of its own because the real working tree may hold uncommitted work of others.
    A tracked decoy (:data:`TRACKED_DECOY`) is committed too.
    """
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "mlruns", "mlartifacts", "mlflow.db")
    for item in PROJECT_ITEMS:
        src = source_root / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, dest / item)
    (dest / TRACKED_DECOY).write_text("-----BEGIN PRIVATE KEY-----\ndecoy\n")
    _git(dest, "init", "--quiet", "--initial-branch=main")
    _git(dest, "add", "--all")
    _git(dest, "add", "--force", TRACKED_DECOY)
    _git(dest, "commit", "--quiet", "-m", "test checkout")
    return _git(dest, "rev-parse", "HEAD")


def plant_decoys(root: Path) -> list[str]:
    """Write :data:`DECOYS` (untracked) into ``root``; returns their relative paths."""
    for relative, content in DECOYS.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return list(DECOYS)


def forbidden_members(names: list[str]) -> list[str]:
    """Archive member names that are local stores, virtualenvs or secrets."""
    from deploy.export import is_excluded

    return [name for name in names if is_excluded(name)]


# --- docker ------------------------------------------------------------------------------------
@dataclass
class FakeImage:
    """What ``client.images.build`` returns: an image with an id and its tags."""

    id: str
    tags: list[str]


@dataclass
class DockerRecorder:
    """What MLflow asked the docker daemon to do."""

    builds: list[dict[str, Any]] = field(default_factory=list)
    pushes: list[str] = field(default_factory=list)
    logins: list[dict[str, Any]] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)

    def build_context(self, index: int = -1) -> tarfile.TarFile:
        """The (gzip) build context of one build as an open tar archive."""
        return tarfile.open(fileobj=io.BytesIO(self.builds[index]["context"]), mode="r:*")


class _FakeImages:
    def __init__(self, recorder: DockerRecorder) -> None:
        self._recorder = recorder

    def build(self, *, tag: str, fileobj: Any, **kwargs: Any) -> tuple[FakeImage, list[Any]]:
        context = fileobj.read()
        if kwargs.get("encoding") == "gzip":
            gzip.decompress(context)  # fail here if MLflow ever sends a corrupt context
        self._recorder.builds.append({"tag": tag, "context": context, **kwargs})
        image_id = "sha256:" + hashlib.sha256(context).hexdigest()
        # A registry digest differs from the local image id; derive one deterministically.
        self._recorder.digests[tag] = "sha256:" + hashlib.sha256(image_id.encode()).hexdigest()
        return FakeImage(id=image_id, tags=[tag]), []

    def push(self, repository: str, **kwargs: Any) -> Any:
        self._recorder.pushes.append(repository)
        lines = [{"status": "Pushed"}, {"aux": {"Digest": self._recorder.digests[repository]}}]
        return iter(lines) if kwargs.get("stream") else lines

    def get_registry_data(self, name: str) -> Any:
        return type("RegistryData", (), {"id": self._recorder.digests[name]})()

    def list(self, name: str | None = None, **kwargs: Any) -> list[FakeImage]:
        return []

    def pull(self, repository: str, **kwargs: Any) -> FakeImage:
        raise AssertionError(f"unexpected pull of {repository}: the test builds its image")


class FakeDockerClient:
    """Replaces ``docker.DockerClient`` (what ``docker.from_env()`` returns)."""

    def __init__(self, recorder: DockerRecorder) -> None:
        self.images = _FakeImages(recorder)
        self._recorder = recorder

    def login(self, **kwargs: Any) -> dict[str, str]:
        self._recorder.logins.append(kwargs)
        return {"Status": "Login Succeeded"}


def install_fake_docker(monkeypatch: pytest.MonkeyPatch, bin_dir: Path) -> DockerRecorder:
    """Fake the docker daemon for MLflow: the SDK client and the ``docker info`` CLI probe."""
    import docker

    recorder = DockerRecorder()
    monkeypatch.setattr(docker, "from_env", lambda *args, **kwargs: FakeDockerClient(recorder))
    install_fake_docker_cli(monkeypatch, bin_dir)
    return recorder


def install_fake_docker_cli(monkeypatch: pytest.MonkeyPatch, bin_dir: Path) -> Path:
    """A ``docker`` executable first on PATH that answers ``docker info`` and nothing else."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "docker"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "info" ]; then echo "Server Version: fake (tests)"; exit 0; fi\n'
        "echo \"fake docker CLI: only 'docker info' is faked, got: $*\" >&2\n"
        "exit 1\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return script


# --- kubernetes ------------------------------------------------------------------------------
@dataclass
class KubernetesApiRecorder:
    """Captures the kube-config load and every Job created through ``BatchV1Api``."""

    contexts: list[str | None] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> KubernetesApiRecorder:
        import kubernetes

        recorder = self

        def load_kube_config(*args: Any, context: str | None = None, **kwargs: Any) -> None:
            recorder.contexts.append(context)

        def load_incluster_config(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("MLflow fell back to in-cluster config")

        def create_namespaced_job(self: Any, namespace: str, body: Any, **kwargs: Any) -> Any:
            recorder.jobs.append({"namespace": namespace, "body": body, "kwargs": kwargs})
            return body

        monkeypatch.setattr(kubernetes.config, "load_kube_config", load_kube_config)
        monkeypatch.setattr(kubernetes.config, "load_incluster_config", load_incluster_config)
        monkeypatch.setattr(
            kubernetes.client.BatchV1Api, "create_namespaced_job", create_namespaced_job
        )
        return self


def planted_checkout(tmp_path: Path, repo_root: Path) -> tuple[Path, str]:
    """A committed copy of the project with decoys (local stores, secrets) planted beside it."""
    root = tmp_path / "project"
    sha = make_git_checkout(repo_root, root)
    plant_decoys(root)
    return root, sha
