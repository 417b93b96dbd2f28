"""The ledger's schema revisions (Alembic): ``env.py``, ``versions/`` and the pinned schema of
c2c 0.8.0, the first revision. Applied by ``ledger.migrate`` (``c2c ledger upgrade``)."""
