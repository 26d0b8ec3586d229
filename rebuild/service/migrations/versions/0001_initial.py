"""The first schema: settings, targets, jobs, attempts, attestations, workers.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settings", sa.Column("name", sa.String(64), primary_key=True), sa.Column("value", sa.Text(), nullable=False)
    )
    op.create_table(
        "targets",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("target", sa.String(1024), nullable=False, unique=True),
        sa.Column("ecosystem", sa.String(32), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("version", sa.String(256), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("target_id", sa.Integer(), sa.ForeignKey("targets.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tags", sa.String(256), nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.Float(), nullable=False),
        sa.Column("dispatched_at", sa.Float(), nullable=True),
        sa.Column("lease_worker", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("attempt_id", sa.Integer(), nullable=True),
        sa.Column("avoid_worker", sa.String(128), nullable=True),
        sa.Column("verdict", sa.String(32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_jobs_target_id", "jobs", ["target_id"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_key", sa.String(64), sa.ForeignKey("jobs.key"), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("classification", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("image_digest", sa.String(128), nullable=False),
        sa.Column("verifier_version", sa.String(64), nullable=False),
        sa.Column("artifacts", sa.Text(), nullable=False),
        sa.Column("report_blob", sa.String(64), nullable=True),
        sa.Column("compare_blob", sa.String(64), nullable=True),
        sa.Column("log_blob", sa.String(64), nullable=True),
        sa.Column("statements_blob", sa.String(64), nullable=True),
        sa.Column("rebuilt_blobs", sa.Text(), nullable=False),
    )
    op.create_index("ix_attempts_job_key", "attempts", ["job_key"])
    op.create_table(
        "attestations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_key", sa.String(64), sa.ForeignKey("jobs.key"), nullable=False),
        sa.Column("attempt_id", sa.Integer(), sa.ForeignKey("attempts.id"), nullable=False),
        sa.Column("artifact", sa.String(512), nullable=False),
        sa.Column("subject_sha256", sa.String(64), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("bundle_blob", sa.String(64), nullable=False),
        sa.Column("keyid", sa.String(64), nullable=False),
        sa.Column("signed_at", sa.Float(), nullable=False),
        sa.Column("published_path", sa.String(1024), nullable=True),
        sa.Column("published_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_attestations_job_key", "attestations", ["job_key"])
    op.create_table(
        "workers",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("host", sa.String(256), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("tags", sa.String(256), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.Column("stopped_at", sa.Float(), nullable=True),
    )


def downgrade() -> None:
    for table in ("workers", "attestations", "attempts", "jobs", "targets", "settings"):
        op.drop_table(table)
