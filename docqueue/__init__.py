"""docqueue: durable document processing shared by the web and the workers.

Nothing in this package imports `web` or `actors`.
"""
