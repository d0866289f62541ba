"""The pipeline is one list of stage objects, and every stage can run."""

from __future__ import annotations

import subprocess
import sys

from docqueue.pipeline import PIPELINE, progress_after
from docqueue.stages.stage import LANE_QUEUES


def test_every_stage_has_an_actor_on_its_lanes_queue(test_env):
    import actors

    for stage in PIPELINE:
        actor = actors.broker.get_actor(stage.actor_name)
        assert actor.queue_name == LANE_QUEUES[stage.lane]
        assert actor.options["max_retries"] == 0  # retries live in Postgres
    assert len({stage.name for stage in PIPELINE}) == len(PIPELINE)


def test_progress_moves_forward_stage_by_stage_to_100():
    progress = [progress_after(stage.name) for stage in PIPELINE]
    assert progress == sorted(progress) and len(set(progress)) == len(progress)
    assert progress[-1] == 100


def test_web_and_clock_never_import_pymupdf(test_env):
    # PyMuPDF costs ~0.9 s and ~140 MB per process: only PDF pool processes should pay it.
    code = "import sys, web, docqueue.clock, docqueue.pipeline; print('pymupdf' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_worker_preloads_the_pipeline_in_pdf_processes(test_env):
    code = "from docqueue.runtime import pdf_processes\nimport docqueue.worker.stage_runner\nprint(pdf_processes._preloaded)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['docqueue.pipeline']"


def test_pdf_processes_import_no_broker_redis_or_ai_client(test_env):
    # Each PDF process holds what it imports for its whole life (~10 MB for these): it only reads PDFs and writes
    # to Postgres. Its setup, as the pool runs it for the worker, imports every stage.
    code = (
        "import sys\nfrom docqueue.runtime.pdf_processes import prepare_pdf_process\n"
        "prepare_pdf_process(('docqueue.pipeline',))\n"
        "print(sorted({'dramatiq', 'redis', 'requests', 'sentry_sdk', 'flask'} & sys.modules.keys()))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
