"""The decision record: decision.json, run metrics and tags, version tags, and the report.

A registry reader months later should see, on the version itself, why it is where it is;
an auditor should find every number behind that in the compare run's decision.json.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import tempfile
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from versioning import decision, lineage, registry
from versioning.config import POLICY_KEYS
from versioning.step import StepContext

SCHEMA_VERSION = 1
DECISION_FILENAME = "decision.json"
# Version tags of a decision. Few on purpose: MLflow's client reads every version of the
# registered model before each tag write (a prompt check), so each tag costs time in
# proportion to the registry's size. The key numbers have tags of their own; the rest of what
# a registry reader needs is one JSON tag, and every number is in the run's decision.json.
TAG_DECISION = "promotion.decision"
TAG_P_VALUE = "mcnemar.p_value"
TAG_METHOD = "mcnemar.method"
TAG_RECORD = "promotion.record"  # JSON object, keys below
RUN_TAG_REASON = "promotion.reason"  # on the compare (or bootstrapping train) run, beside its decision
TAG_BOOTSTRAP_RUN = "promotion.bootstrap_run_id"  # once, on the first champion; never overwritten
# Keys of promotion.record.
RUN_ID = "run_id"
REASON = "reason"
CHAMPION_VERSION = "champion_version"
CHALLENGER_VERSION = "challenger_version"
POLICY_DIGEST = "policy_digest"
# Several challengers (-P challengers=...): on each challenger compared, beside its own decision.
FAMILY_DECISION = "family_decision"  # the run's decision (promote: a winner)
CHALLENGER_VERSIONS = "challenger_versions"  # all compared in that run
P_ADJUSTED = "p_adjusted"  # Holm-adjusted McNemar p-value
OUTRANKED_BY = "outranked_by"  # the winner, if this loser is not better than it
_TAG_VALUE_LIMIT = 5000  # MLflow's limit on a model version tag value
_log = logging.getLogger(__name__)


def library_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in ("mlflow", "scikit-learn", "mlxtend", "numpy", "scipy")}


def base_record(ctx: StepContext, repairs: Iterable[registry.Repair]) -> dict[str, Any]:
    config = ctx.config
    return {
        "schema_version": SCHEMA_VERSION,
        "decision": None,
        "reason": None,
        "dry_run": bool(config["dry_run"]),
        "registered_model_name": config["registered_model_name"],
        "alpha": config["alpha"],
        "policy": {
            "primary_metric": config["primary_metric"],
            "tie_breaker": config["tie_breaker"],
            "min_delta": config["min_delta"],
            "mcnemar_method": config["mcnemar_method"],
            "ci_method": config["ci_method"],
            "confidence": config["confidence"],
            "digest": config.digest(POLICY_KEYS),
        },
        "repairs": [{"problem": r.problem, "action": r.action} for r in repairs],
        "run_id": ctx.run_id,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }


def describe_version(version: ModelVersion | None, metrics: Mapping[str, float] | None = None) -> dict[str, Any] | None:
    if version is None:
        return None
    described: dict[str, Any] = {
        "name": version.name,
        "version": str(version.version),
        "run_id": version.run_id,
        "family": version.tags.get(lineage.FAMILY_TAG),
        "stage": version.current_stage,
        "train_digest": version.tags.get(lineage.TRAIN_DIGEST_TAG),
        "data_run_id": version.tags.get(lineage.DATA_RUN_TAG),
    }
    if metrics is not None:
        described["accuracy"] = metrics["accuracy"]
        described["metrics"] = dict(metrics)
    elif version.tags.get("test_accuracy"):
        # No comparison ran: show the accuracy the training run measured, marked as such.
        described["accuracy"] = float(version.tags["test_accuracy"])
        described["accuracy_source"] = "training run's own test split"
    return described


def simple(base: dict[str, Any], outcome: str, reason: str,
           champion: ModelVersion | None, challenger: ModelVersion | None) -> dict[str, Any]:
    """A record with no comparison behind it (no_challenger, bootstrap, unchanged)."""
    return {**base, "decision": outcome, "reason": reason,
            "champion": describe_version(champion), "challenger": describe_version(challenger),
            "table": None, "method": None, "statistic": None, "p_value": None}


def comparison_record(base: dict[str, Any], comparison) -> dict[str, Any]:
    table = comparison.table
    (a, b), (c, d) = table.tolist()
    low, high = comparison.delta_ci
    return {
        **base,
        "decision": comparison.verdict.decision,
        "reason": comparison.verdict.reason,
        "champion": describe_version(comparison.champion, comparison.champion_metrics),
        "challenger": describe_version(comparison.challenger, comparison.challenger_metrics),
        "seeds": comparison.seeds,
        "table": [[a, b], [c, d]],
        "n": comparison.n_rows,
        "b": b,
        "c": c,
        "method": comparison.test.method,
        "statistic": comparison.test.statistic,
        "p_value": comparison.test.p_value,
        "p_values": comparison.p_values,
        "delta": {
            "metric": "accuracy",
            "value": (c - b) / comparison.n_rows,
            "ci_low": low,
            "ci_high": high,
            "confidence": base["policy"]["confidence"],
            "method": base["policy"]["ci_method"],
        },
        "test_set": {
            "data_run_id": comparison.data_run.run_id,
            "digest": comparison.data_run.test_digest,
            "data_digest": comparison.data_run.digest,
            "n_rows": comparison.n_rows,
        },
        "fairness": getattr(comparison, "fairness", None),
    }


def _not_better(policy: Mapping[str, Any], metrics: Mapping[str, float],
                winner: Mapping[str, float]) -> bool:
    """Whether ``decision.decide`` would keep ``winner`` as champion against these ``metrics``
    on the metric condition alone (primary metric, then tie-breaker), whatever the p-value."""
    order = decision._compare(policy["primary_metric"], metrics[policy["primary_metric"]],
                              winner[policy["primary_metric"]])
    if order == 0 and policy["tie_breaker"] is not None:
        order = decision._compare(policy["tie_breaker"], metrics[policy["tie_breaker"]],
                                  winner[policy["tie_breaker"]])
    return order <= 0


def multi_record(base: dict[str, Any], many, skipped: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The record of a comparison of several challengers (evaluation.ManyComparison).

    The top-level fields describe one pair, as for a single challenger, so that version tags,
    run metrics and the report read it the same way: the winner, or on a keep the challenger
    with the lowest adjusted p. ``comparisons`` has one entry per challenger compared.
    """
    selection = many.selection
    by_version = {str(r.version.version): r for r in many.challengers}
    records = {r.version: r for r in selection.records}
    top = selection.winner or min(selection.records, key=lambda r: (r.p_adjusted, int(r.version)))
    shown = by_version[top.version]
    comparison = SimpleNamespace(
        table=shown.table, n_rows=many.n_rows, delta_ci=shown.delta_ci, test=shown.test,
        p_values=shown.p_values, champion=many.champion, champion_metrics=many.champion_metrics,
        challenger=shown.version, challenger_metrics=shown.metrics, data_run=many.data_run,
        fairness=None, seeds=None,
        verdict=SimpleNamespace(decision=selection.decision, reason=selection.reason),
    )
    result = comparison_record(base, comparison)
    seeds = many.seeds or {}
    result["seeds"] = {"data": seeds.get("data"), "champion_training": seeds.get("champion_training"),
                       "challenger_training": seeds.get(f"v{top.version}_training")}
    fairness_section = dict(many.fairness) if many.fairness is not None else None
    if fairness_section is not None:
        fairness_section["challenger"] = next(
            (c for c in fairness_section.get("challengers") or [] if c["version"] == top.version),
            None)
    result["fairness"] = fairness_section
    winner_metrics = by_version[selection.winner.version].metrics if selection.winner else None
    comparisons = []
    for entry in selection.comparisons():
        version = by_version[entry["version"]].version
        entry["family"] = version.tags.get(lineage.FAMILY_TAG)
        entry["run_id"] = version.run_id
        entry["training_seed"] = seeds.get(f"v{entry['version']}_training")
        entry["p_values"] = by_version[entry["version"]].p_values
        entry["outranked_by"] = (
            selection.winner.version
            if winner_metrics is not None and not records[entry["version"]].selected
            and _not_better(base["policy"], by_version[entry["version"]].metrics, winner_metrics)
            else None)
        comparisons.append(entry)
    result["policy"] = {**result["policy"], "cochrans_q": selection.omnibus is not None}
    result.update({
        "p_adjusted": top.p_adjusted,
        "correction": selection.correction,
        "omnibus": selection.omnibus.as_dict() if selection.omnibus is not None else None,
        "comparisons": comparisons,
        "skipped": list(skipped or []),
    })
    return result


def family_tags(result: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Version tags of a several-challenger record, by version: each challenger gets its own
    decision (promote for the winner, keep for the others) with its own numbers and reason;
    the champion gets the record's top-level tags."""
    common = {FAMILY_DECISION: result["decision"],
              CHALLENGER_VERSIONS: [c["version"] for c in result["comparisons"]]}
    tags = {result["champion"]["version"]: version_tags(result, common)}
    for entry in result["comparisons"]:
        own = {
            **result,
            "decision": decision.PROMOTE if entry["selected"] else decision.KEEP,
            "reason": entry["why"],
            "challenger": {"version": entry["version"]},
            "p_value": entry["p_value"], "method": entry["method"],
            "statistic": entry["statistic"], "b": entry["b"], "c": entry["c"],
            "n": entry["n"], "delta": entry["delta"],
        }
        extra = {**common, P_ADJUSTED: entry["p_adjusted"]}
        if entry.get("outranked_by"):
            extra[OUTRANKED_BY] = entry["outranked_by"]
        tags[entry["version"]] = version_tags(own, extra)
    return tags


def tag_family(client: MlflowClient, result: Mapping[str, Any], name: str) -> None:
    """Write :func:`family_tags` (champion first, then the challengers in order)."""
    for version, tags in family_tags(result).items():
        for key, value in tags.items():
            registry.set_version_tag(client, name, version, key, value)


def superseded(result: dict[str, Any], current: ModelVersion | None,
               committed: bool = False) -> dict[str, Any]:
    """The record of a run whose promotion lost to a concurrent one.

    Usually the loss is seen before writing (``committed=False``: nothing was written). The
    registry has no compare-and-set, so a concurrent promotion can also overwrite ours in the
    milliseconds after our re-read (``committed=True``); the alias then names the other
    version, the stages have been re-derived from it, and this record says so.
    """
    holder = f"v{current.version}" if current is not None else "no version"
    verb = "crowned" if result["decision"] == decision.BOOTSTRAP else "promoted"
    if committed:
        what = (f"Superseded: this run {verb} v{result['challenger']['version']}, but a "
                f"concurrent run then made {holder} champion; the registry follows {holder}, "
                "compare again against it.")
    else:
        what = (f"Superseded: this run would have {verb} v{result['challenger']['version']}, "
                f"but the champion changed to {holder} while it compared; nothing was "
                "written, compare again against the new champion.")
    return {**result, "decision": decision.SUPERSEDED, "decided": result["decision"],
            "reason": what}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # 'inf': the tag stays strict JSON
    return value


def version_tags(result: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The tags a decision leaves on a version: decision, p-value and method, and the record.

    ``promotion.record`` holds the run id, reason, versions, policy digest and the test's
    numbers (statistic, b, c, n, delta_accuracy, alpha) plus ``extra``; the reason is
    shortened if needed to keep the value within MLflow's 5,000 characters.
    """
    fields: dict[str, Any] = {RUN_ID: result["run_id"], POLICY_DIGEST: result["policy"]["digest"]}
    if result.get("champion"):
        fields[CHAMPION_VERSION] = result["champion"]["version"]
    if result.get("challenger"):
        fields[CHALLENGER_VERSION] = result["challenger"]["version"]
    tags = {TAG_DECISION: result["decision"]}
    if result.get("p_value") is not None:
        tags[TAG_P_VALUE] = repr(result["p_value"])
        tags[TAG_METHOD] = result["method"]
        fields.update({"statistic": result["statistic"], "b": result["b"], "c": result["c"],
                       "n": result["n"], "delta_accuracy": result["delta"]["value"],
                       "alpha": result["alpha"]})
    fields.update(extra or {})
    fields = {key: _json_safe(value) for key, value in fields.items()}
    reason = result["reason"]
    # ensure_ascii=False: the registry UI shows "≥" and "Δ" in the reason, not \u escapes.
    tags[TAG_RECORD] = json.dumps({REASON: reason, **fields}, ensure_ascii=False, allow_nan=False)
    excess = len(tags[TAG_RECORD]) - _TAG_VALUE_LIMIT
    if excess > 0:  # each character cut is at least one of JSON; "..." adds three
        tags[TAG_RECORD] = json.dumps({REASON: reason[:max(0, len(reason) - excess - 3)] + "...",
                                       **fields}, ensure_ascii=False, allow_nan=False)
    return tags


def version_record(version: ModelVersion) -> dict[str, Any]:
    """The ``promotion.record`` of ``version`` ({} when it has none or it is not a JSON object,
    e.g. edited by hand: the version then counts as undecided)."""
    try:
        found = json.loads(version.tags.get(TAG_RECORD) or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def tag_versions(client: MlflowClient, result: Mapping[str, Any], versions: Iterable[ModelVersion]) -> None:
    tags = version_tags(result)
    for version in versions:
        for key, value in tags.items():
            registry.set_version_tag(client, version.name, version.version, key, value)


def run_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    found: dict[str, float] = {}
    if result.get("p_value") is not None:
        found.update({"p_value": result["p_value"], "b": result["b"], "c": result["c"],
                      "n": result["n"], "delta_accuracy": result["delta"]["value"],
                      "delta_ci_low": result["delta"]["ci_low"],
                      "delta_ci_high": result["delta"]["ci_high"]})
        if result["statistic"] is not None:
            found["statistic"] = result["statistic"]
        for method, p in result["p_values"].items():
            found[f"p_value_{method}"] = p
    for role in ("champion", "challenger"):
        described = result.get(role) or {}
        for name, value in (described.get("metrics") or {}).items():
            found[f"{role}_{name}"] = value
    if result.get("p_adjusted") is not None:
        found["p_adjusted"] = result["p_adjusted"]
    for entry in result.get("comparisons") or []:
        number = entry["version"]
        found[f"v{number}_p_value"] = entry["p_value"]
        found[f"v{number}_p_adjusted"] = entry["p_adjusted"]
        found[f"v{number}_eligible"] = float(entry["eligible"])
        for name, value in entry["metrics"].items():
            found[f"v{number}_{name}"] = value
    if result.get("omnibus"):
        found["cochrans_q_statistic"] = result["omnibus"]["statistic"]
        found["cochrans_q_p_value"] = result["omnibus"]["p_value"]
    return found


def log_json(payload: Mapping[str, Any], artifact_name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / artifact_name
        path.write_text(json.dumps(payload, indent=2, default=str, allow_nan=False))
        mlflow.log_artifact(str(path))


def finish(ctx: StepContext, result: dict[str, Any]) -> str:
    """Log the record into the compare run and return the step's human-readable summary.

    The report (contingency.png, report.html) is written for records with a comparison behind
    them; a run that compared nothing (no_challenger, unchanged, bootstrap) logs decision.json
    only, which keeps that path free of matplotlib (about a second to import).
    """
    log_json(result, DECISION_FILENAME)
    metrics = run_metrics(result)
    if metrics:
        mlflow.log_metrics(metrics)
    mlflow.set_tags({TAG_DECISION: result["decision"], RUN_TAG_REASON: result["reason"][:_TAG_VALUE_LIMIT],
                     "promotion.dry_run": str(result["dry_run"]).lower()})
    if result.get("table") is not None:
        from versioning import report

        with tempfile.TemporaryDirectory() as tmp:
            for path in report.write_report(result, Path(tmp)):
                mlflow.log_artifact(str(path))
    prefix = "[dry run: registry untouched] " if result["dry_run"] else ""
    return f"compare_and_promote: {prefix}{result['decision']}. {result['reason']} (run {ctx.run_id})"
