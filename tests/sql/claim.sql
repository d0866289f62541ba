WITH claimed AS (
        UPDATE document_queue SET
            status = 'processing', attempts = attempts + 1, started_at = COALESCE(started_at, now()),
            heartbeat_at = now(), lease_expires_at = now() + make_interval(secs => %(heartbeat_timeout)s), lease_token = gen_random_uuid(), worker_id = %(worker_id)s
        WHERE id = ANY(CAST(%(job_ids)s AS bigint[])) AND status = 'queued' AND stage = %(stage)s
          AND attempts < max_attempts AND NOT EXISTS (SELECT 1 FROM paused_work held WHERE (held.scope = 'lane' AND held.name = document_queue.lane) OR (held.scope = 'stage' AND held.name = document_queue.stage))
        RETURNING id, document_id, owner_id, operation, stage, attempts, max_attempts, lease_token::text, status
    ), document AS (
        UPDATE documents d SET status = CASE claimed.status WHEN 'pending' THEN 'pending' WHEN 'queued' THEN 'pending' WHEN 'processing' THEN 'processing' WHEN 'completed' THEN 'completed' WHEN 'failed' THEN 'failed' WHEN 'cancelled' THEN 'cancelled' END, updated_at = now() FROM claimed WHERE d.id = claimed.document_id
    ), record AS (
UPDATE document_stage_records r SET status = 'running', attempts = r.attempts + 1,
       started_at = COALESCE(r.started_at, now()), finished_at = NULL, error = NULL
FROM claimed WHERE r.job_id = claimed.id AND r.stage = claimed.stage
    ), attempt AS (
INSERT INTO stage_attempts (job_id, document_id, stage, attempt, worker_id, lease_token)
SELECT claimed.id, claimed.document_id, claimed.stage, claimed.attempts, %(worker_id)s,
       CAST(claimed.lease_token AS uuid)
FROM claimed
    )
    SELECT claimed.id, claimed.document_id, claimed.owner_id, claimed.operation, claimed.stage, claimed.attempts, claimed.max_attempts, claimed.lease_token, u.ocr_timeout_seconds, d.size_bytes, d.page_count, COALESCE(r.checkpoint, 0) FROM claimed JOIN users u ON u.id = claimed.owner_id JOIN documents d ON d.id = claimed.document_id LEFT JOIN document_stage_records r ON r.job_id = claimed.id AND r.stage = claimed.stage
    ORDER BY array_position(CAST(%(job_ids)s AS bigint[]), claimed.id)
