"""The main step: run the four steps in order as child runs of one parent run."""

from __future__ import annotations

import logging

import mlflow.projects
from mlflow.exceptions import ExecutionException

from versioning import promote, registry
from versioning.config import PROJECT_ROOT
from versioning.errors import WorkflowError
from versioning.step import StepContext

_log = logging.getLogger(__name__)
STEPS = ("generate_data", "train_lr", "train_rf", "compare_and_promote")


def launch(ctx: StepContext, entry_point: str, parameters: dict[str, str]) -> str:
    """Run one entry point through MLflow Projects as a child of the active run."""
    _log.info("main: launching %s with %s", entry_point, parameters)
    try:
        submitted = mlflow.projects.run(
            uri=str(PROJECT_ROOT), entry_point=entry_point, parameters=parameters,
            env_manager="local", experiment_id=ctx.experiment_id, synchronous=True,
        )
    except ExecutionException as exc:
        raise WorkflowError(f"step {entry_point} failed ({exc}); its error is printed above") from None
    return submitted.run_id


def run(ctx: StepContext) -> str:
    config = ctx.config
    parameters = {"config": str(config.source), **config.overrides}
    data_run_id = config["data_run_id"]
    if data_run_id is None:
        data_run_id = launch(ctx, "generate_data", parameters)
    training_parameters = {**parameters, "data_run_id": data_run_id}
    for entry_point in ("train_lr", "train_rf"):
        launch(ctx, entry_point, training_parameters)
    compare_run_id = launch(ctx, "compare_and_promote", parameters)

    name = config["registered_model_name"]
    outcome = ctx.client.get_run(compare_run_id).data.tags
    champion = promote.summarize_champion(ctx.client, name)
    if champion is None:
        return f"main: {name} has no champion (decision: {outcome.get('promotion.decision')})."
    return (
        f"main: champion of {name} is now v{champion['version']} ({champion['family']}, "
        f"stage {champion['stage']}, alias '{registry.CHAMPION}'). Last decision: "
        f"{outcome.get('promotion.decision')}. {outcome.get('promotion.reason')}"
    )
