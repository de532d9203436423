"""The projection head: a small residual MLP that maps base embeddings to a trick or spot space.

Forward pass (the same maths as ``plpython/apply_head.py``, which serves it inside Postgres)::

    x = x / ||x||
    h = W_in x + b_in                                  # PCA-initialised linear projection
    y = h + W_out gelu_tanh(W_hid h + b_hid) + b_out   # residual MLP, W_out zero-initialised
    return y / ||y||

Because ``W_out`` and ``b_out`` start at zero, a freshly initialised head is exactly the PCA
projection of the base space, so it starts out agreeing with the base space's neighbours and the
training only has to learn the correction the sorters ask for.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from heaters_db.errors import HeatersError

log = logging.getLogger(__name__)

ARCHITECTURE_TYPE = "pca_residual_mlp"
ACTIVATION = "gelu_tanh"
DEFAULT_OUTPUT_DIM = 256
DEFAULT_HIDDEN_DIM = 2048
# Norms below this count as zero (torch.nn.functional.normalize's default). Its one home: the
# PL/Python bodies (apply_head.py, anchor_clustering.py) cannot import heaters_db and keep copies,
# held equal by tests/unit/test_shared_constants.py.
NORM_EPSILON = 1e-12


class HeadArchitectureError(HeatersError):
    """A projection head's architecture description is missing a field or is not supported."""


def validate_architecture(architecture: dict[str, Any]) -> dict[str, Any]:
    """The architecture dict with defaults filled in, or HeadArchitectureError if it is invalid."""
    if not isinstance(architecture, dict):
        raise HeadArchitectureError(f"architecture must be a JSON object, got {architecture!r}")
    kind = architecture.get("type", ARCHITECTURE_TYPE)
    if kind != ARCHITECTURE_TYPE:
        raise HeadArchitectureError(
            f"unsupported head architecture type {kind!r} (expected {ARCHITECTURE_TYPE!r})"
        )
    activation = architecture.get("activation", ACTIVATION)
    if activation != ACTIVATION:
        raise HeadArchitectureError(
            f"unsupported head activation {activation!r} (expected {ACTIVATION!r})"
        )
    if "input_dim" not in architecture:
        raise HeadArchitectureError("architecture has no input_dim")
    dims = {
        "input_dim": architecture["input_dim"],
        "output_dim": architecture.get("output_dim", DEFAULT_OUTPUT_DIM),
        "hidden_dim": architecture.get("hidden_dim", DEFAULT_HIDDEN_DIM),
    }
    for name, value in dims.items():
        # bool is an int subclass; a JSON true is never a dimension.
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise HeadArchitectureError(
                f"architecture {name} must be a positive integer, got {value!r}"
            )
    return {"type": ARCHITECTURE_TYPE, **dims, "activation": ACTIVATION}


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return F.gelu(x, approximate="tanh")


class ProjectionHead(nn.Module):
    """Maps base embeddings (input_dim) to unit vectors in a learned space (output_dim).

    Layers are ``input_layer`` (W_in, b_in), ``hidden_layer`` (W_hid, b_hid) and
    ``output_layer`` (W_out, b_out); serialization.py gives them their stored tensor names.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int = DEFAULT_OUTPUT_DIM,
        hidden_dim: int = DEFAULT_HIDDEN_DIM,
        activation: str = ACTIVATION,
    ) -> None:
        super().__init__()
        arch = validate_architecture(
            {
                "input_dim": input_dim,
                "output_dim": output_dim,
                "hidden_dim": hidden_dim,
                "activation": activation,
            }
        )
        self.input_dim = arch["input_dim"]
        self.output_dim = arch["output_dim"]
        self.hidden_dim = arch["hidden_dim"]
        self.input_layer = nn.Linear(self.input_dim, self.output_dim)
        self.hidden_layer = nn.Linear(self.output_dim, self.hidden_dim)
        self.output_layer = nn.Linear(self.hidden_dim, self.output_dim)
        # Zero residual branch: the head starts as a pure linear projection (see pca_init).
        nn.init.zeros_(self.output_layer.weight)
        nn.init.zeros_(self.output_layer.bias)

    @classmethod
    def from_architecture(cls, architecture: dict[str, Any]) -> ProjectionHead:
        """A head with freshly initialised weights for an architecture dict."""
        arch = validate_architecture(architecture)
        return cls(arch["input_dim"], arch["output_dim"], arch["hidden_dim"], arch["activation"])

    @property
    def architecture(self) -> dict[str, Any]:
        """The JSON description stored in ``projection_heads.architecture``."""
        return {
            "type": ARCHITECTURE_TYPE,
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "hidden_dim": self.hidden_dim,
            "activation": ACTIVATION,
        }

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The input projection h = W_in x/||x|| + b_in (the head's PCA part)."""
        projected: torch.Tensor = self.input_layer(F.normalize(x, dim=-1, eps=NORM_EPSILON))
        return projected

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.project(x)
        y = h + self.output_layer(gelu_tanh(self.hidden_layer(h)))
        # An input with no direction (all zeros) gives no direction out, as in the base space:
        # projected, it would be the head's bias, a point every head-space search and
        # next_anchors would take for a real clip. (A tiny but non-zero input keeps its
        # direction: similar_to_embedding scales queries of any size.)
        directed = torch.any(x != 0, dim=-1, keepdim=True)
        return F.normalize(y, dim=-1, eps=NORM_EPSILON) * directed

    @torch.no_grad()
    def pca_init(self, base_vectors: np.ndarray) -> ProjectionHead:
        """Set W_in, b_in to the PCA of the L2-normalised base vectors; zero the residual branch.

        Rows of W_in are the top ``output_dim`` principal directions (orthonormal, unwhitened, so
        distances inside the kept subspace are unchanged) and ``b_in = -W_in mu`` centres the data.
        The directions come from an eigendecomposition of the d x d covariance, which always
        yields a full orthonormal basis of the input space: with fewer samples than output_dim
        the extra rows are directions the data does not vary along (an orthonormal completion).
        When output_dim > input_dim the rows past input_dim are zero: the initial head embeds the
        centred input isometrically and leaves the extra outputs for the residual MLP to use.
        Each direction's sign is fixed (largest-magnitude entry positive) so the result does not
        depend on the LAPACK build. Returns self.
        """
        vectors = np.asarray(base_vectors, dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[1] != self.input_dim or len(vectors) == 0:
            raise HeadArchitectureError(
                f"pca_init needs a non-empty (n, {self.input_dim}) array, got shape {vectors.shape}"
            )
        if not np.isfinite(vectors).all():
            raise HeadArchitectureError("pca_init got non-finite base vectors")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = vectors / np.maximum(norms, NORM_EPSILON)
        mean = unit.mean(axis=0)
        centred = unit - mean
        covariance = centred.T @ centred / len(unit)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)  # ascending order
        order = np.argsort(-eigenvalues, kind="stable")
        components = eigenvectors[:, order].T  # rows = principal directions, descending variance
        pivots = np.argmax(np.abs(components), axis=1)
        signs = np.sign(components[np.arange(len(components)), pivots])
        components *= np.where(signs == 0, 1.0, signs)[:, None]

        weight = np.zeros((self.output_dim, self.input_dim), dtype=np.float64)
        kept = min(self.output_dim, self.input_dim)
        weight[:kept] = components[:kept]
        bias = -weight @ mean
        self.input_layer.weight.copy_(torch.from_numpy(weight))
        self.input_layer.bias.copy_(torch.from_numpy(bias))
        nn.init.zeros_(self.output_layer.weight)
        nn.init.zeros_(self.output_layer.bias)
        total = float(eigenvalues.sum())
        explained = float(eigenvalues[order[:kept]].sum() / total) if total > 0 else 1.0
        log.info(
            "pca-initialised projection head",
            extra={
                "action": "head_pca_init",
                "samples": len(unit),
                "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "explained_variance": explained,
            },
        )
        return self

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def same_space_as(self, other: ProjectionHead | None) -> bool:
        """Whether ``other`` has this architecture and exactly these weights: serving it instead
        would change no projection (the gate does not re-serve the live head as a new version)."""
        if other is None or other.architecture != self.architecture:
            return False
        mine, theirs = self.state_dict(), other.state_dict()
        return mine.keys() == theirs.keys() and all(
            torch.equal(mine[k].detach().cpu().float(), theirs[k].detach().cpu().float())
            for k in mine
        )


def default_hidden_dim(output_dim: int) -> int:
    """Eight times the output width: 2048 for 256, which gives 1024 -> 256 about 1.3M parameters."""
    return 8 * output_dim
