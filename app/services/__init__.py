"""The rules of the service: one module per aggregate.

A service function takes the :class:`app.db.database.Database` and plain
values (never a Request), decides the order of the checks, runs its reads
and writes as units of work (``db.read``, ``db.write``, ``db.claim``), and
raises domain errors from :mod:`app.exceptions`.
"""
