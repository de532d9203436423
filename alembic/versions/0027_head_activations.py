"""Rollback undoes the last activation, whichever head that was.

A new table, projection_head_activations: one row per activate_head (the head, the head it
replaced), marked undone by rollback_head. Before, rollback_head re-activated the retired head
with the highest version below the active one, which undid the last activation only when
heads went live in version order: after v1, v2 and then v1 again by hand (`heads activate`),
a rollback retired v1 and left the mode on the base space instead of bringing v2 back. Now a
rollback re-activates the head the last activation replaced, and rolling back again undoes the
activation before (a stack). The upgrade records each mode's active head as replacing the
retired head with the highest version below it, the old rule, so the first rollback on an
upgraded database does what it did; past the recorded history the old rule still applies.
The downgrade drops the table.

Revision ID: 0027
Revises: 0026
"""

from heaters_db import schema

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema.execute(
        """
        CREATE TABLE projection_head_activations (
            id serial PRIMARY KEY,
            mode text NOT NULL,
            head_id integer NOT NULL REFERENCES projection_heads (id) ON DELETE CASCADE,
            replaced_head_id integer REFERENCES projection_heads (id) ON DELETE SET NULL,
            activated_at timestamptz NOT NULL DEFAULT now(),
            undone_at timestamptz
        );
        COMMENT ON TABLE projection_head_activations IS
            'One row per activate_head: the head and the head it replaced; rollback_head marks the '
            'last row not undone as undone and re-activates its replaced head.';
        CREATE INDEX projection_head_activations_open
            ON projection_head_activations (mode, id) WHERE undone_at IS NULL;
        INSERT INTO projection_head_activations (mode, head_id, replaced_head_id, activated_at)
        SELECT a.mode, a.id,
               (SELECT r.id FROM projection_heads r
                WHERE r.mode = a.mode AND r.status = 'retired' AND r.version < a.version
                ORDER BY r.version DESC LIMIT 1),
               coalesce(a.activated_at, now())
        FROM projection_heads a
        WHERE a.status = 'active';
        """
    )


def downgrade() -> None:
    schema.execute("DROP TABLE projection_head_activations")
