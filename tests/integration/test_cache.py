"""The step cache of `main`: what is reused, what is re-run, and what compare_and_promote costs.

Every test runs `main` in this process (launcher in_process, the default) on a real temporary
sqlite store with the small config; nothing of MLflow is mocked. The one thing the tests
replace is our own ``versioning.step.code_version``: computed once per test (see the fixture),
and set to another value to stand for an edit of the code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import PROJECT_ROOT, SMALL_CONFIG, Tracking
from versioning import cache, lineage, step
from versioning.config import load_config

MODEL = "classifier"
CACHED = ("generate_data", "train_lr", "train_rf")


@pytest.fixture(autouse=True)
def code_version_of_this_checkout(monkeypatch):
    """The code version, computed once: an edit elsewhere in the tree while a test runs (other
    work in the same checkout) must not look like a change of code between its main runs."""
    value = step.code_version()
    monkeypatch.setattr(step, "code_version", lambda *args, **kwargs: value)
    return value


def run_main(tracking: Tracking, capsys, *overrides: str) -> dict[str, tuple[str, str]]:
    """Run main; {step: (outcome, run id)} from the tags main leaves on its run."""
    result = tracking.run_step("main", *overrides, capsys=capsys)
    assert result.exit_code == 0, result.err
    parent = tracking.client.search_runs(
        [tracking.experiment_id], "tags.`versioning.step` = 'main'",
        order_by=["attributes.start_time DESC"], max_results=1)[0]
    outcomes = {}
    for key, value in parent.data.tags.items():
        if key.startswith("versioning.cache."):
            outcome, run_id = value.split(":", 1)
            outcomes[key.removeprefix("versioning.cache.")] = (outcome, run_id)
    outcomes["_stdout"] = ("", result.out)
    return outcomes


def kinds(outcomes: dict) -> dict[str, str]:
    return {name: outcome for name, (outcome, _) in outcomes.items() if name != "_stdout"}


def versions(tracking: Tracking) -> list[str]:
    return sorted(str(v.version) for v in tracking.client.search_model_versions(f"name = '{MODEL}'"))


@pytest.fixture
def cold(tracking: Tracking, capsys) -> dict:
    outcomes = run_main(tracking, capsys)
    assert kinds(outcomes) == {"generate_data": "miss", "train_lr": "miss", "train_rf": "miss",
                               "compare_and_promote": "off"}
    return outcomes


def test_warm_rerun_reuses_every_step_registers_nothing_and_still_compares(tracking, cold, capsys):
    before = versions(tracking)
    warm = run_main(tracking, capsys)
    assert kinds(warm) == {"generate_data": "hit", "train_lr": "hit", "train_rf": "hit",
                           "compare_and_promote": "off"}
    for name in CACHED:  # the very runs of the cold run, passed on
        assert warm[name][1] == cold[name][1]
    assert versions(tracking) == before  # a reused training run registers nothing
    compare = tracking.client.get_run(warm["compare_and_promote"][1])
    assert compare.info.status == "FINISHED"
    assert compare.data.tags["promotion.decision"] == "no_challenger"
    out = warm["_stdout"][1]
    assert f"train_rf: reused run {cold['train_rf'][1]} (cache hit)" in out
    assert "Reused: generate_data" in out
    # The training runs were given the reused data run.
    lr = tracking.client.get_run(cold["train_lr"][1])
    assert lr.data.params["data_run_id"] == cold["generate_data"][1]


def test_changed_param_reruns_only_the_step_that_depends_on_it(tracking, cold, capsys):
    changed = run_main(tracking, capsys, "lr_C=0.5")
    assert kinds(changed) == {"generate_data": "hit", "train_lr": "miss", "train_rf": "hit",
                              "compare_and_promote": "off"}
    assert tracking.client.get_run(changed["train_lr"][1]).data.params["lr_C"] == "0.5"
    assert len(versions(tracking)) == 3
    decision = tracking.client.get_run(changed["compare_and_promote"][1]).data.tags
    assert decision["promotion.decision"] == "keep"  # the new regression was judged
    # Params compare as MLflow stores them: the same -P value again is a hit.
    assert kinds(run_main(tracking, capsys, "lr_C=0.5"))["train_lr"] == "hit"


def test_changed_code_version_reruns_every_step(tracking, cold, capsys, monkeypatch,
                                                code_version_of_this_checkout):
    assert len(code_version_of_this_checkout) == 64  # the real content hash of this checkout
    monkeypatch.setattr(step, "code_version", lambda *args, **kwargs: "0" * 64)
    changed = run_main(tracking, capsys)
    assert kinds(changed) == {"generate_data": "miss", "train_lr": "miss", "train_rf": "miss",
                              "compare_and_promote": "off"}
    assert tracking.client.get_run(changed["train_rf"][1]).data.tags[
        "versioning.code_version"] == "0" * 64


def test_changed_input_file_reruns_generate_data_and_training(tracking, capsys):
    source = tracking.root / "user.csv"
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"))
    frame["label"] = (frame["a"] + frame["b"] > 0).astype(int)
    frame.to_csv(source, index=False)
    first = run_main(tracking, capsys, f"data_source={source}")
    assert kinds(run_main(tracking, capsys, f"data_source={source}"))["generate_data"] == "hit"

    frame.loc[0, frame.columns[0]] += 1.0  # same path, same params, other content
    frame.to_csv(source, index=False)
    changed = run_main(tracking, capsys, f"data_source={source}")
    assert kinds(changed) == {"generate_data": "miss", "train_lr": "miss", "train_rf": "miss",
                              "compare_and_promote": "off"}
    digests = [tracking.client.get_run(outcomes["generate_data"][1]).data.tags["data.digest"]
               for outcomes in (first, changed)]
    assert digests[0] != digests[1]


def test_changed_data_digest_reruns_training(tracking, cold, capsys):
    # The training steps' input digest is their data run's data.digest.
    tracking.client.set_tag(cold["generate_data"][1], lineage.DATA_DIGEST_TAG, "f" * 64)
    changed = run_main(tracking, capsys)
    assert kinds(changed) == {"generate_data": "hit", "train_lr": "miss", "train_rf": "miss",
                              "compare_and_promote": "off"}


def test_other_entry_point_never_matches(tracking, cold):
    run = tracking.client.get_run(cold["train_lr"][1])
    config = load_config(SMALL_CONFIG, {"data_run_id": cold["generate_data"][1]})
    key = cache.key_for("train_lr", config, run.data.params, step.code_version(), tracking.client)
    assert cache.matches(run, key) is None
    assert cache.find_reusable(tracking.client, tracking.experiment_id, key, config).info.run_id == \
        run.info.run_id
    other = replace(key, entry_point="train_rf")
    assert "entry point" in cache.matches(run, other)
    assert cache.find_reusable(tracking.client, tracking.experiment_id, other, config) is None


def test_failed_run_is_never_reused(tracking, cold, capsys):
    tracking.client.set_terminated(cold["train_rf"][1], "FAILED")
    again = run_main(tracking, capsys)
    assert kinds(again) == {"generate_data": "hit", "train_lr": "hit", "train_rf": "miss",
                            "compare_and_promote": "off"}
    assert again["train_rf"][1] != cold["train_rf"][1]


def test_run_of_other_code_is_never_reused(tracking, cold, capsys):
    # Its cache key still matches; the part-by-part check catches the other code version.
    tracking.client.set_tag(cold["generate_data"][1], "versioning.code_version", "other")
    again = run_main(tracking, capsys)
    assert kinds(again)["generate_data"] == "miss"


def test_use_cache_false_forces_every_step_to_run(tracking, cold, capsys):
    forced = run_main(tracking, capsys, "use_cache=false")
    assert kinds(forced) == {"generate_data": "off", "train_lr": "off", "train_rf": "off",
                             "compare_and_promote": "off"}
    assert all(forced[name][1] != cold[name][1] for name in CACHED)
    assert len(versions(tracking)) == 4


def test_newest_matching_finished_run_is_chosen(tracking, cold, capsys):
    newer = run_main(tracking, capsys, "use_cache=false")
    warm = run_main(tracking, capsys)
    for name in CACHED:
        assert warm[name] == ("hit", newer[name][1])


def test_training_run_whose_version_was_deleted_is_rerun(tracking, cold, capsys):
    lr_version = tracking.client.get_run(cold["train_lr"][1]).data.tags["registered_model_version"]
    tracking.client.delete_model_version(MODEL, lr_version)  # archived after the promotion
    again = run_main(tracking, capsys)
    assert kinds(again)["train_lr"] == "miss" and kinds(again)["train_rf"] == "hit"


HEAVY = ("sklearn", "mlxtend", "matplotlib", "scipy.stats", "skops")


def imported_by_compare(tracking: Tracking) -> tuple[str, set[str]]:
    """Run compare_and_promote as a process under -X importtime; (stdout, imported modules)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking.uri,
           "MLFLOW_EXPERIMENT_ID": tracking.experiment_id}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "steps.compare_and_promote",
         "--config", str(SMALL_CONFIG)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    modules = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
               if line.startswith("import time:") and "|" in line}
    return done.stdout, modules


def test_compare_with_nothing_new_imports_no_scoring_libraries(tracking, cold, capsys):
    out, modules = imported_by_compare(tracking)  # no challenger after the promotion
    assert "no_challenger" in out
    assert not {m for m in modules if m.split(".")[0] in HEAVY or m.startswith("scipy.stats")}

    # A kept challenger: the same pair again is "unchanged", also without scoring libraries.
    assert kinds(run_main(tracking, capsys, "lr_C=0.5"))["train_lr"] == "miss"
    out, modules = imported_by_compare(tracking)
    assert "unchanged" in out
    assert not {m for m in modules if m.split(".")[0] in HEAVY or m.startswith("scipy.stats")}


@pytest.mark.parametrize("module", ["versioning.train", "versioning.generate"])
def test_training_and_data_steps_do_not_import_the_test_or_plotting_libraries(module):
    """mlxtend.evaluate imports matplotlib (~0.6 s a process): only a comparison needs it."""
    done = subprocess.run(
        [sys.executable, "-c", f"import sys, {module}; "
         "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlxtend', 'matplotlib')))"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
