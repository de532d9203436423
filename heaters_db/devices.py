"""Which torch device "auto" means: the one rule the encoder (heaters_db.embedding.model) and
the learning loop's training and re-projection (heaters_db.learning.jobs) share."""

from __future__ import annotations

import torch

from heaters_db.errors import ConfigurationError


class UnknownDevice(ConfigurationError):
    """HEATERS_DEVICE / --device names no device torch has here."""


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None / '') -> cuda when torch sees a GPU, else cpu; anything else as torch
    understands it, refused (UnknownDevice) when torch does not know it or sees no GPU for a
    CUDA device."""
    if device is None or str(device) in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:  # torch's own "Expected one of cpu, cuda, ... device type"
        raise UnknownDevice(
            f"unknown device {str(device)!r}: {str(error).splitlines()[0]}"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UnknownDevice(f"device {str(device)!r} requested but CUDA is not available")
    return resolved
