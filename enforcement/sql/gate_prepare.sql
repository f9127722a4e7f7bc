-- The gate's read-and-lock (one call per decision): see enforcement/services/gate/load.py and
-- the lock order in enforcement/services/locking.py. Installed by enforcement.sql.install
-- (migration 0008_i12 and any later one that changes this file); tests compare the installed
-- function with this file.
CREATE OR REPLACE FUNCTION tollgate_gate_prepare(
    p_tenant text,
    p_project_slug text,
    p_environment text,
    p_source text,
    p_idempotency_key text,
    p_policy_sha text,
    p_deadline_ms integer,
    p_genesis text
) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
    v_now timestamptz := now();
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_month_start date := date_trunc('month', (now() AT TIME ZONE 'UTC'))::date;
    v_project text;
    v_existing text;
    v_policy jsonb;
    v_budgets jsonb;
    v_budget_count integer;
    v_periods jsonb;
    v_period_count integer;
    v_chains text[];
    v_heads jsonb;
    v_rollups jsonb;
BEGIN
    -- The caller passes the deadline of the policy it believes is published (NULL sha: none is).
    -- Another one is: say so before taking any lock, and the caller comes back with its deadline.
    SELECT jsonb_build_object('version', version, 'sha256', sha256) INTO v_policy
      FROM enforcement_policy WHERE tenant_id = p_tenant AND state = 'published';
    IF (v_policy ->> 'sha256') IS DISTINCT FROM p_policy_sha THEN
        RETURN jsonb_build_object('now', v_now, 'policy', v_policy, 'policy_changed', true);
    END IF;

    -- Bound every lock wait and later statement of this transaction by the policy deadline.
    PERFORM set_config('lock_timeout', p_deadline_ms || 'ms', true),
            set_config('statement_timeout', p_deadline_ms || 'ms', true);

    SELECT id INTO v_project FROM tenancy_project
     WHERE tenant_id = p_tenant AND slug = p_project_slug;
    IF v_project IS NULL THEN
        RETURN jsonb_build_object('now', v_now, 'project', NULL);
    END IF;

    SELECT id INTO v_existing FROM enforcement_decision
     WHERE tenant_id = p_tenant AND source = p_source AND idempotency_key = p_idempotency_key;
    IF v_existing IS NOT NULL THEN
        RETURN jsonb_build_object('now', v_now, 'project', v_project, 'existing', v_existing);
    END IF;

    -- Covering budgets: tenant-wide, the project, the project + environment.
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'id', id, 'project_id', project_id, 'environment', environment,
               'period', period, 'limit_micros', limit_micros,
               'period_start', CASE WHEN period = 'daily' THEN v_today ELSE v_month_start END)
               ORDER BY id), '[]'::jsonb),
           count(*)
      INTO v_budgets, v_budget_count
      FROM enforcement_budget
     WHERE tenant_id = p_tenant
       AND (project_id IS NULL
            OR (project_id = v_project AND environment IN ('', p_environment)));

    -- Lock their current periods in the global order (by id), as enforcement.services.locking.
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'id', id, 'budget_id', budget_id, 'period_start', period_start,
               'period_end', period_end, 'limit_micros', limit_micros,
               'reserved_micros', reserved_micros, 'spent_micros', spent_micros)
               ORDER BY id), '[]'::jsonb),
           count(*),
           array_agg('bp:' || id ORDER BY id)
      INTO v_periods, v_period_count, v_chains
      FROM (
        SELECT bp.* FROM enforcement_budgetperiod bp
         WHERE (bp.budget_id, bp.period_start) IN (
                SELECT (b ->> 'id'), (b ->> 'period_start')::date
                  FROM jsonb_array_elements(v_budgets) b)
         ORDER BY bp.id
           FOR UPDATE
      ) locked;

    IF v_period_count < v_budget_count THEN
        -- The first decision of a period: the caller creates the missing rows and calls again.
        RETURN jsonb_build_object('now', v_now, 'project', v_project, 'policy', v_policy,
                                  'budgets', v_budgets, 'missing_periods', true);
    END IF;

    IF v_period_count = 0 THEN
        v_chains := ARRAY['scope:' || v_project || ':' || p_environment];
    END IF;

    -- Create-or-lock the ledger chain heads the decision appends to (sorted: one lock order).
    WITH upserted AS (
        INSERT INTO audit_ledgerchain (id, tenant_id, head_seq, head_hash, created_at)
        SELECT chain, p_tenant, 0, p_genesis, v_now FROM unnest(v_chains) AS chain ORDER BY chain
        ON CONFLICT (id) DO UPDATE SET head_seq = audit_ledgerchain.head_seq
        RETURNING id, head_seq, head_hash
    )
    SELECT jsonb_object_agg(id, jsonb_build_array(head_seq, head_hash)) INTO v_heads
      FROM upserted;

    SELECT coalesce(jsonb_object_agg(day::text, spent_micros), '{}'::jsonb) INTO v_rollups
      FROM enforcement_spendrollup
     WHERE tenant_id = p_tenant AND project_id = v_project AND environment = p_environment
       AND day >= v_month_start AND day <= v_today;

    RETURN jsonb_build_object(
        'now', v_now, 'project', v_project, 'policy', v_policy, 'budgets', v_budgets,
        'periods', v_periods, 'heads', v_heads, 'rollups', v_rollups);
END
$fn$;
