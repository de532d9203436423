"""Projection heads (trick2vec / spot2vec): learned maps from base embeddings to a mode's space.

Typical use by the database layer::

    data = TrainingData.from_clip_ids(clip_ids, base_vectors, screen_rows, triplet_rows)
    result = train_head(data, TrainConfig(output_dim=256))
    new = evaluate_events(head_space(result.head), data.base_vectors, data.screens, data.triplets)
    old = evaluate_events(base_space, data.base_vectors, data.screens, data.triplets)
    decision = gate(new, old)          # decision.metrics -> projection_heads.metrics
    weights = head_to_safetensors(result.head)   # -> projection_heads.weights
    checksum = weights_checksum(weights)         # -> projection_heads.weights_checksum
    architecture = result.head.architecture      # -> projection_heads.architecture

Nothing in this package touches the database.
"""

from heaters_db.heads.gate import GateDecision, GateInputError, gate
from heaters_db.heads.metrics import (
    EventMetrics,
    Screen,
    Triplets,
    base_space,
    evaluate_events,
    head_space,
    knn_jaccard,
    same_label_recall_at_k,
    triplets_from_screens,
)
from heaters_db.heads.module import HeadArchitectureError, ProjectionHead, validate_architecture
from heaters_db.heads.serialization import (
    HeadWeightsError,
    head_from_safetensors,
    head_to_safetensors,
    weights_checksum,
)
from heaters_db.heads.train import (
    TrainConfig,
    TrainingData,
    TrainingDataError,
    TrainResult,
    train_head,
)

__all__ = [
    "EventMetrics",
    "GateDecision",
    "GateInputError",
    "HeadArchitectureError",
    "HeadWeightsError",
    "ProjectionHead",
    "Screen",
    "TrainConfig",
    "TrainResult",
    "TrainingData",
    "TrainingDataError",
    "Triplets",
    "base_space",
    "evaluate_events",
    "gate",
    "head_from_safetensors",
    "head_space",
    "head_to_safetensors",
    "knn_jaccard",
    "same_label_recall_at_k",
    "train_head",
    "triplets_from_screens",
    "validate_architecture",
    "weights_checksum",
]
