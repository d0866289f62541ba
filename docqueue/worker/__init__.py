"""The worker: running one stage of a claimed job, and recording how it ended."""
