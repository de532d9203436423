"""Active learning for the sorting loop: which anchors to ask about next (next_anchors).

Pure numpy pieces (k-means++ / spherical k-means with a fixed seed, cluster medoids, the
near-duplicate filter, ambiguity scores) are plain functions, imported by unit tests under the venv
and under /usr/bin/python3. ``next_anchors_body(plpy, SD, mode, n)`` is the PL/Python entry point:
the migration loader (heaters_db.schema.install_plpython_function) wraps this whole file into
``CREATE FUNCTION next_anchors_pick(mode text, n integer)``, which the public plpgsql function
next_anchors() calls after validating its arguments. So this file must stay valid as a function
body: no ``from __future__`` imports and numpy 1.24 features only (Debian's, under PostgreSQL).

All vectors here are unit rows; cosine distance = 1 - dot product.
"""

import numpy as np

NORM_EPSILON = 1e-12
# Lloyd iterations of the cold-start k-means: clusters of a 2,000-clip sample settle in a few.
KMEANS_ITERATIONS = 10
# The cold start clusters into (anchors used + n) groups, at most this many.
MAX_COLD_START_CLUSTERS = 64
# Fixed k-means seed: the cold start proposes the same clips for the same library.
COLD_START_SEED = 0
# The cold start clusters a random projection of the sample to this many dimensions when the
# space is much wider: PostgreSQL's numpy may run on the reference BLAS (~2 GFLOP/s), and cosine
# structure survives a Johnson-Lindenstrauss projection well enough to find typical clips.
CLUSTER_DIMENSIONS = 64
# Neighbours per pool clip for the ambiguity scores (margin and kNN Jaccard).
AMBIGUITY_NEIGHBOURS = 10
# hnsw.ef_search for those neighbour scans (pgvector's default; similar_clips uses more).
AMBIGUITY_EF_SEARCH = 40
# The gate's minimum of judged evaluation screens (heaters_db.heads.gate.MIN_EVENTS; a unit test
# keeps the two equal): below it no head can go live, so next_anchors asks for these first.
GATE_MIN_EVENTS = 8


def normalize_rows(vectors):
    """Rows scaled to unit length (float32); zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors.reshape(1, -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, NORM_EPSILON)


def decode_vectors(rows, dim):
    """pgvector's binary form (vector_send: int16 dim, int16 unused, dim big-endian float4) of
    each row -> an (n, dim) float32 array. Reading bytes is ~50x faster than parsing text."""
    data = b"".join(bytes(row) for row in rows)
    width = 1 + int(dim)  # the 4-byte header occupies one float4 slot
    if len(data) % (4 * width):
        raise ValueError(f"vector bytes do not split into rows of {dim} dimensions")
    count = len(data) // (4 * width)
    headers = np.frombuffer(data, dtype=">u2").reshape(count, 2 * width)[:, 0]
    if count and (headers != dim).any():
        raise ValueError(f"a vector does not have {dim} dimensions")
    return np.frombuffer(data, dtype=">f4").reshape(count, width)[:, 1:].astype(np.float32)


def cluster_sums(vectors, labels, k):
    """(k, d) sum of each cluster's rows (zero for an empty cluster). Sorting by label and
    np.add.reduceat stays in plain C loops: np.add.at, or a one-hot matrix product on the
    reference BLAS, costs 10-50x more."""
    sums = np.zeros((k, vectors.shape[1]), dtype=vectors.dtype)
    if len(vectors) == 0:
        return sums
    order = np.argsort(labels, kind="stable")
    present, starts = np.unique(labels[order], return_index=True)
    sums[present] = np.add.reduceat(vectors[order], starts, axis=0)
    return sums


def random_projection(dim, seed=COLD_START_SEED):
    """A fixed (dim, CLUSTER_DIMENSIONS) gaussian projection, or None when dim is small enough."""
    if dim <= 2 * CLUSTER_DIMENSIONS:
        return None
    rng = np.random.default_rng(seed)
    return rng.standard_normal((dim, CLUSTER_DIMENSIONS)).astype(np.float32)


def project_rows(rows, projection):
    """Unit rows after the projection (the rows themselves when there is none)."""
    return rows if projection is None else normalize_rows(rows @ projection)


def kmeans_plus_plus(vectors, k, rng):
    """Indices of k seed rows by greedy k-means++ on the sphere (as scikit-learn seeds): the
    first uniform; then, each time, 2 + log(k) candidates drawn with probability proportional to
    their cosine distance from the nearest seed so far (squared euclidean distance is twice the
    cosine distance for unit rows), keeping the one that leaves the smallest total distance."""
    count = len(vectors)
    k = min(int(k), count)
    trials = 2 + int(np.log(max(k, 1)))
    seeds = [int(rng.integers(count))]
    closest = np.maximum(1.0 - vectors @ vectors[seeds[0]], 0.0).astype(np.float64)
    for _ in range(1, k):
        total = closest.sum()
        if total <= NORM_EPSILON:
            # Every row duplicates a seed: take any row not chosen yet.
            remaining = np.setdiff1d(np.arange(count), seeds)
            seeds.append(int(remaining[rng.integers(len(remaining))]))
            continue
        candidates = rng.choice(count, size=trials, p=closest / total)
        distances = np.maximum(1.0 - vectors[candidates] @ vectors.T, 0.0)
        potentials = np.minimum(closest, distances)
        best = int(potentials.sum(axis=1).argmin())
        seeds.append(int(candidates[best]))
        closest = potentials[best]
    return np.asarray(seeds, dtype=np.int64)


def spherical_kmeans(vectors, k, seed=COLD_START_SEED, iterations=KMEANS_ITERATIONS):
    """k-means on unit rows with cosine similarity, seeded by k-means++ with a fixed seed.

    Returns (centres (k, d) unit rows, labels (n,)). An emptied cluster is re-seeded with the row
    farthest from its own centre, so there are always k non-empty clusters when n >= k.
    """
    rng = np.random.default_rng(seed)
    k = min(int(k), len(vectors))
    centres = vectors[kmeans_plus_plus(vectors, k, rng)].copy()
    labels = np.full(len(vectors), -1, dtype=np.int64)
    for _ in range(iterations):
        similarity = vectors @ centres.T
        new_labels = similarity.argmax(axis=1)
        sizes = np.bincount(new_labels, minlength=k)
        for empty in np.flatnonzero(sizes == 0):
            own = similarity[np.arange(len(vectors)), new_labels]
            farthest = int(own.argmin())
            new_labels[farthest] = empty
            similarity[farthest] = -np.inf
            similarity[farthest, empty] = 1.0
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        centres = normalize_rows(cluster_sums(vectors, labels, k))
    return centres, labels


def centrality(vectors, labels, k):
    """Each row's mean cosine similarity to the members of its own cluster.

    For unit rows, the mean cosine distance to the members is 1 - x . (sum of members) / m, so the
    most central member (the medoid) is the one closest to the cluster's mean direction.
    """
    sums = cluster_sums(vectors, labels, k)
    sizes = np.bincount(labels, minlength=k).astype(np.float64)
    return np.einsum("ij,ij->i", vectors, sums[labels]) / sizes[labels]


def near_duplicate(vector, others, threshold):
    """Whether `vector` is within cosine distance `threshold` of any row of `others`."""
    if others is None or len(others) == 0:
        return False
    return bool((1.0 - np.asarray(others) @ vector).min() < threshold)


def cold_start_picks(
    sample, n, used=None, excluded=(), duplicate_distance=0.0, projection=None, clustered=None
):
    """Typical, diverse anchors: medoids of k-means clusters of a sample, biggest clusters first,
    clusters that already hold a used anchor last.

    sample: (m, d) unit rows; used: unit rows of anchors already asked about (they "cover" the
    cluster they fall in); excluded: sample rows never to pick. Clustering into (used + n) groups
    leaves about n clusters without an anchor, so each call refines the coverage of the library.
    With a `projection` (random_projection) the clustering runs on the projected rows
    (`clustered`: project_rows(sample, projection), precomputed by a caller that caches it);
    near-duplicates are always judged on the full rows.
    Returns [(sample row, score)], score = the share of the sample in the pick's cluster.
    """
    used = np.zeros((0, sample.shape[1]), dtype=np.float32) if used is None else used
    count = len(sample)
    if count == 0 or n < 1:
        return []
    if clustered is None:
        clustered = project_rows(sample, projection)
    k = max(1, min(len(used) + n, MAX_COLD_START_CLUSTERS, count))
    centres, labels = spherical_kmeans(clustered, k)
    sizes = np.bincount(labels, minlength=k)
    covered = np.zeros(k, dtype=np.int64)
    if len(used):
        used_clustered = project_rows(used, projection)
        covered += np.bincount((used_clustered @ centres.T).argmax(axis=1), minlength=k)
    central = centrality(clustered, labels, k)
    blocked = np.zeros(count, dtype=bool)
    blocked[list(excluded)] = True
    # Members of each cluster, most central first.
    members = [np.flatnonzero(labels == c) for c in range(k)]
    members = [m[np.argsort(-central[m], kind="stable")] for m in members]
    picks, chosen = [], used
    while len(picks) < n:
        progress = False
        for cluster in sorted(range(k), key=lambda c: (covered[c], -sizes[c], c)):
            row = next(
                (
                    int(r)
                    for r in members[cluster]
                    if not blocked[r] and not near_duplicate(sample[r], chosen, duplicate_distance)
                ),
                None,
            )
            if row is None:
                continue
            picks.append((row, float(sizes[cluster]) / count))
            blocked[row] = True
            chosen = np.concatenate([chosen, sample[row : row + 1]])
            covered[cluster] += 1
            progress = True
            break  # re-rank clusters after every pick: least covered, then biggest
        if not progress:
            break
    return picks


def margin_scores(distances, epsilon=1e-9):
    """Ambiguity of each query from its ascending neighbour distances (rows, NaN-padded):
    1 - (d2 - d1) / (dk - d1), in [0, 1]. 1 = the first two neighbours are equally close
    compared with the spread of the top k (the current space cannot tell which is the match);
    0 = a clear nearest neighbour. Rows with fewer than 3 neighbours score 0."""
    scores = []
    for row in distances:
        row = np.asarray([d for d in row if d is not None and np.isfinite(d)], dtype=np.float64)
        if len(row) < 3:
            scores.append(0.0)
            continue
        row = np.sort(row)
        spread = row[-1] - row[0]
        scores.append(float(np.clip(1.0 - (row[1] - row[0]) / (spread + epsilon), 0.0, 1.0)))
    return np.asarray(scores, dtype=np.float64)


def jaccard_disagreement(first, second):
    """1 - |A & B| / |A | B| for each pair of neighbour-id lists (0 when both are empty)."""
    scores = []
    for a, b in zip(first, second, strict=True):
        a, b = set(a), set(b)
        union = len(a | b)
        scores.append(1.0 - len(a & b) / union if union else 0.0)
    return np.asarray(scores, dtype=np.float64)


def ambiguity_reasons(margin, disagreement=None):
    """(score, reason) per pool clip. With a head, the mean of the margin ambiguity and the
    head/base kNN disagreement, named after the larger of the two."""
    margin = np.asarray(margin, dtype=np.float64)
    if disagreement is None:
        return [(float(m), "ambiguous_margin") for m in margin]
    disagreement = np.asarray(disagreement, dtype=np.float64)
    return [
        (float((m + d) / 2), "ambiguous_margin" if m >= d else "head_base_disagreement")
        for m, d in zip(margin, disagreement, strict=True)
    ]


def spread_picks(vectors, scores, n, duplicate_distance, avoid=None):
    """Rows by descending score, skipping any within `duplicate_distance` (cosine) of a row
    already picked or of `avoid` (recent anchors). Ties keep the input order."""
    chosen_rows, chosen = [], [] if avoid is None else list(avoid)
    for row in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable"):
        if len(chosen_rows) >= n:
            break
        if near_duplicate(vectors[row], chosen, duplicate_distance):
            continue
        chosen_rows.append(int(row))
        chosen.append(vectors[row])
    return chosen_rows


def random_slots(n, share, rng, deficit=0):
    """Which of n picks are evaluation draws: each with probability `share`, and the first
    `deficit` of them for sure (the evaluation screens the gate still lacks, see
    evaluation_deficit). A share of 0 turns evaluation screens off, deficit included."""
    slots = rng.random(int(n)) < float(share)
    if float(share) > 0:
        slots[: max(0, int(deficit))] = True
    return slots


def evaluation_deficit(judged, minimum=GATE_MIN_EVENTS):
    """How many more judged evaluation screens (holdout, with a selection) the gate needs before
    it can let any head serve. next_anchors front-loads them: until a mode has `minimum`, every
    pick is an evaluation pick. The draws stay uniform anchors with candidates no space chose, so
    only their timing changes, not what they measure; the stopping rule counts screens with a
    selection, which no space under test influences. Without it, 15 % of 50 screens leaves the
    gate ~7 judged screens and the first round can never serve (benchmarks/README.md)."""
    return max(0, int(minimum) - int(judged))


# --- PL/Python entry point -------------------------------------------------------------------


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
    """(clip ids, unit rows) of the given clips that have a vector in the space."""
    if not clip_ids:
        return [], np.zeros((0, space.dim), dtype=np.float32)
    sql = f"SELECT s.clip_id, vector_send(s.embedding) AS v FROM {space.source('s')} AND s.clip_id = ANY($1)"
    rows = plpy.execute(_plan(plpy, SD, sql, ["integer[]"]), [list(clip_ids)])
    ids = [r["clip_id"] for r in rows]
    return ids, normalize_rows(decode_vectors([r["v"] for r in rows], space.dim))


def _sample(plpy, SD, space, size):
    """A fixed sample of the space (the clips with the smallest hash of their id): (ids, unit
    rows, projection, projected rows). Cached per session while the sampled ids stay the same:
    reading and projecting 2,000 wide vectors costs more than the rest of a call."""
    sql = f"SELECT s.clip_id FROM {space.source('s')} ORDER BY hashint4(s.clip_id), s.clip_id LIMIT $1"
    ids = sorted(r["clip_id"] for r in plpy.execute(_plan(plpy, SD, sql, ["integer"]), [size]))
    key = "heaters_db:active_learning:sample"
    cached = SD.get(key)
    if cached is not None and cached[0] == space.key() and cached[1] == ids:
        return cached[1:]
    found, rows = _vectors(plpy, SD, space, ids)
    order = np.argsort(found, kind="stable")
    ids, rows = [found[i] for i in order], rows[order]
    projection = random_projection(space.dim)
    SD[key] = (space.key(), ids, rows, projection, project_rows(rows, projection))
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


def _settings(plpy, SD):
    sql = (
        "SELECT name, value FROM heaters_db_settings WHERE name IN ('anchor_cold_start_events', "
        "'anchor_random_share', 'anchor_pool_size', 'anchor_sample_size', "
        "'anchor_reuse_after_events', 'near_duplicate_distance')"
    )
    values = {r["name"]: float(r["value"]) for r in plpy.execute(_plan(plpy, SD, sql, []))}
    defaults = {
        "anchor_cold_start_events": 50,
        "anchor_random_share": 0.15,
        "anchor_pool_size": 32,
        "anchor_sample_size": 2000,
        "anchor_reuse_after_events": 1000,
        "near_duplicate_distance": 0.01,
    }
    return {name: values.get(name, default) for name, default in defaults.items()}


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
    (least recently used first), the anchors' fixed splits (sorting_anchor_splits) and how many
    judged evaluation screens the gate has (held out, with a selection)."""

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
        self.judged = _query(
            plpy,
            SD,
            "SELECT count(*) AS judged FROM clip_sorting_events e JOIN sorting_anchor_splits s "
            "ON s.sorting_mode = e.sorting_mode AND s.anchor_clip_id = e.anchor_clip_id "
            "WHERE e.sorting_mode = $1 AND e.anchor_reason = 'evaluation' "
            "AND e.selected_clip_id IS NOT NULL AND s.split = 'holdout'",
            ["text"],
            [mode],
        )[0]["judged"]


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
    history = History(plpy, SD, mode, settings["anchor_reuse_after_events"])
    recent_ids, recent_vectors = _vectors(plpy, SD, space, history.recent)
    # Cold start by event count only: while no head passes the gate, anchors chosen for being
    # typical keep the holdout easy for the base space, and the gate keeps refusing (benchmarks/
    # README.md); ambiguous anchors of the base space break that loop.
    cold = history.events < settings["anchor_cold_start_events"]

    slots = random_slots(
        n, settings["anchor_random_share"], rng, evaluation_deficit(history.judged)
    )
    informative = int(n - slots.sum())
    pool_size = int(settings["anchor_pool_size"]) if not cold and informative else 0
    recent = set(history.recent)
    random_ids = _random_clips(plpy, SD, space, recent | history.trained_on, int(slots.sum()))
    pool_ids = _random_clips(
        plpy, SD, space, recent | set(random_ids) | history.held_out, pool_size
    )
    taken = recent | set(random_ids)
    # Evaluation picks count as used: they cover their cluster and block near-duplicates.
    avoid = np.concatenate([recent_vectors, _vectors(plpy, SD, space, random_ids)[1]])

    picked = []
    if informative and cold:
        picked = _cold_start(plpy, SD, space, informative, taken, avoid, settings)
    elif informative and pool_ids:
        picked = _ambiguous(plpy, SD, space, base, pool_ids, informative, avoid, settings)

    result = interleave(slots, [(clip_id, 0.0, "evaluation") for clip_id in random_ids], picked)
    # Every clip was used recently (a small library): the least recently used come back.
    if len(result) < n:
        chosen = {row[0] for row in result}
        in_space = set(recent_ids)
        reused = [c for c in history.recent if c in in_space and c not in chosen]
        result += [(clip_id, 0.0, "least_recently_used") for clip_id in reused[: n - len(result)]]
    return result
