"""The operations dashboard (``GET /``): server-rendered HTML for finance and on-call.

Pages: ``/`` (pipeline, exception queue, drafts waiting for review, KPIs; filters in the
query string) and
``/contracts/{id}`` (one contract's timeline, systems' ids, invoices and amendments). Operator
decisions are plain HTML forms posted to ``/ui/exceptions/{id}/{action}``, which call the same
code as ``POST /api/exceptions/{id}/{action}`` and redirect back with a message. When
``C2C_API_TOKENS`` is set, a browser logs in at ``/login`` with a token (see
``starter.dashboard.session``); when ``C2C_OIDC_ISSUER`` is set, also through single sign-on
(``/auth/login``, see ``starter.dashboard.sso``); with neither the dashboard is open, like the
API. A login limited to some legal entities sees only their contracts, exceptions and KPIs,
and is answered about another entity's contract or exception as about one that does not
exist.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from c2c import json_input
from c2c.logs import get_logger
from c2c.settings import Settings
from domain.consolidation import CustomerBillingKey, customer_billing_workflow_id
from domain.models import ContractStatus
from domain.names import (
    SA_BILLING_MODEL,
    SA_CUSTOMER_ID,
    SA_LEGAL_ENTITY,
    ExceptionAction,
    ExceptionQueue,
)
from ledger.books import AGING_BUCKETS
from starter.api import contracts, scope
from starter.api.auth import Identity, Role, TokenTable, tokens_of
from starter.api.context import ApiContext, context_of
from starter.api.documents import DocumentUnavailable
from starter.api.invoice_documents import KINDS, read_invoice_document
from starter.api.updates import rejection_reason
from starter.dashboard import sso
from starter.dashboard.api_budget import load_api_budget
from starter.dashboard.session import (
    CSRF_COOKIE,
    CSRF_FIELD,
    SESSION_COOKIE,
    SESSION_TTL_S,
    Session,
    csrf_token,
    csrf_valid,
    has_signing_secret,
    issue_session,
    issue_sso_session,
    new_nonce,
    request_session,
    seal,
    set_cookie,
    signing_key,
    unseal,
)
from starter.dashboard.views import (
    FILTERS,
    PIPELINE,
    Filters,
    Problem,
    kpi_view,
    load_drafts,
    load_kpis,
    load_pipeline,
    load_queue,
)
from starter.ops import exception_queue, invoice_review
from starter.ops.exception_queue import ExceptionNotFound, ExceptionNotOpen
from starter.ops.invoice_review import DraftNotFound, DraftNotWaiting

log = get_logger("c2c.dashboard")

HERE = Path(__file__).parent
FLASH_COOKIE = "c2c_flash"
#: Longest note an operator may leave on a decision (as ``ResolveException.note``).
MAX_NOTE_LENGTH = 2000
#: Largest dashboard form accepted (a note and a few hidden fields).
MAX_FORM_BYTES = 16 * 1024
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")

# Inline SVG and the page's own files only: a value that slipped past escaping still could
# not run a script, load one from elsewhere, or frame the page.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters.update(FILTERS)

router = APIRouter(include_in_schema=False)


class DashboardError(Exception):
    """A refusal the dashboard answers with an HTML page naming the field and the problem."""

    def __init__(self, status: int, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


class LoginRequired(Exception):
    """A page was asked for without a session; the browser goes to the login form."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def install(app: FastAPI, settings: Settings, tokens: TokenTable) -> None:
    """Serve the dashboard from ``app``: its pages, static files and error pages.

    Raises:
        ValueError: a ``C2C_OIDC_*`` setting is missing or malformed, or single sign-on is
            configured with no secret to sign its sessions.
    """
    app.state.sso = sso.SsoConfig.from_settings(settings)
    if app.state.sso is not None and not has_signing_secret(settings):
        raise ValueError(
            "C2C_OIDC_ISSUER needs C2C_SESSION_SECRET (or C2C_OIDC_CLIENT_SECRET) to sign the "
            "dashboard's sessions"
        )
    app.state.dashboard_key = signing_key(settings, tokens)
    if tokens.entries and not has_signing_secret(settings):
        log.warning(
            "dashboard sessions are signed with a key derived from the token digests alone; "
            "set C2C_SESSION_SECRET so that reading the configuration is not enough to sign one"
        )
    from starter.dashboard import customer_billing, events, reconciliation

    app.include_router(router)
    app.include_router(customer_billing.router)
    app.include_router(reconciliation.router)
    app.include_router(events.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(DashboardError, _error_page)
    app.add_exception_handler(LoginRequired, _to_login)


# Sessions, CSRF and rendering.


def _key(request: Request) -> bytes:
    key: bytes = request.app.state.dashboard_key
    return key


def current_session(request: Request) -> Session | None:
    """The browser's session; an open dashboard (no tokens) gives everyone an open one."""
    tokens = tokens_of(request)
    if not tokens.enabled:
        return Session(role=None)
    return request_session(request, tokens)


def viewer(request: Request) -> Session:
    """A page's session (at least a viewer's).

    Raises:
        LoginRequired: no valid session; the browser is sent to ``/login``.
    """
    session = current_session(request)
    if session is None:
        raise LoginRequired(_here(request))
    return session


def operator(request: Request) -> Session:
    """An action's session, which must be an operator's.

    Raises:
        DashboardError: ``401`` without a session, ``403`` for a viewer.
    """
    session = current_session(request)
    if session is None:
        raise DashboardError(401, "log in to act on exceptions")
    if not session.allows(Role.OPERATOR):
        raise DashboardError(403, f"this needs the operator role; you are a {session.role}")
    return session


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def safe_next(value: str | None) -> str:
    """A redirect target only within the dashboard: a local path, never another site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def render(
    request: Request,
    template: str,
    session: Session,
    *,
    status: int = 200,
    live: bool = True,
    **values: Any,
) -> HTMLResponse:
    """A page from ``template``, with what every page shows (session, CSRF token, refresh,
    the message left by the last action). Only ``live`` pages refresh themselves; a form or
    an error stays as it is."""
    nonce = request.cookies.get(CSRF_COOKIE) or new_nonce()
    flash = _read_flash(request)
    settings: Settings = request.app.state.context.settings
    html = templates.get_template(template).render(
        session=session,
        sso_enabled=getattr(request.app.state, "sso", None) is not None,
        auth_enabled=tokens_of(request).enabled,
        can_act=session.allows(Role.OPERATOR),
        csrf_field=CSRF_FIELD,
        csrf=csrf_token(_key(request), nonce, session),
        here=_here(request),
        refresh_s=settings.dashboard_refresh_s if live else 0,
        flash=flash,
        stages=[s.value for s in PIPELINE],
        actions=[a.value for a in ExceptionAction],
        **values,
    )
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    if request.cookies.get(CSRF_COOKIE) != nonce:
        set_cookie(response, request, CSRF_COOKIE, nonce, max_age=SESSION_TTL_S)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def _read_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = json_input.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        return {"kind": str(data["kind"]), "text": str(data["text"])}
    except (ValueError, KeyError, TypeError):
        return None


def redirect(request: Request, to: str, *, kind: str = "", text: str = "") -> RedirectResponse:
    """``303 See Other`` to ``to``, leaving a message for the page it lands on."""
    response = RedirectResponse(to, status_code=303, headers=SECURITY_HEADERS)
    if text:
        value = base64.urlsafe_b64encode(json.dumps({"kind": kind, "text": text}).encode())
        set_cookie(response, request, FLASH_COOKIE, value.decode().rstrip("="), max_age=60)
    return response


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, one value per field.

    Raises:
        DashboardError: another content type (``415``) or a body too large (``413``).
    """
    body = await request.body()
    if not body:
        # A form with no fields: a browser may send it without a content type.
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise DashboardError(415, "send the form as application/x-www-form-urlencoded")
    if len(body) > MAX_FORM_BYTES:
        raise DashboardError(413, f"the form is larger than {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise DashboardError(400, "the form is not UTF-8") from None
    return {name: values[-1] for name, values in fields.items()}


def check_csrf(request: Request, session: Session, form: dict[str, str]) -> None:
    """Refuse a form that did not come from a page this browser was served.

    Raises:
        DashboardError: ``403`` when the CSRF token is missing or wrong.
    """
    nonce = request.cookies.get(CSRF_COOKIE)
    if not csrf_valid(_key(request), nonce, session, form.get(CSRF_FIELD)):
        raise DashboardError(
            403,
            "the form's CSRF token is missing or out of date; reload the page and try again",
            field=CSRF_FIELD,
        )


async def _error_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DashboardError)
    # The error page offers no action, so a browser without a session may see it.
    session = current_session(request) or Session(role=None)
    return render(
        request,
        "error.html",
        session,
        status=exc.status,
        live=False,
        message=exc.message,
        field=exc.field,
        code=exc.status,
    )


async def _to_login(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(f"/login?next={quote(exc.next_url)}", status_code=303)


def check_own_entity(identity: Identity, legal_entity: str | None) -> None:
    """Refuse a filter on a legal entity the login may not see.

    Raises:
        DashboardError: ``403`` naming the login's own entities.
    """
    if legal_entity and not identity.sees(legal_entity):
        raise DashboardError(
            403,
            f"{legal_entity} is not one of your legal entities "
            f"({'+'.join(sorted(identity.entities or ()))})",
            field="legal_entity",
        )


def refuse(problems: list[Problem]) -> DashboardError:
    """A ``422`` naming every invalid field."""
    return DashboardError(422, "; ".join(str(p) for p in problems), field=problems[0].field)


# Pages.


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    """The pipeline, the exception queue and the KPIs, filtered by the query string."""
    session = viewer(request)
    filters, problems = Filters.parse(request.query_params)
    if problems:
        raise refuse(problems)
    identity = session.identity
    check_own_entity(identity, filters.legal_entity)
    context = context_of(request)
    # Each section reads its own source; one that fails says so and the others still show.
    pipeline, queue, report, api_budget, drafts = await asyncio.gather(
        load_pipeline(context, filters, identity.entities),
        load_queue(context, filters, identity),
        load_kpis(context, filters.legal_entity, filters.period, identity.entities),
        load_api_budget(context.settings),
        load_drafts(context, filters, identity),
    )
    return render(
        request,
        "index.html",
        session,
        filters=filters,
        pipeline=pipeline,
        queue=queue,
        kpis=kpi_view(report) if report is not None else None,
        queues=[q.value for q in ExceptionQueue],
        api_budget=api_budget,
        aging_buckets=AGING_BUCKETS,
        drafts=drafts,
    )


@router.get("/invoices/{invoice_id}/{kind}", response_class=Response)
async def invoice_document(invoice_id: str, kind: str, request: Request) -> Response:
    """An invoice's or credit note's PDF (``document``) or e-invoice (``einvoice``) from the
    archive, for the invoice rows' links: served only once its SHA-256 verifies."""
    session = viewer(request)
    kinds = {"document": "pdf", "einvoice": "einvoice"}
    if kind not in kinds or not 1 <= len(invoice_id) <= 200:
        raise DashboardError(404, f"no document {kind} of invoice {invoice_id}")
    context = context_of(request)
    ledger = await context.ledger()
    record = await asyncio.to_thread(ledger.get_invoice_document, invoice_id, kinds[kind])
    if record is None or not await scope.may_see(context, session.identity, record.contract_id):
        raise DashboardError(404, f"invoice {invoice_id} has no archived {KINDS[kinds[kind]][0]}")
    try:
        stored, data = await asyncio.to_thread(
            read_invoice_document, context.settings, invoice_id, kinds[kind]
        )
    except DocumentUnavailable as exc:
        raise DashboardError(502, f"{exc.code}: {exc}") from None
    return Response(
        data,
        media_type=stored.content_type,
        headers={
            "ETag": f'"{stored.sha256}"',
            "Content-Disposition": (f'inline; filename="{stored.number}.{KINDS[kinds[kind]][1]}"'),
        },
    )


def _valid_contract_id(contract_id: str) -> bool:
    return 1 <= len(contract_id) <= 64 and set(contract_id) <= _ID_CHARS


@router.get("/contracts/{contract_id}", response_class=HTMLResponse)
async def contract_page(contract_id: str, request: Request) -> Response:
    """One contract: stage, systems' ids, timeline, invoices, credit notes, amendments,
    milestones and exceptions (open and decided)."""
    session = viewer(request)
    if not _valid_contract_id(contract_id):
        raise DashboardError(
            422, "letters, digits and . _ : - (at most 64) only", field="contract_id"
        )
    context = context_of(request)
    # Before anything is asked of the contract: another entity's is as if it did not exist.
    if not await scope.may_see(context, session.identity, contract_id):
        raise DashboardError(404, f"no contract {contract_id}")
    client = await _temporal(context)
    handle = contracts.contract_handle(client, contract_id)
    try:
        status, described = await asyncio.gather(
            contracts.get_status(client, contract_id), handle.describe()
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise DashboardError(404, f"no contract {contract_id}") from None
        raise DashboardError(503, "Temporal did not answer; try again") from None
    except Exception as exc:
        log.warning("contract status unavailable", contract_id=contract_id, error=str(exc))
        raise DashboardError(502, "the contract's workflow could not answer") from None
    attributes = described.typed_search_attributes
    customer_id, legal_entity = attributes.get(SA_CUSTOMER_ID), attributes.get(SA_LEGAL_ENTITY)
    ledger = await context.ledger()
    decided = await exception_queue.list_exceptions(ledger, contract_id=contract_id)
    status, settled = await contracts.from_ledger(status, ledger)
    return render(
        request,
        "contract.html",
        session,
        contract=status,
        settled=settled,
        workflow={
            "id": described.id,
            "run_id": described.run_id,
            "status": described.status.name.lower() if described.status else "unknown",
            "started_at": described.start_time,
            "closed_at": described.close_time,
            "customer_id": customer_id,
            "legal_entity": legal_entity,
            "billing_model": attributes.get(SA_BILLING_MODEL),
        },
        customer_billing=customer_billing_of(status, legal_entity, customer_id),
        decided=[e for e in decided if e.status != "open"],
    )


def customer_billing_of(
    status: ContractStatus, legal_entity: str | None, customer_id: str | None
) -> str | None:
    """The id of the customer billing workflow a consolidating contract sends its sections
    to (``None`` for a contract invoiced on its own)."""
    if status.consolidated_invoicing == "none" or not legal_entity or not customer_id:
        return None
    po = status.po_number if status.consolidated_invoicing == "customer_po" else None
    key = CustomerBillingKey(
        legal_entity=legal_entity,
        crm_account_id=customer_id,
        currency=status.currency,
        po_number=po or None,
    )
    return customer_billing_workflow_id(key)


async def _temporal(context: ApiContext) -> Client:
    try:
        return await context.temporal()
    except Exception:
        raise DashboardError(503, "Temporal is not reachable; try again shortly") from None


# Operator decisions.


@router.post("/ui/exceptions/{exception_id}/{action}")
async def decide(exception_id: str, action: str, request: Request) -> Response:
    """Retry, skip or abort the step an exception holds up, then go back to the page the
    form was on, with the outcome as a message."""
    session = operator(request)
    form = await read_form(request)
    check_csrf(request, session, form)
    back = safe_next(form.get("next"))
    problems = []
    if action not in {a.value for a in ExceptionAction}:
        problems.append(Problem("action", f"must be one of {', '.join(ExceptionAction)}"))
    note = form.get("note", "").strip()
    if len(note) > MAX_NOTE_LENGTH:
        problems.append(Problem("note", f"must be at most {MAX_NOTE_LENGTH} characters"))
    if problems:
        raise refuse(problems)
    context = context_of(request)
    ledger = await context.ledger()
    try:
        item = await exception_queue.get_exception(ledger, exception_id)
        if not await scope.may_see(context, session.identity, item.contract_id):
            raise ExceptionNotFound(exception_id)
    except ExceptionNotFound:
        raise DashboardError(404, f"no exception {exception_id}", field="exception_id") from None
    client = await _temporal(context)
    try:
        status = await exception_queue.resolve(
            client,
            item,
            ExceptionAction(action),
            operator=session.operator,
            note=note,
            ledger=ledger,
        )
    except ExceptionNotOpen as exc:
        return redirect(request, back, kind="error", text=str(exc))
    except WorkflowUpdateFailedError as exc:
        reason = rejection_reason(exc)
        return redirect(request, back, kind="error", text=f"{action} refused: {reason}")
    except RPCError as exc:
        text = (
            "the contract's workflow has finished"
            if contracts.is_finished_error(exc)
            else f"Temporal refused the decision ({exc.status.name}); try again"
        )
        return redirect(request, back, kind="error", text=text)
    log.info(
        "exception decided from the dashboard",
        exception_id=exception_id,
        contract_id=item.contract_id,
        action=action,
        operator=session.operator,
    )
    done = {"retry": "Retried", "skip": "Skipped", "abort": "Aborted"}[action]
    return redirect(
        request,
        back,
        kind="ok",
        text=f"{done} {exception_id} on {item.contract_id}; the contract is now "
        f"{status.stage.value.replace('_', ' ')}.",
    )


@router.post("/ui/invoices/{invoice_id}/{decision}")
async def review(invoice_id: str, decision: str, request: Request) -> Response:
    """Approve or reject a draft invoice (a rejection with its reason), then go back to the
    page the form was on, with the outcome as a message."""
    session = operator(request)
    form = await read_form(request)
    check_csrf(request, session, form)
    back = safe_next(form.get("next"))
    problems = []
    if decision not in ("approve", "reject"):
        problems.append(Problem("decision", "must be approve or reject"))
    reason = form.get("reason", "").strip() or None
    if decision == "reject" and reason is None:
        problems.append(Problem("reason", "a rejection needs a reason"))
    if reason is not None and len(reason) > MAX_NOTE_LENGTH:
        problems.append(Problem("reason", f"must be at most {MAX_NOTE_LENGTH} characters"))
    if problems:
        raise refuse(problems)
    context = context_of(request)
    ledger = await context.ledger()
    try:
        item = await invoice_review.get_draft(ledger, invoice_id)
        if not await scope.may_see(context, session.identity, item.contract_id):
            raise DraftNotFound(invoice_id)
    except DraftNotFound:
        raise DashboardError(404, f"no draft invoice {invoice_id}", field="invoice_id") from None
    client = await _temporal(context)
    try:
        status = await invoice_review.review(
            client,
            item,
            "approve" if decision == "approve" else "reject",
            operator=session.operator,
            reason=reason,
        )
    except DraftNotWaiting as exc:
        return redirect(request, back, kind="error", text=str(exc))
    except WorkflowUpdateFailedError as exc:
        reason = rejection_reason(exc)
        return redirect(request, back, kind="error", text=f"{decision} refused: {reason}")
    except RPCError as exc:
        text = (
            "the contract's workflow has finished"
            if contracts.is_finished_error(exc)
            else f"Temporal refused the review ({exc.status.name}); try again"
        )
        return redirect(request, back, kind="error", text=text)
    log.info(
        "draft invoice reviewed from the dashboard",
        invoice_id=invoice_id,
        contract_id=item.contract_id,
        decision=decision,
        operator=session.operator,
    )
    done = "Approved" if decision == "approve" else "Rejected"
    return redirect(
        request,
        back,
        kind="ok",
        text=f"{done} {invoice_id} of {item.contract_id}; the contract is now "
        f"{status.stage.value.replace('_', ' ')}.",
    )


# Login and logout.


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/") -> Response:
    """The login form (only when tokens are configured)."""
    if not tokens_of(request).enabled:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(
        request, "login.html", Session(role=None), live=False, next=safe_next(next), error=None
    )


@router.post("/login")
async def login(request: Request) -> Response:
    """Check a token and start a session for its role."""
    tokens = tokens_of(request)
    form = await read_form(request)
    target = safe_next(form.get("next"))
    if not tokens.enabled:
        return RedirectResponse(target, status_code=303)
    # Before login the session is empty; the token still binds the form to this browser.
    check_csrf(request, Session(role=None), form)
    token = form.get("token", "").strip()
    # A name typed into the form is not who decides: the token's configured name is.
    entry = tokens.entry_of(token) if token else None
    role = entry.role if entry is not None else None
    refused: tuple[int, Problem] | None = None
    if not token:
        refused = 422, Problem("token", "is required")
    elif role is None:
        refused = 401, Problem("token", "is not a configured token")
    if refused is not None or role is None or entry is None:
        status, problem = refused or (401, Problem("token", "is not a configured token"))
        log.info("dashboard login refused", reason=str(problem))
        return render(
            request,
            "login.html",
            Session(role=None),
            status=status,
            live=False,
            next=target,
            error=problem,
        )
    name = entry.identity.name
    response = redirect(request, target, kind="ok", text=f"Logged in as {name} ({role}).")
    set_cookie(
        response,
        request,
        SESSION_COOKIE,
        issue_session(_key(request), token, role, name),
        max_age=SESSION_TTL_S,
    )
    # A fresh CSRF nonce for the new session, so no token from before the login works after.
    set_cookie(response, request, CSRF_COOKIE, new_nonce(), max_age=SESSION_TTL_S)
    log.info("dashboard login", role=role.value, name=name)
    return response


def _seal(request: Request) -> Callable[[str], str]:
    key = _key(request)
    return lambda text: seal(key, "oidc-flow", text)


def _unseal(request: Request) -> Callable[[str | None], str | None]:
    key = _key(request)
    return lambda value: unseal(key, "oidc-flow", value)


@router.get("/auth/login")
async def sso_login(request: Request, next: str = "/") -> Response:
    """Start single sign-on: off to the identity provider, with PKCE."""
    try:
        return await sso.start(request, _seal(request), safe_next(next))
    except sso.SsoRefused as exc:
        raise DashboardError(exc.status, exc.message, field=exc.field) from None


@router.get(sso.CALLBACK_PATH)
async def sso_callback(request: Request) -> Response:
    """The identity provider's answer: verify it and start a session for the person."""
    try:
        signed_in, next_url = await sso.finish(request, _unseal(request))
    except sso.SsoRefused as exc:
        raise DashboardError(exc.status, exc.message, field=exc.field) from None
    config = sso.sso_of(request)
    scope_text = (
        "all legal entities" if signed_in.entities is None else "+".join(sorted(signed_in.entities))
    )
    response = sso.continue_page(
        safe_next(next_url),
        f"Signed in as {signed_in.name} ({signed_in.role}, {scope_text}).",
    )
    response.delete_cookie(sso.FLOW_COOKIE, path="/auth")
    set_cookie(
        response,
        request,
        SESSION_COOKIE,
        issue_sso_session(
            _key(request), config.issuer, signed_in.subject, signed_in.name, signed_in.groups
        ),
        max_age=SESSION_TTL_S,
    )
    set_cookie(response, request, CSRF_COOKIE, new_nonce(), max_age=SESSION_TTL_S)
    log.info("dashboard login", role=signed_in.role.value, name=signed_in.name, via="sso")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the browser's session."""
    session = current_session(request)
    form = await read_form(request)
    if session is not None:
        check_csrf(request, session, form)
    response = redirect(request, "/login", kind="ok", text="Logged out.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response
