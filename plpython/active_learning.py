"""Active learning for the sorting loop: which anchors to ask about next (next_anchors).

``next_anchors_body(plpy, SD, mode, n)`` is the PL/Python entry point: the loader
(heaters_db.rerunnable) wraps this file, with the sibling modules it imports (anchor_clustering:
the cold start's k-means and medoids; anchor_scores: ambiguity scores, spread and evaluation
slots), into ``CREATE FUNCTION next_anchors_pick(mode text, n integer)``, which the public
plpgsql function next_anchors() calls after validating its arguments. So these files must stay
valid as a function body: no ``from __future__`` imports and numpy 1.24 features only (Debian's,
under PostgreSQL). Unit tests import them under the venv and under /usr/bin/python3.

After the cold start the informative picks are the least-asked clips of a random pool
(_least_asked): on the learning-curve matrix that beat random anchors on every library, where
ranking the pool by ambiguity (_ambiguous, setting anchor_ambiguity = 1) was level with them
overall and behind them with a noisy sorter (benchmarks/README.md, "Learning curves").

All vectors here are unit rows; cosine distance = 1 - dot product.
"""

import numpy as np
from anchor_clustering import (
    cold_start_picks,
    decode_vectors,
    normalize_rows,
    project_rows,
    random_projection,
)
from anchor_scores import (
    ambiguity_reasons,
    evaluation_deficit,
    jaccard_disagreement,
    margin_scores,
    random_slots,
    spread_picks,
)

# Neighbours per pool clip for the ambiguity scores (margin and kNN Jaccard).
AMBIGUITY_NEIGHBOURS = 10
# hnsw.ef_search for those neighbour scans (pgvector's default; similar_clips uses more).
AMBIGUITY_EF_SEARCH = 40


class Space:
    """Where a mode's "current space" lives: the active head's projected_embeddings, else the
    default variant's embeddings. `where(alias)` repeats the partial HNSW index's predicate with
    literals (functions/ensure_head_index.sql, ensure_variant_index.sql) so the planner uses it."""

    def __init__(self, plpy, table, predicate, dim):
        self.plpy, self.table, self.predicate, self.dim = plpy, table, predicate, int(dim)

    @classmethod
    def of_head(cls, plpy, head_id, dim):
        return cls(plpy, "projected_embeddings", f"{{a}}.projection_head_id = {int(head_id)}", dim)

    @classmethod
    def of_variant(cls, plpy, model_name, strategy, dim):
        model, strategy = plpy.quote_literal(model_name), plpy.quote_literal(strategy)
        predicate = f"{{a}}.model_name = {model} AND {{a}}.generation_strategy = {strategy}"
        return cls(plpy, "embeddings", predicate, dim)

    def key(self):
        return (self.table, self.predicate, self.dim)

    def source(self, alias):
        """`table alias WHERE predicate`: the space's rows, ready for more `AND ...`."""
        return f"{self.table} {alias} WHERE {self.where(alias)}"

    def where(self, alias):
        return self.predicate.format(a=alias)

    def cast(self, alias):
        return f"{alias}.embedding::vector({self.dim})"


def _plan(plpy, SD, sql, types):
    """A prepared plan, cached per session by its text (dynamic SQL differs per head/variant)."""
    plans = SD.setdefault("heaters_db:active_learning:plans", {})
    plan = plans.get(sql)
    if plan is None:
        if len(plans) > 64:
            plans.clear()
        plan = plans[sql] = plpy.prepare(sql, types)
    return plan


def _vectors(plpy, SD, space, clip_ids):
    """(clip ids, unit rows) of the given clips that have a vector in the space, leaving out
    vectors that are all zeros: they have no cosine distance to anything, so sorting_candidates
    refuses them as anchors, and an anchor nobody can answer stays least asked for good."""
    if not clip_ids:
        return [], np.zeros((0, space.dim), dtype=np.float32)
    sql = f"SELECT s.clip_id, vector_send(s.embedding) AS v FROM {space.source('s')} AND s.clip_id = ANY($1)"
    rows = plpy.execute(_plan(plpy, SD, sql, ["integer[]"]), [list(clip_ids)])
    vectors = decode_vectors([r["v"] for r in rows], space.dim)
    directed = np.flatnonzero(np.any(vectors != 0, axis=1))
    ids = [rows[int(i)]["clip_id"] for i in directed]
    return ids, normalize_rows(vectors[directed])


def _sample(plpy, SD, space, size):
    """A fixed sample of the space (the clips with the smallest hash of their id): (ids, unit
    rows, projection, projected rows). Cached per session while the sampled ids stay the same:
    reading and projecting 2,000 wide vectors costs more than the rest of a call."""
    sql = f"SELECT s.clip_id FROM {space.source('s')} ORDER BY hashint4(s.clip_id), s.clip_id LIMIT $1"
    sampled = sorted(r["clip_id"] for r in plpy.execute(_plan(plpy, SD, sql, ["integer"]), [size]))
    key = "heaters_db:active_learning:sample"
    cached = SD.get(key)
    if cached is not None and cached[0] == (space.key(), sampled):
        return cached[1:]
    found, rows = _vectors(plpy, SD, space, sampled)  # without all-zero vectors
    order = np.argsort(found, kind="stable")
    ids, rows = [found[i] for i in order], rows[order]
    projection = random_projection(space.dim)
    SD[key] = ((space.key(), sampled), ids, rows, projection, project_rows(rows, projection))
    return SD[key][1:]


def _random_clips(plpy, SD, space, excluded, count):
    """Up to `count` clips drawn uniformly, none of them in `excluded` (SQL random():
    setseed() makes the draw repeatable). The exclusion is applied here, not as `<> ALL(...)`,
    which would compare every row of a large library with every excluded id."""
    if count <= 0:
        return []
    excluded = set(excluded)
    sql = f"SELECT s.clip_id FROM {space.source('s')} ORDER BY random() LIMIT $1"
    rows = plpy.execute(_plan(plpy, SD, sql, ["integer"]), [count + len(excluded)])
    return [r["clip_id"] for r in rows if r["clip_id"] not in excluded][:count]


def _screen_possible(plpy, SD, space):
    """Whether the space holds two clips: a screen shows an anchor with at least one other clip,
    so in a library of one every anchor would come back with no candidates."""
    sql = f"SELECT count(*) AS clips FROM (SELECT 1 FROM {space.source('s')} LIMIT 2) two"
    return plpy.execute(_plan(plpy, SD, sql, []))[0]["clips"] >= 2


def _with_candidates(plpy, SD, space, clip_ids, duplicate):
    """The clips of `clip_ids` that some clip of the space is not a near-duplicate of: screens
    never show a near-duplicate of the anchor, so an anchor without one (a library of copies of
    one take) would be a screen with no candidates. The scan stops at the first clip far
    enough away, which in any real library is one of the first rows it reads."""
    if not clip_ids:
        return set()
    target, query = space.cast("s"), space.cast("q")
    sql = (
        f"SELECT q.clip_id FROM {space.table} q WHERE {space.where('q')} "
        "AND q.clip_id = ANY($1) AND EXISTS (SELECT 1 FROM "
        f"{space.source('s')} AND s.clip_id <> q.clip_id "
        f"AND ({target} <=> {query}) >= $2 AND ({target} <=> {query}) < 'NaN'::float8)"
    )  # NaN (an all-zero vector) sorts above every number in PostgreSQL: not a candidate
    rows = plpy.execute(_plan(plpy, SD, sql, ["integer[]", "double precision"]), [
        list(clip_ids), duplicate,
    ])  # fmt: skip
    return {r["clip_id"] for r in rows}


def _neighbours(plpy, SD, space, clip_ids, k):
    """Each clip's k nearest clips in `space` (itself left out), as (ids, distances) lists:
    one HNSW index scan per clip, through a LATERAL join."""
    target, query = space.cast("s"), space.cast("q")
    sql = (
        f"SELECT q.clip_id AS query_id, nb.clip_id, nb.distance FROM {space.table} q "
        f"CROSS JOIN LATERAL (SELECT s.clip_id, ({target} <=> {query})::double precision "
        f"AS distance FROM {space.source('s')} ORDER BY {target} <=> {query} LIMIT $2) nb "
        f"WHERE {space.where('q')} AND q.clip_id = ANY($1) AND nb.clip_id <> q.clip_id "
        "ORDER BY q.clip_id, nb.distance, nb.clip_id"
    )
    rows = plpy.execute(_plan(plpy, SD, sql, ["integer[]", "integer"]), [list(clip_ids), k + 1])
    found = {clip_id: ([], []) for clip_id in clip_ids}
    for r in rows:
        ids, distances = found[r["query_id"]]
        if len(ids) < k:
            ids.append(r["clip_id"])
            distances.append(r["distance"])
    return found


ANCHOR_SETTINGS = (
    "anchor_ambiguity",
    "anchor_cold_start_events",
    "anchor_random_share",
    "anchor_pool_size",
    "anchor_sample_size",
    "anchor_reuse_after_events",
    "near_duplicate_distance",
)


def _settings(plpy, SD):
    """The picker's settings. Their defaults have one home, the seed rows of
    heaters_db_settings (the migrations): a missing row is an error, not a second default."""
    sql = "SELECT name, value FROM heaters_db_settings WHERE name = ANY($1)"
    rows = plpy.execute(_plan(plpy, SD, sql, ["text[]"]), [list(ANCHOR_SETTINGS)])
    values = {r["name"]: float(r["value"]) for r in rows}
    missing = [name for name in ANCHOR_SETTINGS if name not in values]
    if missing:
        plpy.error(f"heaters_db_settings lacks {', '.join(missing)}: run `heaters-db migrate`")
    return values


def _query(plpy, SD, sql, types, arguments):
    return plpy.execute(_plan(plpy, SD, sql, types), arguments)


def _mode_spaces(plpy, SD, mode):
    """(current space, base space or None), or None when nothing is embedded yet. The current
    space is the mode's active head (then the base is its variant), else the default variant."""
    head = _query(
        plpy,
        SD,
        "SELECT h.id, h.output_dim, v.model_name, v.generation_strategy, v.dim "
        "FROM projection_heads h JOIN embedding_variants v ON v.id = h.base_variant_id "
        "WHERE h.mode = $1 AND h.status = 'active'",
        ["text"],
        [mode],
    )
    if len(head):
        h = head[0]
        space = Space.of_head(plpy, h["id"], h["output_dim"])
        return space, Space.of_variant(plpy, h["model_name"], h["generation_strategy"], h["dim"])
    v = plpy.execute("SELECT (default_variant()).*")[0]
    if v["dim"] is None:
        return None
    return Space.of_variant(plpy, v["model_name"], v["generation_strategy"], v["dim"]), None


class History:
    """What the mode's events say about anchors: how many events, the anchors of the latest
    (least recently used first), the anchors' fixed splits (sorting_anchor_splits), and how many
    held-out evaluation screens the mode has, asked and answered with a selection
    (evaluation_deficit)."""

    def __init__(self, plpy, SD, mode, reuse_after_events):
        self.events = _query(
            plpy,
            SD,
            "SELECT count(*) AS events FROM clip_sorting_events e WHERE e.sorting_mode = $1",
            ["text"],
            [mode],
        )[0]["events"]
        self.recent = [
            r["anchor_clip_id"]
            for r in _query(
                plpy,
                SD,
                "SELECT r.anchor_clip_id FROM (SELECT e.id, e.anchor_clip_id "
                "FROM clip_sorting_events e WHERE e.sorting_mode = $1 ORDER BY e.id DESC "
                "LIMIT $2) r GROUP BY r.anchor_clip_id ORDER BY max(r.id)",
                ["text", "integer"],
                [mode, int(reuse_after_events)],
            )
        ]
        # An evaluation anchor must be a clip nobody trained on, or the gate could not judge its
        # screen; an informative pick of a held-out anchor would be wasted (it trains nothing).
        self.held_out, self.trained_on = set(), set()
        for r in _query(
            plpy,
            SD,
            "SELECT s.anchor_clip_id, s.split FROM sorting_anchor_splits s WHERE s.sorting_mode = $1",
            ["text"],
            [mode],
        ):
            (self.held_out if r["split"] == "holdout" else self.trained_on).add(r["anchor_clip_id"])
        evaluation = _query(
            plpy,
            SD,
            "SELECT count(*) AS asked, count(e.selected_clip_id) AS selected "
            "FROM clip_sorting_events e JOIN sorting_anchor_splits s "
            "ON s.sorting_mode = e.sorting_mode AND s.anchor_clip_id = e.anchor_clip_id "
            "WHERE e.sorting_mode = $1 AND e.anchor_reason = 'evaluation' AND s.split = 'holdout'",
            ["text"],
            [mode],
        )[0]
        self.evaluation_asked = evaluation["asked"]
        self.evaluation_selected = evaluation["selected"]


def _cold_start(plpy, SD, space, count, taken, avoid, settings):
    """Medoid picks of the space's fixed sample (cold_start_picks)."""
    sample_ids, sample, projection, clustered = _sample(
        plpy, SD, space, int(settings["anchor_sample_size"])
    )
    excluded = [row for row, clip_id in enumerate(sample_ids) if clip_id in taken]
    picks = cold_start_picks(
        sample,
        count,
        avoid,
        excluded,
        settings["near_duplicate_distance"],
        projection,
        clustered,
    )
    return [(sample_ids[row], score, "cold_start_medoid") for row, score in picks]


def _ambiguous(plpy, SD, space, base, pool_ids, count, avoid, settings):
    """The pool clips the current space is least sure about (ambiguity_reasons)."""
    pool_ids, pool = _vectors(plpy, SD, space, pool_ids)
    k = AMBIGUITY_NEIGHBOURS
    current = _neighbours(plpy, SD, space, pool_ids, k)
    margin = margin_scores([current[c][1] for c in pool_ids])
    disagreement = None
    if base is not None:
        in_base = _neighbours(plpy, SD, base, pool_ids, k)
        disagreement = jaccard_disagreement(
            [current[c][0] for c in pool_ids], [in_base[c][0] for c in pool_ids]
        )
    scored = ambiguity_reasons(margin, disagreement)
    duplicate = settings["near_duplicate_distance"]
    rows = spread_picks(pool, [s for s, _ in scored], count, duplicate, avoid)
    return [(pool_ids[r], scored[r][0], scored[r][1]) for r in rows]


def _least_asked(plpy, SD, space, mode, pool_ids, count, avoid, settings):
    """The pool clips asked about least often as anchors of the mode, ties in the pool's random
    order: cover the library before asking about a clip again. Score 1 / (1 + times asked)."""
    found, rows = _vectors(plpy, SD, space, pool_ids)
    row_of = {clip_id: row for row, clip_id in enumerate(found)}
    ordered = [clip_id for clip_id in pool_ids if clip_id in row_of]  # the pool's random order
    vectors = rows[[row_of[clip_id] for clip_id in ordered]]
    asked = {
        r["anchor_clip_id"]: r["asked"]
        for r in _query(
            plpy,
            SD,
            "SELECT e.anchor_clip_id, count(*) AS asked FROM clip_sorting_events e "
            "WHERE e.sorting_mode = $1 AND e.anchor_clip_id = ANY($2) GROUP BY e.anchor_clip_id",
            ["text", "integer[]"],
            [mode, ordered],
        )
    }
    scores = [1.0 / (1 + asked.get(clip_id, 0)) for clip_id in ordered]
    rows = spread_picks(vectors, scores, count, settings["near_duplicate_distance"], avoid)
    return [(ordered[r], scores[r], "least_asked") for r in rows]


def _evaluation_draws(plpy, SD, space, excluded, count, recent_vectors, settings):
    """Up to `count` uniform draws for evaluation screens and their vectors, in draw order,
    without near-duplicates of each other or of a recent anchor (the rule every pick keeps: in
    a library of many copies of one take, a batch held several copies). A draw left out is
    not replaced: the slot goes to an informative pick (interleave)."""
    drawn = _random_clips(plpy, SD, space, excluded, count)
    found, vectors = _vectors(plpy, SD, space, drawn)
    row_of = {clip_id: row for row, clip_id in enumerate(found)}
    drawn = [clip_id for clip_id in drawn if clip_id in row_of]
    if not drawn:
        return [], vectors[:0]
    vectors = vectors[[row_of[clip_id] for clip_id in drawn]]
    keep = spread_picks(
        vectors,
        np.zeros(len(drawn)),
        len(drawn),
        settings["near_duplicate_distance"],
        recent_vectors,
    )
    return [drawn[row] for row in keep], vectors[keep]


def interleave(slots, random_rows, picked):
    """Evaluation picks take their slots, informative picks the others in score order; when one
    kind runs out, the other fills in."""
    random_rows, picked, result = list(random_rows), list(picked), []
    for is_random in slots:
        source = random_rows if is_random and random_rows else picked
        if not source:
            source = random_rows or picked
        if source:
            result.append(source.pop(0))
    return result


def next_anchors_body(plpy, SD, mode, n):
    """Rows (clip_id, score, reason) for next_anchors(); `mode` is already the stored name and
    `n` validated by the plpgsql wrapper."""
    settings = _settings(plpy, SD)
    # Rough neighbour lists are enough to score ambiguity; the function's own SET clause
    # restores the caller's value on return.
    plpy.execute(f"SELECT set_config('hnsw.ef_search', '{AMBIGUITY_EF_SEARCH}', true)")
    # The session's random() stream (setseed() makes it repeatable) seeds numpy.
    seed = plpy.execute("SELECT floor(random() * 2147483647)::bigint AS seed")[0]["seed"]
    rng = np.random.default_rng(int(seed))
    spaces = _mode_spaces(plpy, SD, mode)
    if spaces is None:
        return []  # nothing embedded yet
    space, base = spaces
    if not _screen_possible(plpy, SD, space):
        return []
    history = History(plpy, SD, mode, settings["anchor_reuse_after_events"])
    recent_ids, recent_vectors = _vectors(plpy, SD, space, history.recent)
    # Cold start by event count only: while no head passes the gate, anchors chosen for being
    # typical keep the holdout easy for the base space, and the gate keeps refusing (benchmarks/
    # README.md); ambiguous anchors of the base space break that loop.
    cold = history.events < settings["anchor_cold_start_events"]

    slots = random_slots(
        n,
        settings["anchor_random_share"],
        rng,
        evaluation_deficit(history.evaluation_selected, history.evaluation_asked),
    )
    recent = set(history.recent)
    random_ids, random_vectors = _evaluation_draws(
        plpy, SD, space, recent | history.trained_on, int(slots.sum()), recent_vectors, settings
    )
    # Counted after the draws: a draw left out (a near-duplicate) gives its slot to an
    # informative pick, even when every slot was an evaluation slot.
    informative = int(n - len(random_ids))
    pool_size = int(settings["anchor_pool_size"]) if not cold and informative else 0
    pool_ids = _random_clips(
        plpy, SD, space, recent | set(random_ids) | history.held_out, pool_size
    )
    taken = recent | set(random_ids)
    # Evaluation picks count as used: they cover their cluster and block near-duplicates.
    avoid = np.concatenate([recent_vectors, random_vectors])

    picked = []
    if informative and cold:
        picked = _cold_start(plpy, SD, space, informative, taken, avoid, settings)
    elif informative and pool_ids and settings["anchor_ambiguity"]:
        picked = _ambiguous(plpy, SD, space, base, pool_ids, informative, avoid, settings)
    elif informative and pool_ids:
        picked = _least_asked(plpy, SD, space, mode, pool_ids, informative, avoid, settings)

    result = interleave(slots, [(clip_id, 0.0, "evaluation") for clip_id in random_ids], picked)
    # Every clip was used recently (a small library): the least recently used come back.
    if len(result) < n:
        chosen = {row[0] for row in result}
        in_space = set(recent_ids)
        reused = [c for c in history.recent if c in in_space and c not in chosen]
        result += [(clip_id, 0.0, "least_recently_used") for clip_id in reused[: n - len(result)]]
    answerable = _with_candidates(
        plpy, SD, space, [row[0] for row in result], settings["near_duplicate_distance"]
    )
    return [row for row in result if row[0] in answerable]
