"""conda.yaml and python_env.yaml must build the same environment."""

from __future__ import annotations

import re

import yaml

from tests.conftest import PROJECT_ROOT


def pins(lines) -> dict[str, str]:
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-r"):
            continue
        name, version = re.split(r"==", line)
        found[name.lower()] = version
    return found


def test_conda_and_python_env_pin_the_same_versions():
    python_env = yaml.safe_load((PROJECT_ROOT / "python_env.yaml").read_text())
    conda = yaml.safe_load((PROJECT_ROOT / "conda.yaml").read_text())
    assert python_env["dependencies"] == ["-r requirements.txt"]
    requirements = pins((PROJECT_ROOT / "requirements.txt").read_text().splitlines())
    conda_pip = next(item["pip"] for item in conda["dependencies"] if isinstance(item, dict))
    assert pins(conda_pip) == requirements
    assert f"python={python_env['python']}" in conda["dependencies"]
    assert python_env["python"] == "3.11.7"  # exactly, or virtualenv tries to download it


def test_every_runtime_dependency_is_pinned_exactly():
    requirements = pins((PROJECT_ROOT / "requirements.txt").read_text().splitlines())
    assert requirements["mlflow"] == "3.17.2"
    assert {"scikit-learn", "mlxtend", "pandas", "pyyaml", "pyarrow", "skops"} <= set(requirements)


def test_installed_versions_match_the_pins():
    from importlib import metadata

    for name, version in pins((PROJECT_ROOT / "requirements.txt").read_text().splitlines()).items():
        assert metadata.version(name) == version, name


def test_mlproject_declares_exactly_one_environment():
    project = yaml.safe_load((PROJECT_ROOT / "MLproject").read_text())
    assert [key for key in ("python_env", "conda_env", "docker_env") if key in project] == ["python_env"]
    for name, entry in project["entry_points"].items():
        assert entry["parameters"]["config"]["default"] == "configs/default.yaml"
        assert entry["command"].startswith(f"python -m steps.{name} ")


def test_kubernetes_twin_has_the_same_entry_points_and_commands():
    root = yaml.safe_load((PROJECT_ROOT / "MLproject").read_text())["entry_points"]
    twin = yaml.safe_load((PROJECT_ROOT / "deploy" / "kubernetes" / "MLproject").read_text())["entry_points"]
    assert twin == root
