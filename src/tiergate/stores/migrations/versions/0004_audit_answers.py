"""Every tier's answer known for an audited request (features included), so that
``calibrate --from-audit`` reuses them instead of asking again.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audits", sa.Column("answers", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("audits", "answers")
