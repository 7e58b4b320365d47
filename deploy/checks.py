"""Pre-submission checks for remote runs.

Each check runs *before* ``mlflow.projects.run`` creates a run, so a submission that cannot
work remotely fails at once with a message saying what to change, instead of leaving a
dangling RUNNING run on the tracking server and a failed job on the cluster.

Why these checks exist (each one guards a behaviour of MLflow's own submission code):

* The Kubernetes backend writes ``MLFLOW_TRACKING_URI`` into the Job as a *plain* env value
  (``KUBE_MLFLOW_TRACKING_URI`` if set, else the client's tracking URI). A local ``sqlite:`` or
  ``file:`` URI would point the pod at a path that does not exist there, and credentials in
  the URI would be readable by anyone who can ``kubectl get job -o yaml``.
* It appends ``MLFLOW_RUN_ID``/``MLFLOW_TRACKING_URI``/``MLFLOW_EXPERIMENT_ID`` *after* the
  template's own ``env``; a template that also sets one of them (e.g. from a Secret) is
  silently shadowed, so we refuse such a template rather than let it look effective.
* It shell-quotes every token of the command and puts the quoted strings into the Job's
  exec-form ``command``: a -P value with a space or shell character arrives with literal quotes.
* It names the Job ``<project name>-<26-char timestamp>``; Kubernetes caps Job names at 63
  characters (the pod label ``job-name`` carries it), so a long project name fails late.
* The Databricks backend treats a backend config without a ``new_cluster`` key as the cluster
  spec itself -- and by then MLflow has written its own keys (``ENV_MANAGER``, ``SYNCHRONOUS``,
  ``DOCKER_ARGS``...) into that dict, so they would be sent to Databricks as cluster fields.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

_logger = logging.getLogger(__name__)

#: Env names MLflow's Kubernetes backend appends to the container itself.
MLFLOW_INJECTED_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID")
#: Length of the ``-%Y-%m-%d-%H-%M-%S-%f`` suffix MLflow appends to the project name.
_JOB_NAME_SUFFIX_LEN = 27
_K8S_NAME_MAX = 63
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
#: Databricks resolves ``{{secrets/<scope>/<key>}}`` in spark_env_vars at cluster start.
_SECRET_REFERENCE = re.compile(r"^\{\{secrets/[^/{}]+/[^/{}]+\}\}$")
_SECRET_LIKE_NAME = re.compile(r"(TOKEN|PASSWORD|SECRET|CREDENTIAL|ACCESS_KEY|API_KEY)", re.I)


class SubmissionError(RuntimeError):
    """A remote submission was refused before anything was created or uploaded."""


# --- tracking URIs -------------------------------------------------------------------------
def kubernetes_job_tracking_uri(
    client_tracking_uri: str, environ: Mapping[str, str] | None = None
) -> str:
    """The tracking URI the Kubernetes Job will get, exactly as MLflow computes it.

    ``mlflow.projects.kubernetes`` uses ``KUBE_MLFLOW_TRACKING_URI`` when set, else the URI the
    submitting client tracks to.
    """
    env = os.environ if environ is None else environ
    return env.get("KUBE_MLFLOW_TRACKING_URI") or client_tracking_uri


def require_shared_tracking_uri(
    uri: str, *, target: str, allow_databricks: bool = False, warn_loopback: bool = True
) -> str:
    """Return ``uri`` if code running on ``target`` can reach it; raise otherwise.

    Accepted: ``http(s)://host[:port][/path]`` without credentials in the URI, and -- for
    Databricks only -- ``databricks`` / ``databricks://<profile>`` (the workspace's own server).
    A loopback host is accepted with a warning: it only works when the cluster shares the
    client's network namespace (e.g. tests, or a port-forward inside the same pod);
    ``warn_loopback=False`` for a URI only the submitting client uses.
    """
    parsed = urlparse(uri or "")
    scheme = parsed.scheme.lower()
    # Bare "databricks" parses as a path; "databricks://profile" has the scheme.
    if allow_databricks and (uri == "databricks" or scheme == "databricks"):
        return uri
    if scheme in ("", "file", "sqlite") or (scheme not in ("http", "https") and not parsed.netloc):
        hint = (
            "Set MLFLOW_TRACKING_URI=databricks (or databricks://<profile>) or the https:// URL of "
            "the shared tracking server."
            if allow_databricks
            else "Set KUBE_MLFLOW_TRACKING_URI (or MLFLOW_TRACKING_URI) to the http(s):// URL of "
            "the shared tracking server (see deploy/tracking-server/)."
        )
        raise SubmissionError(
            f"Refusing to submit to {target}: the run would track to {uri!r}, a local store that "
            f"does not exist on the cluster. {hint}"
        )
    if scheme not in ("http", "https"):
        raise SubmissionError(
            f"Refusing to submit to {target}: tracking URI {uri!r} has scheme {scheme!r}; remote "
            "jobs must talk to the tracking server over http(s), which also proxies artifacts "
            "(mlflow-artifacts:/), so they need no database or bucket credentials."
        )
    if parsed.username or parsed.password:
        raise SubmissionError(
            f"Refusing to submit to {target}: the tracking URI embeds credentials, and MLflow "
            "would write it into the job spec in plain text. Put them in "
            "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD (a Kubernetes Secret or a "
            "Databricks secret) instead."
        )
    if warn_loopback and _is_loopback(parsed.hostname or ""):
        _logger.warning(
            "Tracking URI %s is a loopback address: a pod or cluster node reaches only itself "
            "there. Use the server's cluster-reachable URL unless you know they share a network.",
            uri,
        )
    return uri


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- Kubernetes ------------------------------------------------------------------------------
def load_kubernetes_backend_config(config_path: Path) -> dict[str, Any]:
    """Load ``kubernetes_config.json`` with ``kube-job-template-path`` made absolute.

    MLflow opens the template path relative to the *current directory*; resolving it relative
    to the config file makes the documented command work from anywhere.
    """
    config_path = Path(config_path)
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise SubmissionError(
            f"Cannot read Kubernetes backend config {config_path}: {exc}"
        ) from exc
    for key in ("repository-uri", "kube-job-template-path"):
        if not config.get(key):
            raise SubmissionError(
                f"{config_path}: '{key}' is required by MLflow's kubernetes backend"
            )
    template = Path(config["kube-job-template-path"])
    if not template.is_absolute():
        template = (config_path.parent / template).resolve()
    config["kube-job-template-path"] = str(template)
    return config


def check_kubernetes_job_template(
    template_path: Path, *, working_dir: str | None = None
) -> dict[str, Any]:
    """Validate the Job template the way MLflow will use it; returns the parsed template.

    ``working_dir``: the container ``workingDir`` the submitter's image layout requires
    (MLflow sets image, command and env, never the working directory).
    """
    try:
        template = yaml.safe_load(Path(template_path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SubmissionError(
            f"Cannot read Kubernetes job template {template_path}: {exc}"
        ) from exc
    problems: list[str] = []
    if not isinstance(template, dict) or template.get("kind") != "Job":
        raise SubmissionError(f"{template_path}: must be a single batch/v1 Job")
    if not (template.get("metadata") or {}).get("namespace"):
        # MLflow reads metadata.namespace unconditionally (KeyError otherwise).
        problems.append("metadata.namespace is required")
    spec = template.get("spec") or {}
    if spec.get("backoffLimit") != 0:
        # A retried pod reuses the same MLFLOW_RUN_ID and would log into one run twice.
        problems.append("spec.backoffLimit must be 0 (a retry would re-use the same MLflow run)")
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    if not containers:
        problems.append("spec.template.spec.containers[0] is required")
    else:
        container = containers[0]
        if working_dir is not None and container.get("workingDir") != working_dir:
            problems.append(
                f"containers[0].workingDir must be {working_dir} (where the submitted project "
                f"sits in the image), not {container.get('workingDir')!r}"
            )
        if not (container.get("resources") or {}).get("limits"):
            problems.append("containers[0].resources.limits is required (requests and limits)")
        for entry in container.get("env") or []:
            if entry.get("name") in MLFLOW_INJECTED_ENV:
                problems.append(
                    f"containers[0].env sets {entry['name']}, which MLflow appends itself and "
                    "would shadow; set KUBE_MLFLOW_TRACKING_URI on the submitting side instead"
                )
            if "value" in entry and _SECRET_LIKE_NAME.search(entry.get("name", "")):
                problems.append(f"containers[0].env {entry['name']} must come from a Secret")
    if problems:
        raise SubmissionError(f"{template_path}: " + "; ".join(problems))
    return template


def check_kubernetes_parameters(parameters: Mapping[str, Any]) -> None:
    """Refuse -P values the Kubernetes backend would deliver with literal quotes.

    MLflow shell-quotes each token of the entry point command and puts the quoted strings in
    the container's exec-form ``command`` (no shell strips them): ``-P data_source='a b.csv'``
    would reach the step as ``'a b.csv'``, quotes included.
    """
    bad = [
        f"{key}={value}"
        for key, value in parameters.items()
        if shlex.quote(str(key)) != str(key) or shlex.quote(str(value)) != str(value)
    ]
    if bad:
        raise SubmissionError(
            "Kubernetes: MLflow would pass these parameters to the container with literal "
            f"shell quotes: {', '.join(bad)}. Use values without spaces or shell characters "
            "(or put them in a config file and pass -P config=<path>)."
        )


def check_kubernetes_project_name(name: str) -> str:
    """MLflow names the Job and the container after the project; both must be DNS labels."""
    if not _DNS_LABEL.match(name or "") or len(name) + _JOB_NAME_SUFFIX_LEN > _K8S_NAME_MAX:
        raise SubmissionError(
            f"Project name {name!r} cannot name a Kubernetes Job: it must be a lowercase DNS "
            f"label of at most {_K8S_NAME_MAX - _JOB_NAME_SUFFIX_LEN} characters (MLflow appends "
            "a 27-character timestamp)."
        )
    return name


# --- Databricks --------------------------------------------------------------------------------
def check_databricks_cluster_spec(spec_path: Path) -> dict[str, Any]:
    """Validate ``databricks/cluster-spec.json``; returns the parsed spec."""
    try:
        spec = json.loads(Path(spec_path).read_text())
    except (OSError, ValueError) as exc:
        raise SubmissionError(f"Cannot read Databricks cluster spec {spec_path}: {exc}") from exc
    if not isinstance(spec, dict) or not isinstance(spec.get("new_cluster"), dict):
        raise SubmissionError(
            f"{spec_path}: put the cluster under a 'new_cluster' key. Without it MLflow sends "
            "the whole backend config -- including its own ENV_MANAGER/SYNCHRONOUS/DOCKER_ARGS "
            "keys -- to Databricks as the cluster spec."
        )
    if "existing_cluster_id" in spec or "existing_cluster_id" in spec["new_cluster"]:
        raise SubmissionError(f"{spec_path}: MLflow projects run only on a new job cluster")
    for key in ("spark_version", "node_type_id"):
        if not spec["new_cluster"].get(key):
            raise SubmissionError(f"{spec_path}: new_cluster.{key} is required")
    for name, value in (spec["new_cluster"].get("spark_env_vars") or {}).items():
        if _SECRET_LIKE_NAME.search(name) and not _SECRET_REFERENCE.match(str(value)):
            raise SubmissionError(
                f"{spec_path}: spark_env_vars.{name} looks secret; use a Databricks secret "
                "reference such as {{secrets/<scope>/<key>}}, never the value itself"
            )
    return spec
