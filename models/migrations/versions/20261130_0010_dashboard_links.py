"""dashboard_links: read-only dashboard links, stored so each can expire and be revoked

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dashboard_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=24), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'),
              nullable=False),
    sa.Column('expires_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.Column('label', sa.String(length=200), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_dashboard_links_campaign_id_campaigns'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['team_members.id'],
                            name=op.f('fk_dashboard_links_created_by_id_team_members'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['team_members.id'],
                            name=op.f('fk_dashboard_links_revoked_by_id_team_members'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dashboard_links')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('dashboard_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dashboard_links_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index('ix_dashboard_links_created_by_id_created_at', ['created_by_id', 'created_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dashboard_links', schema=None) as batch_op:
        batch_op.drop_index('ix_dashboard_links_created_by_id_created_at')
        batch_op.drop_index(batch_op.f('ix_dashboard_links_campaign_id'))

    op.drop_table('dashboard_links')
