"""Pre-provision integrations: each turns a foreign document into one gate request.

Pure parsing and costing live here (no ORM, no I/O); the HTTP adapters are in ``enforcement.api
.integrations`` and call the gate through ``enforcement.api.gatecall``.
"""
