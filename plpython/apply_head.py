"""apply_head(head_id integer, embedding vector) RETURNS vector -- the PL/Python body.

Runs inside PostgreSQL's PL/Python under the system python3, which has numpy (Debian's 1.24 or
newer) and nothing from pip: no torch, no safetensors. The pure functions below are imported by
unit tests (under the venv and under /usr/bin/python3) and compared with the torch head
(heaters_db/heads/module.py) to 1e-5.

The migration loader wraps this whole file, followed by
``return plpython_body(plpy, SD, head_id, embedding)``, into
``CREATE FUNCTION apply_head(head_id integer, embedding vector) RETURNS vector
LANGUAGE plpython3u SECURITY DEFINER SET search_path = public, pg_temp``.
So this file must stay valid as a function body: no ``from __future__`` imports, no ``global``
statements, and nothing at top level that assigns to ``head_id`` or ``embedding``.

Maths (float64 internally, float32 out)::

    x = x / max(||x||, eps); h = W_in x + b_in
    y = h + W_out gelu_tanh(W_hid h + b_hid) + b_out; return y / max(||y||, eps)
    (zero when x is all zeros: no direction in, none out, so a clip whose base vector is all
    zeros stays out of head-space searches and screens as it stays out of the base space's)
"""

import hashlib
import json
import math
import struct

import numpy as np

ARCHITECTURE_TYPE = "pca_residual_mlp"
ACTIVATION = "gelu_tanh"
NORM_EPSILON = 1e-12
TENSOR_NAMES = ("in.weight", "in.bias", "hidden.weight", "hidden.bias", "out.weight", "out.bias")
# Rows per matrix product in apply_head_batch: bounds the (rows, hidden_dim) float64 temporary.
BATCH_ROWS = 4096
# How many (head_id, checksum) entries one session keeps parsed in SD.
CACHED_HEADS = 8
# SQLSTATEs of apply_head's errors, so clients and the daemon (heaters_db/failures.py) can tell
# them apart; a bare plpy.error would be XX000, "internal error", for all of them.
NO_DATA_FOUND = "P0002"  # an unknown head, as for unknown clips
NOT_READY = "55000"  # object_not_in_prerequisite_state: a head without weights yet
DATA_CORRUPTED = "XX001"  # weights that fail their checksum or do not parse
DATA_EXCEPTION = "22000"  # a bad or wrongly sized embedding
_GELU_SCALE = math.sqrt(2.0 / math.pi)
_SAFETENSORS_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": "<u2"}


def parse_safetensors(data):
    """Tensor name -> float32 ndarray, read from safetensors bytes without the library.

    Layout: 8-byte little-endian header length N, N bytes of JSON header
    ({name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}), then the
    data; offsets count from the end of the header. F32, F64, F16 and BF16 are understood.
    """
    data = bytes(data)
    if len(data) < 8:
        raise ValueError("safetensors data is shorter than its 8-byte header length")
    (header_length,) = struct.unpack("<Q", data[:8])
    if header_length > len(data) - 8:
        raise ValueError("safetensors header length points past the end of the data")
    try:
        header = json.loads(data[8 : 8 + header_length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"safetensors header is not valid JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise ValueError("safetensors header is not a JSON object")
    body_start = 8 + header_length
    body_length = len(data) - body_start
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = info.get("dtype")
        if dtype not in _SAFETENSORS_DTYPES:
            raise ValueError(f"safetensors tensor {name} has unsupported dtype {dtype!r}")
        shape = tuple(int(n) for n in info["shape"])
        begin, end = (int(n) for n in info["data_offsets"])
        item_size = np.dtype(_SAFETENSORS_DTYPES[dtype]).itemsize
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= begin <= end <= body_length or end - begin != count * item_size:
            raise ValueError(f"safetensors tensor {name} has inconsistent data_offsets")
        raw = np.frombuffer(
            data, dtype=_SAFETENSORS_DTYPES[dtype], count=count, offset=body_start + begin
        )
        if dtype == "BF16":
            # bfloat16 is the top half of a float32: shift the bits up and reinterpret.
            values = (raw.astype(np.uint32) << np.uint32(16)).view(np.float32)
        else:
            values = raw.astype(np.float32)
        tensors[name] = values.reshape(shape)
    return tensors


def check_head(tensors, architecture):
    """(input_dim, output_dim, hidden_dim) after checking the tensors fit the architecture."""
    if architecture.get("type", ARCHITECTURE_TYPE) != ARCHITECTURE_TYPE:
        raise ValueError(f"unsupported head architecture type {architecture.get('type')!r}")
    if architecture.get("activation", ACTIVATION) != ACTIVATION:
        raise ValueError(f"unsupported head activation {architecture.get('activation')!r}")
    d_in = int(architecture["input_dim"])
    d_out = int(architecture["output_dim"])
    d_hid = int(architecture["hidden_dim"])
    expected = {
        "in.weight": (d_out, d_in),
        "in.bias": (d_out,),
        "hidden.weight": (d_hid, d_out),
        "hidden.bias": (d_hid,),
        "out.weight": (d_out, d_hid),
        "out.bias": (d_out,),
    }
    for name, shape in expected.items():
        if name not in tensors:
            raise ValueError(f"head weights have no tensor {name}")
        if tuple(tensors[name].shape) != shape:
            raise ValueError(
                f"head tensor {name} has shape {tuple(tensors[name].shape)}, expected {shape}"
            )
    return d_in, d_out, d_hid


def prepare_tensors(tensors):
    """The six tensors as float64 arrays, converted once so each call skips the cast."""
    return {name: np.ascontiguousarray(tensors[name], dtype=np.float64) for name in TENSOR_NAMES}


def gelu_tanh(x):
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as torch's gelu(approximate='tanh')."""
    return 0.5 * x * (1.0 + np.tanh(_GELU_SCALE * (x + 0.044715 * x * x * x)))


def _normalise_rows(matrix):
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    return matrix / np.maximum(norms, NORM_EPSILON)[:, None]


def apply_head_batch(tensors, architecture, matrix):
    """Project an (n, input_dim) matrix through the head; (n, output_dim) float32 unit rows."""
    d_in, d_out, _ = check_head(tensors, architecture)
    weights = prepare_tensors(tensors)
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != d_in:
        raise ValueError(f"head expects vectors of dimension {d_in}, got shape {matrix.shape}")
    out = np.empty((matrix.shape[0], d_out), dtype=np.float32)
    for start in range(0, matrix.shape[0], BATCH_ROWS):
        rows = matrix[start : start + BATCH_ROWS]
        directed = np.any(rows != 0, axis=1)
        h = _normalise_rows(rows) @ weights["in.weight"].T + weights["in.bias"]
        hidden = gelu_tanh(h @ weights["hidden.weight"].T + weights["hidden.bias"])
        y = h + hidden @ weights["out.weight"].T + weights["out.bias"]
        out[start : start + BATCH_ROWS] = _normalise_rows(y) * directed[:, None]
    return out


def apply_head(tensors, architecture, vector):
    """Project one input_dim vector through the head; an output_dim float32 unit vector."""
    vector = np.asarray(vector, dtype=np.float64)
    if vector.ndim != 1:
        raise ValueError(f"apply_head expects one vector, got shape {vector.shape}")
    return apply_head_batch(tensors, architecture, vector[None, :])[0]


def parse_vector_text(text):
    """pgvector's text form '[1,2,3]' (or a list of numbers) -> float64 ndarray."""
    if isinstance(text, str):
        inner = text.strip()
        if not (inner.startswith("[") and inner.endswith("]")):
            raise ValueError(f"not a vector literal: {text[:40]!r}")
        inner = inner[1:-1].strip()
        values = np.array(inner.split(",") if inner else [], dtype=np.float64)
    else:
        values = np.asarray(text, dtype=np.float64)
    if values.ndim != 1 or not np.isfinite(values).all():
        raise ValueError("vector must be one-dimensional and finite")
    return values


def format_vector_text(vector):
    """float32 values -> pgvector text; '%.9g' round-trips every float32 exactly."""
    return (
        "["
        + ",".join(format(value, ".9g") for value in np.asarray(vector, dtype=np.float32).tolist())
        + "]"
    )


def load_architecture(value):
    """projection_heads.architecture as PL/Python hands it over (jsonb text, or a dict)."""
    if isinstance(value, dict):
        return value
    return json.loads(value)


def cached_head(plpy, SD, head_id):
    """(tensors, architecture) of a stored head, parsed once per session per weights checksum."""
    plans = SD.get("apply_head_plans")
    if plans is None:
        plans = {
            # Run on every call so a replaced head (new checksum) is never served stale.
            "checksum": plpy.prepare(
                "SELECT weights_checksum FROM projection_heads WHERE id = $1", ["integer"]
            ),
            "head": plpy.prepare(
                "SELECT weights, weights_checksum, architecture FROM projection_heads WHERE id = $1",
                ["integer"],
            ),
        }
        SD["apply_head_plans"] = plans
    cache = SD.setdefault("apply_head_cache", {})

    rows = plpy.execute(plans["checksum"], [head_id], 1)
    if len(rows) == 0:
        plpy.error(f"apply_head: unknown projection head {head_id}", sqlstate=NO_DATA_FOUND)
    checksum = rows[0]["weights_checksum"]
    key = (head_id, checksum)
    entry = cache.get(key)
    if entry is None:
        rows = plpy.execute(plans["head"], [head_id], 1)
        if len(rows) == 0:
            plpy.error(f"apply_head: unknown projection head {head_id}", sqlstate=NO_DATA_FOUND)
        row = rows[0]
        if row["weights"] is None:
            plpy.error(
                f"apply_head: projection head {head_id} has no weights yet", sqlstate=NOT_READY
            )
        weights = bytes(row["weights"])
        if row["weights_checksum"] is not None and (
            hashlib.sha256(weights).hexdigest() != row["weights_checksum"]
        ):
            plpy.error(
                f"apply_head: projection head {head_id} weights do not match their checksum",
                sqlstate=DATA_CORRUPTED,
            )
        try:
            architecture = load_architecture(row["architecture"])
            tensors = prepare_tensors(parse_safetensors(weights))
            check_head(tensors, architecture)
        except (ValueError, KeyError, TypeError) as exc:
            plpy.error(
                f"apply_head: projection head {head_id} is unreadable: {exc}",
                sqlstate=DATA_CORRUPTED,
            )
        # Forget older versions of this head and, past the bound, the oldest other heads.
        for old in [k for k in cache if k[0] == head_id]:
            del cache[old]
        while len(cache) >= CACHED_HEADS:
            del cache[next(iter(cache))]
        entry = (tensors, architecture)
        cache[(head_id, row["weights_checksum"])] = entry
    return entry


def plpython_body(plpy, SD, head_id, embedding):
    """The body of SQL apply_head(): look up the head, cache its parsed weights, project."""
    if head_id is None or embedding is None:
        return None
    tensors, architecture = cached_head(plpy, SD, head_id)
    try:
        vector = parse_vector_text(embedding)
    except ValueError as exc:
        plpy.error(f"apply_head: bad embedding: {exc}", sqlstate=DATA_EXCEPTION)
    expected = int(architecture["input_dim"])
    if vector.shape[0] != expected:
        plpy.error(
            f"apply_head: projection head {head_id} expects a {expected}-dimensional embedding, "
            f"got {vector.shape[0]} dimensions",
            sqlstate=DATA_EXCEPTION,
        )
    return format_vector_text(apply_head(tensors, architecture, vector))


def parse_vector_rows(texts, dim):
    """pgvector text literals of one dimension -> (n, dim) float64, one numpy parse per row."""
    matrix = np.empty((len(texts), dim), dtype=np.float64)
    for row, text in enumerate(texts):
        values = np.fromstring(text.strip()[1:-1], dtype=np.float64, sep=",")
        if values.shape[0] != dim:
            raise ValueError(f"row {row}: expected {dim} dimensions, got {values.shape[0]}")
        matrix[row] = values
    if not np.isfinite(matrix).all():
        raise ValueError("vectors must be finite")
    return matrix


def plpython_batch_body(plpy, SD, head_id, embeddings):
    """The body of SQL apply_head_batch(head_id, vector[]): the same maths as apply_head for a
    whole statement's rows in one numpy call (what the embeddings trigger uses for bulk inserts)."""
    if head_id is None or embeddings is None:
        return None
    if len(embeddings) == 0:
        return []
    tensors, architecture = cached_head(plpy, SD, head_id)
    expected = int(architecture["input_dim"])
    try:
        matrix = parse_vector_rows(embeddings, expected)
    except ValueError as exc:
        plpy.error(
            f"apply_head_batch: projection head {head_id}: bad embeddings: {exc}",
            sqlstate=DATA_EXCEPTION,
        )
    return [format_vector_text(row) for row in apply_head_batch(tensors, architecture, matrix)]
