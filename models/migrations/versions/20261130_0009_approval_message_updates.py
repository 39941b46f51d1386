"""approval_messages.update_id: the outbox row that brings a copy of a request up to date

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('approval_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('update_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('approval_messages', schema=None) as batch_op:
        batch_op.drop_column('update_id')
