"""The docs stay true where a test can tell: the README's commands are the ones CI runs, every
link between the docs reaches a file and a heading that exist, and every c2c variable the
configuration page names is one c2c reads, and every setting is named there."""

from __future__ import annotations

import re
from pathlib import Path

from c2c.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
UP = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/c2c up"
TEST = "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/pytest"

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _docs() -> list[Path]:
    return [
        ROOT / "README.md",
        ROOT / "CHANGELOG.md",
        *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "bench").rglob("*.md")),
    ]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.MULTILINE)}


def test_the_readme_opens_with_the_two_commands_and_ci_runs_the_second() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```sh\n(.*?)\n```", readme, re.MULTILINE | re.DOTALL)
    assert blocks[:2] == [UP, TEST]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert TEST in ci.splitlines()


def test_every_relative_link_reaches_a_file_and_heading() -> None:
    broken = []
    for doc in _docs():
        text = FENCE.sub("", doc.read_text(encoding="utf-8"))
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto
            name, _, anchor = target.partition("#")
            path = (doc.parent / name).resolve() if name else doc
            if not path.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_every_variable_the_configuration_page_names_is_read_and_every_setting_is_named() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:C2C|TEMPORAL|OTEL)_[A-Z0-9_]+)`", page))
    read = {field.alias for field in Settings.model_fields.values() if field.alias}
    # c2c up's port options, read by its command line rather than by Settings.
    read |= {"C2C_TEMPORAL_PORT", "C2C_TEMPORAL_UI_PORT", "C2C_SANDBOX_PORT", "C2C_API_PORT"}
    # The Temporal SDK's own environment configuration (Temporal Cloud, TLS).
    sdk = {
        "TEMPORAL_API_KEY",
        "TEMPORAL_TLS_CLIENT_CERT_PATH",
        "TEMPORAL_TLS_CLIENT_KEY_PATH",
        "TEMPORAL_PROFILE",
    }
    assert named - read - sdk == set(), "named but not read"
    assert read - named == set(), "read but not documented"
