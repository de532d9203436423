"""Bulk vector transfer with PostgreSQL's binary COPY, packed and parsed by numpy.

Per-row Python adapters cost more than the maths for 100k x 1024-d rows, so rows are laid out
as one numpy structured array and sent or read as whole buffers:

- ``pack_copy_rows`` builds the payload of ``COPY t (...) FROM STDIN (FORMAT BINARY)``;
- ``read_vector_rows`` streams ``COPY (SELECT int_id, vector ...) TO STDOUT (FORMAT BINARY)`` and
  yields (ids, matrix) batches.

Binary COPY format: an 11-byte signature, int32 flags, int32 header-extension length; per row
an int16 field count, then per field an int32 byte length and the value in the type's binary
send format (big-endian); an int16 -1 trailer. pgvector's ``vector`` sends int16 dim, int16 0,
then dim float32 values.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import psycopg

from heaters_db.errors import HeatersError

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
_READ_HEADER_SIZE = len(HEADER)


class VectorCopyError(HeatersError):
    """A binary COPY of vectors produced or received data of an unexpected shape."""


def pack_copy_rows(fields: Sequence[tuple[str, Any]], count: int) -> bytes:
    """Binary COPY rows (no header or trailer) for ``count`` rows.

    Each field is ``("int4", ints or one int)``, ``("text", one str for every row, or one
    str per row, all of the same length)`` or
    ``("vector", (count, d) float matrix)``, in the column order of the COPY statement.
    """
    layout: list[tuple[Any, ...]] = [("field_count", ">i2")]
    values: dict[str, Any] = {"field_count": len(fields)}
    for index, (kind, value) in enumerate(fields):
        length, data = f"length_{index}", f"value_{index}"
        if kind == "int4":
            layout += [(length, ">i4"), (data, ">i4")]
            values[length], values[data] = 4, value
        elif kind == "text":
            if isinstance(value, str):
                encoded: Any = value.encode("utf-8")
                size = len(encoded)
            else:
                texts = [str(v).encode("utf-8") for v in value]
                size = len(texts[0]) if texts else 0
                if len(texts) != count or any(len(t) != size for t in texts):
                    raise VectorCopyError("per-row text needs one value per row, all one length")
                encoded = np.array(texts, dtype=f"S{max(size, 1)}")
            layout += [(length, ">i4"), (data, f"S{max(size, 1)}")]
            values[length], values[data] = size, encoded
        elif kind == "vector":
            matrix = np.asarray(value, dtype=np.float32)
            if matrix.ndim != 2 or len(matrix) != count:
                raise VectorCopyError(
                    f"vector field needs a ({count}, d) matrix, got {matrix.shape}"
                )
            dim = matrix.shape[1]
            layout += [
                (length, ">i4"),
                (f"dim_{index}", ">i2"),
                (f"unused_{index}", ">i2"),
                (data, ">f4", (dim,)),
            ]
            values[length], values[f"dim_{index}"], values[f"unused_{index}"] = 4 + 4 * dim, dim, 0
            values[data] = matrix
        else:
            raise VectorCopyError(f"unknown COPY field kind {kind!r}")
    rows = np.empty(count, dtype=np.dtype(layout))
    for name, value in values.items():
        rows[name] = value
    return rows.tobytes()


def copy_rows(
    cursor: psycopg.Cursor, statement: Any, fields: Sequence[tuple[str, Any]], count: int
) -> None:
    """Run ``statement`` (a COPY ... FROM STDIN (FORMAT BINARY)) with the packed rows."""
    with cursor.copy(statement) as copy:
        copy.write(HEADER)
        if count:
            copy.write(pack_copy_rows(fields, count))
        copy.write(TRAILER)


def _record_dtype(dim: int) -> np.dtype:
    return np.dtype(
        [
            ("field_count", ">i2"),
            ("id_length", ">i4"),
            ("id", ">i4"),
            ("vector_length", ">i4"),
            ("dim", ">i2"),
            ("unused", ">i2"),
            ("vector", ">f4", (dim,)),
        ]
    )


def read_vector_rows(
    cursor: psycopg.Cursor,
    statement: Any,
    params: Sequence[Any] | dict[str, Any] | None,
    dim: int,
    batch_rows: int = 8192,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream ``COPY (SELECT <int4>, <vector of dim>) TO STDOUT (FORMAT BINARY)``.

    Yields (ids int64 (n,), vectors float32 (n, dim)) batches of up to ``batch_rows`` rows.
    The query must return non-NULL vectors of exactly ``dim`` dimensions (filter with
    ``vector_dims(...) = dim``).
    """
    record = _record_dtype(dim)
    chunk_bytes = record.itemsize * batch_rows
    buffer = bytearray()
    header_seen = False
    with cursor.copy(statement, params) as copy:
        for block in copy:
            buffer += block
            if not header_seen:
                if len(buffer) < _READ_HEADER_SIZE:
                    continue
                if bytes(buffer[: len(SIGNATURE)]) != SIGNATURE:
                    raise VectorCopyError("COPY TO did not start with the binary signature")
                extension = int.from_bytes(buffer[15:19], "big")
                if len(buffer) < _READ_HEADER_SIZE + extension:
                    continue
                del buffer[: _READ_HEADER_SIZE + extension]
                header_seen = True
            while len(buffer) >= chunk_bytes:
                yield _parse(buffer[:chunk_bytes], record, dim)
                del buffer[:chunk_bytes]
    if not header_seen:
        raise VectorCopyError("COPY TO returned no binary header")
    if bytes(buffer[-2:]) != TRAILER:
        raise VectorCopyError("COPY TO did not end with the binary trailer")
    del buffer[-2:]
    if len(buffer) % record.itemsize:
        raise VectorCopyError(
            f"COPY TO returned rows that are not (int4, vector({dim})): check the query's dimension filter"
        )
    if buffer:
        yield _parse(buffer, record, dim)


def _parse(data: bytes | bytearray, record: np.dtype, dim: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.frombuffer(bytes(data), dtype=record)
    if (
        (rows["field_count"] != 2).any()
        or (rows["id_length"] != 4).any()
        or (rows["vector_length"] != 4 + 4 * dim).any()
        or (rows["dim"] != dim).any()
    ):
        raise VectorCopyError(f"COPY TO returned a row that is not (int4, vector({dim}))")
    return rows["id"].astype(np.int64), rows["vector"].astype(np.float32)
