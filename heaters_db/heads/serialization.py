"""Projection-head weights as safetensors bytes (``projection_heads.weights``), never pickle.

The stored tensor names are fixed, because ``plpython/apply_head.py`` reads them inside Postgres
without torch: ``in.*`` is W_in/b_in, ``hidden.*`` is W_hid/b_hid, ``out.*`` is W_out/b_out,
each weight in torch's (out_features, in_features) layout, all float32.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from heaters_db.heads.module import HeadArchitectureError, ProjectionHead, validate_architecture

# stored name -> attribute path on ProjectionHead
TENSOR_NAMES: dict[str, str] = {
    "in.weight": "input_layer.weight",
    "in.bias": "input_layer.bias",
    "hidden.weight": "hidden_layer.weight",
    "hidden.bias": "hidden_layer.bias",
    "out.weight": "output_layer.weight",
    "out.bias": "output_layer.bias",
}
# One key only: safetensors writes metadata from a hash map, so with several keys their order
# (and so the bytes and the checksum) could change from one save to the next.
_METADATA = {"format": "pt"}


class HeadWeightsError(HeadArchitectureError):
    """Stored projection-head weights are unreadable or do not match the head's architecture."""


def head_to_safetensors(head: ProjectionHead) -> bytes:
    """The head's weights as safetensors bytes (float32, fixed names, deterministic)."""
    state = head.state_dict()
    tensors = {
        stored: state[attribute].detach().to(device="cpu", dtype=torch.float32).contiguous()
        for stored, attribute in TENSOR_NAMES.items()
    }
    return save(tensors, metadata=_METADATA)


def expected_shapes(architecture: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Stored tensor name -> shape for an architecture dict."""
    arch = validate_architecture(architecture)
    d_in, d_out, d_hid = arch["input_dim"], arch["output_dim"], arch["hidden_dim"]
    return {
        "in.weight": (d_out, d_in),
        "in.bias": (d_out,),
        "hidden.weight": (d_hid, d_out),
        "hidden.bias": (d_hid,),
        "out.weight": (d_out, d_hid),
        "out.bias": (d_out,),
    }


def head_from_safetensors(data: bytes, architecture: dict[str, Any]) -> ProjectionHead:
    """A ProjectionHead (eval mode, CPU) holding the weights stored in ``data``."""
    shapes = expected_shapes(architecture)
    try:
        tensors = load(bytes(data))
    except (SafetensorError, ValueError) as exc:
        raise HeadWeightsError(f"projection head weights are not valid safetensors: {exc}") from exc
    if set(tensors) != set(shapes):
        raise HeadWeightsError(
            f"projection head weights hold tensors {sorted(tensors)}, expected {sorted(shapes)}"
        )
    for name, shape in shapes.items():
        if tuple(tensors[name].shape) != shape:
            raise HeadWeightsError(
                f"projection head tensor {name} has shape {tuple(tensors[name].shape)}, "
                f"the architecture needs {shape}"
            )
    head = ProjectionHead.from_architecture(architecture)
    state = {attribute: tensors[stored].float() for stored, attribute in TENSOR_NAMES.items()}
    head.load_state_dict(state, strict=True)
    return head.eval()


def weights_checksum(data: bytes) -> str:
    """sha256 hex digest of the weights bytes (``projection_heads.weights_checksum``)."""
    return hashlib.sha256(data).hexdigest()
