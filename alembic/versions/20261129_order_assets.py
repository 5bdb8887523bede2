"""order assets: every output of a successful run, by role

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("assets", postgresql.JSONB(astext_type=sa.Text())))


def downgrade() -> None:
    op.drop_column("orders", "assets")
