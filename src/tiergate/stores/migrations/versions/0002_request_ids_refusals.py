"""A request is recorded once (journal replays insert by request_id); refusals are counted.

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


def upgrade() -> None:
    # Older ledgers may hold a request twice (a flush cancelled mid-write): keep the first.
    op.execute(
        "DELETE FROM requests WHERE id NOT IN (SELECT MIN(id) FROM requests GROUP BY request_id)"
    )
    op.create_index("uq_requests_request_id", "requests", ["request_id"], unique=True)
    op.create_table(
        "refusals",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("key_id", sa.String(40), primary_key=True),
        sa.Column("status", sa.Integer, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("refusals")
    op.drop_index("uq_requests_request_id", "requests")
