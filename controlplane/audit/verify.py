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


MAX_PROBLEMS = 1000  # a wholesale rewrite names the first ones; memory stays bounded


@dataclass
class VerifyReport:
    ok: bool = True
    chains_checked: int = 0
    entries_checked: int = 0
    checkpoints_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    problems_truncated: bool = False

    def add(self, **kwargs) -> None:
        self.ok = False
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(**kwargs))
        else:
            self.problems_truncated = True

    def to_dict(self) -> dict:
        return asdict(self)


def _entries(chain: str, chunk: int = 2000):
    """A chain's entries in seq order, read in keyset pages (no long-lived cursor)."""
    after = 0
    while True:
        page = list(LedgerEntry.objects.filter(chain=chain, seq__gt=after).order_by("seq")[:chunk])
        yield from page
        if len(page) < chunk:
            return
        after = page[-1].seq


def _verify_chain(head: LedgerChain, report: VerifyReport, wanted: set[int]) -> dict[int, str]:
    """Walk one chain in seq order; returns {seq: stored hash} of the ``wanted`` seqs only
    (those checkpoints name), so memory does not grow with the chain."""
    expected_seq, running = 1, GENESIS_HASH
    hashes: dict[int, str] = {}
    for entry in _entries(head.id):
        report.entries_checked += 1
        if entry.seq in wanted:
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
    chain_ids = set(heads.values_list("id", flat=True))
    wanted: dict[str, set[int]] = {}
    for heads_signed in LedgerCheckpoint.objects.values_list("heads", flat=True).iterator():
        for chain, (seq, _hash) in heads_signed.items():
            if chain in chain_ids:
                wanted.setdefault(chain, set()).add(seq)
    chain_hashes: dict[str, dict[int, str]] = {}
    for head in heads.iterator():
        report.chains_checked += 1
        chain_hashes[head.id] = _verify_chain(head, report, wanted.get(head.id, set()))
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
