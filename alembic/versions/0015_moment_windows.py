"""Moments: window variants (vectors of sub-clip windows) and their tables.

- embedding_variants gets window_seconds / window_stride_seconds; a variant with the strategy
  `video_moment_windows` has both (and only it has them). Its `num_frames` are the frames per
  window.
- moment_embeddings: one row per (clip, window variant, window start), the window's vector; a
  partial HNSW index per variant is built by ensure_moment_index (sql/functions).
- projected_moment_embeddings: window vectors under projection heads (same role as
  projected_embeddings for clips), so similar_moments(..., 'trick') uses the learned space.

heaters' `embeddings` table is untouched: it stays one row per clip and variant.

Revision ID: 0015
Revises: 0014
"""

from heaters_db import schema

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

FUNCTIONS = (
    "similar_moments_to_embedding(vector, text, double precision)",
    "similar_moments(double precision, double precision, double precision, text, double precision)",
    "similar_moments_to_embedding(vector, text, integer)",
    "similar_moments(integer, double precision, double precision, text, integer)",
    "search_similar_moments(vector, text, integer, integer)",
    "moment_query_embedding(integer, double precision, double precision, integer)",
    "nearest_moments(integer, integer, vector, integer, integer)",
    "moment_variant(text)",
    "ensure_moment_index(integer)",
    "ensure_moment_head_index(integer)",
    "project_moment_embeddings(integer)",
    "project_new_moment_embeddings()",
)


def upgrade() -> None:
    schema.execute(
        """
        ALTER TABLE embedding_variants
            DROP CONSTRAINT embedding_variants_strategy_is_video,
            ADD CONSTRAINT embedding_variants_strategy_is_video
                CHECK (generation_strategy IN ('video_full_clip', 'video_centered_64',
                                               'video_trick_window', 'video_moment_windows')),
            ADD COLUMN window_seconds double precision,
            ADD COLUMN window_stride_seconds double precision,
            ADD CONSTRAINT embedding_variants_window_shape CHECK (
                (generation_strategy = 'video_moment_windows')
                    = (window_seconds IS NOT NULL AND window_stride_seconds IS NOT NULL)
                AND (window_seconds IS NULL OR window_seconds > 0)
                AND (window_stride_seconds IS NULL OR window_stride_seconds > 0));
        COMMENT ON COLUMN embedding_variants.window_seconds IS
            'video_moment_windows only: length of one window (seconds); num_frames are spread over it.';
        COMMENT ON COLUMN embedding_variants.window_stride_seconds IS
            'video_moment_windows only: seconds between the starts of consecutive windows.';

        CREATE TABLE moment_embeddings (
            id serial PRIMARY KEY,
            clip_id integer NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
            variant_id integer NOT NULL REFERENCES embedding_variants (id) ON DELETE CASCADE,
            start_seconds double precision NOT NULL CHECK (start_seconds >= 0),
            end_seconds double precision NOT NULL,
            embedding vector NOT NULL,
            model_version text,
            inserted_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT moment_embeddings_window_is_forward CHECK (end_seconds > start_seconds),
            CONSTRAINT moment_embeddings_clip_variant_start_key
                UNIQUE (clip_id, variant_id, start_seconds)
        );
        COMMENT ON TABLE moment_embeddings IS
            'One vector per window of a clip, for the window variants (video_moment_windows).';

        CREATE TABLE projected_moment_embeddings (
            moment_embedding_id integer NOT NULL REFERENCES moment_embeddings (id) ON DELETE CASCADE,
            projection_head_id integer NOT NULL REFERENCES projection_heads (id) ON DELETE CASCADE,
            -- the moment's clip, copied so a search can leave out the query clip inside the
            -- HNSW scan (an iterative scan filters one table, not a join)
            clip_id integer NOT NULL,
            embedding vector NOT NULL,
            inserted_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (moment_embedding_id, projection_head_id)
        );
        CREATE INDEX projected_moment_embeddings_head ON projected_moment_embeddings (projection_head_id);
        """
    )


def downgrade() -> None:
    schema.execute(
        "DROP TRIGGER IF EXISTS moment_embeddings_project_new_on_insert ON moment_embeddings"
    )
    schema.drop_functions(*FUNCTIONS)
    schema.execute(
        """
        DROP TABLE projected_moment_embeddings;
        DROP TABLE moment_embeddings;
        DELETE FROM embedding_variants WHERE generation_strategy = 'video_moment_windows';
        ALTER TABLE embedding_variants
            DROP CONSTRAINT embedding_variants_window_shape,
            DROP COLUMN window_stride_seconds,
            DROP COLUMN window_seconds,
            DROP CONSTRAINT embedding_variants_strategy_is_video,
            ADD CONSTRAINT embedding_variants_strategy_is_video
                CHECK (generation_strategy IN ('video_full_clip', 'video_centered_64',
                                               'video_trick_window'));
        """
    )
