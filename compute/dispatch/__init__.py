"""The dispatch path: what a volunteer's socket asks of the server, from frame to SQL.

Read it in this order:

- :mod:`~compute.dispatch.socket` — the WebSocket consumer: checks and parses a frame, turns
  it into an op, answers once the op's flush has committed;
- :mod:`~compute.dispatch.ops` — the ops (results, errors, progress, leases, last-seen times)
  and their answers;
- :mod:`~compute.dispatch.writer` — group commit: one writer per process gathers the ops of
  all its sockets and writes them together on its own thread and connection;
- :mod:`~compute.dispatch.flush` — one flush: every op in one transaction;
- :mod:`~compute.dispatch.reports` and :mod:`~compute.dispatch.leasing` (with
  :mod:`~compute.dispatch.candidates`) — the set-based statements, a fixed handful per
  flush whatever the number of ops;
- :mod:`~compute.dispatch.dialect` — where PostgreSQL and SQLite differ;
- :mod:`~compute.dispatch.live` — live events to sockets, a batch at a time.

No ORM query is built on this path: the statements are written out once and prepared on
PostgreSQL. Django's models and migrations remain the schema's source, and everything off
the path (pages, the API, the validator, the sweeps) keeps the ORM.
"""
