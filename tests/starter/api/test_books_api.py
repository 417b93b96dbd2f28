"""The books' routes for a token limited to some legal entities: its own entity's journal and
aging, ``403`` naming the entity for another (or for all), and bad input refused by field."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from c2c.settings import Settings
from tests.support import serve

pytestmark = pytest.mark.usefixtures("temporal_env")

UK_VIEWER = "uk-books-viewer-5e1f0c2a"
UK_OPERATOR = "uk-books-operator-9d3a7b41"


@pytest.fixture(scope="module")
def books_url(settings: Settings, state_dir: Path) -> Iterator[str]:
    scoped = settings.model_copy(
        update={
            "database_url": f"sqlite:///{state_dir / f'books-{uuid.uuid4().hex[:6]}.db'}",
            "api_tokens": SecretStr(
                f"{UK_VIEWER}:viewer:UK01@controller,{UK_OPERATOR}:operator:UK01@ops"
            ),
        }
    )
    with serve(scoped) as url:
        yield url


async def test_a_scoped_token_reads_its_own_entitys_books_only(books_url: str) -> None:
    viewer = {"Authorization": f"Bearer {UK_VIEWER}"}
    async with httpx.AsyncClient(base_url=books_url, timeout=30) as api:
        journal = await api.get(
            "/api/books/journal",
            params={"period": "2026-10", "legal_entity": "UK01"},
            headers=viewer,
        )
        assert journal.status_code == 200, journal.text
        assert journal.json() == {"period": "2026-10", "legal_entity": "UK01", "entries": []}
        aging = await api.get("/api/books/aging", params={"legal_entity": "UK01"}, headers=viewer)
        assert aging.status_code == 200 and aging.json()["by_currency"] == []

        other = await api.get("/api/books/aging", params={"legal_entity": "US01"}, headers=viewer)
        assert other.status_code == 403 and "US01" in other.text
        every = await api.get("/api/books/wip", headers=viewer)
        assert every.status_code == 403
        # Reconciling is an operator's, and only of the operator's own entities.
        refused = await api.post(
            "/api/ops/reconcile", json={"legal_entity": "UK01"}, headers=viewer
        )
        assert refused.status_code == 403
        operator = {"Authorization": f"Bearer {UK_OPERATOR}"}
        elsewhere = await api.post(
            "/api/ops/reconcile", json={"legal_entity": "US01"}, headers=operator
        )
        assert elsewhere.status_code == 403 and "US01" in elsewhere.text

        bad = await api.get(
            "/api/books/journal",
            params={"period": "2026-10", "legal_entity": "uk01"},
            headers=viewer,
        )
        assert bad.status_code == 422 and "legal_entity" in bad.text
        missing = await api.get("/api/books/journal", params={"period": "2026-10"}, headers=viewer)
        assert missing.status_code == 422 and "legal_entity" in missing.text
