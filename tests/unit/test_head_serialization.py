"""Projection-head weights as safetensors bytes: fixed names, float32, bit-exact, no pickle."""

import hashlib
import json
import struct

import pytest
import torch

from heaters_db.heads import (
    HeadWeightsError,
    ProjectionHead,
    head_from_safetensors,
    head_to_safetensors,
    weights_checksum,
)


def random_head(seed: int = 0, dims: tuple[int, int, int] = (24, 8, 16)) -> ProjectionHead:
    torch.manual_seed(seed)
    head = ProjectionHead(*dims)
    for parameter in head.parameters():
        torch.nn.init.normal_(parameter, std=0.3)  # the residual branch too, unlike a fresh head
    return head


def header(data: bytes) -> dict:
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length])


def test_round_trip_is_bit_exact():
    head = random_head()
    data = head_to_safetensors(head)
    restored = head_from_safetensors(data, head.architecture)
    for (name, original), (_, loaded) in zip(
        head.state_dict().items(), restored.state_dict().items(), strict=True
    ):
        assert loaded.dtype == torch.float32
        assert torch.equal(original, loaded), name
    x = torch.randn(4, 24)
    with torch.no_grad():
        assert torch.equal(head(x), restored(x))
    assert not restored.training


def test_fixed_tensor_names_float32_and_no_pickle():
    data = head_to_safetensors(random_head())
    described = header(data)
    tensors = {k: v for k, v in described.items() if k != "__metadata__"}
    assert tensors.keys() == {
        "in.weight",
        "in.bias",
        "hidden.weight",
        "hidden.bias",
        "out.weight",
        "out.bias",
    }
    assert {v["dtype"] for v in tensors.values()} == {"F32"}
    assert tensors["in.weight"]["shape"] == [8, 24]
    assert tensors["hidden.weight"]["shape"] == [16, 8]
    assert tensors["out.weight"]["shape"] == [8, 16]
    assert not data.startswith(b"\x80")  # a pickle stream starts with the PROTO opcode


def test_bytes_and_checksum_are_deterministic():
    first, second = head_to_safetensors(random_head(3)), head_to_safetensors(random_head(3))
    assert first == second
    head = random_head(3)
    assert {head_to_safetensors(head) for _ in range(10)} == {first}
    assert weights_checksum(first) == hashlib.sha256(first).hexdigest()
    assert len(weights_checksum(first)) == 64
    assert weights_checksum(first) != weights_checksum(head_to_safetensors(random_head(4)))


def test_a_double_precision_head_is_stored_as_float32():
    head = random_head().double()
    assert {
        v["dtype"] for k, v in header(head_to_safetensors(head)).items() if k != "__metadata__"
    } == {"F32"}


def test_mismatched_architecture_is_refused():
    data = head_to_safetensors(random_head())
    with pytest.raises(HeadWeightsError, match="in.weight"):
        head_from_safetensors(data, {**random_head().architecture, "input_dim": 25})


def test_garbage_and_missing_tensors_are_refused():
    architecture = random_head().architecture
    with pytest.raises(HeadWeightsError, match="not valid safetensors"):
        head_from_safetensors(b"definitely not safetensors", architecture)
    from safetensors.torch import save

    partial = save({"in.weight": torch.zeros(8, 24), "in.bias": torch.zeros(8)})
    with pytest.raises(HeadWeightsError, match="expected"):
        head_from_safetensors(partial, architecture)
