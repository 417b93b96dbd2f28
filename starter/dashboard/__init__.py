"""The operations dashboard: server-rendered pages (``starter.dashboard.pages``), the views
they show, the charts, the browser's login session, and the templates and static files shipped
as package data.

It is a client of the API's own code: it may import ``starter.api`` and ``starter.ops``, never
``starter.cli`` or ``starter.stack``.
"""
