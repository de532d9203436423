"""A tiny V-JEPA 2 with random weights, saved like a hub checkpoint.

Tests load it through the production path (`VJEPA2Model.from_pretrained` via
`heaters_db.embedding.model.load_encoder`); nothing is downloaded.

- `save_tiny_vjepa2(directory, seed=0) -> Path`: config.json, model.safetensors and a
  preprocessor_config.json (crop 32, shortest edge 36) in `directory`.
- `install_tiny_model(model_dir) -> Path`: the same, at `<model_dir>/heaters/vjepa2-tiny`, so
  `HEATERS_MODEL_DIR=<model_dir>` with model name `TINY_MODEL_NAME` finds it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

TINY_MODEL_NAME = "heaters/vjepa2-tiny"
TINY_CROP_SIZE = 32
TINY_HIDDEN_SIZE = 32

TINY_CONFIG = {
    "crop_size": TINY_CROP_SIZE,
    "frames_per_clip": 4,
    "hidden_size": TINY_HIDDEN_SIZE,
    "num_attention_heads": 2,
    "num_hidden_layers": 2,
    "mlp_ratio": 1.0,
    "pred_hidden_size": 32,
    "pred_num_attention_heads": 2,
    "pred_num_hidden_layers": 1,
}


def preprocessor_config(crop_size: int = TINY_CROP_SIZE) -> dict:
    """The preprocessor_config.json the hub V-JEPA 2 checkpoints carry, scaled to `crop_size`."""
    return {
        "video_processor_type": "VJEPA2VideoProcessor",
        "crop_size": {"height": crop_size, "width": crop_size},
        "size": {"shortest_edge": int(crop_size * 256 / 224)},
        "do_resize": True,
        "do_center_crop": True,
        "do_rescale": True,
        "do_normalize": True,
        "resample": 2,
        "rescale_factor": 1 / 255,
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
    }


def save_tiny_vjepa2(directory: str | Path, seed: int = 0) -> Path:
    """Build the tiny model with a fixed seed, save it to `directory`, return `directory`."""
    from transformers import VJEPA2Config, VJEPA2Model

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = VJEPA2Model(VJEPA2Config(**TINY_CONFIG)).eval()
    model.save_pretrained(directory)
    (directory / "preprocessor_config.json").write_text(
        json.dumps(preprocessor_config(), indent=2) + "\n"
    )
    return directory


def install_tiny_model(model_dir: str | Path, seed: int = 0) -> Path:
    """Save the tiny model as `<model_dir>/heaters/vjepa2-tiny` (see `TINY_MODEL_NAME`)."""
    return save_tiny_vjepa2(Path(model_dir) / TINY_MODEL_NAME, seed=seed)
