"""plpython/apply_head.py: numpy-only maths equal to the torch head, also under /usr/bin/python3."""

import ast
import importlib.util
import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save

from heaters_db.heads import ProjectionHead, head_to_safetensors

SOURCE = Path(__file__).resolve().parents[2] / "plpython" / "apply_head.py"
SYSTEM_PYTHON = "/usr/bin/python3"


def load_module():
    spec = importlib.util.spec_from_file_location("apply_head_under_test", SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


apply_head_module = load_module()


def trained_like_head(dims=(1024, 256, 2048), seed=0) -> ProjectionHead:
    """A head whose residual branch is non-zero, as after training."""
    torch.manual_seed(seed)
    head = ProjectionHead(*dims)
    with torch.no_grad():
        for parameter in head.parameters():
            parameter.normal_(std=1.0 / np.sqrt(parameter.shape[-1]))
    return head.eval()


def torch_forward(head, matrix: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return head(torch.from_numpy(matrix)).numpy()


def test_parse_safetensors_matches_the_library():
    tensors = {
        "a": torch.randn(3, 4),
        "b": torch.randn(5, dtype=torch.float64),
        "c": torch.randn(2, 3).half(),
        "d": torch.randn(7).bfloat16(),
        "e": torch.zeros(0, 3),
    }
    parsed = apply_head_module.parse_safetensors(save(tensors, metadata={"k": "v"}))
    assert parsed.keys() == tensors.keys()
    for name, tensor in tensors.items():
        assert parsed[name].dtype == np.float32
        assert parsed[name].shape == tuple(tensor.shape)
        np.testing.assert_array_equal(parsed[name], tensor.float().numpy())


@pytest.mark.parametrize(
    "data",
    [b"", b"\x10\x00\x00\x00\x00\x00\x00\x00{}", b"\x02\x00\x00\x00\x00\x00\x00\x00[]"],
)
def test_malformed_safetensors_raise_value_error(data):
    with pytest.raises(ValueError):
        apply_head_module.parse_safetensors(data)


def test_inconsistent_offsets_raise_value_error():
    good = bytearray(save({"a": torch.zeros(4)}))
    truncated = bytes(good[:-4])
    with pytest.raises(ValueError, match="data_offsets"):
        apply_head_module.parse_safetensors(truncated)


def test_numpy_head_equals_torch_head():
    head = trained_like_head()
    tensors = apply_head_module.parse_safetensors(head_to_safetensors(head))
    matrix = np.random.default_rng(0).standard_normal((37, 1024)).astype(np.float32) * 3
    matrix[5] = 0.0  # no direction: zero out in both, not the head's bias
    expected = torch_forward(head, matrix)
    assert not expected[5].any() and expected[4].any()
    batch = apply_head_module.apply_head_batch(tensors, head.architecture, matrix)
    assert batch.dtype == np.float32
    np.testing.assert_allclose(batch, expected, atol=1e-5)
    single = apply_head_module.apply_head(tensors, head.architecture, matrix[3])
    np.testing.assert_allclose(single, expected[3], atol=1e-5)


def test_batches_larger_than_one_chunk(monkeypatch):
    head = trained_like_head((16, 8, 32))
    tensors = apply_head_module.parse_safetensors(head_to_safetensors(head))
    matrix = np.random.default_rng(1).standard_normal((50, 16)).astype(np.float32)
    monkeypatch.setattr(apply_head_module, "BATCH_ROWS", 7)
    np.testing.assert_allclose(
        apply_head_module.apply_head_batch(tensors, head.architecture, matrix),
        torch_forward(head, matrix),
        atol=1e-5,
    )


def test_wrong_dimension_and_wrong_architecture_are_refused():
    head = trained_like_head((16, 8, 32))
    tensors = apply_head_module.parse_safetensors(head_to_safetensors(head))
    with pytest.raises(ValueError, match="dimension 16"):
        apply_head_module.apply_head(tensors, head.architecture, np.ones(15))
    with pytest.raises(ValueError, match="expected"):
        apply_head_module.apply_head(tensors, {**head.architecture, "hidden_dim": 33}, np.ones(16))
    with pytest.raises(ValueError, match="activation"):
        apply_head_module.apply_head(
            tensors, {**head.architecture, "activation": "relu"}, np.ones(16)
        )


def test_vector_text_round_trips_float32_exactly():
    values = np.random.default_rng(2).standard_normal(300).astype(np.float32)
    values[:3] = [0.0, 1e-30, -3.4e38]
    text = apply_head_module.format_vector_text(values)
    assert text.startswith("[") and text.endswith("]")
    parsed = apply_head_module.parse_vector_text(text)
    np.testing.assert_array_equal(parsed.astype(np.float32), values)
    np.testing.assert_array_equal(
        apply_head_module.parse_vector_text(" [1, 2.5,-3] "), [1, 2.5, -3]
    )
    np.testing.assert_array_equal(apply_head_module.parse_vector_text([1, 2]), [1, 2])
    for bad in ("1,2,3", "[1,nan]", "[a]"):
        with pytest.raises(ValueError):
            apply_head_module.parse_vector_text(bad)


def test_source_is_a_valid_plpython_function_body():
    """The loader emits the file, then `return plpython_body(...)`, inside a function."""
    source = SOURCE.read_text()
    tree = ast.parse(source)
    # Inside a function, a `global` would escape PL/Python's per-function namespace, and an
    # assignment to an argument name would make it local (UnboundLocalError).
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Global | ast.Nonlocal)]
    assigned = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert not assigned & {"head_id", "embedding", "plpy", "SD"}
    body = source + "\nreturn plpython_body(plpy, SD, head_id, embedding)\n"
    # A `from __future__` import would be a SyntaxError here.
    compile(
        "def __plpython_procedure_apply_head():\n" + textwrap.indent(body, "    "), "<body>", "exec"
    )


SYSTEM_SCRIPT = """
import importlib.util, json, sys
import numpy as np
spec = importlib.util.spec_from_file_location("apply_head", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
folder = sys.argv[2]
with open(folder + "/weights.safetensors", "rb") as handle:
    tensors = module.parse_safetensors(handle.read())
with open(folder + "/architecture.json") as handle:
    architecture = json.load(handle)
matrix = np.load(folder + "/inputs.npy")
np.save(folder + "/batch.npy", module.apply_head_batch(tensors, architecture, matrix))
text = module.format_vector_text(module.apply_head(tensors, architecture, module.parse_vector_text(
    module.format_vector_text(matrix[0]))))
np.save(folder + "/single.npy", module.parse_vector_text(text))
print(np.__version__)
"""


def system_python_has_numpy() -> bool:
    if shutil.which(SYSTEM_PYTHON) is None:
        return False
    return (
        subprocess.run([SYSTEM_PYTHON, "-c", "import numpy"], capture_output=True).returncode == 0
    )


@pytest.mark.skipif(not system_python_has_numpy(), reason="no /usr/bin/python3 with numpy")
def test_system_python_computes_the_same_head(tmp_path):
    head = trained_like_head()
    (tmp_path / "weights.safetensors").write_bytes(head_to_safetensors(head))
    (tmp_path / "architecture.json").write_text(json.dumps(head.architecture))
    matrix = np.random.default_rng(3).standard_normal((9, 1024)).astype(np.float32)
    np.save(tmp_path / "inputs.npy", matrix)
    completed = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-c", SYSTEM_SCRIPT, str(SOURCE), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    expected = torch_forward(head, matrix)
    np.testing.assert_allclose(np.load(tmp_path / "batch.npy"), expected, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "single.npy"), expected[0], atol=1e-5)
