"""Room for a batch result's ``request_id`` (``BATCH_ID/CUSTOM_ID``: a custom_id may be 64
characters, a batch id 33), which PostgreSQL refused at 40 and SQLite never checked.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

WIDE, NARROW = sa.String(160), sa.String(40)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":  # SQLite does not enforce a length
        op.alter_column("requests", "request_id", type_=WIDE, existing_type=NARROW)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("requests", "request_id", type_=NARROW, existing_type=WIDE)
