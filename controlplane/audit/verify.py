"""Recompute every chain and check every checkpoint; name each entry that does not add up."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from prometheus_client import Counter

from controlplane.audit import signing
from controlplane.audit.chain import GENESIS_HASH, entry_hash
from controlplane.audit.models import LedgerChain, LedgerCheckpoint, LedgerEntry
from controlplane.audit.services import checkpoint_message

LEDGER_VERIFY_FAILURES = Counter(
    "ledger_verify_failures_total", "Ledger verifications that found at least one problem."
)


@dataclass
class Problem:
    chain: str
    problem: str
    detail: str
    entry_id: str | None = None
    seq: int | None = None


@dataclass
class VerifyReport:
    ok: bool = True
    chains_checked: int = 0
    entries_checked: int = 0
    checkpoints_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    def add(self, **kwargs) -> None:
        self.ok = False
        self.problems.append(Problem(**kwargs))

    def to_dict(self) -> dict:
        return asdict(self)


def _verify_chain(head: LedgerChain, report: VerifyReport) -> dict[int, str]:
    """Walk one chain in seq order; returns {seq: stored hash} for checkpoint comparison."""
    expected_seq, running = 1, GENESIS_HASH
    hashes: dict[int, str] = {}
    entries = LedgerEntry.objects.filter(chain=head.id).order_by("seq").iterator(chunk_size=2000)
    for entry in entries:
        report.entries_checked += 1
        hashes[entry.seq] = entry.hash
        if entry.seq != expected_seq:
            report.add(
                chain=head.id,
                problem="gap",
                detail=f"expected seq {expected_seq}, found {entry.seq}: entries are missing",
                entry_id=entry.id,
                seq=entry.seq,
            )
        if entry.prev_hash != running:
            report.add(
                chain=head.id,
                problem="broken_link",
                detail="prev_hash does not match the previous entry (reordered, deleted or edited)",
                entry_id=entry.id,
                seq=entry.seq,
            )
        recomputed = entry_hash(
            tenant_id=entry.tenant_id,
            chain=entry.chain,
            seq=entry.seq,
            kind=entry.kind,
            payload=entry.payload,
            prev_hash=entry.prev_hash,
            recorded_at=entry.recorded_at,
        )
        if recomputed != entry.hash:
            report.add(
                chain=head.id,
                problem="edited",
                detail="the stored hash does not match the entry's content",
                entry_id=entry.id,
                seq=entry.seq,
            )
        expected_seq, running = entry.seq + 1, entry.hash
    last_seq = expected_seq - 1
    if head.head_seq != last_seq or (last_seq and head.head_hash != running):
        report.add(
            chain=head.id,
            problem="head_mismatch",
            detail=f"chain head says seq {head.head_seq} but entries end at seq {last_seq}",
            seq=head.head_seq,
        )
    return hashes


def verify_ledger(*, tenant_id: str | None = None) -> VerifyReport:
    """Verify all chains (of one tenant, or all) and the checkpoints that cover them."""
    report = VerifyReport()
    heads = LedgerChain.objects.order_by("id")
    if tenant_id is not None:
        heads = heads.filter(tenant_id=tenant_id)
    chain_hashes: dict[str, dict[int, str]] = {}
    for head in heads:
        report.chains_checked += 1
        chain_hashes[head.id] = _verify_chain(head, report)
    public_key = signing.public_key_bytes()
    for checkpoint in LedgerCheckpoint.objects.order_by("created_at").iterator():
        relevant = {c: v for c, v in checkpoint.heads.items() if c in chain_hashes}
        if tenant_id is not None and not relevant:
            continue
        report.checkpoints_checked += 1
        if checkpoint.key_id != signing.key_id() or not signing.verify(
            checkpoint_message(checkpoint.heads), checkpoint.signature, public_key=public_key
        ):
            report.add(
                chain="checkpoint",
                problem="bad_signature",
                detail=f"checkpoint {checkpoint.id} signature does not verify",
                entry_id=checkpoint.id,
            )
        for chain, (seq, head_hash) in sorted(relevant.items()):
            if chain_hashes[chain].get(seq) != head_hash:
                report.add(
                    chain=chain,
                    problem="checkpoint_mismatch",
                    detail=f"checkpoint {checkpoint.id} signed seq {seq} with another hash "
                    "(the entry was deleted or rewritten after it was checkpointed)",
                    seq=seq,
                )
    if not report.ok:
        LEDGER_VERIFY_FAILURES.inc()
    return report
