"""The compare_and_promote step: judge the challenger(s) against the champion, then act.

Order of work: validate and repair the registry, resolve the versions, decide whether there
is anything new to compare (cheap: no model loading), score the models on the same held-out
rows, test, decide, record (decision.json, run metrics, version tags), and only then move
aliases and stages, re-reading the champion just before, so a concurrent promotion wins
cleanly instead of being overwritten.

``-P challengers`` names several challengers (a comma-separated list, or ``staging`` for every
version in Staging). Each is McNemar-tested against the champion, the p-values are
Holm-adjusted (versioning.multi), and at most one, the best eligible, is promoted exactly as a
single challenger is; the others keep their stage. One challenger (the default, alias
``challenger``) takes the single-challenger path and records what it always did.
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
from versioning.config import MAX_CHALLENGERS, POLICY_KEYS, STAGING_CHALLENGERS, challenger_references
from versioning.errors import WorkflowError
from versioning.step import StepContext

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Contenders:
    champion: ModelVersion | None
    challenger: ModelVersion | None


def resolve_champion(ctx: StepContext) -> ModelVersion | None:
    config, client = ctx.config, ctx.client
    name = config["registered_model_name"]
    champion = registry.resolve_reference(client, name, config["champion"])
    if champion is None and config["champion"] != registry.CHAMPION:
        raise WorkflowError(
            f"champion alias {config['champion']!r} is not set on {name!r}: "
            "pass an existing alias, version number or models:/ URI"
        )
    return champion


def resolve_contenders(ctx: StepContext, reference: str | None = None) -> Contenders:
    """The champion and the one challenger ``reference`` (default: the config's only one)."""
    config, client = ctx.config, ctx.client
    name = config["registered_model_name"]
    if reference is None:
        (reference,) = challenger_references(config["challengers"])
    champion = resolve_champion(ctx)
    challenger = registry.resolve_reference(client, name, reference)
    if challenger is None and reference != registry.CHALLENGER:
        raise WorkflowError(
            f"challenger alias {reference!r} is not set on {name!r}: "
            "pass an existing alias, version number or models:/ URI"
        )
    if champion is not None and challenger is not None and str(champion.version) == str(challenger.version):
        if config["champion"] == registry.CHAMPION and reference == registry.CHALLENGER:
            # Both default aliases on one version: a promotion that another process is
            # finishing (or that crashed after its commit); the alias is a leftover, not a
            # candidate. check_and_repair removes it on a run that sees it first.
            return Contenders(champion, None)
        raise WorkflowError(
            f"champion and challenger are the same version ({name} v{champion.version}): "
            "name two different versions"
        )
    return Contenders(champion, challenger)


def resolve_family(ctx: StepContext, references: tuple[str, ...]) -> tuple[ModelVersion | None, list[ModelVersion]]:
    """The champion and the challengers named by ``-P challengers`` (a list, or staging)."""
    config, client = ctx.config, ctx.client
    name = config["registered_model_name"]
    champion = resolve_champion(ctx)
    if references == (STAGING_CHALLENGERS,):
        # The champion is in Staging only while a crashed promotion awaits its repair (a dry
        # run does not apply it): it is never its own challenger.
        found = registry.versions_in_stage(client, name, registry.STAGING)
        return champion, [v for v in found
                          if champion is None or str(v.version) != str(champion.version)]
    challengers: list[ModelVersion] = []
    named: dict[str, str] = {}
    for reference in references:
        version = registry.resolve_reference(client, name, reference)
        if version is None:
            raise WorkflowError(
                f"challenger alias {reference!r} (in challengers) is not set on {name!r}: "
                "pass existing aliases, version numbers or models:/ URIs, or "
                f"-P challengers={STAGING_CHALLENGERS}"
            )
        number = str(version.version)
        if champion is not None and number == str(champion.version):
            if config["champion"] == registry.CHAMPION and reference == registry.CHALLENGER:
                continue  # a promotion's leftover alias (see resolve_contenders), not a candidate
            raise WorkflowError(
                f"challengers names {reference!r}, which is the champion ({name} v{number}): "
                "list only versions to compare with the champion"
            )
        if number in named:
            raise WorkflowError(
                f"challengers names {name} v{number} twice ({named[number]!r} and "
                f"{reference!r}): list each challenger once"
            )
        named[number] = reference
        challengers.append(version)
    return champion, challengers


COMPARED, OUTRANKED = "compared", "outranked"  # why an earlier keep still stands


def decided_earlier(ctx: StepContext, champion: ModelVersion,
                    challenger: ModelVersion) -> tuple[str | None, str] | None:
    """(run id, COMPARED or OUTRANKED) of an earlier run whose ``keep`` of ``challenger``
    still stands against ``champion`` under this exact policy; None if it must be compared.

    Read from the challenger's ``promotion.record``. COMPARED: kept against this very
    champion, unless it lost to another challenger of the same run that was then promoted
    (``family_decision`` promote): without its crown() (a crash) that family must be compared
    again, the whole of it. OUTRANKED: kept in a run that promoted the version now champion,
    and not better than it on the policy's metrics (``outranked_by``): compared with it on
    the same rows it would be kept, whatever its p-value.
    """
    recorded = record.version_record(challenger)
    if (recorded.get(record.CHALLENGER_VERSION) != str(challenger.version)
            or recorded.get(record.POLICY_DIGEST) != ctx.config.digest(POLICY_KEYS)
            # Only a keep is final: a promote recorded here whose crown() never ran (the
            # process died) must be redone, and comparing again reaches the same decision.
            or challenger.tags.get(record.TAG_DECISION) != decision.KEEP):
        return None
    number = str(champion.version)
    family = recorded.get(record.FAMILY_DECISION)
    if recorded.get(record.CHAMPION_VERSION) == number and family in (None, decision.KEEP):
        return recorded.get(record.RUN_ID), COMPARED
    if family == decision.PROMOTE and recorded.get(record.OUTRANKED_BY) == number:
        return recorded.get(record.RUN_ID), OUTRANKED
    return None


def earlier_text(ctx: StepContext, numbers: list[str], run_id: str | None, kind: str,
                 champion: ModelVersion) -> str:
    """'challenger v2 was already compared with champion v1 ... (decision: keep)'."""
    several = len(numbers) > 1
    who = ("challengers " if several else "challenger ") + ", ".join(f"v{n}" for n in numbers)
    if kind == COMPARED:
        return (f"{who} {'were' if several else 'was'} already compared with champion "
                f"v{champion.version} under this policy in run {run_id} (decision: keep)")
    config = ctx.config
    metrics = config["primary_metric"] + (f" or {config['tie_breaker']}"
                                          if config["tie_breaker"] else "")
    return (f"{who} lost to v{champion.version}, now champion, in run {run_id} under this "
            f"policy and {'are' if several else 'is'} not better than it on {metrics} on the "
            "same rows (decision: keep)")


def already_decided(ctx: StepContext, contenders: Contenders) -> str | None:
    """The earlier run that judged this exact pair under this exact policy, if any."""
    found = decided_earlier(ctx, contenders.champion, contenders.challenger)
    return None if found is None else found[0]


def run(ctx: StepContext) -> str:
    config, client = ctx.config, ctx.client
    name = config["registered_model_name"]
    dry_run = config["dry_run"]
    model = registry.require_registered_model(client, name)
    repairs = registry.check_and_repair(client, name, apply=not dry_run, model=model)
    references = challenger_references(config["challengers"])
    if references == (STAGING_CHALLENGERS,) or len(references) > 1:
        champion, challengers = resolve_family(ctx, references)
        if len(challengers) > 1:
            return run_family(ctx, record.base_record(ctx, repairs), champion, challengers)
        # One challenger, however it was named: exactly the single-challenger path.
        contenders = Contenders(champion, challengers[0] if challengers else None)
        where = ("is in stage Staging" if references == (STAGING_CHALLENGERS,)
                 else f"is among challengers '{config['challengers']}'")
    else:
        contenders = resolve_contenders(ctx, references[0])
        where = f"holds alias '{references[0]}'"
    base = record.base_record(ctx, repairs)

    if contenders.challenger is None:
        champion_text = (f"v{contenders.champion.version} stays champion"
                         if contenders.champion else "there is no champion yet")
        result = record.simple(base, decision.NO_CHALLENGER,
                               f"Nothing to compare: no version other than the champion "
                               f"{where}; {champion_text}. Train a model "
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

    earlier = decided_earlier(ctx, contenders.champion, contenders.challenger)
    if earlier is not None:
        text = earlier_text(ctx, [str(contenders.challenger.version)], *earlier,
                            contenders.champion)
        reason = (f"Nothing new: {text}; train a new challenger or change the policy to "
                  "compare again.")
        result = record.simple(base, decision.UNCHANGED, reason,
                               contenders.champion, contenders.challenger)
        return record.finish(ctx, result)

    from versioning import evaluation

    comparison = evaluation.compare(ctx, contenders.champion, contenders.challenger)
    result = record.comparison_record(base, comparison)
    pair = [contenders.champion, contenders.challenger]
    return act(ctx, result, contenders.champion, contenders.challenger,
               lambda: record.tag_versions(client, result, pair))


def run_family(ctx: StepContext, base: dict[str, Any], champion: ModelVersion | None,
               challengers: list[ModelVersion]) -> str:
    """Several challengers: skip those already decided, compare the rest at once (Holm),
    then act on the winner, if any, exactly as on a single challenger."""
    config, client = ctx.config, ctx.client
    name = config["registered_model_name"]
    listed = ", ".join(f"v{v.version}" for v in challengers)
    if champion is None:
        raise WorkflowError(
            f"registered model {name!r} has no champion, and challengers names "
            f"{len(challengers)} versions ({listed}): the first champion is made without a "
            "comparison, so name one (-P challengers=<version>) to bootstrap it, then compare "
            "the others against it"
        )
    to_compare: list[ModelVersion] = []
    skipped: list[dict[str, Any]] = []
    groups: dict[tuple[str | None, str], list[str]] = {}
    for version in challengers:
        earlier = decided_earlier(ctx, champion, version)
        if earlier is None:
            to_compare.append(version)
            continue
        number = str(version.version)
        groups.setdefault(earlier, []).append(number)
        skipped.append({"version": number, "run_id": earlier[0], "kind": earlier[1],
                        "why": earlier_text(ctx, [number], *earlier, champion)})
    if not to_compare:
        texts = [earlier_text(ctx, numbers, *key, champion) for key, numbers in groups.items()]
        reason = (f"Nothing new: {'; '.join(texts)}; train a new challenger or change the "
                  "policy to compare again.")
        result = {**record.simple(base, decision.UNCHANGED, reason, champion, None),
                  "skipped": skipped}
        return record.finish(ctx, result)
    if len(to_compare) > MAX_CHALLENGERS:
        raise WorkflowError(
            f"{len(to_compare)} challengers to compare ({', '.join(f'v{v.version}' for v in to_compare)}); "
            f"at most {MAX_CHALLENGERS} are compared in one run: name some with "
            "-P challengers=<v1>,<v2>,... (or archive the others)"
        )

    from versioning import evaluation

    many = evaluation.compare_many(ctx, champion, to_compare)
    result = record.multi_record(base, many, skipped)
    winner = next((v for v in to_compare
                   if many.selection.winner is not None
                   and str(v.version) == many.selection.winner.version), None)
    # Every challenger compared gets its own decision; the losers keep their stage and aliases.
    return act(ctx, result, champion, winner, lambda: record.tag_family(client, result, name))


def act(ctx: StepContext, result: dict[str, Any], champion: ModelVersion,
        winner: ModelVersion | None, write_tags) -> str:
    """Record a comparison's decision; on promote, crown ``winner`` (crash- and race-safe)."""
    client = ctx.client
    name = ctx.config["registered_model_name"]
    if ctx.config["dry_run"]:
        return record.finish(ctx, result)
    if result["decision"] != decision.PROMOTE:
        write_tags()
        return record.finish(ctx, result)
    current = registry.version_by_alias(client, name, registry.CHAMPION)
    if current is None or str(current.version) != str(champion.version):
        # Another run promoted since we read the champion: its decision stands, ours is void.
        return record.finish(ctx, record.superseded(result, current))
    # Tags first, so a registry reader sees why before the change happens; should the process
    # die before crown() commits, the next run compares the same pair (or family) again (a
    # recorded promote is not final, see decided_earlier). crown()'s alias write is the commit.
    write_tags()
    registry.written("promotion_tags")
    registry.crown(client, winner, previous=champion)
    after = registry.version_by_alias(client, name, registry.CHAMPION)
    if after is None or str(after.version) != str(winner.version):
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
            "reason": record.version_record(champion).get(record.REASON)}
