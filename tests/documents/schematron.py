"""The business rules a Peppol access point runs on an e-invoice, run here on c2c's own.

Two rule sets, both ISO Schematron with XSLT 2 bindings, run by Saxon (``saxonche``, SaxonC-HE):

- ``cen``: CEN/TC 434's EN 16931 rules bound to UBL (BR-*, BR-CO-*, BR-S-*, BR-AE-*, UBL-CR-*,
  the code lists), as the compiled XSLT CEN publishes; vendored in ``tests/documents/peppol/``
  (EUPL 1.2, see its README).
- ``peppol``: OpenPeppol's BIS Billing 3.0 rules (PEPPOL-EN16931-R*, PEPPOL-COMMON-R*). OpenPeppol
  publishes them without a licence to redistribute, so they are not in the repository: put
  ``PEPPOL-EN16931-UBL.sch`` at ``tests/documents/peppol/PEPPOL-EN16931-UBL.sch`` (ignored by
  git) or name it in ``C2C_PEPPOL_SCHEMATRON``; it is compiled to XSLT at test time with the
  vendored SchXslt2 (MIT). Without it, the tests that need it are skipped and say why.

A ``fatal`` failed assertion is what an access point rejects a document for; ``warning`` ones it
passes on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from lxml import etree
from saxonche import PySaxonProcessor, PyXsltExecutable

HERE = Path(__file__).parent / "peppol"
CEN_XSLT = HERE / "EN16931-UBL-validation.xslt"
SCHXSLT2 = HERE / "schxslt2-transpile.xsl"
PEPPOL_SCH_ENV = "C2C_PEPPOL_SCHEMATRON"
PEPPOL_SCH_DEFAULT = HERE / "PEPPOL-EN16931-UBL.sch"

SVRL = "http://purl.oclc.org/dsdl/svrl"


@dataclass(frozen=True)
class Failure:
    """One failed assertion: the rule's id (``BR-CO-15``), its flag, where, and its text."""

    rule: str
    flag: str
    location: str
    text: str

    def __str__(self) -> str:
        return f"{self.rule} ({self.flag}) at {self.location}: {self.text}"


def peppol_schematron() -> Path | None:
    """OpenPeppol's UBL Schematron, when this checkout has one."""
    named = os.environ.get(PEPPOL_SCH_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"{PEPPOL_SCH_ENV}={named}: no such file")
        return path
    return PEPPOL_SCH_DEFAULT if PEPPOL_SCH_DEFAULT.is_file() else None


def require_peppol() -> None:
    """Skip the calling test, saying how to run it, when OpenPeppol's rules are not here."""
    if peppol_schematron() is None:
        pytest.skip(
            f"OpenPeppol's rules are not vendored (no licence to redistribute): put "
            f"PEPPOL-EN16931-UBL.sch at {PEPPOL_SCH_DEFAULT} or set {PEPPOL_SCH_ENV} "
            f"(tests/documents/peppol/README.md)"
        )


@cache
def _processor() -> PySaxonProcessor:
    return PySaxonProcessor(license=False)


@cache
def _executable(ruleset: str) -> PyXsltExecutable:
    """The compiled stylesheet of ``ruleset`` (compiling CEN's takes seconds: once a run)."""
    xslt = _processor().new_xslt30_processor()
    if ruleset == "cen":
        return xslt.compile_stylesheet(stylesheet_file=str(CEN_XSLT))
    if ruleset != "peppol":
        raise ValueError(f"ruleset: {ruleset!r} is neither 'cen' nor 'peppol'")
    schematron = peppol_schematron()
    if schematron is None:
        raise FileNotFoundError("OpenPeppol's Schematron is not here; see require_peppol()")
    transpiler = xslt.compile_stylesheet(stylesheet_file=str(SCHXSLT2))
    compiled = transpiler.transform_to_string(source_file=str(schematron))
    return xslt.compile_stylesheet(stylesheet_text=compiled)


def failures(data: bytes, ruleset: str) -> list[Failure]:
    """Every assertion of ``ruleset`` (``cen`` or ``peppol``) that the UBL document fails."""
    node = _processor().parse_xml(xml_text=data.decode("utf-8"))
    report = _executable(ruleset).transform_to_string(xdm_node=node)
    root = etree.fromstring(report.encode("utf-8"))
    found = []
    for failed in root.iter(f"{{{SVRL}}}failed-assert", f"{{{SVRL}}}successful-report"):
        text = failed.findtext(f"{{{SVRL}}}text") or ""
        found.append(
            Failure(
                rule=failed.get("id") or "",
                flag=failed.get("flag") or "fatal",
                location=failed.get("location") or "",
                text=" ".join(text.split()),
            )
        )
    return found


def fatal(data: bytes, *rulesets: str) -> list[Failure]:
    """The ``fatal`` failures of ``rulesets`` (default: CEN's, and OpenPeppol's when here):
    what an access point would reject the document for."""
    chosen = rulesets or (("cen", "peppol") if peppol_schematron() else ("cen",))
    return [f for r in chosen for f in failures(data, r) if f.flag == "fatal"]
