"""V-JEPA 2 input preprocessing in plain torch, equal to transformers' VJEPA2VideoProcessor.

The processor (transformers `models/vjepa2/video_processing_vjepa2.py`) always derives its resize
from the crop: shortest edge `int(crop_size * 256 / 224)` (292 for crop 256), bilinear with
antialias, long edge truncated (`get_resize_output_image_size`); then a centre crop of
`crop_size` (top/left offsets `int((size - crop) / 2)`), x/255, ImageNet mean/std.
RoPE positions in the model assume exactly `crop_size` pixels, so this must not drift.

transformers' processor needs torchvision, which must not be installed beside V-JEPA 2 here;
this module does the same arithmetic with `torch.nn.functional`. In the embedding path the
resize already happened in the decoder (see `sampling.decode_size`), so `__call__` only crops
and normalises; given frames of any other size it resizes them first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Names a V-JEPA 2 checkpoint may store its processor settings under, newest first.
PROCESSOR_FILES = ("video_preprocessor_config.json", "preprocessor_config.json")

# PIL resample codes (as stored in processor configs) -> torch interpolate modes.
_RESAMPLE_MODES = {2: "bilinear", 3: "bicubic"}


def shortest_edge_for(crop_size: int) -> int:
    """The processor's resize target for a crop: int(crop * 256 / 224)."""
    return int(crop_size * 256 / 224)


def _crop_value(raw: Any) -> int:
    if isinstance(raw, Mapping):
        height, width = raw.get("height"), raw.get("width", raw.get("height"))
        if height is None or height != width:
            raise ValueError(f"crop_size must be square, got {dict(raw)}")
        return int(height)
    return int(raw)


@dataclass(frozen=True)
class VideoPreprocessing:
    """Resize (if needed), centre crop, rescale and normalise video frames for V-JEPA 2."""

    crop_size: int
    shortest_edge: int
    image_mean: tuple[float, float, float] = IMAGENET_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STD
    rescale_factor: float = 1 / 255
    resample: str = "bilinear"

    @classmethod
    def for_crop_size(cls, crop_size: int, **overrides: Any) -> VideoPreprocessing:
        """Defaults of VJEPA2VideoProcessor for `crop_size`."""
        return cls(crop_size=crop_size, shortest_edge=shortest_edge_for(crop_size), **overrides)

    @classmethod
    def from_dict(
        cls, processor: Mapping[str, Any], crop_size: int | None = None
    ) -> VideoPreprocessing:
        """From a processor config dict (the json file's content).

        Like the transformers processor, `size` is ignored: the resize follows the crop.
        """
        crop = _crop_value(processor["crop_size"]) if "crop_size" in processor else crop_size
        if crop is None:
            raise ValueError("processor config has no crop_size")
        overrides: dict[str, Any] = {}
        if "image_mean" in processor:
            overrides["image_mean"] = tuple(float(v) for v in processor["image_mean"])
        if "image_std" in processor:
            overrides["image_std"] = tuple(float(v) for v in processor["image_std"])
        if "rescale_factor" in processor:
            overrides["rescale_factor"] = float(processor["rescale_factor"])
        if "resample" in processor:
            code = int(processor["resample"])
            if code not in _RESAMPLE_MODES:
                raise ValueError(f"unsupported resample code {code} (bilinear=2, bicubic=3)")
            overrides["resample"] = _RESAMPLE_MODES[code]
        return cls.for_crop_size(crop, **overrides)

    @classmethod
    def from_pretrained(
        cls, path_or_config: str | Path | Mapping[str, Any] | Any
    ) -> VideoPreprocessing:
        """From a model directory, a processor json file, a processor dict, or a model config.

        A directory uses its processor file when present, else the `crop_size` in its
        config.json with the processor's defaults. A config object (e.g. VJEPA2Config) gives
        the defaults for its `crop_size`.
        """
        if isinstance(path_or_config, Mapping):
            return cls.from_dict(path_or_config)
        if isinstance(path_or_config, str | Path):
            path = Path(path_or_config)
            if path.is_file():
                return cls.from_dict(json.loads(path.read_text()))
            if path.is_dir():
                model_crop = None
                if (path / "config.json").is_file():
                    model_crop = json.loads((path / "config.json").read_text()).get("crop_size")
                for name in PROCESSOR_FILES:
                    if (path / name).is_file():
                        processor = json.loads((path / name).read_text())
                        return cls.from_dict(processor, crop_size=model_crop)
                if model_crop is not None:
                    return cls.for_crop_size(_crop_value(model_crop))
            raise FileNotFoundError(f"{path}: no processor config or config.json with crop_size")
        crop = getattr(path_or_config, "crop_size", None)
        if crop is None:
            raise TypeError(f"cannot read a crop size from {type(path_or_config).__name__}")
        return cls.for_crop_size(_crop_value(crop))

    def resize_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) after the processor's resize: short side = shortest_edge."""
        edge = self.shortest_edge
        if width <= height:
            return max(1, int(edge * height / width)), edge
        return edge, max(1, int(edge * width / height))

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames (T, H, W, 3) -> float32 (T, 3, crop_size, crop_size), on frames' device."""
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected frames of shape (T, H, W, 3), got {tuple(frames.shape)}")
        video = frames.permute(0, 3, 1, 2)
        height, width = video.shape[-2:]
        if min(height, width) != self.shortest_edge:
            size = self.resize_size(height, width)
            video = F.interpolate(
                video.float(), size=size, mode=self.resample, antialias=True, align_corners=False
            )
            # The processor resizes uint8 images, so its result is rounded back to integers.
            video = video.round_().clamp_(0, 255)
        video = self._center_crop(video)
        video = video.float() * self.rescale_factor
        mean = torch.tensor(self.image_mean, dtype=video.dtype, device=video.device)
        std = torch.tensor(self.image_std, dtype=video.dtype, device=video.device)
        return ((video - mean[:, None, None]) / std[:, None, None]).contiguous()

    def _center_crop(self, video: torch.Tensor) -> torch.Tensor:
        crop = self.crop_size
        height, width = video.shape[-2:]
        if crop > height or crop > width:
            # Same zero padding as the processor, for frames smaller than the crop.
            pad_w, pad_h = max(crop - width, 0), max(crop - height, 0)
            video = F.pad(video, (pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2))
            height, width = video.shape[-2:]
        top, left = int((height - crop) / 2.0), int((width - crop) / 2.0)
        return video[..., top : top + crop, left : left + crop]
