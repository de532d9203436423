"""Shared set-up of the learning-loop benchmarks (learning_scale.py, search_latency.py,
apply_head_throughput.py): a throwaway PostgreSQL, a synthetic 100k-clip library loaded with
binary COPY, the machine description, and the results section each writes into README.md.

The library: every clip mixes a trick (500 classes), a spot (100) and a nuisance (50) latent,
each a class centre plus clip-specific variation, mapped to ``dim`` dimensions and noised: a
clustered distribution like real clip embeddings, not uniform noise (which no ANN index finds
neighbours in well, and which no one searches).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from heaters_db import migrations  # noqa: E402
from heaters_db.db import connect  # noqa: E402
from heaters_db.learning import store  # noqa: E402
from heaters_db.localdb import LocalCluster  # noqa: E402
from heaters_db.vector_copy import copy_rows  # noqa: E402

README = Path(__file__).resolve().parent / "README.md"
MODEL_NAME = "benchmark/synthetic-base"
STRATEGY = "video_full_clip"
TRICKS, SPOTS, NUISANCES, LATENT_DIM = 500, 100, 50, 64


class Server:
    """HEATERS_BENCHMARK_SERVER_URL (a superuser URL to a server with pgvector and plpython3u),
    else heaters-db's embedded cluster in a temporary directory, removed at close()."""

    def __init__(self, autovacuum: bool = True) -> None:
        self.cluster: LocalCluster | None = None
        self.external = os.environ.get("HEATERS_BENCHMARK_SERVER_URL")
        if self.external:
            self.admin_url = self.external
        else:
            self.directory = Path(tempfile.mkdtemp(prefix="heaters-bench-"))
            self.cluster = LocalCluster(self.directory)
            self.admin_url = self.cluster.up()
            if not autovacuum:
                # ANALYZE runs whenever autovacuum's timer wakes; new statistics can change a
                # plan and with it the order in which `ORDER BY random() LIMIT` meets rows, so
                # two runs of one seed diverge. Without it a run repeats.
                with psycopg.connect(self.admin_url, autocommit=True) as conn:
                    conn.execute("ALTER SYSTEM SET autovacuum = off")
                    conn.execute("SELECT pg_reload_conf()")
        self.databases: list[str] = []

    def database(self) -> str:
        """A new database at migration head; its URL."""
        name = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        self.databases.append(name)
        url = psycopg.conninfo.make_conninfo(self.admin_url, dbname=name)
        migrations.upgrade(url, "head")
        return url

    def close(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in self.databases:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if self.cluster is not None:
            self.cluster.destroy()
            shutil.rmtree(self.directory, ignore_errors=True)


def factory(url: str):
    return lambda: connect(url, autocommit=True)


class Library:
    """Base vectors with planted trick / spot labels and latents."""

    def __init__(self, count: int, dim: int, seed: int = 0, noise: float = 0.6) -> None:
        rng = np.random.default_rng(seed)
        self.tricks = rng.integers(TRICKS, size=count)
        self.spots = rng.integers(SPOTS, size=count)
        nuisances = rng.integers(NUISANCES, size=count)
        latents = []
        for classes, labels in ((TRICKS, self.tricks), (SPOTS, self.spots), (NUISANCES, nuisances)):
            centres = rng.standard_normal((classes, LATENT_DIM)).astype(np.float32)
            centres /= np.linalg.norm(centres, axis=1, keepdims=True)
            jitter = rng.standard_normal((count, LATENT_DIM)).astype(np.float32) / np.sqrt(
                LATENT_DIM
            )
            latents.append(centres[labels] + 0.35 * jitter)
        self.trick_latents = latents[0]
        maps = rng.standard_normal((3 * LATENT_DIM, dim)).astype(np.float32) / np.sqrt(dim)
        scales = np.repeat(np.array([0.8, 0.8, 1.5], dtype=np.float32), LATENT_DIM)
        self.vectors = (np.concatenate(latents, axis=1) * scales) @ maps
        self.vectors += noise * rng.standard_normal((count, dim)).astype(np.float32) / np.sqrt(dim)
        self.clip_ids = np.zeros(0, dtype=np.int64)


def load_library(conn: psycopg.Connection, library: Library, chunk: int = 10_000) -> float:
    """A test variant (made the default) with clips and embeddings for the library; seconds."""
    started = time.perf_counter()
    dim = library.vectors.shape[1]
    conn.execute("UPDATE embedding_variants SET is_default = false WHERE is_default")
    conn.execute(
        "INSERT INTO embedding_variants (model_name, generation_strategy, num_frames, dim, is_default) "
        "VALUES (%s, %s, 64, %s, true)",
        (MODEL_NAME, STRATEGY, dim),
    )
    rows = conn.execute(
        "INSERT INTO clips (clip_identifier) SELECT 'bench-' || g "
        "FROM generate_series(1, %s) g RETURNING id",
        (len(library.vectors),),
    ).fetchall()
    library.clip_ids = np.array(sorted(r[0] for r in rows), dtype=np.int64)
    with conn.cursor() as cur:
        for start in range(0, len(library.vectors), chunk):
            ids = library.clip_ids[start : start + chunk]
            copy_rows(
                cur,
                "COPY embeddings (clip_id, model_name, generation_strategy, embedding_dim, embedding) "
                "FROM STDIN (FORMAT BINARY)",
                [
                    ("int4", ids),
                    ("text", MODEL_NAME),
                    ("text", STRATEGY),
                    ("int4", dim),
                    ("vector", library.vectors[start : start + chunk]),
                ],
                len(ids),
            )
    conn.execute("ANALYZE embeddings")
    return time.perf_counter() - started


def set_settings(conn: psycopg.Connection, **values: object) -> None:
    for name, value in values.items():
        conn.execute(
            "UPDATE heaters_db_settings SET value = %s WHERE name = %s", (str(value), name)
        )


def machine() -> str:
    """CPU model, cores, RAM, and the PostgreSQL / pgvector versions the numbers came from."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = re.search(r"Model name:\s*(.+)", lscpu).group(1).strip()
    except (OSError, subprocess.CalledProcessError, AttributeError):
        model = platform.processor() or platform.machine()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    # The build machines are shared: say how busy this one was while the numbers were taken.
    load = os.getloadavg()[1]
    return f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB RAM (5-min load average {load:.1f} at the end)"


def database_versions(conn: psycopg.Connection) -> str:
    server = conn.execute("SHOW server_version").fetchone()[0]
    vector = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
    ).fetchone()[0]
    return f"PostgreSQL {server}, pgvector {vector}"


def write_section(heading: str, body: str) -> None:
    """Replace (or append) the ``## heading`` section of benchmarks/README.md."""
    text = (
        README.read_text()
        if README.exists()
        else "# Benchmarks\n\nResults of the scripts in this folder, with the machine each ran on.\n"
    )
    section = f"## {heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip() + "\n\n" + section
    README.write_text(text.rstrip() + "\n")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def benchmark_parser(doc: str) -> argparse.ArgumentParser:
    """The script's argument parser: its docstring's first paragraph, the base and head
    dimensions, and --no-readme."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--dim", type=int, default=1024, help="base embedding dimension")
    parser.add_argument("--head-dim", type=int, default=256, help="projection head output")
    parser.add_argument(
        "--no-readme", action="store_true", help="Print only; leave README.md alone."
    )
    return parser


UNTRAINED_CANDIDATE: dict[str, Any] = {
    "mode": "trick_similarity",
    "status": "candidate",
    "trained_through_event_id": 0,
    "training_event_count": 0,
}


def insert_candidate_head(
    conn: psycopg.Connection, variant_id: int, head: Any, metrics: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A trick head over `variant_id`, stored as a candidate trained on no events."""
    return store.insert_head(
        conn, base_variant_id=variant_id, head=head, metrics=metrics or {}, **UNTRAINED_CANDIDATE
    )
