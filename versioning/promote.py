"""The compare_and_promote step: judge the challenger against the champion, then act.

Order of work: validate and repair the registry, resolve both versions, decide whether there
is anything new to compare (cheap: no model loading), score both models on the same held-out
rows, test, decide, record (decision.json, run metrics, version tags), and only then move
aliases and stages, re-reading the champion just before, so a concurrent promotion wins
cleanly instead of being overwritten.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow.entities.model_registry import ModelVersion

# evaluation (numpy/pandas scoring, scikit-learn metrics, mlxtend) is imported only when there
# is a comparison to make: with nothing new to compare this step returns in a fraction of a
# second, without loading a model or importing scikit-learn, scipy.stats, mlxtend or matplotlib.
from versioning import decision, lineage, record, registry
from versioning.config import POLICY_KEYS
from versioning.errors import WorkflowError
from versioning.step import StepContext

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Contenders:
    champion: ModelVersion | None
    challenger: ModelVersion | None


def resolve_contenders(ctx: StepContext) -> Contenders:
    config, client = ctx.config, ctx.client
    name = config["registered_model_name"]
    champion = registry.resolve_reference(client, name, config["champion"])
    challenger = registry.resolve_reference(client, name, config["challenger"])
    if champion is None and config["champion"] != registry.CHAMPION:
        raise WorkflowError(
            f"champion alias {config['champion']!r} is not set on {name!r}: "
            "pass an existing alias, version number or models:/ URI"
        )
    if challenger is None and config["challenger"] != registry.CHALLENGER:
        raise WorkflowError(
            f"challenger alias {config['challenger']!r} is not set on {name!r}: "
            "pass an existing alias, version number or models:/ URI"
        )
    if champion is not None and challenger is not None and str(champion.version) == str(challenger.version):
        if config["champion"] == registry.CHAMPION and config["challenger"] == registry.CHALLENGER:
            # Both default aliases on one version: a promotion that another process is
            # finishing (or that crashed after its commit); the alias is a leftover, not a
            # candidate. check_and_repair removes it on a run that sees it first.
            return Contenders(champion, None)
        raise WorkflowError(
            f"champion and challenger are the same version ({name} v{champion.version}): "
            "name two different versions"
        )
    return Contenders(champion, challenger)


def already_decided(ctx: StepContext, contenders: Contenders) -> str | None:
    """The earlier run that judged this exact pair under this exact policy, if any."""
    tags = contenders.challenger.tags
    if (
        tags.get(record.TAG_CHAMPION_VERSION) == str(contenders.champion.version)
        and tags.get(record.TAG_CHALLENGER_VERSION) == str(contenders.challenger.version)
        and tags.get(record.TAG_POLICY_DIGEST) == ctx.config.digest(POLICY_KEYS)
        # Only a keep is final: a promote recorded here whose crown() never ran (the
        # process died) must be redone, and comparing again reaches the same decision.
        and tags.get(record.TAG_DECISION) == decision.KEEP
    ):
        return tags.get(record.TAG_RUN_ID)
    return None


def run(ctx: StepContext) -> str:
    config, client = ctx.config, ctx.client
    name = config["registered_model_name"]
    dry_run = config["dry_run"]
    registry.require_registered_model(client, name)
    repairs = registry.check_and_repair(client, name, apply=not dry_run)
    contenders = resolve_contenders(ctx)
    base = record.base_record(ctx, repairs)

    if contenders.challenger is None:
        champion_text = (f"v{contenders.champion.version} stays champion"
                         if contenders.champion else "there is no champion yet")
        result = record.simple(base, decision.NO_CHALLENGER,
                               f"Nothing to compare: no version other than the champion "
                               f"holds alias '{config['challenger']}'; {champion_text}. Train a model "
                               "(e.g. mlflow run . -e train_rf) to create a challenger.",
                               contenders.champion, None)
        return record.finish(ctx, result)

    current = registry.version_by_alias(client, name, registry.CHAMPION)
    if current is not None and str(current.version) == str(contenders.challenger.version):
        # Named explicitly (e.g. -P champion=1 -P challenger=2 again after 2 was promoted).
        reason = (f"Nothing to do: challenger v{contenders.challenger.version} is already the "
                  f"champion (alias '{registry.CHAMPION}'); train a new challenger to compare "
                  "again.")
        result = record.simple(base, decision.UNCHANGED, reason, current, contenders.challenger)
        return record.finish(ctx, result)

    if contenders.champion is None:
        reason = (f"Bootstrap: {name} had no champion, so challenger "
                  f"v{contenders.challenger.version} became champion without a comparison.")
        result = record.simple(base, decision.BOOTSTRAP, reason, None, contenders.challenger)
        if not dry_run:
            current = registry.version_by_alias(client, name, registry.CHAMPION)
            if current is not None:  # another run crowned a champion since we looked
                return record.finish(ctx, record.superseded(result, current))
            record.tag_versions(client, result, [contenders.challenger])
            registry.set_version_tag(client, name, contenders.challenger.version,
                                     record.TAG_BOOTSTRAP_RUN, ctx.run_id)
            registry.written("bootstrap_tags")
            registry.crown(client, contenders.challenger)
        return record.finish(ctx, result)

    earlier_run = already_decided(ctx, contenders)
    if earlier_run is not None:
        earlier = contenders.challenger.tags.get(record.TAG_DECISION)
        reason = (f"Nothing new: challenger v{contenders.challenger.version} was already "
                  f"compared with champion v{contenders.champion.version} under this policy "
                  f"in run {earlier_run} (decision: {earlier}); train a new challenger or "
                  "change the policy to compare again.")
        result = record.simple(base, decision.UNCHANGED, reason,
                               contenders.champion, contenders.challenger)
        return record.finish(ctx, result)

    from versioning import evaluation

    comparison = evaluation.compare(ctx, contenders.champion, contenders.challenger)
    result = record.comparison_record(base, comparison)
    pair = [contenders.champion, contenders.challenger]
    if dry_run:
        return record.finish(ctx, result)
    if result["decision"] != decision.PROMOTE:
        record.tag_versions(client, result, pair)
        return record.finish(ctx, result)
    current = registry.version_by_alias(client, name, registry.CHAMPION)
    if current is None or str(current.version) != str(contenders.champion.version):
        # Another run promoted since we read the champion: its decision stands, ours is void.
        return record.finish(ctx, record.superseded(result, current))
    # Tags first, so a registry reader sees why before the change happens; should the process
    # die before crown() commits, the next run compares the same pair again (a recorded
    # promote is not final, see already_decided). crown()'s alias write is the commit.
    record.tag_versions(client, result, pair)
    registry.written("promotion_tags")
    registry.crown(client, contenders.challenger, previous=contenders.champion)
    after = registry.version_by_alias(client, name, registry.CHAMPION)
    if after is None or str(after.version) != str(contenders.challenger.version):
        # A concurrent promotion committed between our re-read and our alias write and won;
        # our stage write may have clobbered its stages: derive them from the alias again.
        registry.check_and_repair(client, name)
        return record.finish(ctx, record.superseded(result, after, committed=True))
    return record.finish(ctx, result)


def summarize_champion(client, name: str) -> dict[str, Any] | None:
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    if champion is None:
        return None
    return {"version": str(champion.version), "family": champion.tags.get(lineage.FAMILY_TAG),
            "stage": champion.current_stage, "decision": champion.tags.get(record.TAG_DECISION),
            "reason": champion.tags.get(record.TAG_REASON)}
