"""an index on approvals.delegated_to_id: "waiting for me" looks a person up as approver or delegate

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 15:25:00
"""

from __future__ import annotations

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_approvals_delegated_to_id', 'approvals', ['delegated_to_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_approvals_delegated_to_id', table_name='approvals')
