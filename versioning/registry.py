"""Model Registry state: who is champion and challenger, and the ordered writes that move them.

Aliases are the source of truth (stages are deprecated in MLflow but still shown and used by
many teams, so we keep them in step). Every multi-write change sets the ``champion`` alias
*first*: that single write is the commit point. Should a process die after it, the stages
lag behind the alias, and :func:`check_and_repair` (run at the start of every compare)
brings them back in line. Should it die before, nothing has changed.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from versioning.errors import WorkflowError

CHAMPION = "champion"
CHALLENGER = "challenger"
PRODUCTION = "Production"
STAGING = "Staging"
ARCHIVED = "Archived"
NONE_STAGE = "None"

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w\-]+))$")
_log = logging.getLogger(__name__)


def _not_found(exc: MlflowException) -> bool:
    return exc.error_code == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(exc).lower()


def require_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if _not_found(exc):
            raise WorkflowError(
                f"registered model {name!r} does not exist: train a model first "
                "(mlflow run . -e train_lr) or set -P registered_model_name=<existing name>"
            ) from None
        raise


def version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version an alias points to, or None if the alias is not set."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if _not_found(exc):
            return None
        raise


def get_version(client: MlflowClient, name: str, version: str | int) -> ModelVersion:
    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        if _not_found(exc):
            raise WorkflowError(
                f"version {version} of registered model {name!r} does not exist: "
                "name an existing version or alias"
            ) from None
        raise


def resolve_reference(client: MlflowClient, name: str, reference: str) -> ModelVersion | None:
    """Resolve an alias, a version number or a ``models:/`` URI of model ``name``.

    Returns None only for an alias that is not set (no champion yet, no challenger now);
    a version or URI that does not exist is an error, since the user named it.
    """
    reference = reference.strip()
    if reference.startswith("models:/"):
        match = _MODELS_URI.match(reference)
        if match is None:
            raise WorkflowError(
                f"cannot parse model URI {reference!r}: use models:/<name>/<version> "
                "or models:/<name>@<alias>"
            )
        if match["name"] != name:
            raise WorkflowError(
                f"model URI {reference!r} names registered model {match['name']!r}, but this "
                f"run manages {name!r}: set -P registered_model_name={match['name']}"
            )
        if match["version"]:
            return get_version(client, name, match["version"])
        return version_by_alias(client, name, match["alias"])
    if reference.isdigit():
        return get_version(client, name, reference)
    return version_by_alias(client, name, reference)


def transition(client: MlflowClient, version: ModelVersion, stage: str, archive_existing: bool) -> None:
    with warnings.catch_warnings():
        # Stages are deprecated since MLflow 2.9 but are still what many registry readers
        # look at; we keep them as a mirror of the aliases.
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage(
            version.name, version.version, stage, archive_existing_versions=archive_existing
        )


def latest_in_stage(client: MlflowClient, name: str, stage: str) -> ModelVersion | None:
    """The newest version in ``stage``: one query, whatever the number of versions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        found = client.get_latest_versions(name, stages=[stage])
    return found[0] if found else None


def make_challenger(client: MlflowClient, version: ModelVersion) -> None:
    """A new version awaits judgement: alias ``challenger`` and stage Staging."""
    client.set_registered_model_alias(version.name, CHALLENGER, version.version)
    transition(client, version, STAGING, archive_existing=False)


def crown(client: MlflowClient, version: ModelVersion) -> None:
    """Make ``version`` the champion: alias first (the commit point), then stages.

    ``archive_existing_versions`` moves the previous Production version to Archived in the
    same registry transaction as the new one enters Production.
    """
    client.set_registered_model_alias(version.name, CHAMPION, version.version)
    transition(client, version, PRODUCTION, archive_existing=True)
    challenger = version_by_alias(client, version.name, CHALLENGER)
    if challenger is not None and str(challenger.version) == str(version.version):
        client.delete_registered_model_alias(version.name, CHALLENGER)


@dataclass(frozen=True)
class Repair:
    problem: str
    action: str


def check_and_repair(client: MlflowClient, name: str, apply: bool = True) -> list[Repair]:
    """Bring stages in line with the ``champion`` alias; report each fix made (or needed).

    The states this repairs are exactly those an interrupted :func:`crown` can leave, plus
    registries managed by stages alone before this tool arrived.
    """
    repairs: list[Repair] = []
    champion = version_by_alias(client, name, CHAMPION)
    production = latest_in_stage(client, name, PRODUCTION)
    if champion is None:
        if production is not None:
            repairs.append(Repair(
                f"no '{CHAMPION}' alias, but version {production.version} is in Production",
                f"set alias '{CHAMPION}' to version {production.version}",
            ))
            if apply:
                client.set_registered_model_alias(name, CHAMPION, production.version)
            champion = production
        else:
            return repairs
    if champion.current_stage != PRODUCTION or (
        production is not None and str(production.version) != str(champion.version)
    ):
        repairs.append(Repair(
            f"alias '{CHAMPION}' is version {champion.version} (stage {champion.current_stage})"
            + (f" but version {production.version} is in Production" if production and str(production.version) != str(champion.version) else ""),
            f"move version {champion.version} to Production and archive the others",
        ))
        if apply:
            transition(client, champion, PRODUCTION, archive_existing=True)
    challenger = version_by_alias(client, name, CHALLENGER)
    if challenger is not None and str(challenger.version) == str(champion.version):
        repairs.append(Repair(
            f"aliases '{CHAMPION}' and '{CHALLENGER}' both point to version {champion.version}",
            f"remove alias '{CHALLENGER}' (that version was already promoted)",
        ))
        if apply:
            client.delete_registered_model_alias(name, CHALLENGER)
    for repair in repairs:
        _log.warning("registry %s: %s -> %s", name, repair.problem, repair.action)
    return repairs
