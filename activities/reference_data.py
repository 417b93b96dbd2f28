"""Reference data that changes rarely, read once per worker process and kept a short while.

Every contract's validation asks the ERP for its legal entity and the tax engine for the
customer's jurisdiction; a burst of contracts for a few entities and countries asks the same
questions again and again. A worker process keeps each answer for
``C2C_REFERENCE_CACHE_SECONDS`` (0: not at all), so a change in the ERP or the tax engine reaches
new steps within that long. Only answers are kept: a failed read, and an entity the ERP does
not know (which holds the contract until someone sets it up), are asked again next time.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from c2c.settings import Settings
from connectors.records import LegalEntity
from connectors.registry import Connectors

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Expiring(Generic[K, V]):
    """Answers by key, each forgotten ``seconds`` after it was read.

    Args:
        seconds: How long an answer is reused; 0 or less keeps none.
        clock: Monotonic seconds (tests move it on).
    """

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._answers: dict[K, tuple[float, V]] = {}

    async def get(self, key: K, read: Callable[[], Awaitable[V | None]]) -> V | None:
        """The answer for ``key``: kept, or ``read()`` now (and kept unless it is ``None``).

        An error from ``read`` propagates and nothing is kept.
        """
        now = self.clock()
        kept = self._answers.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]
        answer = await read()
        if self.seconds > 0 and answer is not None:
            self._answers[key] = (now + self.seconds, answer)
        else:
            self._answers.pop(key, None)
        return answer


class ReferenceData:
    """Legal entities from the ERP and tax jurisdictions from the tax engine, kept for
    ``C2C_REFERENCE_CACHE_SECONDS`` in this process."""

    def __init__(
        self,
        connectors: Connectors,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connectors = connectors
        seconds = settings.reference_cache_seconds
        self._entities: Expiring[str, LegalEntity] = Expiring(seconds, clock=clock)
        self._jurisdictions: Expiring[tuple[str, str | None], str] = Expiring(seconds, clock=clock)

    async def legal_entity(self, code: str) -> LegalEntity | None:
        """The ERP's legal entity ``code``; ``None`` when the ERP does not know it."""
        return await self._entities.get(code, lambda: self.connectors.erp.get_legal_entity(code))

    async def jurisdiction(self, country: str, region: str | None) -> str:
        """The tax engine's jurisdiction code for an address it accepts.

        Raises:
            BusinessError: The tax engine refused the address (never kept).
        """
        found = await self._jurisdictions.get(
            (country, region), lambda: self.connectors.tax.validate_address(country, region)
        )
        assert found is not None  # the tax port answers a code or raises
        return found
