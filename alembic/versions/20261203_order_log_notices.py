"""order log notices: pg_notify on cure_order_logs when an order's log grows or the order ends

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:00:00

A long poll or an event stream of an order's log waits for a notice instead of reading the
database every half second (cure.logs.waiters). The payload is the order's id, sent at commit:

- by the records saved for it: one statement-level trigger per insert into ``log_records``
  (a batch of the log saver), one notice per order named in it; PostgreSQL folds the same
  notice sent many times in one transaction into one;
- by the order reaching a final state, which ends its log.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECORDS_FUNCTION = """
CREATE FUNCTION cure_order_log_records_notice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cure_order_logs', order_id::text)
    FROM (SELECT DISTINCT order_id FROM saved WHERE order_id IS NOT NULL) AS orders;
    RETURN NULL;
END
$$
"""

ORDERS_FUNCTION = """
CREATE FUNCTION cure_order_log_end_notice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cure_order_logs', NEW.id::text);
    RETURN NULL;
END
$$
"""

TRIGGERS = (
    (
        "log_records_order_log_notice",
        "log_records",
        "AFTER INSERT ON log_records REFERENCING NEW TABLE AS saved FOR EACH STATEMENT",
        "cure_order_log_records_notice",
    ),
    (
        "orders_order_log_notice",
        "orders",
        "AFTER UPDATE OF status ON orders FOR EACH ROW"
        " WHEN (NEW.status IS DISTINCT FROM OLD.status"
        " AND NEW.status IN ('SUCCESS', 'FAILED', 'INVALID', 'CANCELLED'))",
        "cure_order_log_end_notice",
    ),
)


def upgrade() -> None:
    op.execute(RECORDS_FUNCTION)
    op.execute(ORDERS_FUNCTION)
    for name, _, when, function in TRIGGERS:
        op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION {function}()")


def downgrade() -> None:
    for name, table, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS cure_order_log_end_notice()")
    op.execute("DROP FUNCTION IF EXISTS cure_order_log_records_notice()")
