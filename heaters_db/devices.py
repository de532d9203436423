"""Which torch device "auto" means: the one rule the encoder (heaters_db.embedding.model) and
the learning loop's training and re-projection (heaters_db.learning.jobs) share."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None / '') -> cuda when torch sees a GPU, else cpu; anything else as torch
    understands it."""
    if device is None or str(device) in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
