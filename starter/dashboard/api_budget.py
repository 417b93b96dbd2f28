"""A vendor's daily API budget on the dashboard, as the worker last reported it.

The worker is the process that calls Salesforce, so it is the one that knows what is left of
the org's daily API requests: it exports the metrics ``c2c_vendor_api_remaining`` and
``c2c_vendor_api_max``. The dashboard reads them from the worker's Prometheus endpoint
(``C2C_WORKER_METRICS_ADDRESS``) when the CRM is Salesforce; with several workers, the one at
that address speaks for all (the budget is the org's, not a worker's).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from c2c.settings import Settings

REMAINING = "c2c_vendor_api_remaining"
MAXIMUM = "c2c_vendor_api_max"


@dataclass(frozen=True)
class ApiBudget:
    """What the dashboard shows: the budget, or why it cannot."""

    vendor: str
    remaining: int | None = None
    maximum: int | None = None
    reserve: int | None = None
    error: str | None = None

    @property
    def low(self) -> bool:
        """At or below the reserve: c2c's calls to the vendor wait."""
        return (
            self.remaining is not None
            and self.reserve is not None
            and self.remaining <= self.reserve
        )


async def load_api_budget(settings: Settings, *, timeout_s: float = 2.0) -> ApiBudget | None:
    """Salesforce's budget as the worker last saw it; ``None`` when the CRM is not Salesforce."""
    if settings.crm != "salesforce":
        return None
    vendor, reserve = "salesforce", settings.salesforce_api_reserve
    address = settings.worker_metrics_address
    if not address:
        return ApiBudget(vendor, reserve=reserve, error="the worker's metrics are off")
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            answer = await client.get(f"http://{address}/metrics")
            answer.raise_for_status()
    except httpx.HTTPError:
        return ApiBudget(
            vendor, reserve=reserve, error=f"the worker's metrics at {address} did not answer"
        )
    return parse_budget(answer.text, vendor, reserve)


def parse_budget(text: str, vendor: str, reserve: int) -> ApiBudget:
    """The budget of ``vendor`` from Prometheus's text format."""
    # The worker's series carry the activity and task queue that reported them: the lowest
    # remaining is the one to heed.
    values: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in (REMAINING, MAXIMUM) and sample.labels.get("vendor") == vendor:
                seen = values.get(sample.name)
                value = int(sample.value)
                values[sample.name] = value if seen is None else min(seen, value)
    if REMAINING not in values:
        return ApiBudget(vendor, reserve=reserve, error="no call to Salesforce yet")
    return ApiBudget(vendor, values[REMAINING], values.get(MAXIMUM), reserve)
