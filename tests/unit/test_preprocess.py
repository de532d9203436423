"""Preprocessing equals V-JEPA 2's video processor, checked against an independent reference.

The reference decodes full-resolution RGB frames with PyAV, resizes each with PIL (bilinear,
shortest edge int(crop*256/224), long edge truncated), centre-crops and normalises with
numpy. PIL is not what transformers runs (torchvision), but both are antialiased bilinear.

Tolerances, in normalised units (one grey level is 1/255/0.225 ~ 0.017):
- torch resize of the same full-res frames vs PIL: mean abs error < 0.005 (measured ~0.001-0.003),
  max < 0.04 (two grey levels of rounding);
- the production path (decord decodes at the reduced size, then crop/normalise) vs PIL on
  smooth content: mean abs error < 0.05 (measured ~0.027 at crop 32 and ~0.030 at crop 256;
  ffmpeg's scaler is bicubic from YUV, the reference bilinear from RGB).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from heaters_db.embedding.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VideoPreprocessing,
    shortest_edge_for,
)
from heaters_db.embedding.sampling import FULL_CLIP, load_clip_frames
from tests.support import videos
from tests.support.tiny_model import preprocessor_config


def smooth_scene(index: int, width: int, height: int) -> np.ndarray:
    """Smoothly varying colour, moving with the index: closer to camera footage than bars."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 128 + 100 * np.sin(xx / 9 + index * 0.3) * np.cos(yy / 13)
    green = 128 + 90 * np.cos((xx + yy) / 17 - index * 0.2)
    blue = 100 + 80 * np.sin(yy / 7 + index * 0.1)
    return np.clip(np.stack([red, green, blue], -1), 0, 255).astype(np.uint8)


def pil_reference(frames: np.ndarray, crop: int) -> torch.Tensor:
    """Full-res uint8 (T, H, W, 3) -> (T, 3, crop, crop), frame by frame with PIL and numpy."""
    height, width = frames.shape[1:3]
    edge = int(crop * 256 / 224)
    if width <= height:
        new_w, new_h = edge, int(edge * height / width)
    else:
        new_w, new_h = int(edge * width / height), edge
    out = []
    for frame in frames:
        image = Image.fromarray(frame).resize((new_w, new_h), Image.BILINEAR)
        array = np.asarray(image).astype(np.float32) / 255
        top, left = int((new_h - crop) / 2), int((new_w - crop) / 2)
        array = array[top : top + crop, left : left + crop]
        array = (array - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
        out.append(array.transpose(2, 0, 1))
    return torch.from_numpy(np.stack(out)).float()


def full_res_frames(path: Path, indices: list[int]) -> np.ndarray:
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    return np.stack([frames[i] for i in indices])


def test_constants_match_the_installed_transformers_processor():
    spec = importlib.util.find_spec("transformers.models.vjepa2")
    assert spec is not None and spec.submodule_search_locations
    source = (Path(spec.submodule_search_locations[0]) / "video_processing_vjepa2.py").read_text()
    assert re.search(r"resize_size = int\(crop_size \* 256 / 224\)", source)
    assert "resample = PILImageResampling.BILINEAR" in source
    assert "image_mean = IMAGENET_DEFAULT_MEAN" in source
    assert "image_std = IMAGENET_DEFAULT_STD" in source
    assert "do_center_crop = True" in source
    from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    assert tuple(IMAGENET_DEFAULT_MEAN) == IMAGENET_MEAN
    assert tuple(IMAGENET_DEFAULT_STD) == IMAGENET_STD
    assert shortest_edge_for(256) == 292
    assert shortest_edge_for(32) == 36


def test_from_pretrained_sources(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(preprocessor_config(32)))
    from_dir = VideoPreprocessing.from_pretrained(tmp_path)
    assert (from_dir.crop_size, from_dir.shortest_edge, from_dir.resample) == (32, 36, "bilinear")
    # `size` in a processor file is ignored, like transformers does: the crop decides.
    odd = VideoPreprocessing.from_dict({"crop_size": 256, "size": {"shortest_edge": 999}})
    assert odd.shortest_edge == 292
    only_model = tmp_path / "model_only"
    only_model.mkdir()
    (only_model / "config.json").write_text(json.dumps({"crop_size": 64}))
    assert VideoPreprocessing.from_pretrained(only_model).shortest_edge == 73

    class Config:
        crop_size = 384

    assert VideoPreprocessing.from_pretrained(Config()).shortest_edge == 438
    custom = VideoPreprocessing.from_dict(
        {"crop_size": {"height": 32, "width": 32}, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}
    )
    assert custom.image_mean == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="square"):
        VideoPreprocessing.from_dict({"crop_size": {"height": 32, "width": 48}})


@pytest.mark.parametrize("size", [(320, 240), (240, 320), (317, 239)])
def test_torch_resize_path_matches_pil_reference(tmp_path, size):
    path = videos.write_video(tmp_path / "scene.mp4", smooth_scene, num_frames=3, size=size)
    frames = full_res_frames(path, [0, 1, 2])
    preprocessing = VideoPreprocessing.for_crop_size(32)
    ours = preprocessing(torch.from_numpy(frames))
    reference = pil_reference(frames, 32)
    assert ours.shape == (3, 3, 32, 32) and ours.dtype == torch.float32
    error = (ours - reference).abs()
    assert error.mean() < 0.005
    assert error.max() < 0.04


@pytest.mark.parametrize(
    ("size", "crop"), [((320, 240), 32), ((240, 320), 32), ((317, 239), 32), ((360, 320), 256)]
)
def test_decode_then_crop_matches_pil_reference(tmp_path, size, crop):
    path = videos.write_video(tmp_path / "scene.mp4", smooth_scene, num_frames=4, size=size)
    preprocessing = VideoPreprocessing.for_crop_size(crop)
    clip = load_clip_frames(path, FULL_CLIP, 4, preprocessing.shortest_edge)
    assert min(clip.frames.shape[1:3]) == preprocessing.shortest_edge
    ours = preprocessing(clip.frames)
    reference = pil_reference(full_res_frames(path, clip.frame_indices), crop)
    assert ours.shape == reference.shape == (4, 3, crop, crop)
    assert (ours - reference).abs().mean() < 0.05


def test_frames_at_the_shortest_edge_are_only_cropped_and_normalised():
    preprocessing = VideoPreprocessing.for_crop_size(32)
    frames = torch.randint(0, 256, (2, 36, 51, 3), dtype=torch.uint8)
    out = preprocessing(frames)
    top, left = int((36 - 32) / 2), int((51 - 32) / 2)
    expected = frames[:, top : top + 32, left : left + 32].permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    torch.testing.assert_close(out, (expected - mean) / std)


def test_rejects_frames_of_the_wrong_layout():
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        VideoPreprocessing.for_crop_size(32)(torch.zeros(2, 3, 36, 36, dtype=torch.uint8))
