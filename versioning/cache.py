"""The step cache: reuse a FINISHED run of a step instead of running it again.

A run of ``generate_data``, ``train_lr`` or ``train_rf`` is reused, not re-run, when all four
parts of its key match:

1. the **entry point** (tag ``versioning.step``);
2. the **parameters** the step depends on (``config.STEP_KEYS[step]``), compared as the strings
   MLflow stores: a ``-P`` value exactly as typed (MLflow Projects logs it unparsed), any other
   key as ``str(value)``. ``-P lr_C=0.01`` and ``-P lr_C=1e-2`` are therefore different keys:
   a needless re-run, never a wrong reuse;
3. the **code version** (tag ``versioning.code_version``: a content hash of ``MLproject``,
   ``versioning/``, ``steps/`` and ``configs/``, see :func:`versioning.step.code_version`);
4. the **input data digest** (tag ``versioning.input_digest``): for ``generate_data`` the
   SHA-256 of a user's CSV/Parquet file, or the scikit-learn and numpy versions that generate a
   synthetic or bundled dataset; for the training steps the ``data.digest`` of their data run.

Only FINISHED runs qualify (never FAILED, KILLED or still RUNNING ones) and the newest matching
one wins. Every step tags its own run with the key (:func:`tag_values`, called from
``step.log_step_metadata``), whichever way it was launched, so one indexed search on the tag
``versioning.cache_key`` finds candidates; each candidate is then checked part by part
against its own params and tags (:func:`matches`).

A reused training run registers nothing: its version already exists. It is only reused while
that version still exists and names it as its training run (:func:`usable`); it keeps whatever
alias and stage the gate gave it. ``compare_and_promote`` is never cached: it must see the
registry as it is now (and is cheap when there is nothing new to compare).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from versioning.config import PROJECT_ROOT, STEP_KEYS, Config
from versioning.lineage import DATA_DIGEST_TAG, STEP_TAG, TRAINING_RUN_TAG

CACHE_KEY_TAG = "versioning.cache_key"
INPUT_DIGEST_TAG = "versioning.input_digest"
CODE_VERSION_TAG = "versioning.code_version"  # set by step.log_step_metadata
CACHEABLE_STEPS = ("generate_data", "train_lr", "train_rf")
# Newest matching candidates examined before giving up (a candidate can fail `usable`).
_CANDIDATES = 5
_HASH_BLOCK = 1 << 20
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheKey:
    entry_point: str
    params: Mapping[str, str] = field(hash=False)
    code_version: str
    input_digest: str

    def digest(self) -> str:
        canonical = json.dumps(
            {"entry_point": self.entry_point, "params": dict(sorted(self.params.items())),
             "code_version": self.code_version, "input_digest": self.input_digest},
            sort_keys=True,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def stored_params(step: str, config: Config, launch_params: Mapping[str, str]) -> dict[str, str]:
    """The step's parameters as MLflow will store them for a launch with ``launch_params``.

    MLflow Projects logs the ``-P`` parameters it was given (shell-quoted, as it passes them on);
    ``step.log_step_metadata`` then adds every other key the step depends on as ``str(value)``.
    """
    return {
        key: shlex.quote(str(launch_params[key])) if key in launch_params else str(config[key])
        for key in STEP_KEYS[step]
    }


def _file_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            hasher.update(block)
    return hasher.hexdigest()


def input_digest(step: str, config: Config, client: MlflowClient) -> str | None:
    """The digest of what ``step`` reads, or None when it cannot be known up front.

    None makes the run neither reusable nor tagged (e.g. a training run told to use "the newest
    data run" rather than a named one, or a data file that does not exist: the step itself
    reports that error).
    """
    if step == "generate_data":
        source = config["data_source"]
        if source == "synthetic" or source.startswith("sklearn:"):
            # Generated or bundled data is a function of the params and of these libraries.
            return "generated:" + ",".join(
                f"{name}=={metadata.version(name)}" for name in ("scikit-learn", "numpy"))
        path = Path(source).expanduser()
        if not path.is_absolute() and not path.exists():
            path = PROJECT_ROOT / path  # resolved as generate.build_frame resolves it
        if not path.is_file():
            return None
        return f"file:{_file_digest(path)}"
    if step in ("train_lr", "train_rf"):
        data_run_id = config["data_run_id"]
        if data_run_id is None:
            return None
        try:
            digest = client.get_run(data_run_id).data.tags.get(DATA_DIGEST_TAG)
        except MlflowException:
            return None
        return f"data:{digest}" if digest else None
    return None


def key_for(step: str, config: Config, params: Mapping[str, str], code: str,
            client: MlflowClient) -> CacheKey | None:
    """The cache key of ``step`` run with ``config`` whose stored params are ``params``."""
    if step not in CACHEABLE_STEPS:
        return None
    digest = input_digest(step, config, client)
    if digest is None:
        return None
    return CacheKey(step, {key: params[key] for key in STEP_KEYS[step]}, code, digest)


def tag_values(key: CacheKey) -> dict[str, str]:
    """The tags that make a run findable by :func:`find_reusable`."""
    return {CACHE_KEY_TAG: key.digest(), INPUT_DIGEST_TAG: key.input_digest}


def matches(run: Run, key: CacheKey) -> str | None:
    """Why ``run`` does not match ``key`` (None when it does): every part, checked again."""
    tags, params = run.data.tags, run.data.params
    if run.info.status != "FINISHED":
        return f"status is {run.info.status}"
    if tags.get(STEP_TAG) != key.entry_point:
        return f"entry point {tags.get(STEP_TAG)!r}, not {key.entry_point!r}"
    if tags.get(CODE_VERSION_TAG) != key.code_version:
        return "other code version"
    if tags.get(INPUT_DIGEST_TAG) != key.input_digest:
        return "other input data"
    for name, value in key.params.items():
        if params.get(name) != value:
            return f"param {name}={params.get(name)!r}, not {value!r}"
    return None


def usable(client: MlflowClient, run: Run, config: Config) -> str | None:
    """Why a matching ``run`` cannot be reused (None when it can)."""
    if run.data.tags.get(STEP_TAG) not in ("train_lr", "train_rf"):
        return None
    name = run.data.tags.get("registered_model_name")
    version = run.data.tags.get("registered_model_version")
    if name != config["registered_model_name"] or not version:
        return "it registered no version of this model"
    try:
        registered = client.get_model_version(name, version)
    except MlflowException:
        return f"its version {name} v{version} no longer exists"
    if registered.tags.get(TRAINING_RUN_TAG) != run.info.run_id:
        return f"{name} v{version} was not registered by it"
    return None


def find_reusable(client: MlflowClient, experiment_id: str, key: CacheKey,
                  config: Config) -> Run | None:
    """The newest FINISHED run of ``experiment_id`` that matches ``key`` and is usable."""
    candidates = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{CACHE_KEY_TAG}` = '{key.digest()}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=_CANDIDATES,
    )
    for run in candidates:
        problem = matches(run, key) or usable(client, run, config)
        if problem is None:
            return run
        _log.info("cache: not reusing %s run %s: %s", key.entry_point, run.info.run_id, problem)
    return None
