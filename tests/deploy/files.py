"""Readers for the deployment files: the compose files, the Dockerfile, the env example, and
the names each image's processes read from their environment."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from c2c.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CLOUD_OVERRIDE = ROOT / "deploy" / "compose.temporal-cloud.yaml"
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SETUP_NAMESPACE = ROOT / "deploy" / "temporal" / "setup-namespace.sh"
HEALTHCHECK = ROOT / "deploy" / "healthcheck.py"

#: What the Temporal SDK's environment configuration reads (``temporalio.envconfig``, whose
#: names live in the SDK core); test_compose proves the SDK reads each one the stack sets.
SDK_VARIABLES = frozenset(
    {
        "TEMPORAL_ADDRESS",
        "TEMPORAL_NAMESPACE",
        "TEMPORAL_API_KEY",
        "TEMPORAL_TLS",
        "TEMPORAL_TLS_CLIENT_CERT_PATH",
        "TEMPORAL_TLS_CLIENT_CERT_DATA",
        "TEMPORAL_TLS_CLIENT_KEY_PATH",
        "TEMPORAL_TLS_CLIENT_KEY_DATA",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
        "TEMPORAL_TLS_SERVER_CA_CERT_DATA",
        "TEMPORAL_TLS_SERVER_NAME",
        "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION",
        "TEMPORAL_CODEC_ENDPOINT",
        "TEMPORAL_CODEC_AUTH",
        "TEMPORAL_PROFILE",
        "TEMPORAL_CONFIG_FILE",
    }
)

#: The variables each third-party image's processes read, from the images' own documentation:
#: postgres (Docker official image), temporalio/server (its config template: DB, POSTGRES_*,
#: NUM_HISTORY_SHARDS, BIND_ON_IP, DYNAMIC_CONFIG_FILE_PATH ...), temporalio/admin-tools
#: (temporal-sql-tool's SQL_*, the CLI's TEMPORAL_ADDRESS/NAMESPACE, and what
#: deploy/temporal/setup-namespace.sh reads), temporalio/ui (its config template).
IMAGE_VARIABLES: dict[str, frozenset[str]] = {
    "postgres": frozenset(
        {
            "POSTGRES_USER",
            "POSTGRES_PASSWORD",
            "POSTGRES_PASSWORD_FILE",
            "POSTGRES_DB",
            "POSTGRES_INITDB_ARGS",
            "PGDATA",
        }
    ),
    "temporalio/server": frozenset(
        {
            "DB",
            "DB_PORT",
            "DBNAME",
            "VISIBILITY_DBNAME",
            "POSTGRES_SEEDS",
            "POSTGRES_USER",
            "POSTGRES_PWD",
            "SQL_MAX_CONNS",
            "SQL_MAX_IDLE_CONNS",
            "SQL_TLS_ENABLED",
            "NUM_HISTORY_SHARDS",
            "BIND_ON_IP",
            "TEMPORAL_BROADCAST_ADDRESS",
            "DYNAMIC_CONFIG_FILE_PATH",
            "LOG_LEVEL",
            "PROMETHEUS_ENDPOINT",
        }
    ),
    "temporalio/admin-tools": frozenset(
        {
            "SQL_PLUGIN",
            "SQL_HOST",
            "SQL_PORT",
            "SQL_USER",
            "SQL_PASSWORD",
            "SQL_DATABASE",
            "TEMPORAL_ADDRESS",
            "TEMPORAL_NAMESPACE",
            "NAMESPACE_RETENTION",
        }
    ),
    "temporalio/ui": frozenset(
        {
            "TEMPORAL_ADDRESS",
            "TEMPORAL_UI_PORT",
            "TEMPORAL_DEFAULT_NAMESPACE",
            "TEMPORAL_CODEC_ENDPOINT",
            "TEMPORAL_CODEC_INCLUDE_CREDENTIALS",
            "TEMPORAL_CORS_ORIGINS",
            "TEMPORAL_DISABLE_WRITE_ACTIONS",
        }
    ),
}

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def settings_variables() -> frozenset[str]:
    """Every environment variable c2c reads: the aliases of its Settings model."""
    return frozenset(f.alias for f in Settings.model_fields.values() if f.alias)


def c2c_variables() -> frozenset[str]:
    """What a c2c container may be given: c2c's settings and the SDK's own names."""
    return settings_variables() | SDK_VARIABLES


class _ComposeLoader(yaml.SafeLoader):
    """YAML as Compose reads it, with its merge tags (``!override``, ``!reset``) kept as data."""


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_ComposeLoader.add_constructor("!override", _tagged)
_ComposeLoader.add_constructor("!reset", _tagged)


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """A compose file as a mapping (anchors and ``<<`` merges resolved)."""
    loaded = yaml.load(path.read_text(), Loader=_ComposeLoader)
    assert isinstance(loaded, dict), f"{path.name} is not a mapping"
    return loaded


def interpolated(text: str) -> set[str]:
    """The variables that ``${NAME}``, ``${NAME:-x}`` or ``${NAME:?x}`` refer to in ``text``."""
    return set(_VARIABLE.findall(text))


def environment(service: dict[str, Any]) -> dict[str, Any]:
    """A service's ``environment``, list or mapping form, as a mapping."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def image_name(image: str) -> str:
    """``temporalio/ui:2.49.1`` → ``temporalio/ui``."""
    return image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


def is_c2c(service: dict[str, Any]) -> bool:
    """Whether a service runs the image this repository builds."""
    return "build" in service


@dataclass(frozen=True)
class Port:
    """One published port: ``host_ip:host_port:container_port``."""

    host_ip: str
    host_port: int
    container_port: int


def ports(service: dict[str, Any]) -> list[Port]:
    """A service's published ports (short syntax)."""
    published: list[Port] = []
    for spec in service.get("ports", []):
        parts = str(spec).split(":")
        assert len(parts) == 3, f"port {spec!r} must name its host interface: ip:host:container"
        published.append(Port(parts[0], int(parts[1]), int(parts[2])))
    return published


def env_example_names() -> dict[str, bool]:
    """The names in deploy/env.example, each with whether it is set (not commented out)."""
    names: dict[str, bool] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=", line)
        if match:
            names[match.group(2)] = names.get(match.group(2), False) or not match.group(1)
    return names


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, its continuation lines joined."""

    keyword: str
    arguments: str
    stage: int


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions, each with the index of its build stage."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, arguments.strip(), stage))
    return instructions


def compose_command() -> list[str] | None:
    """A Docker Compose v2 that can render a compose file (no engine needed), if installed."""
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for command in candidates:
        try:
            shown = subprocess.run(
                [*command, "version", "--short"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if shown.returncode == 0 and shown.stdout.strip().lstrip("v").startswith("2"):
            return command
    return None
