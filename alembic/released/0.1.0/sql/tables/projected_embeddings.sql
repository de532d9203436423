-- A clip's base embedding passed through one head. Like embeddings.embedding, the column has no
-- fixed dimension; each head gets a partial HNSW index (functions/ensure_head_index.sql).
CREATE TABLE projected_embeddings (
    id serial PRIMARY KEY,
    clip_id integer NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    projection_head_id integer NOT NULL REFERENCES projection_heads (id) ON DELETE CASCADE,
    embedding vector NOT NULL,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projected_embeddings_clip_head_key UNIQUE (clip_id, projection_head_id)
);
CREATE INDEX projected_embeddings_head ON projected_embeddings (projection_head_id);
