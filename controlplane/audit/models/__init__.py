from controlplane.audit.models.ledger import (
    LedgerChain,
    LedgerCheckpoint,
    LedgerEntry,
    LedgerVerification,
)
from controlplane.audit.models.outbox import OutboxDelivery, OutboxEvent, WebhookEndpoint

__all__ = [
    "LedgerChain",
    "LedgerCheckpoint",
    "LedgerEntry",
    "LedgerVerification",
    "OutboxDelivery",
    "OutboxEvent",
    "WebhookEndpoint",
]
