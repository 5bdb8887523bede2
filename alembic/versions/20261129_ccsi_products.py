"""ccsi products

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_geospatial_table(
        "products",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("collection", sa.String(length=100), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=False),
        sa.Column("product_type", sa.String(length=100), nullable=False),
        sa.Column(
            "footprint",
            Geometry(
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("properties", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("assets", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("published", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("end_at >= start_at", name=op.f("ck_products_times_ordered")),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["customers.id"],
            name=op.f("fk_products_owner_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("collection", "identifier", name="uq_products_collection_identifier"),
    )
    op.create_geospatial_index(
        "idx_products_footprint",
        "products",
        ["footprint"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_products_start_at_end_at", "products", ["start_at", "end_at"])
    op.create_index("ix_products_end_at", "products", ["end_at"])
    op.create_index(op.f("ix_products_owner_id"), "products", ["owner_id"])
    op.create_index(op.f("ix_products_order_id"), "products", ["order_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_products_order_id"), table_name="products")
    op.drop_index(op.f("ix_products_owner_id"), table_name="products")
    op.drop_index("ix_products_end_at", table_name="products")
    op.drop_index("ix_products_start_at_end_at", table_name="products")
    op.drop_geospatial_index(
        "idx_products_footprint",
        table_name="products",
        postgresql_using="gist",
        column_name="footprint",
    )
    op.drop_geospatial_table("products")
