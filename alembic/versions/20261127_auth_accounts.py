"""auth accounts: customer scopes and country, refresh tokens, revoked access tokens,
password reset tokens, auth failures (throttling)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("country", sa.String(length=2), nullable=True))
    op.add_column(
        "customers",
        sa.Column("scopes", sa.ARRAY(sa.String(length=100)), nullable=False, server_default="{}"),
    )
    # Scopes move from each client to its customer: the customer gets what its clients held, and
    # the existing (default) clients follow the customer from now on.
    op.execute(
        """
        UPDATE customers SET scopes = coalesce(
            (SELECT array_agg(DISTINCT s ORDER BY s)
               FROM oauth_clients c, unnest(c.scopes) AS s
              WHERE c.customer_id = customers.id),
            '{}')
        """
    )
    op.alter_column("customers", "scopes", server_default=None)
    op.alter_column(
        "oauth_clients", "scopes", existing_type=sa.ARRAY(sa.String(length=100)), nullable=True
    )
    op.execute("UPDATE oauth_clients SET scopes = NULL")
    op.add_column(
        "oauth_clients",
        sa.Column("secret_rotated_at", sa.DateTime(timezone=True), nullable=True),
    )

    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.ARRAY(sa.String(length=100)), nullable=False),
        sa.Column("access_token_jti", sa.String(length=64), nullable=False),
        sa.Column("access_token_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replaced_by_id", sa.Uuid(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_refresh_tokens_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["replaced_by_id"],
            ["refresh_tokens.id"],
            name=op.f("fk_refresh_tokens_replaced_by_id_refresh_tokens"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_tokens_token_hash")),
    )
    op.create_index(
        op.f("ix_refresh_tokens_client_id"), "refresh_tokens", ["client_id"], unique=False
    )
    op.create_index(
        op.f("ix_refresh_tokens_customer_id"), "refresh_tokens", ["customer_id"], unique=False
    )
    op.create_index(
        op.f("ix_refresh_tokens_family_id"), "refresh_tokens", ["family_id"], unique=False
    )

    op.create_table(
        "revoked_access_tokens",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_revoked_access_tokens")),
    )
    op.create_index(
        op.f("ix_revoked_access_tokens_expires_at"),
        "revoked_access_tokens",
        ["expires_at"],
        unique=False,
    )

    op.create_table(
        "password_reset_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_password_reset_tokens_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_reset_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_reset_tokens_token_hash")),
    )
    op.create_index(
        op.f("ix_password_reset_tokens_customer_id"),
        "password_reset_tokens",
        ["customer_id"],
        unique=False,
    )

    op.create_table(
        "auth_failures",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_failures")),
    )
    op.create_index(
        "ix_auth_failures_key_occurred_at", "auth_failures", ["key", "occurred_at"], unique=False
    )
    op.create_index(
        op.f("ix_auth_failures_occurred_at"), "auth_failures", ["occurred_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_auth_failures_occurred_at"), table_name="auth_failures")
    op.drop_index("ix_auth_failures_key_occurred_at", table_name="auth_failures")
    op.drop_table("auth_failures")
    op.drop_index(op.f("ix_password_reset_tokens_customer_id"), table_name="password_reset_tokens")
    op.drop_table("password_reset_tokens")
    op.drop_index(op.f("ix_revoked_access_tokens_expires_at"), table_name="revoked_access_tokens")
    op.drop_table("revoked_access_tokens")
    op.drop_index(op.f("ix_refresh_tokens_family_id"), table_name="refresh_tokens")
    op.drop_index(op.f("ix_refresh_tokens_customer_id"), table_name="refresh_tokens")
    op.drop_index(op.f("ix_refresh_tokens_client_id"), table_name="refresh_tokens")
    op.drop_table("refresh_tokens")

    op.drop_column("oauth_clients", "secret_rotated_at")
    # Back to scopes per client: each client gets what it could use (its list, or its customer's).
    op.execute(
        """
        UPDATE oauth_clients c SET scopes = coalesce(c.scopes, cu.scopes)
          FROM customers cu WHERE cu.id = c.customer_id
        """
    )
    op.alter_column(
        "oauth_clients", "scopes", existing_type=sa.ARRAY(sa.String(length=100)), nullable=False
    )
    op.drop_column("customers", "scopes")
    op.drop_column("customers", "country")
