"""Result callbacks: when a document's run ends, POST its id, status and error to the URL its owner named.

Deliveries are rows (`callback_deliveries`, one per run), so retries with
backoff survive restarts; the worker sends them (`deliver_due`), and the
attempts show on the document (`GET /api/documents/<id>/callbacks`).

Modules: `urls` (checking a URL someone gives), `addresses` (which
addresses a callback may reach), `http_post` (one POST within a total
deadline, to a vetted address), `signing` (signatures and rotating the
secret), `deliveries` (the rows), `sender` (sending the due ones).
"""
