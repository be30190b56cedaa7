"""Audit records beside the request rows (the audit loop and shadow mode: tiergate.audit).

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
    op.create_table(
        "audits",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(40), nullable=False, unique=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("day", sa.String(10), nullable=False, index=True),
        sa.Column("route", sa.String(100), nullable=False, index=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("tier", sa.String(100), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("accepted", sa.Boolean, nullable=False),
        sa.Column("by_rate", sa.Boolean, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("reference_tier", sa.String(100), nullable=False),
        sa.Column("reference", sa.Text, nullable=True),
        sa.Column("agree", sa.Boolean, nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("problem", sa.String(400), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("audits")
