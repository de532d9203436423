"""Fixtures the unit tests share: the tiny V-JEPA 2, saved once per module, and its encoder."""

from __future__ import annotations

import pytest

from heaters_db.embedding.model import clear_encoder_cache, load_encoder
from tests.support.tiny_model import TINY_MODEL_NAME, install_tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    install_tiny_model(root)
    yield root
    clear_encoder_cache()


@pytest.fixture(scope="module")
def encoder(model_dir):
    return load_encoder(TINY_MODEL_NAME, device="cpu", model_dir=model_dir)
