"""Submit an entry point to Kubernetes or Databricks from a clean export of the project.

One command per target (run from the project root, with the same venv as ``mlflow``)::

    python -m deploy.submit kubernetes -e compare_and_promote -P alpha=0.01
    python -m deploy.submit databricks -e compare_and_promote -P alpha=0.01 \\
        --experiment-name /Users/you@example.com/statistically-gated-versioning
    python -m deploy.submit export /tmp/sgv-export      # just the clean export, to inspect

Both run the checks in :mod:`deploy.checks`, export the committed, tracked files of one commit
(:mod:`deploy.export`) and hand that directory to MLflow's own backends:

* Kubernetes: a stage directory holds ``deploy/kubernetes/MLproject`` (docker_env) and the
  export under ``project/``; ``mlflow.projects.run(backend="kubernetes", build_image=True)``
  builds an image FROM the dependency image (``Dockerfile``) with the stage copied to
  ``/mlflow/projects/code/``, pushes it and creates the Job from
  ``deploy/kubernetes/job-template.yaml``, whose ``workingDir`` is
  ``/mlflow/projects/code/project`` -- the project root, where ``python -m steps.<name>`` and
  ``configs/default.yaml`` resolve.
* Databricks: runs the ``mlflow run <export> --backend databricks --backend-config
  databricks/cluster-spec.json`` command line from inside the export; MLflow tars and uploads
  the export (and nothing else) and submits a one-time job run.
"""

from __future__ import annotations

import argparse
import logging
import os
import posixpath
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from mlflow.projects.utils import MLFLOW_DOCKER_WORKDIR_PATH

from deploy import checks
from deploy.export import Export, ExportError, export_project

if TYPE_CHECKING:
    from mlflow.projects import SubmittedRun

_logger = logging.getLogger(__name__)

#: The project root this module belongs to (the default source of exports).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
KUBERNETES_DIR = Path("deploy") / "kubernetes"
DEFAULT_KUBERNETES_CONFIG = KUBERNETES_DIR / "kubernetes_config.json"
DEFAULT_CLUSTER_SPEC = Path("databricks") / "cluster-spec.json"
#: Where the commit sits inside the Kubernetes stage, and so inside the image.
STAGED_PROJECT_DIR = "project"
CONTAINER_PROJECT_DIR = posixpath.join(MLFLOW_DOCKER_WORKDIR_PATH, STAGED_PROJECT_DIR)


def _stage_kubernetes_project(project_root: Path, ref: str) -> tuple[Path, Export]:
    """Lay out the directory MLflow copies into the image; returns (stage, export).

    ::

        <stage>/               -> /mlflow/projects/code/   (MLflow's WORKDIR in the image)
          MLproject               deploy/kubernetes/MLproject: docker_env, read by MLflow here
          .git                    the export's one-commit repo: MLflow tags image + run with it
          project/             -> /mlflow/projects/code/project/  (the Job's workingDir)
            ...                   the commit's files, unchanged, root MLproject included

    The commit stays untouched one level down because an MLproject may declare only one
    environment: the submitting MLflow needs docker_env, while inside the pod ``main`` launches
    the other steps with ``mlflow.projects.run(<project root>, env_manager="local")``, which
    needs the root python_env MLproject (with docker_env MLflow would try to start docker).
    """
    stage = Path(tempfile.mkdtemp(prefix="sgv-export-"))
    try:
        export = export_project(project_root, stage / STAGED_PROJECT_DIR, ref=ref)
        # get_git_commit(stage) must find the commit: the image tag and the run's
        # mlflow.source.git.commit come from it. Git metadata only; nothing is checked out here.
        (export.path / ".git").rename(stage / ".git")
        cluster_mlproject = export.path / KUBERNETES_DIR / "MLproject"
        if not cluster_mlproject.is_file():
            raise checks.SubmissionError(f"{KUBERNETES_DIR / 'MLproject'} is not committed")
        shutil.copyfile(cluster_mlproject, stage / "MLproject")
        name = (yaml.safe_load(cluster_mlproject.read_text()) or {}).get("name", "")
        checks.check_kubernetes_project_name(name)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return stage, export


def submit_kubernetes(
    entry_point: str,
    parameters: Mapping[str, str] | None = None,
    *,
    project_root: Path = PROJECT_ROOT,
    config_path: Path | None = None,
    ref: str = "HEAD",
    kube_context: str | None = None,
    repository_uri: str | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    synchronous: bool = False,
) -> SubmittedRun:
    """Run ``entry_point`` as a Kubernetes Job; returns MLflow's ``SubmittedRun``.

    Refuses (:class:`deploy.checks.SubmissionError`) before creating anything if the client or
    the Job would track to a local store, or if the config/template would not work.
    """
    import mlflow.projects

    project_root = Path(project_root).resolve()
    client_uri = mlflow.get_tracking_uri()
    # The client creates the run and the Job logs into it: both must use the shared server.
    checks.require_shared_tracking_uri(
        client_uri, target="Kubernetes (the submitting client)", warn_loopback=False
    )
    checks.require_shared_tracking_uri(
        checks.kubernetes_job_tracking_uri(client_uri), target="Kubernetes (the Job)"
    )
    backend_config = checks.load_kubernetes_backend_config(
        config_path or project_root / DEFAULT_KUBERNETES_CONFIG
    )
    checks.check_kubernetes_job_template(
        Path(backend_config["kube-job-template-path"]), working_dir=CONTAINER_PROJECT_DIR
    )
    checks.check_kubernetes_parameters(parameters or {})
    if kube_context:
        backend_config["kube-context"] = kube_context
    if repository_uri:
        backend_config["repository-uri"] = repository_uri

    stage, export = _stage_kubernetes_project(project_root, ref)
    try:
        _logger.info(
            "Submitting %s at %s to Kubernetes (image repository %s)",
            entry_point,
            export.commit[:12],
            backend_config["repository-uri"],
        )
        return mlflow.projects.run(
            uri=str(stage),
            entry_point=entry_point,
            parameters=dict(parameters or {}),
            backend="kubernetes",
            backend_config=backend_config,
            experiment_name=experiment_name,
            experiment_id=experiment_id,
            synchronous=synchronous,
            # Without it MLflow runs the docker_env image as-is and ignores repository-uri.
            build_image=True,
        )
    finally:
        # The image build context was made from the stage during run(); nothing needs it now.
        shutil.rmtree(stage, ignore_errors=True)


def _mlflow_cli() -> list[str]:
    """The ``mlflow`` executable of the running interpreter's environment."""
    beside = Path(sys.executable).with_name("mlflow")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "mlflow"]


def databricks_run_command(
    export_dir: Path,
    entry_point: str,
    parameters: Mapping[str, str],
    cluster_spec: Path,
    *,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    env_manager: str | None = None,
) -> list[str]:
    """The ``mlflow run ... --backend databricks`` command line for an export."""
    command = [
        *_mlflow_cli(),
        "run",
        str(export_dir),
        "-e",
        entry_point,
        "--backend",
        "databricks",
        "--backend-config",
        str(Path(cluster_spec).resolve()),
    ]
    if experiment_name:
        command += ["--experiment-name", experiment_name]
    if experiment_id:
        command += ["--experiment-id", experiment_id]
    if env_manager:
        command += ["--env-manager", env_manager]
    for key, value in parameters.items():
        command += ["-P", f"{key}={value}"]
    return command


def submit_databricks(
    entry_point: str,
    parameters: Mapping[str, str] | None = None,
    *,
    project_root: Path = PROJECT_ROOT,
    cluster_spec: Path | None = None,
    ref: str = "HEAD",
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    env_manager: str | None = None,
) -> int:
    """Run ``entry_point`` on a new Databricks job cluster; returns ``mlflow run``'s exit code.

    ``mlflow run --backend databricks`` returns once the job run is submitted (it does not
    wait); the Databricks run page URL is in its log and in the run's tags.
    """
    import mlflow

    project_root = Path(project_root).resolve()
    tracking_uri = mlflow.get_tracking_uri()
    checks.require_shared_tracking_uri(tracking_uri, target="Databricks", allow_databricks=True)
    experiment_name = experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    experiment_id = experiment_id or os.environ.get("MLFLOW_EXPERIMENT_ID")
    if tracking_uri.startswith("databricks") and not (experiment_name or experiment_id):
        # With a Databricks tracking URI and no experiment, MLflow submits experiment id None
        # (the DBFS path and the job's MLFLOW_EXPERIMENT_ID say "None").
        raise checks.SubmissionError(
            "Databricks needs an experiment: pass --experiment-name "
            "/Users/<you>/statistically-gated-versioning (or --experiment-id)."
        )
    spec_path = Path(cluster_spec or project_root / DEFAULT_CLUSTER_SPEC).resolve()
    checks.check_databricks_cluster_spec(spec_path)

    export = export_project(project_root, ref=ref)
    try:
        command = databricks_run_command(
            export.path,
            entry_point,
            dict(parameters or {}),
            spec_path,
            experiment_name=experiment_name,
            experiment_id=experiment_id,
            env_manager=env_manager,
        )
        _logger.info("Submitting commit %s: %s", export.commit[:12], shlex.join(command))
        # cwd=export: nothing resolves against the developer's project root any more.
        return subprocess.run(command, cwd=export.path, check=False).returncode
    finally:
        shutil.rmtree(export.path, ignore_errors=True)


def _parse_params(pairs: Sequence[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"-P expects key=value, got {pair!r}")
        if key in params:
            raise argparse.ArgumentTypeError(f"-P {key} given twice")
        params[key] = value
    return params


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m deploy.submit`` command line."""
    parser = argparse.ArgumentParser(
        prog="python -m deploy.submit", description=(__doc__ or "").split("\n")[0]
    )
    sub = parser.add_subparsers(dest="target", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("-e", "--entry-point", default="main")
        p.add_argument("-P", "--param", action="append", default=[], metavar="KEY=VALUE")
        p.add_argument("--ref", default="HEAD", help="commit to export (default: HEAD)")
        p.add_argument("--project-root", type=Path, default=PROJECT_ROOT)
        group = p.add_mutually_exclusive_group()
        group.add_argument("--experiment-name")
        group.add_argument("--experiment-id")

    kube = sub.add_parser("kubernetes", help="run an entry point as a Kubernetes Job")
    common(kube)
    kube.add_argument("--config", type=Path, help=f"default: {DEFAULT_KUBERNETES_CONFIG}")
    kube.add_argument("--kube-context", help="kubeconfig context (default: current)")
    kube.add_argument("--repository-uri", help="image repository to push to (overrides config)")
    kube.add_argument("--wait", action="store_true", help="wait for the Job to finish")

    dbx = sub.add_parser("databricks", help="run an entry point on a Databricks job cluster")
    common(dbx)
    dbx.add_argument("--cluster-spec", type=Path, help=f"default: {DEFAULT_CLUSTER_SPEC}")
    dbx.add_argument("--env-manager", choices=("virtualenv", "uv", "local", "conda"))

    exp = sub.add_parser("export", help="write the clean export to a directory and stop")
    exp.add_argument("dest", type=Path)
    exp.add_argument("--ref", default="HEAD")
    exp.add_argument("--project-root", type=Path, default=PROJECT_ROOT)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m deploy.submit``; returns the process exit code."""
    from mlflow.exceptions import ExecutionException

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    try:
        if args.target == "export":
            export = export_project(args.project_root, args.dest, ref=args.ref)
            _logger.info("Export of %s is in %s", export.commit[:12], export.path)
            return 0
        params = _parse_params(args.param)
        if args.target == "kubernetes":
            submitted = submit_kubernetes(
                args.entry_point,
                params,
                project_root=args.project_root,
                config_path=args.config,
                ref=args.ref,
                kube_context=args.kube_context,
                repository_uri=args.repository_uri,
                experiment_name=args.experiment_name,
                experiment_id=args.experiment_id,
                synchronous=args.wait,
            )
            _logger.info("Submitted MLflow run %s", submitted.run_id)
            return 0
        return submit_databricks(
            args.entry_point,
            params,
            project_root=args.project_root,
            cluster_spec=args.cluster_spec,
            ref=args.ref,
            experiment_name=args.experiment_name,
            experiment_id=args.experiment_id,
            env_manager=args.env_manager,
        )
    except (checks.SubmissionError, ExportError, argparse.ArgumentTypeError) as exc:
        _logger.error("%s", exc)
        return 2
    except ExecutionException as exc:  # --wait and the Job failed, or docker/kube refused
        _logger.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
