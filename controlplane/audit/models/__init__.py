from controlplane.audit.models.ledger import LedgerChain, LedgerCheckpoint, LedgerEntry
from controlplane.audit.models.outbox import OutboxDelivery, OutboxEvent, WebhookEndpoint

__all__ = [
    "LedgerChain",
    "LedgerCheckpoint",
    "LedgerEntry",
    "OutboxDelivery",
    "OutboxEvent",
    "WebhookEndpoint",
]
