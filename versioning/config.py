"""Load, override and validate the workflow configuration.

Values come from ``configs/default.yaml`` (the only place defaults are written), then from a
user's config file (which may set any subset of keys), then from ``--key value`` overrides
(what ``mlflow run -P key=value`` passes on). This module knows each key's *type and range*,
never its default value.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from versioning.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "configs" / "default.yaml"

MCNEMAR_METHODS = ("auto", "exact", "midp", "corrected", "asymptotic")
METRICS = ("accuracy", "f1", "precision", "recall", "error_cost")
CI_METHODS = ("newcombe", "wald")
SKLEARN_DATASETS = ("iris", "digits", "breast_cancer", "wine")
LAUNCHERS = ("in_process", "projects")  # how `main` runs its steps (see versioning/pipeline.py)
_NULL_STRINGS = {"null", "none", "~", ""}
_REGISTERED_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}$")


@dataclass(frozen=True)
class Field:
    """Type and constraint of one config key; ``check`` returns an error fragment or None."""

    kind: type  # str, int, float or bool
    optional: bool = False
    check: Callable[[Any], str | None] | None = None
    choices: tuple[str, ...] | None = None


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be > 0"


def _non_negative(value: float) -> str | None:
    return None if value >= 0 else "must be >= 0"


def _open_unit_interval(value: float) -> str | None:
    return None if 0 < value < 1 else "must be strictly between 0 and 1"


def _at_least(minimum: int) -> Callable[[int], str | None]:
    return lambda value: None if value >= minimum else f"must be >= {minimum}"


def _delta_range(value: float) -> str | None:
    return None if -1 <= value <= 1 else "must be in [-1, 1] (a difference of accuracies)"


def _n_jobs(value: int) -> str | None:
    return None if value != 0 else "must be a positive core count or -1 for all cores"


def _model_name(value: str) -> str | None:
    if _REGISTERED_MODEL_NAME.match(value):
        return None
    return "must be a registered model name of letters, digits, '_', '.', '-'"


def _data_source(value: str) -> str | None:
    if value == "synthetic" or value.lower().endswith((".csv", ".parquet")):
        return None
    if value.startswith("sklearn:"):
        if value.split(":", 1)[1] in SKLEARN_DATASETS:
            return None
        return f"names an unknown bundled dataset; use one of sklearn:{'|'.join(SKLEARN_DATASETS)}"
    return "must be 'synthetic', 'sklearn:<name>' or a path ending in .csv or .parquet"


def _non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


# -P challengers: "staging" (every version in stage Staging) or a comma-separated list of
# references; each an alias, a version number or a models:/ URI.
STAGING_CHALLENGERS = "staging"
MAX_CHALLENGERS = 20  # k models are loaded at once, and Holm's power falls as k grows
_REFERENCE = re.compile(r"^(?:models:/\S+|[\w\-]+)$")


def challenger_references(value: str) -> tuple[str, ...]:
    """The references in a (validated) ``challengers`` value, or ``("staging",)``."""
    items = tuple(item.strip() for item in value.split(","))
    if len(items) == 1 and items[0].lower() == STAGING_CHALLENGERS:
        return (STAGING_CHALLENGERS,)
    return items


def _reference_problem(item: str) -> str | None:
    if _REFERENCE.match(item):
        return None
    return (f"has {item!r}, which is not an alias, a version number or a models:/ URI "
            "(aliases are letters, digits, '_' and '-')")


def _single_reference(value: str) -> str | None:
    if not value.strip():
        return "must not be empty"
    if "," in value:
        return ("names one version; for several use -P challengers=<a>,<b>,... "
                f"(or -P challengers={STAGING_CHALLENGERS})")
    return _reference_problem(value.strip())


def _challengers(value: str) -> str | None:
    items = challenger_references(value)
    if items == (STAGING_CHALLENGERS,):
        return None
    if any(not item for item in items):
        return "has an empty item (a doubled, leading or trailing comma?)"
    if any(item.lower() == STAGING_CHALLENGERS for item in items):
        return (f"may be '{STAGING_CHALLENGERS}' alone (every version in Staging) or a list of "
                "versions, not both")
    for item in items:
        problem = _reference_problem(item)
        if problem:
            return problem
    seen: set[str] = set()
    for item in items:
        key = str(int(item)) if item.isdigit() else item
        if key in seen:
            return f"names {item!r} twice: list each challenger once"
        seen.add(key)
    if len(items) > MAX_CHALLENGERS:
        return (f"names {len(items)} challengers; at most {MAX_CHALLENGERS} can be compared "
                "in one run")
    return None


def _short_text(value: str) -> str | None:
    if not value.strip():
        return "must not be empty"
    return None if len(value) <= 1000 else "must be at most 1000 characters (it is logged as a param)"


SCHEMA: dict[str, Field] = {
    "registered_model_name": Field(str, check=_model_name),
    "data_source": Field(str, check=_data_source),
    "label_column": Field(str, check=_non_empty),
    "n_samples": Field(int, check=_at_least(10)),
    "n_features": Field(int, check=_at_least(2)),
    "n_informative": Field(int, check=_at_least(1)),
    "n_classes": Field(int, check=_at_least(2)),
    "test_fraction": Field(float, check=_open_unit_interval),
    "seed": Field(int, check=_at_least(0)),
    "data_run_id": Field(str, optional=True, check=_non_empty),
    "lr_C": Field(float, check=_positive),
    "lr_max_iter": Field(int, check=_at_least(1)),
    "rf_n_estimators": Field(int, check=_at_least(1)),
    "rf_max_depth": Field(int, optional=True, check=_at_least(1)),
    "rf_min_samples_leaf": Field(int, check=_at_least(1)),
    "rf_n_jobs": Field(int, check=_n_jobs),
    "champion": Field(str, check=_non_empty),
    "challenger": Field(str, check=_single_reference),
    "challengers": Field(str, check=_challengers),
    "cochrans_q": Field(bool),
    "alpha": Field(float, check=_open_unit_interval),
    "mcnemar_method": Field(str, choices=MCNEMAR_METHODS),
    "primary_metric": Field(str, choices=METRICS),
    "tie_breaker": Field(str, optional=True, choices=METRICS),
    "min_delta": Field(float, optional=True, check=_delta_range),
    "confidence": Field(float, check=_open_unit_interval),
    "ci_method": Field(str, choices=CI_METHODS),
    "positive_label": Field(str, optional=True, check=_non_empty),
    "cost_false_positive": Field(float, check=_non_negative),
    "cost_false_negative": Field(float, check=_non_negative),
    "dry_run": Field(bool),
    "allow_training_overlap": Field(bool),
    "rollback_reason": Field(str, optional=True, check=_short_text),
    "launcher": Field(str, choices=LAUNCHERS),
    "use_cache": Field(bool),
}

# The keys each step depends on: logged as that step's params and hashed into its
# config digest, so that changing ``alpha`` never looks like a change of the data.
STEP_KEYS: dict[str, tuple[str, ...]] = {
    "generate_data": (
        "data_source", "label_column", "n_samples", "n_features", "n_informative",
        "n_classes", "test_fraction", "seed",
    ),
    "train_lr": ("registered_model_name", "data_run_id", "seed", "lr_C", "lr_max_iter"),
    "train_rf": (
        "registered_model_name", "data_run_id", "seed", "rf_n_estimators", "rf_max_depth",
        "rf_min_samples_leaf", "rf_n_jobs",
    ),
    "compare_and_promote": (
        "registered_model_name", "champion", "challenger", "challengers", "alpha",
        "mcnemar_method", "primary_metric", "tie_breaker", "min_delta", "confidence",
        "ci_method", "positive_label", "cost_false_positive", "cost_false_negative",
        "cochrans_q", "dry_run", "allow_training_overlap",
    ),
    "rollback": ("registered_model_name", "dry_run", "rollback_reason"),
}
STEP_KEYS["main"] = tuple(SCHEMA)
# What turns a pair of versions into a decision: a recorded decision stays valid while these
# are unchanged (see promote.already_decided).
POLICY_KEYS: tuple[str, ...] = (
    "alpha", "mcnemar_method", "primary_metric", "tie_breaker", "min_delta", "confidence",
    "ci_method", "positive_label", "cost_false_positive", "cost_false_negative", "cochrans_q",
)


class Config(Mapping[str, Any]):
    """A validated, read-only configuration; also remembers where it came from."""

    def __init__(self, values: Mapping[str, Any], source: Path, overrides: Mapping[str, str]):
        self._values = dict(values)
        self.source = source
        self.overrides = dict(overrides)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Config(source={str(self.source)!r}, overrides={self.overrides!r})"

    def for_step(self, step: str) -> dict[str, Any]:
        """The subset of keys ``step`` depends on."""
        return {key: self._values[key] for key in STEP_KEYS[step]}

    def digest(self, keys: Sequence[str]) -> str:
        """A stable hash of the values of ``keys`` (used for caching and audit)."""
        canonical = json.dumps({k: self._values[k] for k in keys}, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


def _read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(
            f"config file {str(path)!r} not found: pass an existing YAML file with "
            f"-P config=<path> (the defaults are in {_display(DEFAULT_CONFIG_PATH)})"
        )
    try:
        # safe_load only: a config file must never be able to construct Python objects.
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{what} {str(path)!r} is not valid YAML{where} ({first_line}): "
            "fix the file (only plain YAML mappings, no !!python tags)"
        ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"{what} {str(path)!r} must be a YAML mapping of key: value, "
            f"not a {type(loaded).__name__}"
        )
    return loaded


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _reject_unknown(keys: Sequence[str], where: str) -> None:
    unknown = sorted(set(keys) - set(SCHEMA))
    if unknown:
        import difflib

        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, SCHEMA, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(
            f"unknown config key {', '.join(hints)} in {where}: "
            f"valid keys are listed in {_display(DEFAULT_CONFIG_PATH)}"
        )


def _coerce_string(key: str, raw: str, field: Field) -> Any:
    """Turn a ``-P key=value`` string into the key's type (MLflow passes every value as text)."""
    text = raw.strip()
    if field.optional and text.lower() in _NULL_STRINGS:
        return None
    try:
        if field.kind is bool:
            lowered = text.lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError(text)
        if field.kind is int:
            as_float = float(text)
            if not as_float.is_integer():
                raise ValueError(text)
            return int(as_float)
        if field.kind is float:
            return float(text)
    except ValueError:
        raise ConfigError(
            f"config key {key!r} must be {_kind_name(field)}, got {raw!r}: "
            f"pass e.g. -P {key}={_example(field)}"
        ) from None
    return raw


def _kind_name(field: Field) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    name = names[field.kind]
    return f"{name} or null" if field.optional else name


def _example(field: Field) -> str:
    if field.choices:
        return field.choices[0]
    return {str: "text", int: "10", float: "0.05", bool: "true"}[field.kind]


def _validate_value(key: str, value: Any, where: str) -> Any:
    field = SCHEMA[key]
    if value is None:
        if field.optional:
            return None
        raise ConfigError(f"config key {key!r} in {where} must be {_kind_name(field)}, not null")
    # YAML gives bools for true/false; they are ints in Python, which must not pass as numbers.
    if field.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if field.kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # e.g. positive_label: 1, or a numeric data_run_id typed unquoted
    if not isinstance(value, field.kind) or (field.kind is not bool and isinstance(value, bool)):
        raise ConfigError(
            f"config key {key!r} in {where} must be {_kind_name(field)}, got {value!r}: "
            f"write e.g. {key}: {_example(field)}"
        )
    if field.kind is float and not math.isfinite(value):
        raise ConfigError(f"config key {key!r} in {where} must be a finite number, got {value!r}")
    if field.choices is not None and value not in field.choices:
        raise ConfigError(
            f"config key {key!r} in {where} must be one of {', '.join(field.choices)}; "
            f"got {value!r}"
        )
    if field.check is not None:
        problem = field.check(value)
        if problem:
            raise ConfigError(f"config key {key!r} in {where} {problem}; got {value!r}")
    return value


def _validate_together(values: Mapping[str, Any]) -> None:
    if values["n_informative"] > values["n_features"]:
        raise ConfigError(
            f"config key 'n_informative' ({values['n_informative']}) must not exceed "
            f"'n_features' ({values['n_features']})"
        )
    if values["n_classes"] > 2 ** values["n_informative"]:
        raise ConfigError(
            f"config key 'n_classes' ({values['n_classes']}) must be <= 2**n_informative "
            f"({2 ** values['n_informative']}) for make_classification: raise n_informative"
        )
    if values["tie_breaker"] is not None and values["tie_breaker"] == values["primary_metric"]:
        raise ConfigError(
            "config key 'tie_breaker' must differ from 'primary_metric' "
            f"(both are {values['primary_metric']!r}): choose another metric or null"
        )


def parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """Parse ``["--alpha", "0.01", "--seed=3"]`` (as MLflow passes extra -P params)."""
    overrides: dict[str, str] = {}
    index = 0
    while index < len(pairs):
        token = pairs[index]
        if not token.startswith("--") or len(token) <= 2:
            raise ConfigError(
                f"unexpected argument {token!r}: pass overrides as -P key=value "
                "(or --key value when calling python -m steps.<name>)"
            )
        name = token[2:]
        if "=" in name:
            name, value = name.split("=", 1)
        elif index + 1 < len(pairs):
            index += 1
            value = pairs[index]
        else:
            raise ConfigError(f"override {token!r} has no value: pass -P {name}=<value>")
        overrides[name.replace("-", "_")] = value
        index += 1
    return overrides


def load_config(path: str | Path | None = None, overrides: Mapping[str, str] | None = None) -> Config:
    """Defaults, then the file at ``path``, then string ``overrides``; validated as a whole."""
    overrides = dict(overrides or {})
    values = _read_yaml_mapping(DEFAULT_CONFIG_PATH, "default config")
    defaults = dict(values)
    missing = sorted(set(SCHEMA) - set(values))
    if missing:  # a broken checkout, not a user error; still say it plainly
        raise ConfigError(f"{_display(DEFAULT_CONFIG_PATH)} lacks keys {missing}: restore it")
    _reject_unknown(list(values), _display(DEFAULT_CONFIG_PATH))

    source = DEFAULT_CONFIG_PATH
    if path is not None:
        candidate = Path(path)
        if not candidate.is_absolute() and not candidate.exists():
            candidate = PROJECT_ROOT / candidate  # entry points run from the project root
        source = candidate.resolve()
        if source != DEFAULT_CONFIG_PATH.resolve():
            user_values = _read_yaml_mapping(candidate, "config file")
            _reject_unknown(list(user_values), str(path))
            values.update(user_values)

    _reject_unknown(list(overrides), "-P overrides")
    for key, raw in overrides.items():
        values[key] = _coerce_string(key, raw, SCHEMA[key])

    where_of = {key: ("-P overrides" if key in overrides else str(path or "config")) for key in values}
    validated = {key: _validate_value(key, values[key], where_of[key]) for key in SCHEMA}
    _validate_together(validated)
    _merge_challenger_keys(validated, defaults)
    return Config(validated, source, overrides)


def _merge_challenger_keys(values: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    """``challenger`` (one version, the older key) and ``challengers`` (a list) name the same
    thing: a ``challenger`` set while ``challengers`` keeps its default becomes the list of one;
    both set to different versions is ambiguous."""
    challenger = values["challenger"].strip()
    challengers = ",".join(challenger_references(values["challengers"]))
    challenger_default = challenger == str(defaults["challenger"]).strip()
    challengers_default = challengers == ",".join(
        challenger_references(str(defaults["challengers"])))
    if challengers_default and not challenger_default:
        challengers = challenger
    elif not challengers_default and not challenger_default and challengers != challenger:
        raise ConfigError(
            f"config keys 'challenger' ({challenger!r}) and 'challengers' ({challengers!r}) "
            "disagree: set only 'challengers' (a comma-separated list, or 'staging'); "
            "'challenger' is its older one-version form"
        )
    values["challengers"] = challengers
