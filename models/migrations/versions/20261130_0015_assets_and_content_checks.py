"""assets get email drafts, their source and who added them; timelines keep the template's content rules

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # On SQLite the table is copied (a new foreign key needs it); the copy also gets AUTOINCREMENT, so an
    # AS-<n> ref is never reused, as CM- and T- refs are not.
    with op.batch_alter_table('assets', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.add_column(sa.Column('subject', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('preheader', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('body', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('source', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('created_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_assets_created_by_id_team_members'), 'team_members',
                                    ['created_by_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index('ix_assets_task_id', ['task_id'], unique=False)
    with op.batch_alter_table('timelines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content_rules', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('timelines', schema=None) as batch_op:
        batch_op.drop_column('content_rules')
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.drop_index('ix_assets_task_id')
        batch_op.drop_constraint(batch_op.f('fk_assets_created_by_id_team_members'), type_='foreignkey')
        batch_op.drop_column('created_by_id')
        batch_op.drop_column('source')
        batch_op.drop_column('body')
        batch_op.drop_column('preheader')
        batch_op.drop_column('subject')
