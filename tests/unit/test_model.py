"""The encoder loader and pooling, on a tiny V-JEPA 2 saved and reloaded via from_pretrained."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from heaters_db.embedding.model import (
    ModelLoadError,
    load_encoder,
    resolve_device,
    resolve_dtype,
    resolve_model_path,
    run_in_halves,
)
from heaters_db.errors import HeatersError
from heaters_db.settings import get_settings
from tests.support.tiny_model import (
    TINY_CONFIG,
    TINY_HIDDEN_SIZE,
    TINY_MODEL_NAME,
)


def random_batch(batch: int, frames: int = 8, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, 3, 32, 32, generator=generator)


def test_loads_the_tiny_model_with_its_attributes(encoder, model_dir):
    assert encoder.dim == TINY_HIDDEN_SIZE
    assert encoder.device_used == "cpu"
    assert encoder.dtype == torch.float32
    assert encoder.crop_size == 32
    assert encoder.preprocessing.shortest_edge == 36
    assert encoder.path == str(model_dir / TINY_MODEL_NAME)
    assert re.fullmatch(r"[0-9a-f]{12}", encoder.model_version)
    assert encoder.model.training is False
    assert encoder.model.config._attn_implementation == "sdpa"


def test_one_load_per_process(encoder, model_dir):
    assert load_encoder(TINY_MODEL_NAME, device="cpu", model_dir=model_dir) is encoder
    # The same directory named by its path resolves to the same cache entry.
    assert load_encoder(str(model_dir / TINY_MODEL_NAME), device="cpu", model_dir=None) is encoder


def test_model_dir_comes_from_heaters_model_dir(model_dir, monkeypatch, encoder):
    monkeypatch.setenv("HEATERS_MODEL_DIR", str(model_dir))
    get_settings.cache_clear()
    try:
        assert load_encoder(TINY_MODEL_NAME, device="cpu") is encoder
    finally:
        monkeypatch.delenv("HEATERS_MODEL_DIR")
        get_settings.cache_clear()


def test_embed_is_the_mean_of_the_encoder_tokens(encoder):
    batch = random_batch(2)
    vectors = encoder.embed(batch)
    assert vectors.shape == (2, TINY_HIDDEN_SIZE) and vectors.dtype == np.float32
    with torch.inference_mode():
        tokens = encoder.model(pixel_values_videos=batch, skip_predictor=True).last_hidden_state
    np.testing.assert_allclose(vectors, tokens.mean(dim=1).numpy(), rtol=1e-5, atol=1e-6)


def test_embed_is_deterministic_and_batch_independent(encoder):
    batch = random_batch(3, seed=1)
    first, second = encoder.embed(batch), encoder.embed(batch)
    np.testing.assert_array_equal(first, second)
    singles = np.concatenate([encoder.embed(batch[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(first, singles, rtol=1e-5, atol=1e-5)
    assert not np.allclose(first[0], first[1])


@pytest.mark.parametrize("frames", [2, 4, 16])
def test_embed_accepts_any_even_frame_count(encoder, frames):
    assert encoder.embed(random_batch(1, frames)).shape == (1, TINY_HIDDEN_SIZE)


def test_embed_refuses_bad_shapes(encoder):
    with pytest.raises(ValueError, match="tubelet"):
        encoder.embed(random_batch(1, 7))
    with pytest.raises(ValueError, match="expects 32x32"):
        encoder.embed(torch.zeros(1, 8, 3, 36, 36))
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        encoder.embed(torch.zeros(8, 3, 32, 32))


def test_run_in_halves_splits_until_batches_fit():
    calls: list[int] = []

    def only_single_items_fit(batch: torch.Tensor) -> np.ndarray:
        calls.append(batch.shape[0])
        if batch.shape[0] > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return batch.reshape(batch.shape[0], -1)[:, :1].numpy() * 10

    batch = torch.arange(5, dtype=torch.float32).reshape(5, 1)
    result = run_in_halves(only_single_items_fit, batch)
    np.testing.assert_array_equal(result[:, 0], [0, 10, 20, 30, 40])
    assert calls == [5, 2, 1, 1, 3, 1, 2, 1, 1]


def test_run_in_halves_reraises_when_one_item_does_not_fit():
    def never_fits(batch: torch.Tensor) -> np.ndarray:
        raise torch.OutOfMemoryError("simulated")

    with pytest.raises(torch.OutOfMemoryError):
        run_in_halves(never_fits, torch.zeros(4, 1))


def test_other_errors_are_not_split():
    calls: list[int] = []

    def broken(batch: torch.Tensor) -> np.ndarray:
        calls.append(batch.shape[0])
        raise RuntimeError("not memory")

    with pytest.raises(RuntimeError, match="not memory"):
        run_in_halves(broken, torch.zeros(4, 1))
    assert calls == [4]


def test_model_version_follows_the_config(tmp_path, encoder):
    from transformers import VJEPA2Config, VJEPA2Model

    shallow_dir = tmp_path / "shallow"
    VJEPA2Model(VJEPA2Config(**{**TINY_CONFIG, "num_hidden_layers": 1})).save_pretrained(
        shallow_dir
    )
    shallow = load_encoder(str(shallow_dir), device="cpu", model_dir=None)
    assert re.fullmatch(r"[0-9a-f]{12}", shallow.model_version)
    assert shallow.model_version != encoder.model_version
    # Without a processor file the crop comes from config.json, with the processor's defaults.
    assert (shallow.preprocessing.crop_size, shallow.preprocessing.shortest_edge) == (32, 36)


def test_load_errors_are_heaters_errors(tmp_path):
    not_vjepa = tmp_path / "bert"
    not_vjepa.mkdir()
    (not_vjepa / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelLoadError, match="is not vjepa2"):
        load_encoder(str(not_vjepa), device="cpu", model_dir=None)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="cannot read the model config") as caught:
        load_encoder(str(empty), device="cpu", model_dir=None)
    assert isinstance(caught.value, HeatersError)


def test_resolution_helpers(tmp_path):
    (tmp_path / "org" / "model").mkdir(parents=True)
    assert resolve_model_path("org/model", tmp_path) == str(tmp_path / "org" / "model")
    assert resolve_model_path("org/absent", tmp_path) == "org/absent"
    assert resolve_model_path("org/model", None) == "org/model"
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_dtype(torch.device("cpu")) == torch.float32
    assert resolve_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
    with pytest.raises(ModelLoadError, match="unknown dtype"):
        resolve_dtype(torch.device("cpu"), "int4")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="CUDA is not available"):
            resolve_device("cuda")
