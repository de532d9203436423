"""Embedding variants the daemon can compute: a bounded frame count, finite windows, a name.

A new CHECK on embedding_variants, embedding_variants_computable: num_frames at most 256,
window_seconds finite, window_stride_seconds finite and at least 0.01 s, model_name not blank
(heaters_db/variant_shape.py holds the same rule for `variant add` and the daemon). Before,
`variant add ... --window-seconds nan` (or inf, or a 1e-9 s stride, or --frames 100000) was
stored, and every embed job of the variant then failed or never ended. NOT VALID: a row already
stored is kept as it is (the daemon refuses its jobs with the reason, dead at once) and only
new or changed rows are checked. The downgrade drops the constraint.

Revision ID: 0028
Revises: 0027
"""

from heaters_db import schema

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 'NaN' sorts above 'Infinity' in PostgreSQL, so `< 'Infinity'` refuses both.
    schema.execute(
        """
        ALTER TABLE embedding_variants ADD CONSTRAINT embedding_variants_computable CHECK (
            num_frames <= 256
            AND btrim(model_name) <> ''
            AND (window_seconds IS NULL OR window_seconds < 'Infinity')
            AND (window_stride_seconds IS NULL
                 OR (window_stride_seconds >= 0.01 AND window_stride_seconds < 'Infinity'))
        ) NOT VALID
        """
    )


def downgrade() -> None:
    schema.execute("ALTER TABLE embedding_variants DROP CONSTRAINT embedding_variants_computable")
