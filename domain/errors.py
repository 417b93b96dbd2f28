"""The two classes of failure c2c knows, shared by connectors, activities and workflows.

Transient failures (timeouts, 5xx, 429) are retried by Temporal with backoff; business
rejections are not retried and put the contract on hold with an exception for a person.
"""

from __future__ import annotations

from pydantic import BaseModel

#: ``ApplicationError.type`` of a business rejection; workflows match on it.
BUSINESS_REJECTION = "BusinessRejection"
#: ``ApplicationError.type`` of a transient failure.
TRANSIENT_FAILURE = "TransientFailure"


class Rejection(BaseModel):
    """What a system said when it refused a request: carried as the error's details."""

    system: str
    code: str
    message: str
    field: str | None = None
    status: int | None = None


class ConnectorError(Exception):
    """Base of the errors a connector raises."""

    def __init__(self, system: str, message: str) -> None:
        super().__init__(f"{system}: {message}")
        self.system = system


class TransientError(ConnectorError):
    """The call may succeed if repeated: a timeout, a 5xx, a 429."""

    def __init__(
        self,
        system: str,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(system, message)
        self.status = status
        self.retry_after_s = retry_after_s


class BusinessError(ConnectorError):
    """The system refused the request on its merits; repeating it would not help."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.system, f"{rejection.code}: {rejection.message}")
        self.rejection = rejection


class NotFound(BusinessError):
    """The record asked for does not exist in the system."""
