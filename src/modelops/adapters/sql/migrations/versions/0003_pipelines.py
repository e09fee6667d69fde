"""pipelines

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 08:51:17.841796
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pipelines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('pipeline_type', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('package_id', sa.Integer(), nullable=False),
    sa.Column('package_name', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=16), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('dataset_name', sa.String(length=64), nullable=False),
    sa.Column('dataset_version', sa.Integer(), nullable=True),
    sa.Column('folder', sa.String(length=1024), nullable=False),
    sa.Column('eval_dataset_id', sa.Integer(), nullable=True),
    sa.Column('eval_dataset_name', sa.String(length=64), nullable=True),
    sa.Column('eval_dataset_version', sa.Integer(), nullable=True),
    sa.Column('eval_folder', sa.String(length=1024), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('gpu', sa.Boolean(), nullable=False),
    sa.Column('schedule_kind', sa.String(length=8), nullable=False),
    sa.Column('run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cron', sa.String(length=128), nullable=True),
    sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('timeout_seconds', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ),
    sa.ForeignKeyConstraint(['eval_dataset_id'], ['datasets.id'], ),
    sa.ForeignKeyConstraint(['package_id'], ['model_packages.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.ForeignKeyConstraint(['version_id'], ['model_versions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'name')
    )
    with op.batch_alter_table('pipelines', schema=None) as batch_op:
        batch_op.create_index('ix_pipelines_next_run_at', ['next_run_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_pipelines_project_id'), ['project_id'], unique=False)

    op.create_table('pipeline_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('pipeline_id', sa.Integer(), nullable=True),
    sa.Column('pipeline_name', sa.String(length=64), nullable=False),
    sa.Column('pipeline_type', sa.String(length=16), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('inputs', sa.JSON(), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('new_version_id', sa.Integer(), nullable=True),
    sa.Column('new_version', sa.String(length=16), nullable=True),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.Column('results_sha256', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.ForeignKeyConstraint(['new_version_id'], ['model_versions.id'], ),
    sa.ForeignKeyConstraint(['pipeline_id'], ['pipelines.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job_id'),
    sa.UniqueConstraint('pipeline_id', 'scheduled_at')
    )
    with op.batch_alter_table('pipeline_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pipeline_runs_pipeline_id'), ['pipeline_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pipeline_runs_project_id'), ['project_id'], unique=False)

    op.create_table('pipeline_run_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('area', sa.String(length=16), nullable=False),
    sa.Column('path', sa.String(length=1024), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['pipeline_runs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'area', 'path')
    )
    with op.batch_alter_table('pipeline_run_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pipeline_run_files_run_id'), ['run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('pipeline_run_files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pipeline_run_files_run_id'))

    op.drop_table('pipeline_run_files')
    with op.batch_alter_table('pipeline_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pipeline_runs_project_id'))
        batch_op.drop_index(batch_op.f('ix_pipeline_runs_pipeline_id'))

    op.drop_table('pipeline_runs')
    with op.batch_alter_table('pipelines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pipelines_project_id'))
        batch_op.drop_index('ix_pipelines_next_run_at')

    op.drop_table('pipelines')
