"""Permissions on a basic-auth server (``mlflow server --app-name basic-auth``): a READ user
cannot promote and changes nothing, an EDIT user can, and no password is ever logged."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from tests.registry_helpers import (
    champion_state,
    prepare_sources,
    registry_snapshot,
    run_process,
    server_store,
)


def _texts_logged(client, experiment_id: str, model: str, dst: Path) -> list[tuple[str, str]]:
    """(where, text) of every param, tag and run artifact of the experiment and every tag of
    the registered model and its versions."""
    found = []
    for run in client.search_runs([experiment_id]):
        run_id = run.info.run_id
        found += [(f"run {run_id} param {k}", v) for k, v in run.data.params.items()]
        found += [(f"run {run_id} tag {k}", v) for k, v in run.data.tags.items()]
        local = Path(client.download_artifacts(run_id, "", str(dst / run_id)))
        for path in local.rglob("*"):
            if path.is_file():
                found.append((f"run {run_id} artifact {path.relative_to(local)}",
                              path.read_bytes().decode("latin-1")))
    registered = client.get_registered_model(model)
    found += [(f"model tag {k}", v) for k, v in (registered.tags or {}).items()]
    for version in client.search_model_versions(f"name = '{model}'"):
        found += [(f"v{version.version} tag {k}", v) for k, v in version.tags.items()]
        found.append((f"v{version.version} source", version.source))
    return found


def test_read_user_is_refused_edit_user_promotes_and_no_password_is_logged(auth_server, tmp_path, capsys):
    suffix = secrets.token_hex(4)
    model = f"guarded-{suffix}"
    with server_store(auth_server.url, tmp_path, f"guarded-{suffix}", env=auth_server.admin.env()) as admin:
        prepare_sources(admin, model)  # as admin: v1 champion, v2 challenger
        reader = auth_server.create_user_with_permission(
            "READ", registered_model=model, experiment_id=admin.experiment_id)
        editor = auth_server.create_user_with_permission(
            "EDIT", registered_model=model, experiment_id=admin.experiment_id)
        target = {"MLFLOW_TRACKING_URI": auth_server.url, "MLFLOW_EXPERIMENT_ID": admin.experiment_id}

        before = registry_snapshot(admin.client, [model])
        wrong = {"MLFLOW_TRACKING_USERNAME": reader.username, "MLFLOW_TRACKING_PASSWORD": "not-the-password"}
        unauthenticated = run_process("compare_and_promote", f"registered_model_name={model}",
                                      env={**target, **wrong})
        assert unauthenticated.exit_code != 0
        [line] = unauthenticated.error_lines("compare_and_promote")
        assert "did not accept the credentials" in line and "not-the-password" not in line, line
        refused = run_process("compare_and_promote", f"registered_model_name={model}",
                              env={**target, **reader.env()})
        assert refused.exit_code != 0
        [line] = refused.error_lines("compare_and_promote")
        assert "permission" in line.lower() and reader.username in line, line
        assert "Traceback" not in refused.err
        assert registry_snapshot(admin.client, [model]) == before

        allowed = run_process("compare_and_promote", f"registered_model_name={model}",
                              env={**target, **editor.env()})
        assert allowed.exit_code == 0, allowed.err[-3000:]
        assert "promote" in allowed.out
        champion, production, challenger = champion_state(admin.client, model)
        assert (champion, production) == ("2", ["2"])
        # Deleting an alias needs MANAGE in MLflow's basic-auth; with EDIT the challenger alias
        # stays on the new champion, where it names no challenger: a second run says so.
        assert challenger in (None, "2")
        with pytest.MonkeyPatch.context() as as_editor:  # in this process, as the editor
            for key, value in editor.env().items():
                as_editor.setenv(key, value)
            again = admin.run_step("compare_and_promote", f"registered_model_name={model}",
                                   capsys=capsys)
        assert again.exit_code == 0 and "no_challenger" in again.out, again.err[-2000:]
        assert champion_state(admin.client, model) == (champion, production, challenger)

        secrets_ = [auth_server.admin.password, reader.password, editor.password]
        secrets_ += [base64.b64encode(f"{user.username}:{user.password}".encode()).decode()
                     for user in (auth_server.admin, reader, editor)]
        texts = _texts_logged(admin.client, admin.experiment_id, model, tmp_path / "scan")
        assert any("decision.json" in where for where, _ in texts)
        assert any("config.yaml" in where for where, _ in texts)
        assert any("report.html" in where for where, _ in texts)
        leaks = [where for where, text in texts for secret in secrets_ if secret in text]
        assert not leaks, leaks
