"""Model Registry state: who is champion and challenger, and the ordered writes that move them.

Aliases are the source of truth (stages are deprecated in MLflow but still shown and used by
many teams, so we keep them in step). The single write of alias ``champion`` is the commit
point of every change of champion; everything before it can be redone, everything after it
can be derived from it.

Write order
-----------
Every change of champion (promotion, bootstrap, rollback) ends in :func:`crown`. The writes,
in order, each named as the test hook ``VERSIONING_CRASH_AFTER=<name>`` knows it:

0. ``promotion_tags`` | ``bootstrap_tags`` | ``rollback_tags``: the caller's decision tags
   (``promotion.decision``, ``promotion.record``, ``mcnemar.*``) on the versions involved
   (compare: champion and challenger; train: the new version; rollback: both versions).
1. ``previous_champion_tag``: tag ``promotion.previous_champion`` on the new champion
   (promotions only; what :mod:`versioning.rollback` reads).
2. ``champion_alias``: alias ``champion`` -> new version. **The commit point.**
3. ``production_stage``: new version -> Production, every other Production version ->
   Archived (one call, one registry transaction).
4. ``champion_model_tag``: registered-model tag ``promotion.champion_version`` (the champion's
   number; unlike the alias it survives the deletion of the version, see check_and_repair).
5. ``challenger_alias_removed``: alias ``challenger`` deleted if it points to the new champion.
6. ``staged_tag_cleared``: version tag ``versioning.staged`` -> ``false`` on the new champion
   (it has left Staging; see :func:`versions_in_stage`).

With several challengers (``-P challengers=...``) step 0 tags the champion and every challenger
compared, each with its own decision; only the winner goes through steps 1-6, the others keep
their stage and aliases.

train places a new version before any of this: it is registered (lineage tags in the same
request), then made challenger by :func:`make_challenger` (``challenger_alias``, then
``staging_stage``, then ``staged_tag``: version tag ``versioning.staged = true``); only the
first version of a model continues with ``bootstrap_tags`` and :func:`crown`.

A crash after step 0 or 1 changed nothing that matters: the champion is the old one, the next
compare judges the same pair again (a recorded ``promote`` is never treated as final, nor is
the ``keep`` of a challenger that lost to a winner in the same run). A crash after step 2, 3,
4 or 5 leaves stages, the model tag, the challenger alias or the staged tag behind the
alias; :func:`check_and_repair`, run first by every compare and rollback, derives them from
the alias again. Since an alias holds one version, there is never more than one champion;
after the first bootstrap there is never none (an alias is only ever moved, not deleted).
docs/failure-modes.md lists every crash point with the state it leaves.

The test hook: when the environment variable ``VERSIONING_CRASH_AFTER`` names a write, the
process ends with ``os._exit(137)`` (as after ``kill -9``: no cleanup, the run stays RUNNING)
right after that write. It exists for the crash tests only and costs one dict lookup.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass

from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from versioning.errors import WorkflowError

CHAMPION = "champion"
CHALLENGER = "challenger"
PRODUCTION = "Production"
STAGING = "Staging"
ARCHIVED = "Archived"
NONE_STAGE = "None"
# Version tag: the champion this version replaced when it was promoted (read by rollback).
TAG_PREVIOUS_CHAMPION = "promotion.previous_champion"
# Registered-model tag: the champion's version number, kept after the version is deleted.
TAG_MODEL_CHAMPION = "promotion.champion_version"
# Version tag: "true" while the version awaits judgement in Staging (set by make_challenger,
# cleared to "false" when it leaves Staging). MLflow cannot search versions by stage; it can
# by tag, so `-P challengers=staging` finds them in one query (versions_in_stage).
TAG_STAGED = "versioning.staged"
CRASH_AFTER_ENV = "VERSIONING_CRASH_AFTER"  # test hook, see the module docstring

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w\-]+))$")
_log = logging.getLogger(__name__)


def _not_found(exc: MlflowException) -> bool:
    return exc.error_code == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(exc).lower()


def require_registered_model(client: MlflowClient, name: str) -> RegisteredModel:
    """The registered model (tags and aliases; pass it on to :func:`check_and_repair`).

    One read: on a SQL store MLflow loads every version row of the model to answer it.
    """
    try:
        return client.get_registered_model(name)
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
        _retry_race(lambda: client.transition_model_version_stage(
            version.name, version.version, stage, archive_existing_versions=archive_existing
        ))


def latest_in_stage(client: MlflowClient, name: str, stage: str) -> ModelVersion | None:
    """The newest version in ``stage``: one query, whatever the number of versions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        found = client.get_latest_versions(name, stages=[stage])
    return found[0] if found else None


# What a registry backend says when two clients upsert the same tag or alias at once (MLflow's
# SQL store reads, then inserts; the second insert violates the key) or when sqlite is busy.
_RACE_MESSAGES = ("UNIQUE constraint failed", "duplicate key value violates unique constraint",
                  "database is locked")


def _retry_race(call, *args):
    """Run one registry write; repeat it (at most 4 more times) when it lost an upsert race to a
    concurrent writer of the same key: the repeat finds the row and updates it."""
    for attempt in range(5):
        try:
            return call(*args)
        except MlflowException as exc:
            if attempt == 4 or not any(m in str(exc) for m in _RACE_MESSAGES):
                raise
            time.sleep(0.05 * (attempt + 1))
    return None


def set_version_tag(client: MlflowClient, name: str, version: str | int, key: str, value: str) -> None:
    _retry_race(client.set_model_version_tag, name, str(version), key, value)


def set_model_tag(client: MlflowClient, name: str, key: str, value: str) -> None:
    _retry_race(client.set_registered_model_tag, name, key, value)


def set_alias(client: MlflowClient, name: str, alias: str, version: str | int) -> None:
    _retry_race(client.set_registered_model_alias, name, alias, str(version))


def written(write: str) -> None:
    """Test hook: end the process as ``kill -9`` would, right after the named registry write.

    Set ``VERSIONING_CRASH_AFTER=<write>`` (names in the module docstring) to test crash
    safety; unset, this does nothing. ``os._exit`` skips every handler, so the run stays
    RUNNING and no later write happens, exactly as when the process is killed.
    """
    if os.environ.get(CRASH_AFTER_ENV) == write:
        sys.stdout.flush()
        sys.stderr.write(f"{CRASH_AFTER_ENV}={write}: simulated crash (exit 137)\n")
        sys.stderr.flush()
        os._exit(137)


def delete_alias_if(client: MlflowClient, name: str, alias: str, version: str | int) -> bool:
    """Delete ``alias`` if it still points to ``version``; True if it is gone.

    A concurrent delete is no error. Neither is a refusal: MLflow's basic-auth app requires
    MANAGE (delete) permission to delete an alias, while EDIT suffices for every other write
    of a promotion; the alias then stays on the champion, where compare_and_promote treats it
    as "no challenger" and the next train_* moves it to the new version.
    """
    current = version_by_alias(client, name, alias)
    if current is None or str(current.version) != str(version):
        return current is None
    try:
        client.delete_registered_model_alias(name, alias)
    except MlflowException as exc:
        if _not_found(exc):
            return True
        if exc.error_code == "PERMISSION_DENIED":
            _log.warning("registry %s: not permitted to delete alias '%s' (needs MANAGE); it "
                         "stays on version %s, which is champion, so it names no challenger",
                         name, alias, version)
            return False
        raise
    return True


def make_challenger(client: MlflowClient, version: ModelVersion) -> None:
    """A new version awaits judgement: alias ``challenger``, stage Staging, tag staged."""
    set_alias(client, version.name, CHALLENGER, version.version)
    written("challenger_alias")
    transition(client, version, STAGING, archive_existing=False)
    written("staging_stage")
    # After the stage: a crash in between leaves an untagged Staging version, which
    # versions_in_stage still finds (as it finds versions staged by hand).
    set_version_tag(client, version.name, version.version, TAG_STAGED, "true")
    written("staged_tag")


def _staged(version: ModelVersion) -> bool:
    return (version.tags or {}).get(TAG_STAGED) == "true"


def versions_in_stage(client: MlflowClient, name: str, stage: str = STAGING) -> list[ModelVersion]:
    """Every version of ``name`` currently in ``stage``, by version number.

    MLflow's ``search_model_versions`` cannot filter by stage (it filters by name, run_id,
    source_path, version_number and tags) and ``get_latest_versions`` returns only the newest
    version per stage. For Staging, one server-side query finds the versions tagged
    ``versioning.staged = true`` (every version :func:`make_challenger` placed), keeping those
    still in Staging; one ``get_latest_versions`` call checks that the newest Staging version
    is among them. If it is not (moved to Staging by hand, or by a train_* killed between its
    stage and tag writes), every version is read once instead, with a warning. Not seen: an
    untagged version staged by hand that is older than the newest tagged one.
    """
    if stage != STAGING:
        return sorted((v for v in live_versions(client, name) if v.current_stage == stage),
                      key=lambda v: int(v.version))
    found: list[ModelVersion] = []
    token = None
    while True:
        page = client.search_model_versions(
            f"name = '{name}' AND tags.`{TAG_STAGED}` = 'true'", page_token=token)
        found.extend(v for v in page if v.current_stage == STAGING)
        token = page.token
        if not token:
            break
    newest = latest_in_stage(client, name, STAGING)
    if newest is not None and str(newest.version) not in {str(v.version) for v in found}:
        _log.warning("registry %s: version %s is in Staging without tag '%s=true' (staged by "
                     "hand?); reading every version to find all Staging versions", name,
                     newest.version, TAG_STAGED)
        found = [v for v in live_versions(client, name) if v.current_stage == STAGING]
    return sorted(found, key=lambda v: int(v.version))


def crown(client: MlflowClient, version: ModelVersion, previous: ModelVersion | None = None) -> None:
    """Make ``version`` the champion, in the order of the module docstring (alias = commit).

    ``previous`` is the champion it replaces after a comparison; it is recorded on ``version``
    (tag ``promotion.previous_champion``) before the commit, so a rollback knows where to go.
    A bootstrap or a rollback passes None: a restored champion keeps the tag it got when it was
    first promoted, so successive rollbacks walk back the history.
    """
    name = version.name
    if previous is not None:
        set_version_tag(client, name, version.version, TAG_PREVIOUS_CHAMPION, str(previous.version))
        written("previous_champion_tag")
    set_alias(client, name, CHAMPION, version.version)
    written("champion_alias")
    transition(client, version, PRODUCTION, archive_existing=True)
    written("production_stage")
    set_model_tag(client, name, TAG_MODEL_CHAMPION, str(version.version))
    written("champion_model_tag")
    delete_alias_if(client, name, CHALLENGER, version.version)
    written("challenger_alias_removed")
    # "false" rather than a deleted tag: deleting needs MANAGE permission, setting EDIT.
    set_version_tag(client, name, version.version, TAG_STAGED, "false")
    written("staged_tag_cleared")


@dataclass(frozen=True)
class Repair:
    problem: str
    action: str


def live_versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    """Every version of ``name`` that is not deleted (one request per 10,000 versions)."""
    found: list[ModelVersion] = []
    token = None
    while True:
        page = client.search_model_versions(f"name = '{name}'", page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return found


def _consistent_by_alias(client: MlflowClient, name: str, model: RegisteredModel | None) -> bool:
    """The usual state, confirmed without listing versions (cost independent of their number).

    True when alias ``champion`` names a version in Production, the registered-model tag
    agrees with it and alias ``challenger`` is elsewhere: every state an interrupted or
    concurrent :func:`crown` leaves fails one of these, so check_and_repair's full scan runs
    exactly when there may be something to repair. ``model`` may have been read just before
    (it is when compare passes it on): a crown seen half-way makes the two reads disagree,
    which sends us to the full scan, never past it. Not seen here: a version moved to
    Production by hand next to an intact champion (crown and the repair archive the others in
    the same transaction); MLflow cannot look versions up by stage without reading them all.
    """
    champion = version_by_alias(client, name, CHAMPION)
    if champion is None or champion.current_stage != PRODUCTION:
        return False
    model = model if model is not None else client.get_registered_model(name)
    number = str(champion.version)
    if (model.tags or {}).get(TAG_MODEL_CHAMPION) != number or _staged(champion):
        return False
    return str((model.aliases or {}).get(CHALLENGER)) != number


def check_and_repair(client: MlflowClient, name: str, apply: bool = True,
                     model: RegisteredModel | None = None) -> list[Repair]:
    """Check that alias ``champion`` and the Production stage agree on one champion; repair.

    The states this repairs are exactly those an interrupted :func:`crown` (or a concurrent
    one) can leave, plus registries managed by stages alone before this tool arrived:

    * no alias but Production versions: the newest Production version gets the alias;
    * the champion is not in Production, or other versions are: it moves to Production and
      every other Production version to Archived;
    * the registered-model tag ``promotion.champion_version`` disagrees with the alias;
    * alias ``challenger`` on the champion (a promotion that did not finish): removed;
    * tag ``versioning.staged = true`` on the champion or on a version no longer in Staging:
      set to ``false``.

    A champion that was deleted (MLflow drops its aliases with it) cannot be repaired: choosing
    the next one is a human decision, so that is a :class:`WorkflowError`.

    Stages are read before the aliases: :func:`crown` writes the alias before the stage, so
    a stage we see as moved implies an alias we see as moved, and a concurrent crown can only
    make us repeat its own stage write, never undo it.
    """
    if _consistent_by_alias(client, name, model):
        return []
    repairs: list[Repair] = []
    versions = live_versions(client, name)
    model = client.get_registered_model(name)
    aliases = {alias: str(number) for alias, number in (model.aliases or {}).items()}
    tags = dict(model.tags or {})
    production = sorted((v for v in versions if v.current_stage == PRODUCTION),
                        key=lambda v: int(v.version), reverse=True)
    by_number = {str(v.version): v for v in versions}

    champion_number = aliases.get(CHAMPION)
    if champion_number is None:
        if not production:
            _raise_if_champion_lost(name, tags.get(TAG_MODEL_CHAMPION), by_number)
            return repairs
        adopted = production[0]
        repairs.append(Repair(
            f"no '{CHAMPION}' alias, but version {adopted.version} is in Production",
            f"set alias '{CHAMPION}' to version {adopted.version}",
        ))
        if apply:
            set_alias(client, name, CHAMPION, adopted.version)
        champion_number = str(adopted.version)
    champion = by_number.get(champion_number) or get_version(client, name, champion_number)

    others = [v.version for v in production if str(v.version) != champion_number]
    if champion.current_stage != PRODUCTION or others:
        problem = f"alias '{CHAMPION}' is version {champion_number} (stage {champion.current_stage})"
        if others:
            problem += f" but version(s) {', '.join(map(str, others))} are in Production"
        repairs.append(Repair(problem, f"move version {champion_number} to Production and "
                                       "archive the other Production versions"))
        if apply:
            transition(client, champion, PRODUCTION, archive_existing=True)
    if tags.get(TAG_MODEL_CHAMPION) != champion_number:
        repairs.append(Repair(
            f"registered-model tag '{TAG_MODEL_CHAMPION}' is "
            f"{tags.get(TAG_MODEL_CHAMPION)!r}, the alias says {champion_number}",
            f"set it to {champion_number}",
        ))
        if apply:
            set_model_tag(client, name, TAG_MODEL_CHAMPION, champion_number)
    if aliases.get(CHALLENGER) == champion_number:
        removed = apply and delete_alias_if(client, name, CHALLENGER, champion_number)
        if removed or not apply:
            repairs.append(Repair(
                f"aliases '{CHAMPION}' and '{CHALLENGER}' both point to version {champion_number}",
                f"remove alias '{CHALLENGER}' (that version was already promoted)",
            ))
    for version in sorted(versions, key=lambda v: int(v.version)):
        # The champion counts as having left Staging even if the stage write above was needed.
        if _staged(version) and (str(version.version) == champion_number
                                 or version.current_stage != STAGING):
            where = ("is champion" if str(version.version) == champion_number
                     else f"is in stage {version.current_stage}")
            repairs.append(Repair(f"version {version.version} {where} but has tag "
                                  f"'{TAG_STAGED}=true'", "set the tag to false"))
            if apply:
                set_version_tag(client, name, version.version, TAG_STAGED, "false")
    for repair in repairs:
        _log.warning("registry %s: %s -> %s%s", name, repair.problem, repair.action,
                     "" if apply else " (dry run: not applied)")
    return repairs


def _raise_if_champion_lost(name: str, recorded: str | None, by_number: dict[str, ModelVersion]) -> None:
    """No alias and no Production version, but the model had a champion: refuse to guess."""
    if recorded is None:
        return  # never had a champion: the first compare or train bootstraps one
    if recorded not in by_number:
        what = f"pointed to version {recorded}, which has been deleted"
    else:
        what = (f"was removed from version {recorded} (stage "
                f"{by_number[recorded].current_stage}) and no version is in Production")
    raise WorkflowError(
        f"registered model {name!r} has lost its champion: alias '{CHAMPION}' {what}; "
        f"choose the version that should serve and set the alias on it "
        f"(MlflowClient().set_registered_model_alias({name!r}, '{CHAMPION}', <version>)), "
        "then run again"
    )
