from controlplane.audit.models.ledger import LedgerChain, LedgerCheckpoint, LedgerEntry

__all__ = ["LedgerChain", "LedgerCheckpoint", "LedgerEntry"]
