"""ProjectionHead: architecture, PCA initialisation, forward maths."""

import math

import numpy as np
import pytest
import torch

from heaters_db.heads import (
    HeadArchitectureError,
    ProjectionHead,
    base_space,
    head_space,
    knn_jaccard,
    validate_architecture,
)


def clustered_vectors(n: int = 400, d: int = 64, seed: int = 1) -> np.ndarray:
    """Clusters in a 12-d latent space, mixed into d dims, plus noise and a common offset
    (real embeddings share a large mean direction, which the PCA's centring removes)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, 12))
    latent = centres[rng.integers(20, size=n)] + 0.3 * rng.standard_normal((n, 12))
    return (
        latent @ rng.standard_normal((12, d))
        + 0.3 * rng.standard_normal((n, d))
        + 2 * rng.standard_normal(d)
    ).astype(np.float32)


def numpy_pca_projection(vectors: np.ndarray, k: int) -> np.ndarray:
    """Independent reference: normalise, centre, project on the top-k right singular vectors."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    centred = unit - unit.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ vt[:k].T
    return projected / np.linalg.norm(projected, axis=1, keepdims=True)


def test_default_size_is_about_a_million_parameters():
    head = ProjectionHead(1024, 256, 2048)
    assert 1_000_000 <= head.parameter_count() <= 1_500_000
    assert head.architecture == {
        "type": "pca_residual_mlp",
        "input_dim": 1024,
        "output_dim": 256,
        "hidden_dim": 2048,
        "activation": "gelu_tanh",
    }
    assert ProjectionHead.from_architecture(head.architecture).architecture == head.architecture


@pytest.mark.parametrize(
    "architecture",
    [
        {"type": "transformer", "input_dim": 8},
        {"input_dim": 8, "activation": "relu"},
        {"output_dim": 8},
        {"input_dim": 0},
        {"input_dim": 8, "hidden_dim": 2.5},
        {"input_dim": True},
    ],
)
def test_invalid_architectures_are_refused(architecture):
    with pytest.raises(HeadArchitectureError):
        validate_architecture(architecture)


def test_forward_is_the_documented_formula():
    torch.manual_seed(0)
    head = ProjectionHead(12, 6, 10)
    for parameter in head.parameters():
        torch.nn.init.normal_(parameter, std=0.5)
    x = torch.randn(5, 12, dtype=torch.float64)
    w_in, b_in = head.input_layer.weight.double(), head.input_layer.bias.double()
    w_hid, b_hid = head.hidden_layer.weight.double(), head.hidden_layer.bias.double()
    w_out, b_out = head.output_layer.weight.double(), head.output_layer.bias.double()
    h = (x / x.norm(dim=1, keepdim=True)) @ w_in.T + b_in
    pre = h @ w_hid.T + b_hid
    gelu = 0.5 * pre * (1 + torch.tanh(math.sqrt(2 / math.pi) * (pre + 0.044715 * pre**3)))
    y = h + gelu @ w_out.T + b_out
    expected = y / y.norm(dim=1, keepdim=True)
    with torch.no_grad():
        assert torch.allclose(head(x.float()).double(), expected, atol=1e-6)


def test_initial_head_is_exactly_the_pca_projection():
    vectors = clustered_vectors()
    head = ProjectionHead(64, 16, 32).pca_init(vectors)
    assert torch.count_nonzero(head.output_layer.weight) == 0
    assert torch.count_nonzero(head.output_layer.bias) == 0
    weight = head.input_layer.weight.detach().double().numpy()
    np.testing.assert_allclose(weight @ weight.T, np.eye(16), atol=1e-6)  # orthonormal rows
    unit = base_space(vectors)
    np.testing.assert_allclose(
        head.input_layer.bias.detach().double().numpy(), -weight @ unit.mean(axis=0), atol=1e-6
    )
    # Compare through cosine Gram matrices: equal whatever sign each principal direction has.
    ours = head_space(head)(vectors)
    reference = numpy_pca_projection(vectors.astype(np.float64), 16)
    np.testing.assert_allclose(ours @ ours.T, reference @ reference.T, atol=1e-5)


def test_pca_init_preserves_base_neighbours():
    vectors = clustered_vectors()
    for output_dim in (16, 64, 128):
        head = ProjectionHead(64, output_dim, 32).pca_init(vectors)
        overlap = knn_jaccard(base_space(vectors), head_space(head)(vectors), k=10)
        assert overlap.mean() > 0.8, (output_dim, overlap.mean())


def test_wider_output_than_input_pads_with_zero_rows():
    vectors = clustered_vectors(n=50, d=8)
    head = ProjectionHead(8, 16, 16).pca_init(vectors)
    weight = head.input_layer.weight.detach().double().numpy()
    np.testing.assert_allclose(weight[:8] @ weight[:8].T, np.eye(8), atol=1e-6)
    assert not weight[8:].any()
    # An isometry of the centred, normalised input: cosine geometry is that of the centred input.
    unit = base_space(vectors)
    centred = base_space(unit - unit.mean(axis=0))
    ours = head_space(head)(vectors)
    np.testing.assert_allclose(ours @ ours.T, centred @ centred.T, atol=1e-5)


def test_fewer_samples_than_output_dim_completes_an_orthonormal_basis():
    vectors = clustered_vectors(n=5, d=64)
    head = ProjectionHead(64, 32, 16).pca_init(vectors)
    weight = head.input_layer.weight.detach().double().numpy()
    np.testing.assert_allclose(weight @ weight.T, np.eye(32), atol=1e-6)
    # The first four rows span the (rank-4) centred data; the completion rows see none of it.
    unit = base_space(vectors)
    centred = unit - unit.mean(axis=0)
    np.testing.assert_allclose(centred @ weight[4:].T, 0, atol=1e-6)
    reference = numpy_pca_projection(vectors.astype(np.float64), 4)
    ours = head_space(head)(vectors)
    np.testing.assert_allclose(ours @ ours.T, reference @ reference.T, atol=1e-5)


def test_pca_init_is_deterministic_and_checks_its_input():
    vectors = clustered_vectors(n=100)
    first = ProjectionHead(64, 16, 8).pca_init(vectors).input_layer.weight
    second = ProjectionHead(64, 16, 8).pca_init(vectors).input_layer.weight
    assert torch.equal(first, second)
    with pytest.raises(HeadArchitectureError):
        ProjectionHead(64, 16, 8).pca_init(vectors[:, :10])
    with pytest.raises(HeadArchitectureError):
        ProjectionHead(64, 16, 8).pca_init(np.full((3, 64), np.nan))


def test_a_vector_with_no_direction_projects_to_zero():
    """All zeros in, all zeros out: not the head's bias, which head-space searches would take
    for a real clip; other rows, however short, keep unit length."""
    head = ProjectionHead(8, 4, 8).pca_init(clustered_vectors(n=30, d=8))
    rows = torch.zeros(3, 8)
    rows[1, 0] = 1e-20
    rows[2] = torch.ones(8)
    with torch.no_grad():
        out = head(rows)
    assert torch.equal(out[0], torch.zeros(4))
    norms = torch.linalg.vector_norm(out[1:], dim=-1)
    assert torch.allclose(norms, torch.ones(2), atol=1e-6)


def test_same_space_as_means_this_architecture_and_exactly_these_weights():
    rng = np.random.default_rng(3)
    head = ProjectionHead(16, 8, 16).pca_init(rng.normal(size=(50, 16)).astype(np.float32))
    copy = ProjectionHead.from_architecture(head.architecture)
    copy.load_state_dict(head.state_dict())
    assert head.same_space_as(copy) and copy.same_space_as(head)
    assert not head.same_space_as(None)
    with torch.no_grad():
        copy.output_layer.weight[0, 0] += 1e-6  # one weight moved: another space
    assert not head.same_space_as(copy)
    wider = ProjectionHead(16, 16, 32).pca_init(rng.normal(size=(50, 16)).astype(np.float32))
    assert not head.same_space_as(wider)
