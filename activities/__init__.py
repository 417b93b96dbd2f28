"""Activities: one per business step, each idempotent, each talking to one or two systems.

Every write carries an idempotency key built from the workflow id and the business step, so a
retried activity, a reset workflow or a replayed webhook creates nothing twice.
"""
