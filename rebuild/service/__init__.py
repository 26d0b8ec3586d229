"""The verifier as a service that a rebuilder runs for months: many releases, one machine or many.

A results store (``store.py``: SQLAlchemy 2, migrations in ``migrations/``; one SQLite file by default,
PostgreSQL by URL) is the truth. Jobs (``jobs.py``) are keyed by what decides their result, so the same
work is never queued twice; ``intake.py`` turns targets into jobs. Workers (``worker.py``) claim jobs from
the store with a lease and a heartbeat, or take them from RQ on Redis (``broker.py``) across machines; each
job runs ``Verifier.verify`` (``runner.py``), the same code as ``rebuild verify``, with no key: the
statements it would sign go to a content-addressed blob directory (``blobs.py``) unsigned. Retries depend on
the outcome (``jobs.py``). Only the service signs (``signing.py``) with its own key, and ``publish.py``
writes a static, write-once tree that anyone can mirror and check.
"""
