"""a partial index over open notifications (pending or claimed)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 19:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

OPEN_ROWS = sa.text("status IN ('pending', 'claimed')")


def upgrade() -> None:
    op.create_index('ix_notifications_open_scheduled_for', 'notifications', ['scheduled_for'], unique=False,
                    postgresql_where=OPEN_ROWS, sqlite_where=OPEN_ROWS)


def downgrade() -> None:
    op.drop_index('ix_notifications_open_scheduled_for', table_name='notifications')
