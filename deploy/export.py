"""Export a clean copy of the project: the git-tracked files of one commit, nothing else.

Why: MLflow ships the *whole* project directory to the cluster -- the Databricks backend tars
it (leaving out only folders named ``mlruns``), the Kubernetes backend copies it into the
image. Our project root also holds the local store (``mlflow.db``, ``mlartifacts/``), the
virtualenv (``.venv/``) and possibly a developer's ``.env`` or keys. Submitting from an export
ships only what git tracks at the chosen commit.

How: a depth-1 fetch of that commit into an empty repository. Unlike ``git archive`` this
keeps a tiny ``.git`` (one commit, no hooks, no remote credentials), so MLflow's own lineage
keeps working on the export: the run gets ``mlflow.source.git.commit`` and the Kubernetes
image is tagged with the commit's short SHA. As a second guard, tracked files whose names
look like local stores or secrets are removed from the export with a warning.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_logger = logging.getLogger(__name__)

#: Names (matched against every path component) that never leave the machine, tracked or not.
EXCLUDED_NAMES: tuple[str, ...] = (
    # local MLflow stores
    "mlflow.db",
    "mlflow.db-journal",
    "mlruns",
    "mlartifacts",
    # environments and caches
    ".venv",
    "venv",
    "__pycache__",
    ".pytest_cache",
    # secrets
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_ed25519*",
    "credentials",
    "credentials.*",
    "*credentials*.json",
    ".databrickscfg",
    ".netrc",
    ".pypirc",
    ".git-credentials",
    "kubeconfig",
    "*.kubeconfig",
)


class ExportError(RuntimeError):
    """The project could not be exported (not a git checkout, unknown ref...)."""


@dataclass(frozen=True)
class Export:
    """A clean export on disk. ``removed`` lists tracked paths dropped by :data:`EXCLUDED_NAMES`."""

    path: Path
    commit: str
    removed: tuple[str, ...] = field(default_factory=tuple)


def _git(*args: str, cwd: Path) -> str:
    # LC_ALL=C: messages we may surface stay stable; no pager, no prompts for credentials.
    env = {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat"}
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ExportError(f"git {' '.join(args)} failed in {cwd}: {result.stderr.strip()}")
    return result.stdout.strip()


def is_excluded(relative_path: str) -> bool:
    """True if any component of ``relative_path`` matches :data:`EXCLUDED_NAMES`."""
    parts = Path(relative_path).parts
    return any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in EXCLUDED_NAMES)


def _public_remote_url(project_root: Path) -> str | None:
    """The ``origin`` URL without any user:token part, or None (recorded as run lineage)."""
    try:
        url = _git("remote", "get-url", "origin", cwd=project_root)
    except ExportError:
        return None
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url or None


def export_project(project_root: Path, dest: Path | None = None, ref: str = "HEAD") -> Export:
    """Export the files git tracks at ``ref`` of ``project_root`` into ``dest`` (a new dir).

    Uncommitted changes are *not* exported (the export is exactly one commit, so the run's
    recorded commit describes what ran); they are listed in a warning.
    """
    project_root = Path(project_root).resolve()
    try:
        top = Path(_git("rev-parse", "--show-toplevel", cwd=project_root)).resolve()
        commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}", cwd=project_root)
    except ExportError as exc:
        raise ExportError(
            f"{project_root} must be a git checkout with at least one commit to export from "
            f"(remote runs ship only committed, tracked files): {exc}"
        ) from exc
    if top != project_root:
        raise ExportError(f"{project_root} is not the top of its git checkout ({top})")
    dirty = _git("status", "--porcelain", "--untracked-files=no", cwd=project_root)
    if dirty and ref == "HEAD":
        _logger.warning(
            "Uncommitted changes are NOT submitted (the export is commit %s):\n%s",
            commit[:12],
            dirty,
        )

    dest = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="sgv-export-"))
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ExportError(f"export destination {dest} is not empty")
    # --template= : no sample hooks in the shipped .git; fetch by SHA, depth 1: one commit only.
    _git("init", "--quiet", "--template=", str(dest), cwd=dest)
    # Fetching a commit by SHA needs git's protocol v2 (the default since git 2.26).
    # fetch.unpackLimit=1 keeps the objects in one pack (half the size of loose objects).
    _git(
        "-c", "fetch.unpackLimit=1",
        "fetch", "--quiet", "--depth", "1", "--no-tags", project_root.as_uri(), commit,
        cwd=dest,
    )  # fmt: skip
    _git("-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit, cwd=dest)
    # FETCH_HEAD names the developer's local path; nothing needs it.
    (dest / ".git" / "FETCH_HEAD").unlink(missing_ok=True)
    if remote := _public_remote_url(project_root):
        _git("remote", "add", "origin", remote, cwd=dest)

    removed = []
    for tracked in _git("ls-files", "-z", cwd=dest).split("\0"):
        if tracked and is_excluded(tracked):
            target = dest / tracked
            if target.exists():
                target.unlink()
                removed.append(tracked)
    if removed:
        _logger.warning(
            "Left out tracked files that look like local stores or secrets (untrack them): %s",
            ", ".join(removed),
        )
    # Prune directories left empty (or themselves excluded) after removal.
    for path in sorted(dest.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        relative = path.relative_to(dest)
        if relative.parts[0] == ".git":
            continue
        if path.is_dir() and (is_excluded(str(relative)) or not any(path.iterdir())):
            shutil.rmtree(path)
    _logger.info("Exported %s at %s to %s", project_root, commit[:12], dest)
    return Export(path=dest, commit=commit, removed=tuple(removed))
