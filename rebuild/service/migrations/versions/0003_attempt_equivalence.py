"""What an attempt found of content equivalence: a nullable text column on attempts.

``rebuild verify --content-equivalence`` decides, for a "not reproduced" result, whether the archives hold
the same content and differ only in named kinds of metadata (docs/content-equivalence.md). The worker
records what it found as text, the label ``rebuild verify --from`` shows: "content-equivalent (metadata
differs: timestamps)", or "no: WHY" (one label per artifact that differs, joined by "; "). NULL: not
decided (reproduced, an error, or content equivalence turned off with ``rebuild init
--no-content-equivalence``), as for every attempt from before this revision.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("equivalence", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("equivalence")
