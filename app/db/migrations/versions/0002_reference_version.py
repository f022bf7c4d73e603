"""The reference's alembic_version at its head, so that the reference accepts the database.

The reference's ``placement-manage db sync`` refuses a database without its
version table (it would try to create every table again). A database this
service created holds exactly the reference's schema at its head, so it gets
that head; a database the reference created keeps the version it has.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

REFERENCE_TABLE = "alembic_version"
REFERENCE_HEAD = "a082b8bb98d0"  # OpenStack Placement 16.0


def upgrade() -> None:
    bind = op.get_bind()
    if not sa.inspect(bind).has_table(REFERENCE_TABLE):
        # The table as alembic itself creates it.
        op.create_table(
            REFERENCE_TABLE,
            sa.Column("version_num", sa.String(32), nullable=False),
            sa.PrimaryKeyConstraint("version_num", name=f"{REFERENCE_TABLE}_pkc"),
        )
    table = sa.table(REFERENCE_TABLE, sa.column("version_num", sa.String(32)))
    if bind.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0:
        op.bulk_insert(table, [{"version_num": REFERENCE_HEAD}])


def downgrade() -> None:
    """The reference's table stays: it is the reference's."""
