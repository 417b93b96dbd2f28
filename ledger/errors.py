"""What the ledger raises when a write contradicts what it already holds."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of the ledger's own errors."""


class LedgerConflict(LedgerError):
    """A write contradicts a stored row: an id bound elsewhere, a decision already taken."""


class NotFoundInLedger(LedgerError, KeyError):
    """The row asked for does not exist.

    A ``KeyError`` too, so callers that treat the ledger as a mapping can catch that.
    """

    def __str__(self) -> str:
        # KeyError quotes its argument; a message reads better unquoted.
        return str(self.args[0]) if self.args else "not found in ledger"
