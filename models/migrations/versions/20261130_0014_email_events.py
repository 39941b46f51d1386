"""email_events and email_event_batches: the email provider's results, each event once

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('email_event_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('stored', sa.Integer(), nullable=False),
    sa.Column('duplicates', sa.Integer(), nullable=False),
    sa.Column('unmatched', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('received_at', models.base.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'),
              nullable=False),
    sa.Column('processed_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_event_batches')),
    sqlite_autoincrement=True
    )
    op.create_index('ix_email_event_batches_status', 'email_event_batches', ['status'], unique=False)
    op.create_table('email_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('event', sa.String(length=16), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('custom_campaign', sa.String(length=255), nullable=True),
    sa.Column('message_id', sa.String(length=40), nullable=True),
    sa.Column('recipient_hash', sa.String(length=64), nullable=True),
    sa.Column('occurred_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('hard_bounce', sa.Boolean(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('received_at', models.base.UTCDateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'),
              nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['email_event_batches.id'],
                            name=op.f('fk_email_events_batch_id_email_event_batches'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'],
                            name=op.f('fk_email_events_campaign_id_campaigns'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_events')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_email_events_dedupe_key')),
    sqlite_autoincrement=True
    )
    op.create_index('ix_email_events_campaign_id_event', 'email_events', ['campaign_id', 'event'], unique=False)
    op.create_index('ix_email_events_custom_campaign', 'email_events', ['custom_campaign'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_email_events_custom_campaign', table_name='email_events')
    op.drop_index('ix_email_events_campaign_id_event', table_name='email_events')
    op.drop_table('email_events')
    op.drop_index('ix_email_event_batches_status', table_name='email_event_batches')
    op.drop_table('email_event_batches')
