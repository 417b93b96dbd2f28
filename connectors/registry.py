"""Builds the connectors a worker uses from configuration.

Each system uses the sandbox's HTTP client unless ``C2C_TAX=avatax`` or ``C2C_PAYMENTS=stripe``
picks the vendor's connector, or ``C2C_<SYSTEM>_CONNECTOR`` names another
implementation as ``module:factory``; the factory is called with the system's base URL and the
settings, and must return an object that implements the system's port.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

from c2c.settings import Settings
from connectors.avatax import AvataxTax
from connectors.business_central import BusinessCentralErp, EntraTokens
from connectors.crm import HttpCrm
from connectors.erp import HttpErp
from connectors.http import HttpConnector
from connectors.netsuite import NetSuiteErp
from connectors.payments import HttpPayments
from connectors.ports import CrmPort, ErpPort, PaymentsPort, PsaPort, TaxPort
from connectors.psa import HttpPsa
from connectors.routing import RoutedErp
from connectors.salesforce import SalesforceCrm
from connectors.stripe import StripePayments
from connectors.tax import HttpTax

DEFAULTS: dict[str, type[HttpConnector]] = {
    "crm": HttpCrm,
    "erp": HttpErp,
    "psa": HttpPsa,
    "tax": HttpTax,
    "payments": HttpPayments,
}


@dataclass
class Connectors:
    crm: CrmPort
    erp: ErpPort
    psa: PsaPort
    tax: TaxPort
    payments: PaymentsPort

    async def aclose(self) -> None:
        for port in (self.crm, self.erp, self.psa, self.tax, self.payments):
            await port.aclose()


def _build(system: str, settings: Settings) -> Any:
    url = settings.system_url(system)
    spec = os.environ.get(f"C2C_{system.upper()}_CONNECTOR")
    if system == "crm" and settings.crm == "salesforce" and not spec:
        return SalesforceCrm(settings.salesforce_login_url(), settings)
    if spec:
        module_name, _, attr = spec.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        return factory(url, settings)
    if system == "tax" and settings.tax == "avatax":
        return AvataxTax.from_settings(settings)
    if system == "payments" and settings.payments == "stripe":
        return StripePayments.from_settings(settings)
    return DEFAULTS[system](
        url,
        timeout_s=settings.connector_timeout_s,
        quick_retries=settings.connector_quick_retries,
    )


def _build_erp(settings: Settings) -> Any:
    """The ERP port: one ERP, or several routed by legal entity (``C2C_ERP_ROUTES``)."""
    reference = _build("erp", settings)
    erps = set(settings.erp_routes.values())
    if erps <= {"reference"}:
        return reference
    backends: dict[str, Any] = {"reference": reference}
    if "netsuite" in erps:
        backends["netsuite"] = NetSuiteErp(
            settings.netsuite_base_url(),
            credentials=settings.netsuite_credentials(),
            segments=settings.netsuite_segments,
            concurrency=settings.netsuite_concurrency,
            timeout_s=settings.connector_timeout_s,
            quick_retries=settings.connector_quick_retries,
            document_field=settings.netsuite_document_field,
            einvoice_field=settings.netsuite_einvoice_field,
        )
    if "business-central" in erps:
        backends["business-central"] = BusinessCentralErp(
            settings.bc_base_url(),
            companies=settings.bc_companies,
            dimensions=settings.bc_dimensions,
            tokens=EntraTokens(
                settings.bc_authority_url(),
                settings.bc_client_id,
                settings.bc_client_secret.get_secret_value(),
                timeout_s=settings.connector_timeout_s,
            ),
            timeout_s=settings.connector_timeout_s,
            quick_retries=settings.connector_quick_retries,
        )
    return RoutedErp(backends, settings.erp_routes)


def build_connectors(settings: Settings) -> Connectors:
    built = {system: _build(system, settings) for system in DEFAULTS if system != "erp"}
    return Connectors(erp=_build_erp(settings), **built)
