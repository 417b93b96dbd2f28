"""The Dockerfile: what it copies exists, it installs what pyproject.toml packages, it runs
`c2c` as a non-root user, and it carries no secret."""

from __future__ import annotations

import json
import shlex
import tomllib

import typer.main

from starter.cli.main import app
from tests.deploy.files import (
    DOCKERIGNORE,
    HEALTHCHECK,
    ROOT,
    dockerfile,
    settings_variables,
)


def _exec_form(keyword: str, arguments: str) -> list[str]:
    parsed = json.loads(arguments)
    assert isinstance(parsed, list), f"{keyword} must be in exec form"
    return [str(part) for part in parsed]


def _copies() -> list[tuple[list[str], str, bool]]:
    """(sources, destination, from another stage) of every COPY."""
    copies = []
    for instruction in dockerfile():
        if instruction.keyword != "COPY":
            continue
        words = shlex.split(instruction.arguments)
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        copies.append((paths[:-1], paths[-1], any(f.startswith("--from") for f in flags)))
    return copies


def test_both_stages_start_from_python_311_slim():
    instructions = dockerfile()
    args = {
        i.arguments.split("=", 1)[0]: i.arguments.split("=", 1)[1]
        for i in instructions
        if i.keyword == "ARG" and "=" in i.arguments
    }
    bases = [i.arguments.split()[0] for i in instructions if i.keyword == "FROM"]
    assert len(bases) == 2
    for base in bases:
        resolved = args[base[2:-1]] if base.startswith("${") else base
        assert resolved == "python:3.11-slim"


def test_copy_sources_exist_and_cover_every_installed_package():
    copied: set[str] = set()
    for sources, _destination, from_stage in _copies():
        if from_stage:
            continue
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            copied.add(source.rstrip("/"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    # A subpackage (``starter.api``, ``ledger.migrations``) is copied with its top-level folder.
    wanted = {package.split(".")[0] for package in setuptools["packages"]}
    wanted |= {f"{m}.py" for m in setuptools["py-modules"]}
    wanted |= {"pyproject.toml", project["project"]["readme"]}
    assert wanted <= copied, f"not copied: {sorted(wanted - copied)}"


def test_installs_the_project_without_dev_extras():
    runs = [i.arguments for i in dockerfile() if i.keyword == "RUN"]
    installs = [r for r in runs if "pip install" in r]
    assert len(installs) == 1
    assert installs[0].split("pip install", 1)[1].split() == ["."]


def test_runs_c2c_as_a_non_root_user():
    instructions = dockerfile()
    runtime = [i for i in instructions if i.stage == max(j.stage for j in instructions)]
    (entrypoint,) = [
        _exec_form(i.keyword, i.arguments) for i in runtime if i.keyword == "ENTRYPOINT"
    ]
    (command,) = [_exec_form(i.keyword, i.arguments) for i in runtime if i.keyword == "CMD"]
    assert entrypoint == ["c2c"]
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert command[0] in commands
    options = {opt for p in commands[command[0]].params for opt in p.opts}
    assert {a for a in command[1:] if a.startswith("--")} <= options
    (user,) = [i.arguments for i in runtime if i.keyword == "USER"]
    assert user.split(":")[0] not in {"0", "root"}


def test_healthcheck_probes_the_default_command_with_the_shipped_script():
    instructions = dockerfile()
    (check,) = [i for i in instructions if i.keyword == "HEALTHCHECK"]
    probe = _exec_form("HEALTHCHECK", check.arguments.split(" CMD ", 1)[1])
    assert probe[:2] == ["python", "/opt/c2c/healthcheck.py"]
    assert probe[2] == "http://127.0.0.1:8000/healthz"
    shipped = [dest for sources, dest, _ in _copies() if sources == ["deploy/healthcheck.py"]]
    assert shipped == ["/opt/c2c/healthcheck.py"]
    assert HEALTHCHECK.is_file()


def test_image_environment_is_c2cs_and_carries_no_secret():
    for instruction in dockerfile():
        if instruction.keyword not in {"ENV", "ARG"}:
            continue
        for assignment in shlex.split(instruction.arguments):
            name = assignment.split("=", 1)[0]
            assert not any(w in name for w in ("SECRET", "TOKEN", "PASSWORD", "API_KEY")), name
            if name.startswith("C2C_"):
                assert name in settings_variables(), f"ENV {name} is read by nothing"


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_context():
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    assert {"**/.env", ".git", ".venv", ".c2c"} <= ignored
    # Nothing the Dockerfile copies is ignored.
    for sources, _destination, from_stage in _copies():
        if not from_stage:
            assert not set(sources) & ignored
