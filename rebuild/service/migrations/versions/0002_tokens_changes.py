"""API tokens, the change feed, the diffoscope blob of an attempt, and the indexes the web pages read by.

The change feed is a table with a monotonic id, filled by triggers in the same transaction as the change
itself (a job's final verdict, a signed attestation), so every writer of the store feeds it, whichever
process or version it is. On PostgreSQL the trigger first takes a transaction-scoped advisory lock: ids
are then committed in the order they were handed out, and a reader that has seen id N never later finds
an N-1 appear (sequences alone give no such order between concurrent transactions). SQLite has one
writer at a time already.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_FEED_LOCK = 7_140_216  # the advisory lock key that orders the change feed's commits on PostgreSQL

_SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER changes_on_verdict AFTER UPDATE OF verdict ON jobs
    WHEN NEW.verdict IS NOT NULL AND (OLD.verdict IS NULL OR OLD.verdict != NEW.verdict)
    BEGIN
        INSERT INTO changes (kind, job_key, attestation_id, verdict, at)
        VALUES ('verdict', NEW.key, NULL, NEW.verdict, COALESCE(NEW.finished_at, NEW.updated_at));
    END
    """,
    """
    CREATE TRIGGER changes_on_attestation AFTER INSERT ON attestations
    BEGIN
        INSERT INTO changes (kind, job_key, attestation_id, verdict, at)
        VALUES ('attestation', NEW.job_key, NEW.id, NEW.verdict, NEW.signed_at);
    END
    """,
)

_POSTGRES_TRIGGERS = (
    f"""
    CREATE FUNCTION changes_on_verdict() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.verdict IS NOT NULL AND (OLD.verdict IS NULL OR OLD.verdict <> NEW.verdict) THEN
            PERFORM pg_advisory_xact_lock({_FEED_LOCK});
            INSERT INTO changes (kind, job_key, attestation_id, verdict, at)
            VALUES ('verdict', NEW.key, NULL, NEW.verdict, COALESCE(NEW.finished_at, NEW.updated_at));
        END IF;
        RETURN NEW;
    END $$
    """,
    "CREATE TRIGGER changes_on_verdict AFTER UPDATE OF verdict ON jobs FOR EACH ROW "
    "EXECUTE FUNCTION changes_on_verdict()",
    f"""
    CREATE FUNCTION changes_on_attestation() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_advisory_xact_lock({_FEED_LOCK});
        INSERT INTO changes (kind, job_key, attestation_id, verdict, at)
        VALUES ('attestation', NEW.job_key, NEW.id, NEW.verdict, NEW.signed_at);
        RETURN NEW;
    END $$
    """,
    "CREATE TRIGGER changes_on_attestation AFTER INSERT ON attestations FOR EACH ROW "
    "EXECUTE FUNCTION changes_on_attestation()",
)


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("scopes", sa.String(256), nullable=False),  # sorted, comma-separated
        sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),  # never the secret itself
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_used_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
    )
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),  # "verdict" or "attestation"
        sa.Column("job_key", sa.String(64), nullable=False),
        sa.Column("attestation_id", sa.Integer(), nullable=True),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("diffoscope_blob", sa.String(64), nullable=True))
    op.create_index("ix_targets_ecosystem_name", "targets", ["ecosystem", "name"])
    op.create_index("ix_jobs_finished_at", "jobs", ["finished_at"])
    op.create_index("ix_attempts_started_at", "attempts", ["started_at"])
    op.create_index("ix_attestations_subject_sha256", "attestations", ["subject_sha256"])
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in _POSTGRES_TRIGGERS if postgres else _SQLITE_TRIGGERS:
        op.execute(statement)
    # the verdicts and attestations from before this revision start the feed, in the order they happened
    op.execute(
        "INSERT INTO changes (kind, job_key, attestation_id, verdict, at) "
        "SELECT kind, job_key, attestation_id, verdict, at FROM ("
        " SELECT 'verdict' AS kind, key AS job_key, NULL AS attestation_id, verdict, finished_at AS at, 0 AS o"
        " FROM jobs WHERE verdict IS NOT NULL AND finished_at IS NOT NULL"
        " UNION ALL SELECT 'attestation', job_key, id, verdict, signed_at, 1 FROM attestations"
        ") AS past ORDER BY at, o"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER changes_on_attestation ON attestations")
        op.execute("DROP TRIGGER changes_on_verdict ON jobs")
        op.execute("DROP FUNCTION changes_on_attestation()")
        op.execute("DROP FUNCTION changes_on_verdict()")
    else:
        op.execute("DROP TRIGGER changes_on_attestation")
        op.execute("DROP TRIGGER changes_on_verdict")
    for index, table in (
        ("ix_attestations_subject_sha256", "attestations"), ("ix_attempts_started_at", "attempts"),
        ("ix_jobs_finished_at", "jobs"), ("ix_targets_ecosystem_name", "targets"),
    ):  # fmt: skip
        op.drop_index(index, table)
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("diffoscope_blob")
    op.drop_table("changes")
    op.drop_table("tokens")
