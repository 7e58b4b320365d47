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


# --- challengers / challenger ---------------------------------------------------------------


def test_challengers_default_is_the_single_challenger_alias():
    config = load_config()
    assert config["challengers"] == "challenger" and config["cochrans_q"] is False


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"challengers": " 3, 4 ,models:/classifier/5 "}, "3,4,models:/classifier/5"),
    ({"challengers": "Staging"}, "staging"),
    ({"challenger": "7"}, "7"),  # the older key alone: the list of one
    ({"challenger": "7", "challengers": "7"}, "7"),  # both, agreeing
    ({"challenger": "challenger", "challengers": "2,3"}, "2,3"),
])
def test_challengers_are_normalised_and_the_older_key_still_works(overrides, expected):
    assert load_config(None, overrides)["challengers"] == expected


def test_challenger_in_a_file_and_challengers_on_the_command_line_must_agree(tmp_path):
    path = write(tmp_path, "challenger: '5'\n")
    assert load_config(path)["challengers"] == "5"
    with pytest.raises(ConfigError, match="'challenger' \\('5'\\) and 'challengers' \\('2,3'\\) disagree"):
        load_config(path, {"challengers": "2,3"})


@pytest.mark.parametrize(("overrides", "phrase"), [
    ({"challengers": "2,,3"}, "has an empty item"),
    ({"challengers": ",2"}, "has an empty item"),
    ({"challengers": "2,3,"}, "has an empty item"),
    ({"challengers": "2,3,02"}, "names '02' twice"),
    ({"challengers": "staging,2"}, "may be 'staging' alone"),
    ({"challengers": "2,a b"}, "'a b', which is not an alias"),
    ({"challengers": ",".join(str(n) for n in range(1, 22))}, "names 21 challengers; at most 20"),
    ({"challenger": "2,3"}, "names one version; for several use -P challengers="),
    ({"cochrans_q": "maybe"}, "'cochrans_q' must be true or false"),
])
def test_bad_challengers_name_the_key(overrides, phrase):
    with pytest.raises(ConfigError, match=phrase.replace("(", "\\(").replace(")", "\\)")):
        load_config(None, overrides)


def test_twenty_challengers_are_allowed_and_cochrans_q_is_policy():
    from versioning.config import POLICY_KEYS, STEP_KEYS

    assert load_config(None, {"challengers": ",".join(str(n) for n in range(1, 21))})
    assert "cochrans_q" in POLICY_KEYS and "challengers" not in POLICY_KEYS
    assert {"challengers", "cochrans_q"} <= set(STEP_KEYS["compare_and_promote"])
