"""An invoice's or credit note's documents: ``GET /api/invoices/{id}/document`` (the PDF) and
``GET /api/invoices/{id}/einvoice`` (UBL 2.1, Peppol BIS Billing 3.0, for a legal entity in the
EU), and ``c2c contracts invoice-pdf ID`` and ``c2c contracts invoice-einvoice ID``. A
consolidated invoice's (one per customer and period across its contracts) are served under its
ERP id the same way; a token limited to some legal entities sees it when it sees the legal
entity of the customer's billing key.

Each reads the archive through the ledger's record of the document and checks the bytes
against its SHA-256 before giving them out; a document that is gone or altered is never served
(``502``), and is logged and counted like a signed document
(``c2c_archive_verification_failures_total``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from fastapi.responses import Response

from c2c.logs import get_logger
from c2c.settings import Settings, get_settings
from ledger import get_ledger
from ledger.invoice_documents import InvoiceDocumentRecord
from starter.api import scope
from starter.api.auth import Identity, authorize
from starter.api.context import ApiContext, api_context
from starter.api.documents import DocumentUnavailable, verified_bytes
from starter.api.errors import ApiError, error_responses, known_query_only

log = get_logger("c2c.api.invoice_documents")

router = APIRouter(
    prefix="/api",
    dependencies=[Depends(authorize), Depends(known_query_only)],
    responses=error_responses(400, 401, 403, 413, 422, 500),
)

#: What each kind of document is called in answers and file names.
KINDS = {"pdf": ("PDF", "pdf"), "einvoice": ("e-invoice", "xml")}


def read_invoice_document(
    settings: Settings, invoice_id: str, kind: str
) -> tuple[InvoiceDocumentRecord, bytes]:
    """An invoice's document of ``kind`` and its bytes, verified against the recorded SHA-256.

    Raises:
        DocumentUnavailable: None archived (``no_invoice_document``), or the object is
            missing or altered.
    """
    name = KINDS[kind][0]
    record = get_ledger(settings.ledger_url).get_invoice_document(invoice_id, kind)
    if record is None:
        raise DocumentUnavailable(
            "no_invoice_document", f"invoice {invoice_id} has no archived {name}"
        )
    data = verified_bytes(
        settings,
        record.sha256,
        what=f"invoice {invoice_id}: the {name}",
        event="archived invoice document failed verification",
        invoice_id=invoice_id,
        kind=kind,
        location=record.location,
    )
    return record, data


async def _serve(invoice_id: str, kind: str, identity: Identity, context: ApiContext) -> Response:
    name, extension = KINDS[kind]
    missing = ApiError(404, "no_invoice_document", f"invoice {invoice_id} has no archived {name}")
    record = await asyncio.to_thread(
        get_ledger(context.settings.ledger_url).get_invoice_document, invoice_id, kind
    )
    # Another legal entity's invoice, for a token limited to some, is one without documents.
    if record is None or not await scope.may_see(context, identity, record.contract_id):
        raise missing
    try:
        stored, data = await asyncio.to_thread(
            read_invoice_document, context.settings, invoice_id, kind
        )
    except DocumentUnavailable as exc:
        status = 404 if exc.code == "no_invoice_document" else 502
        raise ApiError(status, exc.code, str(exc)) from None
    return Response(
        data,
        media_type=stored.content_type,
        headers={
            "ETag": f'"{stored.sha256}"',
            "Content-Disposition": f'attachment; filename="{stored.number}.{extension}"',
            "X-Content-SHA256": stored.sha256,
        },
    )


@router.get(
    "/invoices/{invoice_id}/document",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "the invoice's PDF"},
        **error_responses(
            s404="the invoice has no archived PDF",
            s502="the archived PDF is missing or altered; it is not served",
        ),
    },
    summary="An invoice's or credit note's PDF from the archive",
)
async def invoice_document(
    invoice_id: str = PathParam(min_length=1, max_length=200),
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> Response:
    """The PDF, once its bytes match the SHA-256 recorded when it was archived (``ETag`` is
    that hash)."""
    return await _serve(invoice_id, "pdf", identity, context)


@router.get(
    "/invoices/{invoice_id}/einvoice",
    response_class=Response,
    responses={
        200: {
            "content": {"application/xml": {}},
            "description": "the UBL 2.1 Invoice or CreditNote (Peppol BIS Billing 3.0)",
        },
        **error_responses(
            s404="the invoice has no archived e-invoice (its legal entity is not in the EU)",
            s502="the archived e-invoice is missing or altered; it is not served",
        ),
    },
    summary="An invoice's or credit note's e-invoice from the archive",
)
async def invoice_einvoice(
    invoice_id: str = PathParam(min_length=1, max_length=200),
    identity: Identity = Depends(authorize),
    context: ApiContext = Depends(api_context),
) -> Response:
    """The UBL e-invoice, once its bytes match the SHA-256 recorded when it was archived
    (``ETag`` is that hash)."""
    return await _serve(invoice_id, "einvoice", identity, context)


def _download(invoice_id: str, kind: str, output: Path | None) -> None:
    try:
        record, data = read_invoice_document(get_settings(), invoice_id, kind)
    except DocumentUnavailable as exc:
        typer.echo(f"error: {exc.code}: {exc}", err=True)
        raise typer.Exit(1) from None
    target = output or Path(f"{record.number}.{KINDS[kind][1]}")
    target.write_bytes(data)
    typer.echo(f"{target} ({record.size} bytes, sha256 {record.sha256})")


def invoice_pdf(
    invoice_id: str,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="file to write (default: <invoice number>.pdf)"
    ),
) -> None:
    """Download an invoice's or credit note's PDF from the archive, its SHA-256 checked."""
    _download(invoice_id, "pdf", output)


def invoice_einvoice_command(
    invoice_id: str,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="file to write (default: <invoice number>.xml)"
    ),
) -> None:
    """Download an invoice's or credit note's e-invoice (UBL 2.1, Peppol BIS Billing 3.0)
    from the archive, its SHA-256 checked."""
    _download(invoice_id, "einvoice", output)
