"""apply_head() rows per second inside a query, against the same maths client-side.

On one database (see learning_common.Server) with ``--rows`` clips of ``--dim``-d base
embeddings and a ``--head-dim``-d head (hidden 8 x head-dim, as trained heads are):

- in SQL: ``SELECT sum(vector_dims(apply_head(h, embedding))) FROM embeddings`` -- PL/Python,
  one call per row (what the embeddings trigger and activate_head's catch-up run);
- client-side, on rows fetched from the same table: plpython/apply_head.py's numpy maths one
  row at a time (the same code as the SQL function, minus the database) and batched
  (apply_head_batch), and the torch head batched (what the re-projection runs); each timed
  without and with the fetch (binary COPY).

    .venv/bin/python benchmarks/apply_head_throughput.py
"""

from __future__ import annotations

import importlib.util
import time

import numpy as np
import torch
from learning_common import (
    Library,
    Server,
    benchmark_parser,
    database_versions,
    insert_candidate_head,
    load_library,
    machine,
    write_section,
)

from heaters_db.db import connect
from heaters_db.heads.module import ProjectionHead
from heaters_db.learning import store
from heaters_db.learning.data import Variant, fetch_vectors
from heaters_db.learning.reproject import project_batch
from heaters_db.resources import plpython_path

HEADING = "apply_head throughput: inside a query vs client-side"


def load_plpython_module():
    spec = importlib.util.spec_from_file_location("apply_head_body", plpython_path("apply_head.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    body_module = load_plpython_module()

    server = Server()
    try:
        url = server.database()
        with connect(url, autocommit=True) as conn:
            versions = database_versions(conn)
            library = Library(args.rows, args.dim)
            load_library(conn, library)
            variant_id = conn.execute("SELECT (default_variant()).id").fetchone()[0]
            head = ProjectionHead(args.dim, args.head_dim).pca_init(library.vectors[:20_000])
            torch.nn.init.normal_(head.output_layer.weight, std=0.02)  # a trained head's residual
            record = insert_candidate_head(conn, variant_id, head)
            where = "WHERE model_name = 'benchmark/synthetic-base' AND generation_strategy = 'video_full_clip'"
            conn.execute(
                f"SELECT apply_head(%s, embedding) FROM embeddings {where} LIMIT 1", (record.id,)
            )
            started = time.perf_counter()
            total = conn.execute(
                f"SELECT count(*), sum(vector_dims(apply_head(%s, embedding))) FROM embeddings {where}",
                (record.id,),
            ).fetchone()
            seconds_sql = time.perf_counter() - started
            assert total[0] == args.rows and total[1] == args.rows * args.head_dim
            print(f"SQL: {args.rows / seconds_sql:,.0f} rows/s", flush=True)

            started = time.perf_counter()
            _, vectors = fetch_vectors(
                conn,
                Variant(variant_id, "benchmark/synthetic-base", "video_full_clip", args.dim),
                limit=args.rows,
            )
            seconds_fetch = time.perf_counter() - started
            stored = store.get_head(conn, record.id, with_weights=True)
    finally:
        server.close()

    # As the SQL function caches them per session: parsed once, float64.
    tensors = body_module.prepare_tensors(body_module.parse_safetensors(stored.weights))
    architecture = stored.architecture
    per_row_count = min(len(vectors), 5000)
    started = time.perf_counter()
    for vector in vectors[:per_row_count]:
        body_module.apply_head(tensors, architecture, vector)
    seconds_per_row = (time.perf_counter() - started) * len(vectors) / per_row_count
    started = time.perf_counter()
    batched = body_module.apply_head_batch(tensors, architecture, vectors)
    seconds_batch = time.perf_counter() - started
    started = time.perf_counter()
    in_torch = project_batch(head, vectors)
    seconds_torch = time.perf_counter() - started
    assert np.abs(batched - in_torch).max() < 1e-5

    n = len(vectors)
    rows = [
        ("SQL `apply_head(h, embedding)` per row (PL/Python, numpy)", seconds_sql, None),
        (
            "client numpy, one row at a time (plpython/apply_head.py)",
            seconds_per_row,
            seconds_per_row + seconds_fetch,
        ),
        ("client numpy, batched (apply_head_batch)", seconds_batch, seconds_batch + seconds_fetch),
        (
            f"client torch, batched ({torch.get_num_threads()} threads)",
            seconds_torch,
            seconds_torch + seconds_fetch,
        ),
    ]
    table = "\n".join(
        f"| {name} | {n / compute:,.0f} | {'-' if total is None else f'{n / total:,.0f}'} |"
        for name, compute, total in rows
    )
    body = f"""
`benchmarks/apply_head_throughput.py`: {n:,} rows of {args.dim}-d base embeddings through a
{args.dim} -> {args.head_dim} head (hidden {8 * args.head_dim}), same database and run. The SQL
row includes reading the rows inside the server; the client rows show compute alone, then
with the fetch ({seconds_fetch:.1f} s by binary COPY). Machine: {machine()}; {versions}.

| where | rows/s (compute) | rows/s (with fetch) |
|---|---:|---:|
{table}

A per-row PL/Python call pays for parsing the vector's text form, a checksum lookup and
float64 maths for one vector at a time, so it serves single clips (the embeddings trigger, a
query vector in similar_to_embedding, activate_head's catch-up of a few clips); whole-library
re-projection runs batched in torch (heaters_db/learning/reproject.py) and bulk-loads with COPY.
"""
    print(body)
    if not args.no_readme:
        write_section(HEADING, body)


if __name__ == "__main__":
    main()
