"""CRM connector: accounts, their hierarchy, and activities on the account timeline."""

from __future__ import annotations

from typing import Any

from connectors.http import HttpConnector
from connectors.records import CrmAccount


class HttpCrm(HttpConnector):
    system = "crm"

    async def get_account(self, crm_account_id: str) -> CrmAccount:
        return CrmAccount.model_validate(await self.request("GET", f"/accounts/{crm_account_id}"))

    async def get_ancestors(self, crm_account_id: str) -> list[CrmAccount]:
        body = await self.request("GET", f"/accounts/{crm_account_id}/hierarchy")
        return [CrmAccount.model_validate(a) for a in body.get("ancestors", [])]

    async def add_activity(
        self, crm_account_id: str, activity: dict[str, Any], *, idempotency_key: str
    ) -> None:
        await self.request(
            "POST",
            f"/accounts/{crm_account_id}/activities",
            json=activity,
            idempotency_key=idempotency_key,
        )
