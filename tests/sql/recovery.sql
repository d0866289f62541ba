WITH stale AS (
            -- Skip, never wait for, rows a frozen process still locks: the queue row and the document
            -- row this statement updates alike, so one stopped worker cannot stall the clock.
            SELECT q.id, q.lease_token AS old_token FROM document_queue q JOIN documents d ON d.id = q.document_id
            WHERE q.status = 'processing' AND q.lease_expires_at < now()
            ORDER BY q.lease_expires_at LIMIT %(batch)s
            FOR UPDATE OF q, d SKIP LOCKED
        ), recovered AS (
            UPDATE document_queue q SET
                status = CASE WHEN q.attempts < q.max_attempts THEN 'pending' ELSE 'failed' END,
                run_after = now(),
                completed_at = CASE WHEN q.attempts < q.max_attempts THEN NULL ELSE now() END,
                error_message = format('worker %%s stopped responding during stage %%s (attempt %%s of %%s)',
                                       q.worker_id, q.stage, q.attempts, q.max_attempts),
                failure_kind = 'transient', error_traceback = NULL, dispatched_at = NULL, lease_token = NULL, lease_expires_at = NULL, heartbeat_at = NULL, worker_id = NULL
            FROM stale WHERE q.id = stale.id
            RETURNING q.id, q.document_id, q.status, q.stage, q.error_message, q.attempts, q.max_attempts,
                      stale.old_token
        ), documents_updated AS (
            UPDATE documents d SET status = CASE recovered.status WHEN 'pending' THEN 'pending' WHEN 'queued' THEN 'pending' WHEN 'processing' THEN 'processing' WHEN 'completed' THEN 'completed' WHEN 'failed' THEN 'failed' WHEN 'cancelled' THEN 'cancelled' END, updated_at = now(), error = CASE recovered.status WHEN 'failed' THEN recovered.error_message ELSE format('attempt %%s of %%s failed, retrying: %%s', recovered.attempts, recovered.max_attempts, recovered.error_message) END FROM recovered WHERE d.id = recovered.document_id
        ), records AS (
    UPDATE document_stage_records r SET
           status = CASE recovered.status WHEN 'failed' THEN 'failed' ELSE 'pending' END,
           finished_at = CASE recovered.status WHEN 'failed' THEN now() END,
           error = recovered.error_message
    FROM recovered WHERE r.job_id = recovered.id AND r.stage = recovered.stage
        ), attempts_closed AS (
UPDATE stage_attempts a SET outcome = 'lost', finished_at = now(),
       duration_ms = (extract(epoch FROM now() - a.started_at) * 1000)::bigint,
       error_class = 'worker lost', error_message = recovered.error_message
FROM recovered
WHERE a.outcome = 'running' AND a.lease_token = recovered.old_token
        )
        SELECT status, count(*) FROM recovered GROUP BY status
