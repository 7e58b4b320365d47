"""The rollback step: put back the champion that the current champion replaced.

Where to go comes from the registry itself: a promotion records on the new champion, before
its commit, tag ``promotion.previous_champion`` (see the write order in
:mod:`versioning.registry`). Rollback crowns that version again with the same ordered writes
(alias first), without touching its own ``previous_champion`` tag, so a second rollback goes
one promotion further back, down to the bootstrap version, where it refuses.

A rollback that committed but did not finish (the process died after the alias moved, or is
still running) is completed, not repeated: when the champion's ``promotion.decision`` is
``rollback`` and the run that wrote it did not finish, this run only repairs and records.
"""

from __future__ import annotations

from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from versioning import decision, record, registry
from versioning.errors import WorkflowError
from versioning.step import StepContext

TAG_ROLLED_BACK_BY = "promotion.rolled_back_by_run_id"


def target_of(client, champion: ModelVersion) -> ModelVersion:
    """The version ``champion`` replaced, or a WorkflowError saying why there is none."""
    name = champion.name
    previous = champion.tags.get(registry.TAG_PREVIOUS_CHAMPION)
    if not previous:
        how = ("by bootstrap" if champion.tags.get(record.TAG_BOOTSTRAP_RUN)
               else "without a recorded promotion")
        raise WorkflowError(
            f"nothing to roll back to: champion {name} v{champion.version} became champion "
            f"{how}, so no earlier champion is recorded (tag "
            f"'{registry.TAG_PREVIOUS_CHAMPION}'); to serve another version, set alias "
            f"'{registry.CHAMPION}' on it by hand"
        )
    try:
        return client.get_model_version(name, previous)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(exc).lower():
            raise WorkflowError(
                f"cannot roll back {name} v{champion.version}: the champion it replaced, "
                f"v{previous}, has been deleted; set alias '{registry.CHAMPION}' on another "
                "version by hand"
            ) from None
        raise


def interrupted_rollback(client, champion: ModelVersion, own_run_id: str) -> str | None:
    """The run id of a rollback that crowned ``champion`` but did not finish, if any."""
    if champion.tags.get(record.TAG_DECISION) != decision.ROLLBACK:
        return None
    run_id = record.version_record(champion).get(record.RUN_ID)
    if not run_id or run_id == own_run_id:
        return None
    try:
        status = client.get_run(run_id).info.status
    except MlflowException:
        return None  # the run was deleted: nothing to complete
    return None if status == "FINISHED" else run_id


def _record(base: dict[str, Any], reason: str, restored: ModelVersion,
            rolled_back: ModelVersion, completed_run: str | None) -> dict[str, Any]:
    result = record.simple(base, decision.ROLLBACK, reason, restored, None)
    result["rolled_back"] = record.describe_version(rolled_back)
    result["rollback"] = {
        "from_version": str(rolled_back.version),
        "to_version": str(restored.version),
        "reason_given": base.get("rollback_reason"),
        "completes_run": completed_run,
    }
    return result


def run(ctx: StepContext) -> str:
    config, client = ctx.config, ctx.client
    name = config["registered_model_name"]
    dry_run = config["dry_run"]
    model = registry.require_registered_model(client, name)
    repairs = registry.check_and_repair(client, name, apply=not dry_run, model=model)
    base = {**record.base_record(ctx, repairs), "rollback_reason": config["rollback_reason"]}
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    if champion is None:
        raise WorkflowError(
            f"nothing to roll back: registered model {name!r} has no champion yet "
            "(train a model first: mlflow run . -e train_lr)"
        )
    given = config["rollback_reason"] or "none given (set -P rollback_reason=<text>)"

    unfinished = interrupted_rollback(client, champion, ctx.run_id)
    if unfinished is not None:
        rolled_back = next((v for v in registry.live_versions(client, name)
                            if v.tags.get(TAG_ROLLED_BACK_BY) == unfinished), champion)
        reason = (f"Completed rollback run {unfinished}, which made v{champion.version} "
                  "champion again but did not finish; the registry now agrees with it and "
                  f"nothing further was rolled back. Reason given: {given}.")
        result = _record(base, reason, champion, rolled_back, unfinished)
        if not dry_run:
            # This run now owns the rollback: the next rollback goes one promotion further back.
            record.tag_versions(client, result, [champion])
        return record.finish(ctx, result)

    target = target_of(client, champion)
    if str(target.version) == str(champion.version):
        raise WorkflowError(
            f"cannot roll back {name} v{champion.version}: its recorded previous champion is "
            "itself; set alias 'champion' by hand"
        )
    promoted_by = record.version_record(champion).get(record.RUN_ID)
    reason = (f"Rollback: v{champion.version} replaced by v{target.version}, the champion it "
              f"had replaced" + (f" (last decision on v{champion.version}: run {promoted_by})"
                                 if promoted_by else "")
              + f". Reason given: {given}.")
    result = _record(base, reason, target, champion, None)
    if dry_run:
        return record.finish(ctx, result)
    current = registry.version_by_alias(client, name, registry.CHAMPION)
    if current is None or str(current.version) != str(champion.version):
        return record.finish(ctx, {**result, "decision": decision.SUPERSEDED, "decided": decision.ROLLBACK,
                                   "reason": (f"Superseded: the champion changed to "
                                              f"v{current.version if current else '?'} while this "
                                              "rollback ran; nothing was written.")})
    # Tags first (on both versions, why and by which run), then the crown; the alias is the commit.
    record.tag_versions(client, result, [target, champion])
    registry.set_version_tag(client, name, champion.version, TAG_ROLLED_BACK_BY, ctx.run_id)
    registry.written("rollback_tags")
    registry.crown(client, target)
    return record.finish(ctx, result)
