"""The decision record: decision.json, run metrics and tags, version tags, and the report.

A registry reader months later should see, on the version itself, why it is where it is;
an auditor should find every number behind that in the compare run's decision.json.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
from collections.abc import Iterable, Mapping
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
TAG_DECISION = "promotion.decision"
TAG_REASON = "promotion.reason"
TAG_RUN_ID = "promotion.run_id"
TAG_CHAMPION_VERSION = "promotion.champion_version"
TAG_CHALLENGER_VERSION = "promotion.challenger_version"
TAG_POLICY_DIGEST = "promotion.policy_digest"
TAG_BOOTSTRAP_RUN = "promotion.bootstrap_run_id"
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


def version_tags(result: Mapping[str, Any]) -> dict[str, str]:
    tags = {
        TAG_DECISION: result["decision"],
        TAG_REASON: result["reason"][:_TAG_VALUE_LIMIT],
        TAG_RUN_ID: result["run_id"],
        TAG_POLICY_DIGEST: result["policy"]["digest"],
    }
    if result.get("champion"):
        tags[TAG_CHAMPION_VERSION] = result["champion"]["version"]
    if result.get("challenger"):
        tags[TAG_CHALLENGER_VERSION] = result["challenger"]["version"]
    if result.get("p_value") is not None:
        tags.update({
            "mcnemar.p_value": repr(result["p_value"]),
            "mcnemar.method": result["method"],
            "mcnemar.statistic": repr(result["statistic"]),
            "mcnemar.b": str(result["b"]),
            "mcnemar.c": str(result["c"]),
            "mcnemar.n": str(result["n"]),
            "promotion.delta_accuracy": repr(result["delta"]["value"]),
            "promotion.alpha": repr(result["alpha"]),
        })
    return tags


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
    mlflow.set_tags({TAG_DECISION: result["decision"], TAG_REASON: result["reason"][:_TAG_VALUE_LIMIT],
                     "promotion.dry_run": str(result["dry_run"]).lower()})
    if result.get("table") is not None:
        from versioning import report

        with tempfile.TemporaryDirectory() as tmp:
            for path in report.write_report(result, Path(tmp)):
                mlflow.log_artifact(str(path))
    prefix = "[dry run: registry untouched] " if result["dry_run"] else ""
    return f"compare_and_promote: {prefix}{result['decision']}. {result['reason']} (run {ctx.run_id})"
