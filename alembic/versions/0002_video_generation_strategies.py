"""Extend heaters' generation_strategy_must_be_valid with the video strategies.

heaters keeps strategies as text with a CHECK constraint (no enum types). The new constraint
accepts whatever the original accepted OR one of video_full_clip, video_centered_64,
video_trick_window; the original definition is kept in heaters_db_meta and restored exactly on
downgrade (after removing the rows only heaters-db wrote, which the old constraint would refuse).

Revision ID: 0002
Revises: 0001
"""

from heaters_db import schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CONSTRAINT = "generation_strategy_must_be_valid"
VIDEO_STRATEGIES = ("video_full_clip", "video_centered_64", "video_trick_window")


def _constraint_definition() -> str | None:
    row = schema.fetch_one(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'public.embeddings'::regclass AND conname = %s",
        (CONSTRAINT,),
    )
    return row[0] if row else None


def upgrade() -> None:
    original = _constraint_definition()
    schema.meta_set("original_strategy_constraint", original)
    if original is None:
        return  # nothing restricts strategies here; nothing to extend
    # pg_get_constraintdef says "CHECK (...)", plus " NOT VALID" for an unvalidated constraint,
    # which must stay outside the widened expression.
    not_valid = " NOT VALID" if original.endswith(" NOT VALID") else ""
    check = original.removeprefix("CHECK ").removesuffix(" NOT VALID").strip()
    video = ", ".join(f"'{s}'::text" for s in VIDEO_STRATEGIES)
    schema.execute(
        f"ALTER TABLE embeddings DROP CONSTRAINT {CONSTRAINT}, "
        f"ADD CONSTRAINT {CONSTRAINT} "
        f"CHECK ({check} OR generation_strategy = ANY (ARRAY[{video}])){not_valid}"
    )


def downgrade() -> None:
    original = schema.meta_get("original_strategy_constraint")
    video = ", ".join(f"'{s}'" for s in VIDEO_STRATEGIES)
    # Rows with the video strategies are heaters-db's own; the original constraint refuses them.
    schema.execute(f"DELETE FROM embeddings WHERE generation_strategy IN ({video})")
    if original is None:
        return
    schema.execute(
        f"ALTER TABLE embeddings DROP CONSTRAINT {CONSTRAINT}, ADD CONSTRAINT {CONSTRAINT} {original}"
    )
