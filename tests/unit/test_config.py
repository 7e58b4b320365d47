"""Config loading: defaults once, overrides typed, every bad value a one-line error naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from versioning.config import DEFAULT_CONFIG_PATH, SCHEMA, load_config, parse_overrides
from versioning.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_default_file_sets_every_key_exactly_once():
    raw = DEFAULT_CONFIG_PATH.read_text()
    keys = [line.split(":", 1)[0] for line in raw.splitlines()
            if line and not line.startswith((" ", "#")) and ":" in line]
    assert sorted(keys) == sorted(SCHEMA)
    assert len(keys) == len(set(keys))


def test_defaults_load_and_match_the_documented_design():
    config = load_config()
    assert config["data_source"] == "synthetic"
    assert (config["n_samples"], config["n_features"], config["n_informative"],
            config["n_classes"], config["seed"]) == (10000, 20, 9, 2, 16)
    assert config["test_fraction"] == 0.2 and config["alpha"] == 0.05
    assert config["registered_model_name"] == "classifier"


def test_user_file_overlays_defaults_and_overrides_win(tmp_path):
    path = write(tmp_path, "alpha: 0.01\nn_samples: 500\n")
    config = load_config(path, {"alpha": "1e-3", "rf_max_depth": "null", "dry_run": "true"})
    assert config["alpha"] == 0.001 and isinstance(config["alpha"], float)
    assert config["n_samples"] == 500
    assert config["rf_max_depth"] is None and config["dry_run"] is True
    assert config["seed"] == 16  # untouched keys keep their defaults


def test_parse_overrides_accepts_mlflow_style_pairs():
    assert parse_overrides(["--alpha", "0.01", "--seed=3", "--data-run-id", "abc"]) == {
        "alpha": "0.01", "seed": "3", "data_run_id": "abc"}


@pytest.mark.parametrize("overrides, phrase", [
    ({"alpha": "0"}, "'alpha'"),
    ({"alpha": "1"}, "strictly between 0 and 1"),
    ({"alpha": "-0.1"}, "'alpha'"),
    ({"alpha": "abc"}, "must be a number"),
    ({"alpha": "nan"}, "finite"),
    ({"test_fraction": "1.5"}, "'test_fraction'"),
    ({"test_fraction": "0"}, "'test_fraction'"),
    ({"n_samples": "0"}, "'n_samples'"),
    ({"n_samples": "2.5"}, "must be an integer"),
    ({"rf_n_estimators": "-3"}, "'rf_n_estimators'"),
    ({"seed": "-1"}, "'seed'"),
    ({"mcnemar_method": "fisher"}, "must be one of"),
    ({"primary_metric": "auc"}, "must be one of"),
    ({"data_source": "sklearn:mnist"}, "unknown bundled dataset"),
    ({"data_source": "data.xlsx"}, ".csv or .parquet"),
    ({"n_informative": "30"}, "must not exceed 'n_features'"),
    ({"tie_breaker": "accuracy"}, "must differ from 'primary_metric'"),
    ({"registered_model_name": "bad name!"}, "registered model name"),
    ({"rf_n_jobs": "0"}, "'rf_n_jobs'"),
    ({"dry_run": "maybe"}, "true or false"),
    ({"alpah": "0.1"}, "did you mean 'alpha'"),
])
def test_bad_overrides_name_the_key(overrides, phrase):
    with pytest.raises(ConfigError) as error:
        load_config(None, overrides)
    message = str(error.value)
    assert phrase in message and "\n" not in message


@pytest.mark.parametrize("text, phrase", [
    ("alpha: [0.05\n", "not valid YAML"),
    ("- just\n- a list\n", "must be a YAML mapping"),
    ("alpha: !!python/object/apply:os.system ['echo pwned']\n", "not valid YAML"),
    ("unknown_key: 1\n", "unknown config key 'unknown_key'"),
    ("alpha: 5\n", "'alpha'"),
    ("alpha: true\n", "must be a number"),
    ("seed: null\n", "not null"),
])
def test_bad_files_name_the_problem(tmp_path, text, phrase):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    assert phrase in str(error.value) and "\n" not in str(error.value)


def test_python_object_tag_is_never_constructed(tmp_path):
    marker = tmp_path / "pwned"
    path = write(tmp_path, f"alpha: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError):
        load_config(path)
    assert not marker.exists()


def test_missing_config_file_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="not found.*-P config="):
        load_config(tmp_path / "nope.yaml")


def test_step_digest_ignores_keys_the_step_does_not_use():
    from versioning.config import STEP_KEYS

    base = load_config()
    changed_gate = load_config(None, {"alpha": "0.01"})
    changed_data = load_config(None, {"n_samples": "500"})
    assert base.digest(STEP_KEYS["generate_data"]) == changed_gate.digest(STEP_KEYS["generate_data"])
    assert base.digest(STEP_KEYS["generate_data"]) != changed_data.digest(STEP_KEYS["generate_data"])


def test_empty_user_file_means_all_defaults(tmp_path):
    assert dict(load_config(write(tmp_path, ""))) == dict(load_config())


def test_default_yaml_is_plain_safe_yaml():
    assert isinstance(yaml.safe_load(DEFAULT_CONFIG_PATH.read_text()), dict)
