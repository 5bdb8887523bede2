"""product lineage: the products a product was made from

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10 09:00:00

``products.derived_from`` lists, for a product an order generated, the input products the order
staged (local and of remote sources), each as ``{"collection", "identifier", "source"}`` with the
local product's ``id`` and, for a product a customer owns, its ``owner_id`` (never shown: it
decides who sees the reference in full). Empty for input products and for products registered
before lineage was recorded.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "products",
        sa.Column(
            "derived_from",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("products", "derived_from")
