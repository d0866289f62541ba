WITH claimed AS (
            UPDATE document_queue SET stage = %(next_stage)s, attempts = 1, error_message = NULL, heartbeat_at = now(), lease_expires_at = now() + make_interval(secs => %(heartbeat_timeout)s), lease_token = gen_random_uuid(), worker_id = %(worker_id)s
            WHERE id = %(job_id)s AND lease_token = CAST(%(lease_token)s AS uuid) AND status = 'processing' AND NOT EXISTS (SELECT 1 FROM paused_work held WHERE (held.scope = 'lane' AND held.name = document_queue.lane) OR (held.scope = 'stage' AND held.name = %(next_stage)s))
            RETURNING id, document_id, owner_id, operation, stage, attempts, max_attempts, lease_token::text
        ), document AS (
            UPDATE documents d SET progress = GREATEST(d.progress, %(progress)s), updated_at = now() FROM claimed WHERE d.id = claimed.document_id
        ), record AS (
    UPDATE document_stage_records r SET status = 'completed', finished_at = now(), error = NULL
    FROM claimed WHERE r.job_id = claimed.id AND r.stage = %(stage)s AND r.status = 'running'
        ), next_record AS (
    UPDATE document_stage_records r SET status = 'running', attempts = r.attempts + 1,
           started_at = COALESCE(r.started_at, now()), finished_at = NULL, error = NULL
    FROM claimed WHERE r.job_id = claimed.id AND r.stage = claimed.stage
        ), attempt AS (
UPDATE stage_attempts a SET outcome = 'succeeded', finished_at = now(),
       duration_ms = (extract(epoch FROM now() - a.started_at) * 1000)::bigint,
       error_class = NULL, error_message = NULL
FROM claimed
WHERE a.outcome = 'running' AND a.lease_token = CAST(%(lease_token)s AS uuid)
        ), next_attempt AS (
    INSERT INTO stage_attempts (job_id, document_id, stage, attempt, worker_id, lease_token)
    SELECT claimed.id, claimed.document_id, claimed.stage, claimed.attempts, %(worker_id)s,
           CAST(claimed.lease_token AS uuid)
    FROM claimed
        )
        SELECT claimed.id, claimed.document_id, claimed.owner_id, claimed.operation, claimed.stage, claimed.attempts, claimed.max_attempts, claimed.lease_token, u.ocr_timeout_seconds, d.size_bytes, d.page_count, COALESCE(r.checkpoint, 0) FROM claimed JOIN users u ON u.id = claimed.owner_id JOIN documents d ON d.id = claimed.document_id LEFT JOIN document_stage_records r ON r.job_id = claimed.id AND r.stage = claimed.stage
