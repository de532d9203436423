"""Binary COPY rows packed by numpy: the layout PostgreSQL and pgvector expect, read back."""

import numpy as np
import pytest

from heaters_db.vector_copy import VectorCopyError, _parse, _record_dtype, pack_copy_rows


def test_int_and_vector_rows_round_trip() -> None:
    rng = np.random.default_rng(0)
    ids = np.arange(5, 12)
    vectors = rng.standard_normal((7, 3)).astype(np.float32)
    data = pack_copy_rows([("int4", ids), ("vector", vectors)], len(ids))
    assert len(data) == 7 * _record_dtype(3).itemsize
    got_ids, got_vectors = _parse(data, _record_dtype(3), 3)
    assert got_ids.tolist() == ids.tolist()
    assert np.array_equal(got_vectors, vectors)


def test_row_layout_is_big_endian_with_lengths() -> None:
    data = pack_copy_rows([("int4", 7), ("text", "é"), ("vector", np.array([[1.5]]))], 1)
    assert data == (
        b"\x00\x03"  # three fields
        + b"\x00\x00\x00\x04\x00\x00\x00\x07"  # int4 7
        + b"\x00\x00\x00\x02\xc3\xa9"  # text, UTF-8
        + b"\x00\x00\x00\x08\x00\x01\x00\x00\x3f\xc0\x00\x00"  # vector: dim 1, unused, 1.5
    )


def test_wrong_shapes_are_refused() -> None:
    with pytest.raises(VectorCopyError):
        pack_copy_rows([("vector", np.zeros((2, 3)))], 3)
    row = bytearray(pack_copy_rows([("int4", [1]), ("vector", np.zeros((1, 2)))], 1))
    row[14:16] = b"\x00\x03"  # the vector claims 3 dimensions
    with pytest.raises(VectorCopyError):
        _parse(bytes(row), _record_dtype(2), 2)
