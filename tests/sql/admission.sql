WITH in_flight AS (
    SELECT owner_id, lane FROM document_queue WHERE status IN ('queued', 'processing')
), per_user AS (
    SELECT owner_id, count(*) AS n FROM in_flight GROUP BY owner_id
), free AS (
    SELECT GREATEST(%(capacity)s - count(*), 0) AS slots,
           GREATEST(%(bulk_reserved)s - count(*) FILTER (WHERE lane = 'bulk'), 0) AS bulk_owed
    FROM in_flight
), candidates AS (
    -- Each user's best jobs, interactive first, at most the free slots' worth per lane (no more
    -- can be admitted); those past the user's own share of the slots are `over_share`.
    SELECT pick.id, pick.bulk, pick.priority, pick.created_at,
           pick.rank > u.concurrent_ocr_jobs - COALESCE(f.n, 0) AS over_share
    FROM free
    CROSS JOIN users u
    LEFT JOIN per_user f ON f.owner_id = u.id
    CROSS JOIN LATERAL (
        SELECT mine.*, row_number() OVER (ORDER BY mine.bulk, mine.priority DESC, mine.created_at, mine.id)
                   AS rank
        FROM (
            (SELECT q.id, false AS bulk, q.priority, q.created_at FROM document_queue q
             WHERE q.owner_id = u.id AND q.lane = 'interactive' AND q.status = 'pending'
               AND q.run_after <= now() AND NOT EXISTS (SELECT 1 FROM paused_work held WHERE (held.scope = 'lane' AND held.name = q.lane) OR (held.scope = 'stage' AND held.name = q.stage))
             ORDER BY q.priority DESC, q.created_at, q.id LIMIT free.slots)
            UNION ALL
            (SELECT q.id, true, q.priority, q.created_at FROM document_queue q
             WHERE q.owner_id = u.id AND q.lane = 'bulk' AND q.status = 'pending' AND q.run_after <= now()
               AND NOT EXISTS (SELECT 1 FROM paused_work held WHERE (held.scope = 'lane' AND held.name = q.lane) OR (held.scope = 'stage' AND held.name = q.stage))
             ORDER BY q.priority DESC, q.created_at, q.id LIMIT free.slots)
        ) mine
    ) pick
), owed AS (
    -- The bulk jobs the reservation owes a slot to: the first few bulk ones in admission order.
    SELECT id FROM candidates WHERE bulk
    ORDER BY over_share, priority DESC, created_at, id
    LIMIT (SELECT bulk_owed FROM free)
), admitted AS (
    -- Top-N sorts only, and a constant limit: the planner then expects a few rows and
    -- updates them by primary key instead of hashing every pending row.
    SELECT id, row_number() OVER (ORDER BY owed DESC, bulk, over_share, priority DESC, created_at, id)
               AS place
    FROM (
        SELECT id, id IN (SELECT id FROM owed) AS owed, bulk, over_share, priority, created_at
        FROM candidates
        ORDER BY owed DESC, bulk, over_share, priority DESC, created_at, id
        LIMIT %(most)s
    ) top
)
UPDATE document_queue q SET status = 'queued', dispatched_at = now()
FROM admitted, free
WHERE q.id = admitted.id AND admitted.place <= free.slots AND q.status = 'pending' AND NOT EXISTS (SELECT 1 FROM queue_control WHERE admission_paused)
RETURNING q.id, q.stage, q.owner_id
