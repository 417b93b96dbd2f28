"""The signed contract document: ``GET /api/contracts/{id}/document`` and
``c2c contracts document ID``.

Both read the archive through the ledger's record of the contract's document and check the
bytes against its SHA-256 before giving them out. A document that is gone, or whose bytes
hash to something else, is never served: the answer is an error naming the problem, logged
and counted (``c2c_archive_verification_failures_total``) for the integration team.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from fastapi.responses import Response
from prometheus_client import Counter

from c2c.logs import get_logger
from c2c.settings import Settings, get_settings
from ledger import get_ledger
from ledger.archive import DocumentAltered, DocumentMissing, archive_from_settings, read_verified
from ledger.documents import SignedDocument
from starter.api import scope
from starter.api.auth import Identity, authorize
from starter.api.context import ApiContext, api_context
from starter.api.errors import ApiError, error_responses, known_query_only

log = get_logger("c2c.api.documents")

VERIFICATION_FAILURES = Counter(
    "c2c_archive_verification_failures_total",
    "Signed documents the archive could not give back intact, by reason (missing, altered)",
    ["reason"],
)

router = APIRouter(
    prefix="/api",
    dependencies=[Depends(authorize), Depends(known_query_only)],
    responses=error_responses(400, 401, 403, 413, 422, 500),
)


class DocumentUnavailable(Exception):
    """The contract has no archived document, or the archive cannot give it back intact.

    Attributes:
        code: ``no_signed_document``, ``archive_document_missing`` or
            ``archive_document_altered``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def verified_bytes(
    settings: Settings, sha256: str, *, what: str, event: str, **where: str | None
) -> bytes:
    """The archived bytes of ``sha256``, checked against it; a missing or altered object is
    logged and counted for the integration team and never given out.

    Args:
        what: How the answer names the document (``contract C-1: the signed document``).
        event: The log line's event.
        where: What the log line adds (ids, the document's location).

    Raises:
        DocumentUnavailable: ``archive_document_missing`` or ``archive_document_altered``.
    """
    try:
        return read_verified(archive_from_settings(settings), sha256)
    except DocumentMissing as exc:
        reason, code = "missing", "archive_document_missing"
        message = f"{what} is gone from the archive ({exc})"
    except DocumentAltered as exc:
        reason, code = "altered", "archive_document_altered"
        message = f"{what} was altered in the archive ({exc})"
    VERIFICATION_FAILURES.labels(reason=reason).inc()
    log.error(event, reason=reason, sha256=sha256, queue="integration", **where)
    raise DocumentUnavailable(code, message)


def read_document(settings: Settings, contract_id: str) -> tuple[SignedDocument, bytes]:
    """A contract's signed document and its bytes, verified against the recorded SHA-256.

    Raises:
        DocumentUnavailable: None archived, or the object is missing or altered.
    """
    record = get_ledger(settings.ledger_url).get_signed_document(contract_id)
    if record is None:
        raise DocumentUnavailable(
            "no_signed_document", f"contract {contract_id} has no archived signed document"
        )
    data = verified_bytes(
        settings,
        record.sha256,
        what=f"contract {contract_id}: the signed document",
        event="archived signed document failed verification",
        contract_id=contract_id,
        location=record.location,
    )
    return record, data


@router.get(
    "/contracts/{contract_id}/document",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "the signed PDF"},
        **error_responses(
            s404="the contract has no archived signed document",
            s502="the archived document is missing or altered; it is not served",
        ),
    },
    summary="The signed contract document from the archive",
)
async def contract_document(
    contract_id: str = PathParam(min_length=1, max_length=64),
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> Response:
    """The signed PDF, once its bytes match the SHA-256 recorded when it was archived
    (``ETag`` is that hash). Another legal entity's contract, for a token limited to some,
    is answered as a contract without a document."""
    if not await scope.may_see(context, identity, contract_id):
        raise ApiError(
            404,
            "no_signed_document",
            f"contract {contract_id} has no archived signed document",
        )
    try:
        record, data = await asyncio.to_thread(read_document, context.settings, contract_id)
    except DocumentUnavailable as exc:
        status = 404 if exc.code == "no_signed_document" else 502
        raise ApiError(status, exc.code, str(exc)) from None
    return Response(
        data,
        media_type=record.content_type,
        headers={
            "ETag": f'"{record.sha256}"',
            "Content-Disposition": f'attachment; filename="{contract_id}-signed.pdf"',
            "X-Content-SHA256": record.sha256,
        },
    )


def document(
    contract_id: str,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="file to write (default: <contract>-signed.pdf)"
    ),
) -> None:
    """Download a contract's signed document from the archive, its SHA-256 checked."""
    try:
        record, data = read_document(get_settings(), contract_id)
    except DocumentUnavailable as exc:
        typer.echo(f"error: {exc.code}: {exc}", err=True)
        raise typer.Exit(1) from None
    target = output or Path(f"{contract_id}-signed.pdf")
    target.write_bytes(data)
    typer.echo(f"{target} ({record.size} bytes, sha256 {record.sha256}, from {record.source})")
