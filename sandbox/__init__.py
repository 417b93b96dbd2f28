"""Embedded stand-ins for the systems c2c connects to: CRM, ERP, PSA, tax engine, payments.

One FastAPI app (``sandbox.app.create_app``) with one router per system, persisted in one
SQLite file. The wire format is specified in ``docs/sandbox.md``.
"""
