"""Bulk ingest: many files from disk (or a folder uploaded in the browser) into documents and queue rows.

`walk` finds the files, `reading` sniffs and hashes them concurrently,
`batch` stores each batch in one transaction of a few bulk statements,
`runs` records every run (`heartbeat` keeps a running one's record fresh),
`importer.ingest_paths` ties them together, and
`console` shows it on a terminal.
"""

from docqueue.ingest.importer import IngestOptions, IngestProgress, IngestReport, ingest_paths

__all__ = ["IngestOptions", "IngestProgress", "IngestReport", "ingest_paths"]
