"""listing indexes: one GiST index per spatial list, answering all its conditions at once

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 12:00:00

``ix_orders_customer_id_roi`` (customer, region): a customer's orders in a box. With the region
alone, the planner either read every order in the box, whoever's, or combined it with the
customer's b-tree index, a bitmap of all the customer's orders (benchmark 6: a heavy customer's
city-sized box took 25-35 ms in SQL, 6 ms with this index). A uuid in a GiST index needs
btree_gist (a trusted extension of PostgreSQL's contrib, in the postgis images).

``ix_products_footprint_period`` (footprint, [start_at, end_at]): a catalogue search by area and
time. With the footprint alone, a city-sized box matched every product over the place in all
years, each read from the table to test its time (benchmark 7: 4,000-7,000 rows for ~200 hits,
20-100 ms per query); the range overlap is tested in the index. The repository says the time
condition as that range overlap.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_index(
        "ix_orders_customer_id_roi", "orders", ["customer_id", "roi"], postgresql_using="gist"
    )
    op.execute(
        "CREATE INDEX ix_products_footprint_period ON products "
        "USING gist (footprint, tstzrange(start_at, end_at, '[]'))"
    )


def downgrade() -> None:
    op.drop_index("ix_products_footprint_period", table_name="products")
    op.drop_index("ix_orders_customer_id_roi", table_name="orders")
    op.execute("DROP EXTENSION IF EXISTS btree_gist")
