"""The fence: the one condition under which a worker may publish, and the parameters it names.

Its own module because both the transitions (`fragments`) and the stage
records' reports (`stage_records`), which `fragments` builds on, check it.
"""

from __future__ import annotations

from docqueue.jobs import Claim
from docqueue.statuses import QueueStatus

# Only the holder of the current lease may publish or give up a job.
HOLDS_LEASE = f"id = :job_id AND lease_token = CAST(:lease_token AS uuid) AND status = '{QueueStatus.PROCESSING}'"


def claim_params(claim: Claim) -> dict:
    """The parameters `HOLDS_LEASE` names."""
    return {"job_id": claim.job_id, "lease_token": claim.lease_token}
