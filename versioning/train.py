"""The train_lr / train_rf steps: fit, log, register, and place the new version."""

from __future__ import annotations

import mlflow
import mlflow.sklearn
from mlflow.models import infer_signature

from versioning import decision, evaluation, lineage, record, registry, training
from versioning.data import features_and_labels
from versioning.step import StepContext


def run(ctx: StepContext, family: training.ModelFamily) -> str:
    config, client = ctx.config, ctx.client
    name = config["registered_model_name"]
    data_run_id = config["data_run_id"] or lineage.newest_data_run_id(client, ctx.experiment_id)
    data_run = lineage.get_data_run(client, data_run_id)
    train = lineage.load_split(client, data_run, "train")
    test = lineage.load_split(client, data_run, "test")
    train_x, train_y = features_and_labels(train, data_run.label_column)
    test_x, test_y = features_and_labels(test, data_run.label_column)

    model = training.fit(family, config, train_x, train_y)
    scores = evaluation.score(config, test_y, model.predict(test_x))

    logged = mlflow.get_run(ctx.run_id).data.params
    mlflow.log_params({key: str(value) for key, value in
                       {"model_family": family.name, "data_run_id": data_run.run_id}.items()
                       if key not in logged})
    mlflow.log_metrics({f"test_{key}": value for key, value in scores.items()})
    for split, frame, context, digest in (("train", train, "training", data_run.train_digest),
                                          ("test", test, "evaluation", data_run.test_digest)):
        lineage.log_split_input(frame, data_run_id=data_run.run_id, split=split,
                                label_column=data_run.label_column, digest=digest,
                                description=f"generate_data run {data_run.run_id}", context=context)
    sample = train_x.head(100)
    with lineage.quiet_integer_schema_hint():
        model_info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
            skops_trusted_types=list(family.skops_trusted_types),
            pip_requirements=training.pip_requirements(),
            signature=infer_signature(sample, model.predict(sample)),
            input_example=train_x.head(5),
        )

    # Everything above wrote only to this run; the registry changes from here on.
    version = mlflow.register_model(model_info.model_uri, name, tags={
        lineage.FAMILY_TAG: family.name,
        lineage.TRAINING_RUN_TAG: ctx.run_id,
        lineage.DATA_RUN_TAG: data_run.run_id,
        lineage.DATA_DIGEST_TAG: data_run.digest,
        lineage.TRAIN_DIGEST_TAG: data_run.train_digest,
        lineage.TEST_DIGEST_TAG: data_run.test_digest,
        "test_accuracy": repr(scores["accuracy"]),
    })
    mlflow.set_tags({"registered_model_name": name, "registered_model_version": str(version.version)})
    # Challenger first, even for the first version: should the process die before the
    # bootstrap below commits, the next compare_and_promote finds the version by its alias
    # and bootstraps it (see the write order in versioning/registry.py).
    registry.make_challenger(client, version)
    if not _may_bootstrap(client, name):
        placement = f"challenger (alias '{registry.CHALLENGER}', stage Staging)"
    else:
        reason = (f"Bootstrap: registered model {name!r} had no champion, so its first "
                  f"trained version (v{version.version}, {family.name}) became champion "
                  "without a comparison.")
        result = {**record.base_record(ctx, []), "decision": decision.BOOTSTRAP, "reason": reason,
                  "champion": record.describe_version(version, scores), "challenger": None,
                  "table": None, "method": None, "statistic": None, "p_value": None}
        record.tag_versions(client, result, [version])
        # Later comparisons overwrite the promotion.* tags; this one keeps the origin visible.
        registry.set_version_tag(client, name, version.version, record.TAG_BOOTSTRAP_RUN, ctx.run_id)
        registry.written("bootstrap_tags")
        registry.crown(client, version)
        record.log_json(result, record.DECISION_FILENAME)
        mlflow.set_tags({record.TAG_DECISION: decision.BOOTSTRAP, record.RUN_TAG_REASON: reason})
        placement = f"champion (alias '{registry.CHAMPION}', stage Production): {reason}"
    return (
        f"{ctx.step}: {family.name} test accuracy {scores['accuracy']:.4f}; registered "
        f"{name} v{version.version} as {placement} (run {ctx.run_id})"
    )


def _may_bootstrap(client, name: str) -> bool:
    """Whether the new version may become champion without a comparison: only when the model
    never had one. A champion that was lost (deleted) is not replaced silently; the next
    compare_and_promote reports it (registry.check_and_repair)."""
    if registry.version_by_alias(client, name, registry.CHAMPION) is not None:
        return False
    model = client.get_registered_model(name)
    return registry.TAG_MODEL_CHAMPION not in (model.tags or {})
