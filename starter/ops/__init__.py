"""Operations the API and the CLI share: dead letters and the recording of webhook events
(``dead_letters``), the event queue that processes events answered before they were processed,
the exception queue's listing and resolution, and resetting a contract to a point of its
history.

They run with the API's context (``starter.api.context``) and answer with its errors, so they
may import those; they never import ``starter.dashboard``, ``starter.cli`` or ``starter.stack``.
"""
