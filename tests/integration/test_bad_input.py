"""Everything a user gets wrong: a non-zero exit, one line saying what is wrong and how to fix
it, and a registry exactly as it was (every model's tags and aliases, every version's stage and
tags, compared before and after).

The steps run in this process (``step.main``, as ``python -m steps.<name>`` calls it) except
where the process itself matters (an unreachable server, exit codes); one store is prepared
for the whole table:

* ``classifier``: v1 logistic regression (champion, bootstrap), v2 random forest (challenger),
  v3 a 3-class model on 5 features (no alias; the classifier models cannot score its data);
* ``multi``: a 3-class champion and challenger;
* ``lost``: its champion version was deleted;
* ``orphan``: one version, never placed (no champion).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SMALL_CONFIG, _as_argv
from tests.registry_helpers import (
    clone_pair,
    clone_version,
    error_lines,
    prepare_sources,
    registry_snapshot,
    run_process,
    runs_of,
    temporary_store,
)
from versioning import entry_points, step


@dataclass(frozen=True)
class Case:
    id: str
    step: str
    args: tuple[str, ...] = ()  # key=value overrides; {placeholders} from the fixture
    phrase: str = ""  # must appear in the error line (case-insensitive)
    config: str | None = None  # a file made by the fixture, by name; None = the small config
    raw_argv: tuple[str, ...] = ()  # extra argv as typed (not key=value)


CASES = [
    # --- config file and overrides ------------------------------------------------------
    Case("missing config file", "compare_and_promote", config="missing", phrase="not found"),
    Case("malformed YAML", "compare_and_promote", config="malformed", phrase="is not valid YAML"),
    Case("config not a mapping", "compare_and_promote", config="list", phrase="must be a YAML mapping"),
    Case("unknown key in the file", "compare_and_promote", config="unknown_key",
         phrase="unknown config key 'alpah' (did you mean 'alpha'?)"),
    Case("unknown key as -P", "compare_and_promote", ("mcnemar=exact",), "unknown config key 'mcnemar'"),
    Case("YAML python object tag", "compare_and_promote", config="python_tag", phrase="no !!python tags"),
    Case("alpha 0", "compare_and_promote", ("alpha=0",), "'alpha'"),
    Case("alpha 1", "compare_and_promote", ("alpha=1",), "strictly between 0 and 1"),
    Case("alpha negative", "compare_and_promote", ("alpha=-0.05",), "strictly between 0 and 1"),
    Case("alpha not a number", "compare_and_promote", ("alpha=five percent",), "must be a number"),
    Case("alpha NaN", "compare_and_promote", ("alpha=nan",), "finite number"),
    Case("test fraction 0", "generate_data", ("test_fraction=0",), "'test_fraction'"),
    Case("test fraction above 1", "generate_data", ("test_fraction=1.5",), "'test_fraction'"),
    Case("n_informative > n_features", "generate_data", ("n_informative=30",), "must not exceed"),
    Case("negative seed", "generate_data", ("seed=-1",), "'seed'"),
    Case("unknown mcnemar_method", "compare_and_promote", ("mcnemar_method=fisher",), "must be one of"),
    Case("dry_run not a boolean", "compare_and_promote", ("dry_run=maybe",), "true or false"),
    Case("confidence 1", "compare_and_promote", ("confidence=1",), "'confidence'"),
    Case("tie breaker equals primary metric", "compare_and_promote", ("tie_breaker=accuracy",),
         "must differ"),
    Case("invalid registered model name", "compare_and_promote", ("registered_model_name=my model",),
         "registered model name"),
    Case("stray positional argument", "compare_and_promote", raw_argv=("promote",),
         phrase="unexpected argument 'promote'"),
    Case("override without a value", "compare_and_promote", raw_argv=("--alpha",), phrase="has no value"),
    Case("data source of unknown type", "generate_data", ("data_source=data.txt",),
         "'data_source'"),
    # --- registry -----------------------------------------------------------------------
    Case("unknown registered model", "compare_and_promote", ("registered_model_name=no-such-model",),
         "registered model 'no-such-model' does not exist"),
    Case("champion alias on a deleted version", "compare_and_promote", ("registered_model_name=lost",),
         "pointed to version 1, which has been deleted"),
    Case("challenger equal to champion", "compare_and_promote", ("challenger=1",), "same version"),
    Case("named challenger alias not set", "compare_and_promote", ("challenger=candidate",),
         "challenger alias 'candidate' is not set"),
    Case("challenger version does not exist", "compare_and_promote", ("challenger=99",),
         "version 99 of registered model 'classifier' does not exist"),
    Case("champion version does not exist", "compare_and_promote", ("champion=42",),
         "version 42 of registered model 'classifier' does not exist"),
    Case("models:/ URI of another model", "compare_and_promote", ("challenger=models:/multi/1",),
         "names registered model 'multi'"),
    Case("malformed models:/ URI", "compare_and_promote", ("challenger=models:/classifier",),
         "cannot parse model URI"),
    Case("positive_label not a label", "compare_and_promote", ("primary_metric=f1", "positive_label=7"),
         "positive_label '7' is not one of the labels"),
    Case("error_cost on multi-class labels", "compare_and_promote",
         ("registered_model_name=multi", "primary_metric=error_cost"), "needs binary labels"),
    Case("model whose predict raises", "compare_and_promote", ("challenger=3",), "failed to predict"),
    Case("rollback of a bootstrap champion", "rollback", (), "nothing to roll back to"),
    Case("rollback without a champion", "rollback", ("registered_model_name=orphan",), "no champion yet"),
    Case("compare without any champion or alias", "compare_and_promote",
         ("registered_model_name=orphan", "challenger=2"), "version 2 of registered model 'orphan'"),
    # --- data ---------------------------------------------------------------------------
    Case("data_run_id that does not exist", "train_lr",
         ("data_run_id=0123456789abcdef0123456789abcdef",), "does not exist"),
    Case("data_run_id that is not a run id", "train_lr", ("data_run_id=yesterday",), "does not exist"),
    Case("data_run_id of a train run", "train_rf", ("data_run_id={train_run}",),
         "not a generate_data run"),
    Case("CSV without the label column", "generate_data", ("data_source={csv_no_label}",),
         "label column 'label' is not in the data"),
    Case("CSV with missing values", "generate_data", ("data_source={csv_missing}",), "missing values"),
    Case("CSV with a single class", "generate_data", ("data_source={csv_one_class}",), "single class"),
    Case("CSV with a header only", "generate_data", ("data_source={csv_header_only}",), "no rows"),
    Case("empty CSV file", "generate_data", ("data_source={csv_empty}",), "cannot read data file"),
    Case("CSV with text features", "generate_data", ("data_source={csv_text}",), "not numeric"),
    Case("CSV too small to split", "generate_data", ("data_source={csv_tiny}",),
         "cannot make a stratified split"),
    Case("CSV path that does not exist", "generate_data", ("data_source={csv_missing_path}",),
         "not found"),
    Case("label column named wrongly", "generate_data",
         ("data_source={csv_good}", "label_column=target"), "label column 'target'"),
]


def _frame(n: int = 200, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    frame["label"] = (frame["a"] > 0).astype(int)
    return frame


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-input")
    files = root / "files"
    files.mkdir()
    with temporary_store(root / "store") as tracking:
        _, sources = prepare_sources(tracking, "classifier")
        train_run = runs_of(tracking.client, tracking.experiment_id, "train_lr")[0].info.run_id
        # A 3-class model family on 5 features, in its own registered model.
        for name in ("generate_data", "train_lr", "train_rf"):
            assert tracking.run_step(name, "registered_model_name=multi", "n_features=5",
                                     "n_informative=3", "n_classes=3", "n_samples=400").exit_code == 0
        multi = {str(v.version): v for v in tracking.client.search_model_versions("name = 'multi'")}
        clone_version(tracking.client, "classifier", multi["1"])  # classifier v3, no alias
        clone_pair(tracking.client, "lost", sources["logistic_regression"], sources["random_forest"])
        tracking.client.delete_model_version("lost", "1")
        clone_version(tracking.client, "orphan", sources["logistic_regression"])

        good = _frame()
        paths = {
            "csv_good": good,
            "csv_no_label": good.rename(columns={"label": "y"}),
            "csv_missing": good.assign(b=good["b"].where(good.index % 17 != 0)),
            "csv_one_class": good.assign(label=1),
            "csv_header_only": good.head(0),
            "csv_text": good.assign(c=np.where(good["a"] > 0, "high", "low")),
            "csv_tiny": good.head(3),
        }
        values = {"train_run": train_run}
        for key, frame in paths.items():
            path = files / f"{key}.csv"
            frame.to_csv(path, index=False)
            values[key] = str(path)
        (files / "empty.csv").write_text("")
        values["csv_empty"] = str(files / "empty.csv")
        values["csv_missing_path"] = str(files / "nowhere.csv")

        marker = files / "PWNED"
        configs = {
            "missing": files / "no-such-config.yaml",
            "malformed": files / "malformed.yaml",
            "list": files / "list.yaml",
            "unknown_key": files / "unknown.yaml",
            "python_tag": files / "python.yaml",
        }
        configs["malformed"].write_text("alpha: [0.05\nseed: 3\n")
        configs["list"].write_text("- alpha\n- 0.05\n")
        configs["unknown_key"].write_text("n_samples: 1500\nalpah: 0.01\n")
        configs["python_tag"].write_text(
            f"alpha: !!python/object/apply:os.system ['touch {marker}']\n")
        tracking.values, tracking.configs, tracking.marker = values, configs, marker
        yield tracking


def _run_in_process(bad, case: Case, capsys) -> tuple[int, str]:
    args = tuple(arg.format(**bad.values) for arg in case.args)
    config = bad.configs[case.config] if case.config else SMALL_CONFIG
    argv = ["--config", str(config), *_as_argv(args), *case.raw_argv]
    capsys.readouterr()
    code = step.main(case.step, entry_points.body(case.step), argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_fails_in_one_line_and_changes_nothing(bad, case: Case, capsys):
    before = registry_snapshot(bad.client)
    code, err = _run_in_process(bad, case, capsys)
    after = registry_snapshot(bad.client)

    assert code != 0, f"{case.id}: exit code 0\n{err}"
    lines = error_lines(case.step, err)
    assert len(lines) == 1, f"{case.id}: expected one error line, got:\n{err}"
    assert case.phrase.lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in err, err
    assert after == before, f"{case.id}: the registry changed"
    assert not bad.marker.exists(), "a YAML tag constructed a Python object"


def test_errors_are_one_line_and_non_zero_as_processes_too(bad):
    """The same contract seen from outside: exit code 2 (our errors), one line, no traceback."""
    before = registry_snapshot(bad.client)
    result = run_process("compare_and_promote", "challenger=1")
    assert result.exit_code == 2, result.err
    assert len(result.error_lines("compare_and_promote")) == 1
    assert "Traceback" not in result.err
    result = run_process("compare_and_promote", config=bad.configs["python_tag"])
    assert result.exit_code == 2 and "no !!python tags" in result.err
    assert not bad.marker.exists()
    assert registry_snapshot(bad.client) == before


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends


def test_unreachable_tracking_server_fails_fast_naming_it(bad):
    uri = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    result = run_process("compare_and_promote", env={"MLFLOW_TRACKING_URI": uri}, timeout=120)
    assert time.monotonic() - started < 60
    assert result.exit_code != 0
    [line] = result.error_lines("compare_and_promote")
    assert uri in line and "unreachable" in line, line
    assert "Traceback" not in result.err


@pytest.mark.slow
def test_a_server_that_accepts_but_never_answers_fails_within_a_minute(bad):
    with socket.socket() as silent:  # listens, never accepts: requests hang until they time out
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        result = run_process("train_rf", env={"MLFLOW_TRACKING_URI": uri}, timeout=120)
        elapsed = time.monotonic() - started
    assert elapsed < 60, elapsed
    assert result.exit_code != 0
    [line] = result.error_lines("train_rf")
    assert uri in line, line
