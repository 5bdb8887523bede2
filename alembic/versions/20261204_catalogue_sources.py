"""catalogue sources: remote catalogues an operator adds, their secrets sealed, and their notices

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 09:00:00

A row is one source (``cure.ccsi.sources``): its document without secrets (JSONB), the inline
secrets encrypted together (``sealed_secrets``, a Fernet token under a key derived from
``CURE_SOURCES_KEY``; NULL when it has none), whether it is enabled, and a version that every
change bumps.

``cure_sources``: a source added, changed or removed (the payload is its name), sent at commit.
Every API process listens and reads its enabled sources again (``SourceRegistry``), so a change
is seen without a restart.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE FUNCTION cure_sources_notice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('cure_sources', OLD.name);
    ELSE
        PERFORM pg_notify('cure_sources', NEW.name);
        IF TG_OP = 'UPDATE' AND NEW.name IS DISTINCT FROM OLD.name THEN
            PERFORM pg_notify('cure_sources', OLD.name);
        END IF;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "catalogue_sources",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("sealed_secrets", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("version > 0", name=op.f("ck_catalogue_sources_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_sources")),
        sa.UniqueConstraint("name", name=op.f("uq_catalogue_sources_name")),
    )
    op.execute(FUNCTION)
    op.execute(
        "CREATE TRIGGER catalogue_sources_notice"
        " AFTER INSERT OR UPDATE OR DELETE ON catalogue_sources"
        " FOR EACH ROW EXECUTE FUNCTION cure_sources_notice()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS catalogue_sources_notice ON catalogue_sources")
    op.execute("DROP FUNCTION IF EXISTS cure_sources_notice()")
    op.drop_table("catalogue_sources")
