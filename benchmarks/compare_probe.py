"""Helper of benchmarks/run.py: builds the stores it measures and times compare_and_promote.

Subcommands (each prints one JSON object on its last stdout line):

``setup STORE``
    A sqlite store in directory STORE with the workflow's own generate_data, train_lr and
    train_rf runs (default config: 10,000 rows), i.e. v1 logistic regression (champion) and v2
    random forest (challenger) of model ``classifier``.
``big-test STORE --rows N``
    A data run shaped like generate_data's (same tags, ``data/train.parquet`` = the setup's
    training split, ``data/test.parquet`` = N rows of the training distribution written in row
    groups of 100,000, straight into the run's local artifact directory).
``grow STORE --versions N``
    Registers versions of the logistic regression until the model has N versions (one source,
    ``MlflowClient.create_model_version``, archived), keeping aliases where they are.
``time-scale STORE --rows N --iterations K``
    A copy of the trained forest tagged with the N-row data run becomes champion; then K full
    comparisons in this process (after one warm-up), each against a fresh copy of the logistic
    regression as challenger (decision keep): step time, time inside the two models' predict
    calls, and the peak RSS of the process.
``time-registry STORE_A STORE_B --iterations K``
    Alternating full comparisons (and no-challenger fast paths) on two stores, in this process.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))
DEFAULT_CONFIG = str(PROJECT_ROOT / "configs" / "default.yaml")
NAME = "classifier"
BIG_RUN_TAG = "benchmark.big_test_rows"


def _use(store: Path) -> None:
    import mlflow

    uri = f"sqlite:///{store / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)


def _step(name: str, *overrides: str) -> tuple[int, str]:
    """Run an entry point in this process (as tests/conftest.py does); (exit code, stdout)."""
    from versioning import entry_points, step

    argv = ["--config", DEFAULT_CONFIG]
    for item in overrides:
        key, value = item.split("=", 1)
        argv += [f"--{key}", value]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = step.main(name, entry_points.body(name), argv)
    return code, out.getvalue()


def _client():
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def _open(store: Path):
    """Make ``store`` this process's store (and working directory); its client."""
    _use(store)
    os.chdir(store)
    return _client()


def setup(store: Path) -> dict:
    store.mkdir(parents=True, exist_ok=True)
    os.chdir(store)  # the Default experiment's artifacts go under STORE/mlruns
    _use(store)
    for name in ("generate_data", "train_lr", "train_rf"):
        code, out = _step(name)
        if code != 0:
            raise SystemExit(f"setup: {name} failed:\n{out}")
    client = _client()
    versions = {v.tags["model.family"]: str(v.version)
                for v in client.search_model_versions(f"name = '{NAME}'")}
    return {"store": str(store), "versions": versions}


def _version(client, family: str):
    """The version setup trained: v1 logistic regression, v2 random forest."""
    version = client.get_model_version(NAME, {"logistic_regression": "1", "random_forest": "2"}[family])
    assert version.tags["model.family"] == family, version.tags
    return version


def _copy_version(client, original, data_run_id: str, archived: bool = False):
    tags = {**{k: v for k, v in original.tags.items() if not k.startswith(("promotion.", "mcnemar."))},
            "data.run_id": data_run_id, "benchmark.copy": "1"}
    copy = client.create_model_version(NAME, original.source, run_id=original.run_id, tags=tags)
    if archived:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            client.transition_model_version_stage(NAME, copy.version, "Archived")
    return copy


def big_test(store: Path, rows: int) -> dict:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from versioning import data, lineage, registry

    client = _open(store)
    base_run_id = _version(client, "random_forest").tags["data.run_id"]
    base = client.get_run(base_run_id)
    run = client.create_run(base.info.experiment_id, tags={
        lineage.STEP_TAG: "generate_data",
        lineage.LABEL_COLUMN_TAG: "label",
        lineage.DATA_DIGEST_TAG: f"benchmark-{rows}",
        lineage.TRAIN_DIGEST_TAG: base.data.tags[lineage.TRAIN_DIGEST_TAG],
        lineage.TEST_DIGEST_TAG: f"benchmark-test-{rows}",
        BIG_RUN_TAG: str(rows),
    })
    artifacts = Path(run.info.artifact_uri.removeprefix("file://")) / "data"
    artifacts.mkdir(parents=True, exist_ok=True)
    shutil.copy(client.download_artifacts(base_run_id, "data/train.parquet", str(store)),
                artifacts / "train.parquet")
    # Rows of the distribution the models were trained on: the workflow's own 10,000 rows
    # (data.make_synthetic, default config), resampled with a little noise, 1M at a time.
    base_frame = data.make_synthetic(10_000, 20, 9, 2, 16)
    base_x = base_frame.drop(columns=["label"]).to_numpy()
    base_y = base_frame["label"].to_numpy()
    names = [c for c in base_frame.columns if c != "label"]
    rng = np.random.default_rng(16)
    written = 0
    writer = None
    while written < rows:
        size = min(1_000_000, rows - written)
        index = rng.integers(0, len(base_y), size)
        features = base_x[index] + rng.normal(0.0, 0.1, (size, base_x.shape[1]))
        columns = {name: features[:, i] for i, name in enumerate(names)}
        columns["label"] = base_y[index].astype(np.int64)
        table = pa.table(columns)
        if writer is None:
            writer = pq.ParquetWriter(artifacts / "test.parquet", table.schema)
        writer.write_table(table, row_group_size=100_000)
        written += size
    writer.close()
    client.set_terminated(run.info.run_id, "FINISHED")
    size = (artifacts / "test.parquet").stat().st_size
    return {"data_run_id": run.info.run_id, "rows": rows, "parquet_bytes": size}


def _crown_forest_on(client, rows: int) -> str:
    """A copy of the trained forest, tagged with the big data run of ``rows`` rows, as champion."""
    from versioning import registry

    found = client.search_runs([client.get_experiment_by_name("Default").experiment_id],
                               f"tags.`{BIG_RUN_TAG}` = '{rows}'", max_results=1)
    if not found:
        raise SystemExit(f"no big test run of {rows} rows: run big-test first")
    forest = _copy_version(client, _version(client, "random_forest"), found[0].info.run_id)
    client.set_registered_model_alias(NAME, registry.CHAMPION, forest.version)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage(NAME, forest.version, "Production",
                                              archive_existing_versions=True)
    client.set_registered_model_tag(NAME, registry.TAG_MODEL_CHAMPION, str(forest.version))
    with contextlib.suppress(Exception):
        client.delete_registered_model_alias(NAME, registry.CHALLENGER)
    return str(forest.version)


def _new_challenger(client) -> str:
    from versioning import registry

    data_run_id = client.get_model_version_by_alias(NAME, registry.CHAMPION).tags["data.run_id"]
    challenger = _copy_version(client, _version(client, "logistic_regression"), data_run_id)
    client.set_registered_model_alias(NAME, registry.CHALLENGER, challenger.version)
    return str(challenger.version)


class PredictTimer:
    """Wraps evaluation._predict (the two models' predict calls) to add up their time."""

    def __init__(self) -> None:
        from versioning import evaluation

        self.seconds = 0.0
        self.calls = 0
        original = evaluation._predict

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1

        evaluation._predict = timed


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _compare_once(client, timer: PredictTimer | None, expect: tuple[str, ...]) -> dict:
    before = (timer.seconds, timer.calls) if timer else (0.0, 0)
    started = time.perf_counter()
    code, out = _step("compare_and_promote")
    seconds = time.perf_counter() - started
    decision = next((word for word in ("promote.", "keep.", "unchanged.", "no_challenger.")
                     if f"compare_and_promote: {word}" in out), out.strip()[-200:])
    if code != 0 or decision.rstrip(".") not in expect:
        raise SystemExit(f"compare_and_promote gave {code}: {out}")
    result = {"seconds": seconds, "decision": decision.rstrip(".")}
    if timer:
        result["predict_seconds"] = timer.seconds - before[0]
        result["predict_calls"] = timer.calls - before[1]
    return result


def time_scale(store: Path, rows: int, iterations: int, warmup: bool) -> dict:
    os.chdir(store)
    _use(store)
    from versioning import step  # noqa: F401  (imports mlflow and the workflow, as main has)

    client = _client()
    _crown_forest_on(client, rows)
    timer = PredictTimer()
    runs = []
    for index in range(iterations + (1 if warmup else 0)):
        _new_challenger(client)
        result = _compare_once(client, timer, ("keep", "promote"))
        if warmup and index == 0:
            continue
        result["beyond_predict_seconds"] = result["seconds"] - result["predict_seconds"]
        result["beyond_over_predict"] = result["beyond_predict_seconds"] / result["predict_seconds"]
        runs.append(result)
    status = Path("/proc/self/status").read_text() if Path("/proc/self/status").exists() else ""
    hwm = next((int(line.split()[1]) / 1024 for line in status.splitlines()
                if line.startswith("VmHWM:")), None)
    return {"runs": runs, "peak_rss_mb": _peak_rss_mb(), "vm_hwm_mb": hwm,
            "median_seconds": statistics.median(r["seconds"] for r in runs),
            "median_predict_seconds": statistics.median(r["predict_seconds"] for r in runs),
            "median_beyond_over_predict": statistics.median(r["beyond_over_predict"] for r in runs)}


def grow(store: Path, versions: int) -> dict:
    client = _open(store)
    original = _version(client, "logistic_regression")
    data_run_id = original.tags["data.run_id"]
    count = len(client.search_model_versions(f"name = '{NAME}'", max_results=10_000))
    started = time.perf_counter()
    while count < versions:
        _copy_version(client, original, data_run_id, archived=True)
        count += 1
    return {"versions": count, "seconds": time.perf_counter() - started}


def _reset_pair(client) -> None:
    """Make the challenger undecided again: a full comparison, never 'unchanged'."""
    from versioning import record, registry

    challenger = client.get_model_version_by_alias(NAME, registry.CHALLENGER)
    with contextlib.suppress(Exception):
        client.delete_model_version_tag(NAME, challenger.version, record.TAG_RECORD)


def _reset_for_promotion(client) -> None:
    """The regression champion, the forest its undecided challenger: the next compare promotes
    (every write of a promotion, crown included)."""
    from versioning import record, registry

    registry.crown(client, _version(client, "logistic_regression"))
    forest = _version(client, "random_forest")
    registry.make_challenger(client, forest)
    with contextlib.suppress(Exception):
        client.delete_model_version_tag(NAME, forest.version, record.TAG_RECORD)


def reset(store: Path, to: str) -> dict:
    """Set ``store`` up for one compare_and_promote run in another process: ``keep`` (the
    forest champion, the regression its undecided challenger) or ``promote``."""
    from versioning import registry

    client = _open(store)
    if to == "promote":
        _reset_for_promotion(client)
    else:
        forest = _version(client, "random_forest")
        current = client.get_model_version_by_alias(NAME, registry.CHAMPION)
        if str(current.version) != str(forest.version):
            registry.crown(client, forest)
        client.set_registered_model_alias(NAME, registry.CHALLENGER,
                                          _version(client, "logistic_regression").version)
        _reset_pair(client)
    return {"store": str(store), "to": to}


def _alternating(stores: list[Path], iterations: int):
    """(store, client) for each store, ``iterations`` times, the order reversed every other time."""
    for index in range(iterations):
        for store in (stores if index % 2 == 0 else list(reversed(stores))):
            yield store, _open(store)


def time_registry(stores: list[Path], iterations: int) -> dict:
    from versioning import registry

    results: dict[str, dict[str, list[float]]] = {
        str(s): {"compare": [], "fast_path": [], "promote": []} for s in stores}
    counts = {}
    challengers = {}
    # Warm-up: the forest is promoted; then the regression challenges it.
    for store, client in _alternating(stores, 1):
        counts[str(store)] = len(client.search_model_versions(f"name = '{NAME}'", max_results=10_000))
        _compare_once(client, None, ("promote",))
        challengers[str(store)] = _version(client, "logistic_regression").version
        client.set_registered_model_alias(NAME, registry.CHALLENGER, challengers[str(store)])
        _compare_once(client, None, ("keep",))
    for store, client in _alternating(stores, iterations):
        _reset_pair(client)
        results[str(store)]["compare"].append(_compare_once(client, None, ("keep",))["seconds"])
        client.delete_registered_model_alias(NAME, registry.CHALLENGER)
        results[str(store)]["fast_path"].append(
            _compare_once(client, None, ("no_challenger",))["seconds"])
        client.set_registered_model_alias(NAME, registry.CHALLENGER, challengers[str(store)])
    # The promotion path; each store ends as it began.
    for store, client in _alternating(stores, iterations):
        _reset_for_promotion(client)
        results[str(store)]["promote"].append(_compare_once(client, None, ("promote",))["seconds"])
        client.set_registered_model_alias(NAME, registry.CHALLENGER, challengers[str(store)])
    return {"versions": counts, "seconds": results,
            "median": {store: {kind: statistics.median(values) for kind, values in kinds.items()}
                       for store, kinds in results.items()}}


def main() -> None:
    warnings.simplefilter("ignore")
    os.environ.setdefault("VERSIONING_LOG_LEVEL", "WARNING")
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup").add_argument("store", type=Path)
    big = sub.add_parser("big-test")
    big.add_argument("store", type=Path)
    big.add_argument("--rows", type=int, required=True)
    grow_parser = sub.add_parser("grow")
    grow_parser.add_argument("store", type=Path)
    grow_parser.add_argument("--versions", type=int, required=True)
    scale = sub.add_parser("time-scale")
    scale.add_argument("store", type=Path)
    scale.add_argument("--rows", type=int, required=True)
    scale.add_argument("--iterations", type=int, default=5)
    scale.add_argument("--no-warmup", action="store_true")
    reset_parser = sub.add_parser("reset")
    reset_parser.add_argument("store", type=Path)
    reset_parser.add_argument("--to", choices=("keep", "promote"), required=True)
    reg = sub.add_parser("time-registry")
    reg.add_argument("stores", type=Path, nargs=2)
    reg.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args()
    if args.command == "setup":
        result = setup(args.store)
    elif args.command == "big-test":
        result = big_test(args.store, args.rows)
    elif args.command == "grow":
        result = grow(args.store, args.versions)
    elif args.command == "time-scale":
        result = time_scale(args.store, args.rows, args.iterations, warmup=not args.no_warmup)
    elif args.command == "reset":
        result = reset(args.store, args.to)
    else:
        result = time_registry(args.stores, args.iterations)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
