"""The cold start of next_anchors: pgvector's binary form -> unit rows, spherical k-means with
a fixed seed, cluster medoids, the near-duplicate filter (plpython/active_learning.py uses them).

A sibling module of active_learning.py: the loader embeds it in next_anchors_pick's body
(heaters_db.rerunnable.plpython_modules). Plain numpy 1.24 (Debian's, under PostgreSQL), no
``from __future__`` imports; unit tests import it under the venv and under /usr/bin/python3.
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
