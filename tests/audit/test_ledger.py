"""The ledger is append-only, hash-chained, checkpointed, and tampering is detected by name."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from controlplane.audit.chain import control_chain
from controlplane.audit.models import LedgerEntry
from controlplane.audit.models.ledger import AppendOnlyError
from controlplane.audit.services import checkpoint_create, ledger_append
from controlplane.audit.verify import verify_ledger
from tests import factories

pytestmark = pytest.mark.django_db


def _append(tenant, chain, n):
    with transaction.atomic():
        return [
            ledger_append(tenant_id=tenant.id, chain=chain, kind="test.event", payload={"i": i})
            for i in range(n)
        ]


def _raw(sql, params=()):
    """Tamper as an attacker with table access would: triggers off, raw SQL, triggers on."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # flush deferred FK checks before ALTER
        cursor.execute(
            "ALTER TABLE audit_ledgerentry DISABLE TRIGGER audit_ledgerentry_append_only"
        )
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE audit_ledgerentry ENABLE TRIGGER audit_ledgerentry_append_only")


def test_services_write_the_control_chain(tenant):
    factories.make_api_key(tenant)
    kinds = list(
        LedgerEntry.objects.filter(chain=control_chain(tenant.id)).values_list("kind", flat=True)
    )
    # New tenants start on the default plan; the factory then moves them to Growth.
    assert kinds == [
        "tenant.created",
        "billing.plan.changed",
        "policy.published",
        "billing.plan.changed",
        "api_key.issued",
    ]
    report = verify_ledger(tenant_id=tenant.id)
    assert report.ok and report.entries_checked == 5


def test_chain_links_each_entry_to_the_previous(tenant):
    entries = _append(tenant, "test:links", 3)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[1].prev_hash == entries[0].hash and entries[2].prev_hash == entries[1].hash


@pytest.mark.django_db(transaction=True)
def test_append_outside_a_transaction_is_refused(tenant):
    with pytest.raises(RuntimeError):
        ledger_append(tenant_id=tenant.id, chain="test:x", kind="k", payload={})


def test_models_and_database_refuse_changes(tenant):
    entry = _append(tenant, "test:ro", 1)[0]
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.filter(pk=entry.pk).update(kind="x")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_ledgerentry SET kind = 'x' WHERE id = %s", [entry.pk])
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_ledgerentry WHERE id = %s", [entry.pk])


def test_edited_entry_is_named(tenant):
    entries = _append(tenant, "test:edit", 3)
    _raw("UPDATE audit_ledgerentry SET payload = '{\"i\": 99}' WHERE id = %s", [entries[1].id])
    report = verify_ledger()
    assert not report.ok
    assert any(p.problem == "edited" and p.entry_id == entries[1].id for p in report.problems)


def test_deleted_entry_is_named(tenant):
    entries = _append(tenant, "test:delete", 3)
    _raw("DELETE FROM audit_ledgerentry WHERE id = %s", [entries[1].id])
    report = verify_ledger()
    named = {(p.problem, p.entry_id) for p in report.problems}
    assert ("gap", entries[2].id) in named and ("broken_link", entries[2].id) in named


def test_deleted_tail_is_caught_by_the_chain_head(tenant):
    entries = _append(tenant, "test:tail", 3)
    _raw("DELETE FROM audit_ledgerentry WHERE id = %s", [entries[2].id])
    report = verify_ledger()
    assert any(p.problem == "head_mismatch" and p.chain == "test:tail" for p in report.problems)


def test_swapped_order_is_named(tenant):
    entries = _append(tenant, "test:swap", 3)
    _raw(
        "UPDATE audit_ledgerentry SET seq = seq + 1000 WHERE id IN (%s, %s)",
        [entries[0].id, entries[1].id],
    )
    _raw("UPDATE audit_ledgerentry SET seq = 2 WHERE id = %s", [entries[0].id])
    _raw("UPDATE audit_ledgerentry SET seq = 1 WHERE id = %s", [entries[1].id])
    report = verify_ledger()
    named = {p.entry_id for p in report.problems}
    assert entries[0].id in named and entries[1].id in named


def test_checkpoint_signs_heads_and_detects_rewritten_history(tenant):
    entries = _append(tenant, "test:ckp", 2)
    checkpoint = checkpoint_create()
    assert checkpoint.heads["test:ckp"] == [2, entries[1].hash]
    assert checkpoint_create().id == checkpoint.id  # nothing moved: no new row
    assert verify_ledger().ok
    # Rewrite the whole chain consistently (recomputing hashes) after it was checkpointed:
    # only the checkpoint can notice.
    _raw("DELETE FROM audit_ledgerentry WHERE chain = 'test:ckp'")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_ledgerchain SET head_seq = 0, head_hash = %s WHERE id = 'test:ckp'",
            ["0" * 64],
        )
    with transaction.atomic():
        for i in (7, 8):
            ledger_append(
                tenant_id=tenant.id, chain="test:ckp", kind="test.event", payload={"i": i}
            )
    report = verify_ledger()
    assert [p.problem for p in report.problems] == ["checkpoint_mismatch"]


def test_verify_ledger_command_exits_non_zero_on_tampering(tenant, capsys):
    entries = _append(tenant, "test:cmd", 2)
    call_command("verify_ledger")
    _raw("UPDATE audit_ledgerentry SET kind = 'forged' WHERE id = %s", [entries[0].id])
    with pytest.raises(CommandError):
        call_command("verify_ledger")
    assert entries[0].id in capsys.readouterr().out
