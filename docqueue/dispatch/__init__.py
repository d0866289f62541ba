"""Sending stage messages to Redis and admitting work: the dispatcher, above the pipeline.

The queue (SQL) names stages by string; this package knows which actor and Dramatiq queue each
stage runs on, so it sits above `docqueue.pipeline`.
"""
