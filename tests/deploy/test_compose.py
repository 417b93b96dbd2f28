"""docker-compose.yml and its Temporal Cloud override: they parse, and every service, image,
command, port and variable they name exists in the project (no Docker engine needed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main

from domain.names import SEARCH_ATTRIBUTES
from starter.cli.main import app
from starter.stack.components import search_attribute_flags
from tests.deploy.files import (
    CLOUD_OVERRIDE,
    COMPOSE_FILE,
    DOCKERFILE,
    ENV_EXAMPLE,
    IMAGE_VARIABLES,
    ROOT,
    SDK_VARIABLES,
    c2c_variables,
    compose_command,
    env_example_names,
    environment,
    image_name,
    interpolated,
    is_c2c,
    load_compose,
    ports,
    settings_variables,
)

CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def cloud() -> dict[str, Any]:
    return load_compose(CLOUD_OVERRIDE)


def test_the_stack_has_every_component_of_a_deployment(services: dict[str, dict[str, Any]]):
    images = {name: image_name(s["image"]) for name, s in services.items() if not is_c2c(s)}
    assert images == {
        "temporal-db": "postgres",
        "temporal-schema": "temporalio/admin-tools",
        "temporal": "temporalio/server",
        "temporal-setup": "temporalio/admin-tools",
        "temporal-ui": "temporalio/ui",
        "ledger-db": "postgres",
    }
    commands = {name: s["command"][0] for name, s in services.items() if is_c2c(s)}
    assert commands == {"sandbox": "sandbox", "worker": "worker", "api": "api"}
    # Temporal keeps its state in its own PostgreSQL; the ledger in another.
    assert environment(services["temporal"])["DB"] == "postgres12"
    assert environment(services["temporal"])["POSTGRES_SEEDS"] == "temporal-db"
    ledger_url = environment(services["worker"])["C2C_DATABASE_URL"]
    assert ledger_url.startswith("postgresql://") and "@ledger-db:5432/" in ledger_url
    assert environment(services["api"])["C2C_DATABASE_URL"] == ledger_url


def test_workers_scale_horizontally(services: dict[str, dict[str, Any]]):
    worker = services["worker"]
    # A fixed container name, or a published port, would stop a second replica from starting.
    assert "container_name" not in worker and "ports" not in worker
    assert interpolated(str(worker["deploy"]["replicas"])) == {"WORKER_REPLICAS"}
    assert all("container_name" not in s for s in services.values())


def test_every_service_has_a_healthcheck_or_waits_on_a_condition(
    services: dict[str, dict[str, Any]],
):
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must state its conditions"
        assert service.get("healthcheck") or depends, f"{name}: no healthcheck, no condition"
        for target, dependency in depends.items():
            assert target in services, f"{name} depends on {target}, which is not a service"
            assert dependency.get("condition") in CONDITIONS, f"{name} → {target}"
            if dependency["condition"] == "service_healthy":
                assert services[target].get("healthcheck"), f"{target} has no healthcheck"
            if dependency["condition"] == "service_completed_successfully":
                # A one-shot job: it must not be restarted, or it never completes.
                assert services[target].get("restart", "no") == "no", target


def test_healthchecks_are_exec_form_and_bounded(services: dict[str, dict[str, Any]]):
    for name, service in services.items():
        check = service.get("healthcheck")
        if not check:
            continue
        assert check["test"][0] == "CMD", f"{name}: exec form, no shell to quote secrets into"
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name}: healthcheck {key}"


def test_c2c_services_are_built_from_the_repository_dockerfile(
    services: dict[str, dict[str, Any]],
):
    built = {name: s for name, s in services.items() if is_c2c(s)}
    assert built
    for name, service in built.items():
        build = service["build"]
        context = (COMPOSE_FILE.parent / build["context"]).resolve()
        assert context == ROOT, name
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE, name
    # One image, three roles: the same tag everywhere.
    assert len({s["image"] for s in built.values()}) == 1


def test_third_party_images_are_pinned(services: dict[str, dict[str, Any]]):
    tags: dict[str, set[str]] = {}
    for name, service in services.items():
        if is_c2c(service):
            continue
        image = service["image"]
        assert "${" not in image, f"{name}: the image is fixed in the file, not a variable"
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {image} is not pinned"
        assert any(c.isdigit() for c in tag), f"{name}: {image} is not a version"
        assert repository in IMAGE_VARIABLES, f"{name}: {repository} has no variable list"
        tags.setdefault(repository, set()).add(tag)
    # The schema tool must be the server's release: its schema is what the server expects.
    assert len(tags["postgres"]) == 1
    assert tags["temporalio/admin-tools"] == tags["temporalio/server"]


def test_c2c_commands_are_real_subcommands_with_real_options(
    services: dict[str, dict[str, Any]],
):
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    for name, service in services.items():
        if not is_c2c(service):
            continue
        subcommand, *arguments = service["command"]
        assert subcommand in commands, f"{name}: `c2c {subcommand}` does not exist"
        options = {opt for p in commands[subcommand].params for opt in p.opts}
        for argument in arguments:
            if argument.startswith("--"):
                assert argument in options, f"{name}: c2c {subcommand} has no {argument}"


def test_published_ports_are_loopback_unique_and_what_the_commands_listen_on(
    services: dict[str, dict[str, Any]],
):
    seen: dict[int, str] = {}
    for name, service in services.items():
        for port in ports(service):
            assert port.host_ip == "127.0.0.1", f"{name}: publish on 127.0.0.1 (TLS proxy)"
            assert port.host_port not in seen, f"{name} and {seen[port.host_port]} clash"
            seen[port.host_port] = name
            if is_c2c(service):
                command = service["command"]
                assert command[command.index("--port") + 1] == str(port.container_port), name
                assert command[command.index("--host") + 1] == "0.0.0.0", name
    assert seen == {7233: "temporal", 8233: "temporal-ui", 8100: "sandbox", 8000: "api"}


def test_every_variable_a_container_is_given_is_read_by_its_image(
    services: dict[str, dict[str, Any]], cloud: dict[str, Any]
):
    known = c2c_variables()
    for file, parsed in (("docker-compose.yml", services), ("the override", cloud["services"])):
        for name, service in parsed.items():
            base = services[name]
            allowed = known if is_c2c(base) else IMAGE_VARIABLES[image_name(base["image"])]
            unknown = set(environment(service)) - allowed
            assert not unknown, f"{file}: {name} is given {sorted(unknown)}, which nothing reads"


def test_interpolated_variables_are_known_or_documented(cloud: dict[str, Any]):
    documented = set(env_example_names())
    text = COMPOSE_FILE.read_text() + CLOUD_OVERRIDE.read_text()
    for variable in interpolated(text):
        if variable.startswith(("C2C_", "TEMPORAL_")):
            # These prefixes mean "c2c or the Temporal SDK reads this": nothing else uses them.
            assert variable in c2c_variables(), f"${{{variable}}} is read by nothing"
        else:
            assert variable in documented, f"${{{variable}}} is not in deploy/env.example"


def test_env_example_names_only_what_the_stack_reads():
    text = COMPOSE_FILE.read_text() + CLOUD_OVERRIDE.read_text()
    used = interpolated(text) | settings_variables() | SDK_VARIABLES
    for variable in env_example_names():
        assert variable in used, f"deploy/env.example sets {variable}, which nothing reads"
    # Secrets have no value in the example: compose refuses to start until they are set.
    names = env_example_names()
    for secret in ("PG_TEMPORAL_PASSWORD", "PG_LEDGER_PASSWORD", "C2C_WEBHOOK_SECRET"):
        assert names.get(secret) is True
        assert f"{secret}=\n" in ENV_EXAMPLE.read_text()


def test_secrets_are_required_and_never_written_into_the_file(
    services: dict[str, dict[str, Any]],
):
    text = COMPOSE_FILE.read_text()
    for secret in ("PG_TEMPORAL_PASSWORD", "PG_LEDGER_PASSWORD", "C2C_WEBHOOK_SECRET"):
        assert f"${{{secret}:?" in text, f"{secret} must be required (${{{secret}:?…}})"
    for name, service in services.items():
        for key, value in environment(service).items():
            if any(word in key for word in ("PASSWORD", "PWD", "SECRET", "TOKENS", "API_KEY")):
                assert value is None or "${" in str(value), f"{name}: {key} is written in"
        # Secrets reach processes through the environment, never through a command line.
        assert "${" not in json.dumps(service.get("command", "")), name


def test_sdk_variables_the_stack_sets_are_read_by_the_sdk(
    services: dict[str, dict[str, Any]], tmp_path: Path
):
    from temporalio.envconfig import ClientConfigProfile

    used = {v for s in services.values() if is_c2c(s) for v in environment(s)} & SDK_VARIABLES
    assert used >= {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY"}
    config = tmp_path / "temporal.toml"
    config.write_text('[profile.default]\naddress = "file:7233"\n[profile.p]\naddress = "p:7233"\n')

    def profile(env: dict[str, str]) -> dict[str, Any]:
        return ClientConfigProfile.load(override_env_vars=env, disable_file=True).to_dict()

    baseline = profile({})
    for variable in sorted(used):
        if variable == "TEMPORAL_CONFIG_FILE":
            seen = ClientConfigProfile.load(override_env_vars={variable: str(config)}).to_dict()
        elif variable == "TEMPORAL_PROFILE":
            seen = ClientConfigProfile.load(
                override_env_vars={variable: "p", "TEMPORAL_CONFIG_FILE": str(config)}
            ).to_dict()
        else:
            seen = profile({variable: "true" if variable == "TEMPORAL_TLS" else "/run/x.pem"})
        assert seen != baseline, f"the Temporal SDK does not read {variable}"


def test_search_attributes_registered_are_the_workflows(services: dict[str, dict[str, Any]]):
    command = services["temporal-setup"]["command"]
    script = command[command.index("/c2c/setup-namespace.sh") + 1 :]
    wanted = search_attribute_flags()[1::2]
    assert script == wanted
    assert len(wanted) == len(SEARCH_ATTRIBUTES)


def test_mounted_files_exist(services: dict[str, dict[str, Any]]):
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE_FILE.parent / source).exists(), f"{name} mounts {source}"
        for part in service.get("command", []):
            if str(part).startswith("/c2c/"):
                assert (ROOT / "deploy" / "temporal" / part.removeprefix("/c2c/")).is_file()


def test_cloud_override_runs_c2c_without_the_local_temporal(
    services: dict[str, dict[str, Any]], cloud: dict[str, Any]
):
    overridden = cloud["services"]
    assert set(overridden) <= set(services)
    local = {name for name, s in overridden.items() if s.get("profiles")}
    assert local == {name for name in services if name.startswith("temporal")}
    for name in ("worker", "api"):
        depends = overridden[name]["depends_on"]
        assert not set(depends) & local, f"{name} still waits on the local Temporal"
        assert set(depends) == set(services[name]["depends_on"]) - local
        env = environment(overridden[name])
        assert interpolated(env["TEMPORAL_ADDRESS"]) == {"TEMPORAL_ADDRESS"}
    assert "!override" in CLOUD_OVERRIDE.read_text()


def _filled_env() -> str:
    values = {
        "PG_TEMPORAL_PASSWORD": "0123abcd",
        "PG_LEDGER_PASSWORD": "4567ef01",
        "C2C_WEBHOOK_SECRET": "whsec",
        "C2C_API_TOKENS": "op-token:operator",
    }
    lines = ENV_EXAMPLE.read_text().splitlines()
    filled = [
        f"{line}{values[line[:-1]]}" if line.endswith("=") and line[:-1] in values else line
        for line in lines
    ]
    return "\n".join(filled) + "\nTEMPORAL_ADDRESS=c2c.a1b2c.tmprl.cloud:7233\n"


@pytest.fixture(scope="module")
def compose_cli() -> list[str]:
    command = compose_command()
    if command is None:
        pytest.skip("Docker Compose v2 is not installed (docker compose / docker-compose)")
    return command


def _render(compose_cli: list[str], project: Path, *files: str) -> dict[str, Any]:
    args = [arg for f in files for arg in ("-f", f)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "TEMPORAL_"))}
    rendered = subprocess.run(
        [*compose_cli, *args, "config", "--format", "json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rendered.returncode == 0, rendered.stderr
    # Some wrappers lose the exit code: an error leaves no JSON on stdout either.
    result: dict[str, Any] = json.loads(rendered.stdout)
    return result


def test_docker_compose_renders_the_stack(compose_cli: list[str], tmp_path: Path):
    project = tmp_path / "c2c"
    project.mkdir()
    shutil.copy(COMPOSE_FILE, project)
    shutil.copy(DOCKERFILE, project)
    shutil.copytree(ROOT / "deploy", project / "deploy")
    (project / ".env").write_text(_filled_env())

    local = _render(compose_cli, project, "docker-compose.yml")
    assert set(local["services"]) == set(load_compose()["services"])
    worker = local["services"]["worker"]
    assert worker["deploy"]["replicas"] == 2
    assert worker["environment"]["C2C_DATABASE_URL"].startswith("postgresql://c2c:4567ef01@")
    # A variable listed without a value reaches the container only when it is set.
    assert worker["environment"]["TEMPORAL_API_KEY"] is None

    on_cloud = _render(
        compose_cli, project, "docker-compose.yml", "deploy/compose.temporal-cloud.yaml"
    )
    assert set(on_cloud["services"]) == {"ledger-db", "sandbox", "worker", "api"}
    worker = on_cloud["services"]["worker"]
    assert worker["environment"]["TEMPORAL_ADDRESS"] == "c2c.a1b2c.tmprl.cloud:7233"
    assert set(worker["depends_on"]) == {"ledger-db", "sandbox"}


def test_docker_compose_refuses_a_stack_without_its_secrets(compose_cli: list[str], tmp_path: Path):
    shutil.copy(COMPOSE_FILE, tmp_path)
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "TEMPORAL_", "PG_"))}
    rendered = subprocess.run(
        [*compose_cli, "config", "--quiet"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "in .env" in rendered.stderr, rendered.stderr
