"""Builds the connectors a worker uses from configuration.

Each system uses the sandbox's HTTP client unless ``C2C_<SYSTEM>_CONNECTOR`` names another
implementation as ``module:factory``; the factory is called with the system's base URL and the
settings, and must return an object that implements the system's port.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

from c2c.settings import Settings
from connectors.crm import HttpCrm
from connectors.erp import HttpErp
from connectors.http import HttpConnector
from connectors.payments import HttpPayments
from connectors.ports import CrmPort, ErpPort, PaymentsPort, PsaPort, TaxPort
from connectors.psa import HttpPsa
from connectors.salesforce import SalesforceCrm
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
    return DEFAULTS[system](
        url,
        timeout_s=settings.connector_timeout_s,
        quick_retries=settings.connector_quick_retries,
    )


def build_connectors(settings: Settings) -> Connectors:
    return Connectors(**{system: _build(system, settings) for system in DEFAULTS})
