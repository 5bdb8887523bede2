"""change notices: pg_notify when auth changes (cure_auth) and when the outbox gets work (cure_outbox)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 09:00:00

``cure_auth``: a customer updated or deleted, one of its clients updated or deleted (the payload
is the customer's id), or an access token revoked (``jti:<jti>``). Every API process listens and
drops what it cached about that customer or token (cure.auth.principals).

``cure_outbox``: rows were added to the outbox; the relay, in whichever process runs it, listens
and publishes at once instead of at its next poll. PostgreSQL folds the same notice sent many
times in one transaction into one, sent at commit.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTH_FUNCTION = """
CREATE FUNCTION cure_auth_notice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'customers' THEN
        PERFORM pg_notify('cure_auth', OLD.id::text);
    ELSIF TG_TABLE_NAME = 'oauth_clients' THEN
        PERFORM pg_notify('cure_auth', OLD.customer_id::text);
        IF TG_OP = 'UPDATE' AND NEW.customer_id IS DISTINCT FROM OLD.customer_id THEN
            PERFORM pg_notify('cure_auth', NEW.customer_id::text);
        END IF;
    ELSE
        PERFORM pg_notify('cure_auth', 'jti:' || NEW.jti);
    END IF;
    RETURN NULL;
END
$$
"""

OUTBOX_FUNCTION = """
CREATE FUNCTION cure_outbox_notice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cure_outbox', '');
    RETURN NULL;
END
$$
"""

TRIGGERS = (
    (
        "customers_auth_notice",
        "AFTER UPDATE OR DELETE ON customers FOR EACH ROW",
        "cure_auth_notice",
    ),
    (
        "oauth_clients_auth_notice",
        "AFTER UPDATE OR DELETE ON oauth_clients FOR EACH ROW",
        "cure_auth_notice",
    ),
    (
        "revoked_access_tokens_auth_notice",
        "AFTER INSERT ON revoked_access_tokens FOR EACH ROW",
        "cure_auth_notice",
    ),
    (
        "outbox_messages_notice",
        "AFTER INSERT ON outbox_messages FOR EACH STATEMENT",
        "cure_outbox_notice",
    ),
)


def upgrade() -> None:
    op.execute(AUTH_FUNCTION)
    op.execute(OUTBOX_FUNCTION)
    for name, when, function in TRIGGERS:
        op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION {function}()")


def downgrade() -> None:
    for name, when, _ in TRIGGERS:
        table = when.split(" ON ", 1)[1].split()[0]
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS cure_outbox_notice()")
    op.execute("DROP FUNCTION IF EXISTS cure_auth_notice()")
