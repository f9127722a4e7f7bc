-- The gate's write (one call per decision): see enforcement/services/gate/persist.py.
-- Installed by enforcement.sql.install; tests compare the installed function with this file.
CREATE OR REPLACE FUNCTION tollgate_gate_write(p jsonb) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO enforcement_decision
    SELECT * FROM jsonb_populate_record(NULL::enforcement_decision, p -> 'decision');

    IF jsonb_typeof(p -> 'reservation') = 'object' THEN
        INSERT INTO enforcement_reservation
        SELECT * FROM jsonb_populate_record(NULL::enforcement_reservation, p -> 'reservation');
        INSERT INTO enforcement_reservationallocation
               (reservation_id, budget_period_id, credit_grant_id, amount_micros,
                charged_micros, position)
        SELECT reservation_id, budget_period_id, credit_grant_id, amount_micros,
               charged_micros, position
          FROM jsonb_populate_recordset(NULL::enforcement_reservationallocation,
                                        p -> 'allocations');
    END IF;

    UPDATE enforcement_budgetperiod bp
       SET reserved_micros = bp.reserved_micros + d.amount
      FROM (SELECT id, sum(amount)::bigint AS amount
              FROM jsonb_to_recordset(p -> 'budget_draws') AS x(id text, amount bigint)
             GROUP BY id) d
     WHERE bp.id = d.id;

    UPDATE enforcement_creditgrant g
       SET remaining_micros = g.remaining_micros - d.amount
      FROM (SELECT id, sum(amount)::bigint AS amount
              FROM jsonb_to_recordset(p -> 'credit_draws') AS x(id text, amount bigint)
             GROUP BY id) d
     WHERE g.id = d.id;

    INSERT INTO audit_ledgerentry
    SELECT * FROM jsonb_populate_recordset(NULL::audit_ledgerentry, p -> 'ledger');

    UPDATE audit_ledgerchain c
       SET head_seq = e.seq, head_hash = e.hash
      FROM jsonb_to_recordset(p -> 'ledger') AS e(chain text, seq bigint, hash text)
     WHERE c.id = e.chain;

    INSERT INTO audit_outboxevent
    SELECT * FROM jsonb_populate_record(NULL::audit_outboxevent, p -> 'outbox');
END
$fn$;
