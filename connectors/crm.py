"""CRM connector: accounts, their hierarchy, and activities on the account timeline."""

from __future__ import annotations

from connectors.http import HttpConnector
from connectors.records import CrmAccount, CrmActivity
from domain.write_models import CrmActivityDraft


class HttpCrm(HttpConnector):
    system = "crm"

    async def get_account(self, crm_account_id: str) -> CrmAccount:
        return CrmAccount.model_validate(await self.request("GET", f"/accounts/{crm_account_id}"))

    async def get_ancestors(self, crm_account_id: str) -> list[CrmAccount]:
        body = await self.request("GET", f"/accounts/{crm_account_id}/hierarchy")
        return [CrmAccount.model_validate(a) for a in body.get("ancestors", [])]

    async def add_activity(
        self, crm_account_id: str, activity: CrmActivityDraft, *, idempotency_key: str
    ) -> CrmActivity:
        """Record an activity; an ``activity_id`` makes it once under any key."""
        return await self.send(
            CrmActivity,
            "POST",
            f"/accounts/{crm_account_id}/activities",
            json=activity.model_dump(mode="json", exclude_none=True),
            idempotency_key=idempotency_key,
        )

    async def list_activities(
        self,
        crm_account_id: str,
        *,
        activity_type: str | None = None,
        invoice_id: str | None = None,
    ) -> list[CrmActivity]:
        """The account's activities, oldest first, of a type or about an invoice if given."""
        query = {"type": activity_type, "invoice_id": invoice_id}
        return await self.collect(CrmActivity, f"/accounts/{crm_account_id}/activities", query)
