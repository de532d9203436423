"""V-JEPA 2 checkpoints with random weights, saved like hub checkpoints.

For the demo (no weights can be downloaded on build machines), benchmarks (the real ViT-L
architecture, random weights) and tests. They are loaded back through the production path
(`load_encoder` -> `VJEPA2Model.from_pretrained`). Random weights give embeddings that follow the
input pixels, not learned semantics: fine for plumbing and timing, not a model of tricks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from heaters_db.embedding.preprocess import shortest_edge_for

# A small model that still runs in milliseconds on a CPU.
DEMO_CONFIG = {
    "crop_size": 64,
    "frames_per_clip": 16,
    "hidden_size": 96,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "mlp_ratio": 2.0,
    "pred_hidden_size": 32,
    "pred_num_attention_heads": 2,
    "pred_num_hidden_layers": 1,
}


def preprocessor_config(crop_size: int) -> dict[str, Any]:
    """The preprocessor_config.json hub V-JEPA 2 checkpoints carry, scaled to `crop_size`."""
    return {
        "video_processor_type": "VJEPA2VideoProcessor",
        "crop_size": {"height": crop_size, "width": crop_size},
        "size": {"shortest_edge": shortest_edge_for(crop_size)},
        "do_resize": True,
        "do_center_crop": True,
        "do_rescale": True,
        "do_normalize": True,
        "resample": 2,
        "rescale_factor": 1 / 255,
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
    }


def save_random_vjepa2(
    directory: str | Path, config: dict[str, Any] | None = None, seed: int = 0
) -> Path:
    """Build a V-JEPA 2 from `config` (VJEPA2Config kwargs; {} = the real ViT-L fpc64 256) with
    seeded random weights and save it, with its preprocessor config, to `directory`."""
    from transformers import VJEPA2Config, VJEPA2Model

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model_config = VJEPA2Config(**(DEMO_CONFIG if config is None else config))
    torch.manual_seed(seed)
    VJEPA2Model(model_config).eval().save_pretrained(directory)
    (directory / "preprocessor_config.json").write_text(
        json.dumps(preprocessor_config(model_config.crop_size), indent=2) + "\n"
    )
    return directory
