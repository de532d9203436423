"""A tiny V-JEPA 2 with random weights, saved like a hub checkpoint.

Tests load it through the production path (`VJEPA2Model.from_pretrained` via
`heaters_db.embedding.model.load_encoder`); nothing is downloaded.

- `save_tiny_vjepa2(directory, seed=0) -> Path`: config.json, model.safetensors and a
  preprocessor_config.json (crop 32, shortest edge 36) in `directory`.
- `install_tiny_model(model_dir) -> Path`: the same, at `<model_dir>/heaters/vjepa2-tiny`, so
  `HEATERS_MODEL_DIR=<model_dir>` with model name `TINY_MODEL_NAME` finds it.
"""

from __future__ import annotations

from pathlib import Path

from heaters_db.embedding.random_weights import preprocessor_config, save_random_vjepa2

__all__ = [
    "TINY_CONFIG",
    "TINY_MODEL_NAME",
    "install_tiny_model",
    "preprocessor_config",
    "save_tiny_vjepa2",
]

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


def save_tiny_vjepa2(directory: str | Path, seed: int = 0) -> Path:
    """Build the tiny model with a fixed seed, save it to `directory`, return `directory`."""
    return save_random_vjepa2(directory, config=TINY_CONFIG, seed=seed)


def install_tiny_model(model_dir: str | Path, seed: int = 0) -> Path:
    """Save the tiny model as `<model_dir>/heaters/vjepa2-tiny` (see `TINY_MODEL_NAME`)."""
    return save_tiny_vjepa2(Path(model_dir) / TINY_MODEL_NAME, seed=seed)
