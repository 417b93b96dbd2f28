"""One client per system of record, each behind a typed port (``connectors.ports``).

The httpx clients here speak the wire format of c2c's sandbox systems (docs/sandbox.md); a
connector for a real ERP, CRM or PSA implements the same port and is named in configuration
(see ``connectors.registry``).
"""
