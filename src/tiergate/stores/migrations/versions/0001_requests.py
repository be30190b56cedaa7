"""The requests table, as ledgers made before Alembic have it.

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
        "requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(40), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("route", sa.String(100), nullable=False),
        sa.Column("tier", sa.String(100), nullable=False),
        sa.Column("tiers_tried", sa.String(400), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("streamed", sa.Boolean, nullable=False),
        sa.Column("escalated", sa.Boolean, nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cache_write_5m_tokens", sa.Integer, nullable=False),
        sa.Column("cache_write_1h_tokens", sa.Integer, nullable=False),
        sa.Column("cache_read_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("strong_only_usd", sa.Float, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("ttft_ms", sa.Float, nullable=True),
    )
    op.create_index("ix_requests_day", "requests", ["day"])
    op.create_index("ix_requests_key_id", "requests", ["key_id"])


def downgrade() -> None:
    op.drop_table("requests")
