"""Each vendor's limits on c2c's calls (``C2C_CALL_LIMITS``), and the defaults taken from the
vendors' published limits (docs/vendors.md, "Vendor call limits"); ``c2c.call_limits`` holds
them across the workers."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

#: A per-second limit admits a call while fewer than ``per_second`` calls were under way (sent
#: and not yet answered) at some moment of the last this many seconds.
PER_SECOND_WINDOW_S = 1.0


class CallLimit(BaseModel):
    """One vendor's limits; a limit left out does not apply.

    Attributes:
        per_second: Requests that reach the vendor in any one second, across all workers.
        in_flight: Requests sent and not yet answered, across all workers.
        lease_s: How long an in-flight slot is held at most: a worker killed during a call
            frees its slots after this. Longer than the connector's timeout.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_second: int | None = Field(default=None, ge=1, le=100_000)
    in_flight: int | None = Field(default=None, ge=1, le=10_000)
    lease_s: float = Field(default=30.0, gt=0, le=3600)

    @property
    def limited(self) -> bool:
        return self.per_second is not None or self.in_flight is not None


#: Each vendor's published limits (docs/vendors.md cites them). ``C2C_CALL_LIMITS`` replaces a
#: vendor's entry as a whole. The sandbox's reference systems have none.
VENDOR_LIMITS: dict[str, CallLimit] = {
    # SuiteCloud governance: an account's concurrency limit, 5 on the default service tier
    # (more with a higher tier or SuiteCloud Plus licences).
    "netsuite": CallLimit(in_flight=5),
    # Business Central online: 6,000 OData/API requests per user per 5-minute sliding window
    # (20 a second), and 5 processed at once per user.
    "business-central": CallLimit(per_second=20, in_flight=5),
    # Stripe: 25 read and 25 write requests per second in test mode (100 each in live mode).
    "stripe": CallLimit(per_second=25),
    # Salesforce: 25 long-running requests at once in a production org.
    "salesforce": CallLimit(in_flight=25),
    # AvaTax publishes no fixed rate; it answers 429 when throttled. None here by default.
}


#: The vendors c2c calls, as ``C2C_CALL_LIMITS`` names them: the vendors' APIs, then the
#: sandbox's systems.
VENDORS = (
    "netsuite",
    "business-central",
    "stripe",
    "avatax",
    "salesforce",
    "docusign",
    "ironclad",
    "erp",
    "crm",
    "psa",
    "tax",
    "payments",
)


def resolve_limits(configured: Mapping[str, CallLimit]) -> dict[str, CallLimit]:
    """The limits in force: ``VENDOR_LIMITS`` with ``configured`` vendors replaced or added."""
    return {
        vendor: limit for vendor, limit in {**VENDOR_LIMITS, **configured}.items() if limit.limited
    }
