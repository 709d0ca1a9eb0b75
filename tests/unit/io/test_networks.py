"""Tests of the torch/ONNX network adapters (audit.io.networks).

One tiny seeded CNN is saved once per module in every supported format (TorchScript,
torch.export, state_dict + factory, safetensors, ONNX); each adapter must reproduce the
original module's probabilities.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from audit.errors import (  # noqa: E402
    ConfigError,
    InputError,
    MissingExtraError,
    ModelError,
    UntrustedModelError,
)
from audit.io.networks import (  # noqa: E402
    Network,
    OnnxNetwork,
    OutputMapping,
    TorchNetwork,
    load_network,
    predict_batches,
)

FACTORY_MODULE = "audit_test_tinynet"
FACTORY_SOURCE = textwrap.dedent(
    """
    import torch


    def build(n_out=2):
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, n_out),
        )


    def build_wide():
        return build(n_out=3)


    class TwoOutputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = build()

        def forward(self, x):
            features = self.net[:4](x)
            return self.net[4](features), features


    def build_two_outputs():
        return TwoOutputs()


    def not_a_module():
        return 42
    """
)
SOFTMAX = OutputMapping(activation="softmax")
SIGMOID = OutputMapping(activation="sigmoid")


def _seeded(model):
    # Weights from a numpy Generator: no global torch seed is touched.
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.from_numpy(rng.normal(scale=0.7, size=tuple(param.shape))))
    return model.eval()


def _images(n, size=8, channels=1, seed=1):
    return np.random.default_rng(seed).normal(size=(n, channels, size, size)).astype(np.float32)


def _export_onnx(model, example, path, output_names=("logits",)):
    try:
        importlib.import_module("onnxscript")
    except ImportError:
        onnxscript_missing = True
    else:
        onnxscript_missing = False
    with warnings.catch_warnings():
        # Without onnxscript only the legacy TorchScript exporter works; it is deprecated. With
        # it, torch's dynamo exporter trips its own pytree FutureWarning (torch 2.13).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        if onnxscript_missing:
            dynamic = {"x": {0: "N"}, **{name: {0: "N"} for name in output_names}}
            torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=["x"],
                              output_names=list(output_names), dynamic_axes=dynamic)
        else:
            torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["x"],
                              output_names=list(output_names),
                              dynamic_shapes=({0: torch.export.Dim("batch")},))


def _write_safetensors(state, path):
    # The published format: 8-byte little-endian header length, JSON header, raw data.
    header, blobs, offset = {}, [], 0
    for name, tensor in state.items():
        data = tensor.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + b"".join(blobs))


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """The reference module, its factory module, and the model saved in every format."""
    root = tmp_path_factory.mktemp("networks")
    (root / f"{FACTORY_MODULE}.py").write_text(FACTORY_SOURCE)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(root))
        factories = importlib.import_module(FACTORY_MODULE)
        model = _seeded(factories.build())
        example = torch.from_numpy(_images(2))
        files = {"root": root}

        files["ts"] = root / "model.ts"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated
            torch.jit.script(model).save(str(files["ts"]))

        files["pt2"] = root / "model.pt2"
        program = torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
        torch.export.save(program, str(files["pt2"]))

        files["sd"] = root / "weights.pth"
        torch.save(model.state_dict(), files["sd"])
        files["safetensors"] = root / "weights.safetensors"
        _write_safetensors(model.state_dict(), files["safetensors"])
        files["full"] = root / "full.pt"
        torch.save(model, files["full"])

        files["onnx"] = root / "model.onnx"
        _export_onnx(model, example, files["onnx"])

        two = factories.build_two_outputs()
        two.net.load_state_dict(model.state_dict())
        files["two_sd"] = root / "two.pt"
        torch.save(two.state_dict(), files["two_sd"])
        files["two_onnx"] = root / "two.onnx"
        _export_onnx(two.eval(), example, files["two_onnx"], output_names=("logits", "features"))
        yield model, files
    sys.modules.pop(FACTORY_MODULE, None)


@pytest.fixture
def factory_path(zoo, monkeypatch):
    monkeypatch.syspath_prepend(str(zoo[1]["root"]))
    return FACTORY_MODULE


def _reference(model, x, activation):
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).double()
    return (torch.sigmoid(logits) if activation == "sigmoid" else torch.softmax(logits, 1)).numpy()


# --------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("fmt, kind", [
    ("ts", "torchscript"), ("pt2", "torch_export"), ("sd", "state_dict"),
    ("safetensors", "state_dict"), ("onnx", "onnx"),
])
@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_every_format_reproduces_the_module(zoo, factory_path, fmt, kind, activation):
    model, files = zoo
    factory = f"{factory_path}:build" if kind == "state_dict" else None
    x = _images(5)

    network = load_network(str(files[fmt]), factory=factory, mapping=OutputMapping(activation))
    probs = network.forward(x)

    assert isinstance(network, Network)
    assert network.kind == kind
    assert network.source == str(files[fmt])
    assert probs.dtype == np.float64 and probs.shape == (5, 2)
    np.testing.assert_allclose(probs, _reference(model, x, activation), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(network.forward(x), probs)  # deterministic


@pytest.mark.parametrize("fmt", ["ts", "pt2", "sd", "onnx"])
def test_outputs_select_and_reorder_columns(zoo, factory_path, fmt):
    model, files = zoo
    factory = f"{factory_path}:build" if fmt == "sd" else None
    x = _images(3)
    expected = _reference(model, x, "softmax")

    swapped = load_network(str(files[fmt]), factory=factory, mapping=OutputMapping("softmax", (1, 0)))
    positive = load_network(str(files[fmt]), factory=factory, mapping=OutputMapping("softmax", (1,)))

    np.testing.assert_allclose(swapped.forward(x), expected[:, ::-1], atol=1e-5)
    np.testing.assert_allclose(positive.forward(x), expected[:, [1]], atol=1e-5)


def test_input_shape_comes_from_onnx_metadata_and_the_exported_program(zoo):
    _, files = zoo
    assert load_network(str(files["onnx"]), mapping=SIGMOID).input_shape == (1, 8, 8)
    assert load_network(str(files["pt2"]), mapping=SIGMOID).input_shape == (1, 8, 8)
    assert load_network(str(files["ts"]), mapping=SIGMOID).input_shape is None
    configured = load_network(str(files["ts"]), mapping=SIGMOID, input_shape=(1, None, None))
    assert configured.input_shape == (1, None, None)


def test_fingerprint_hashes_the_file_and_the_output_settings(zoo):
    _, files = zoo
    a = load_network(str(files["onnx"]), mapping=SIGMOID)
    b = load_network(str(files["onnx"]), mapping=SIGMOID)
    c = load_network(str(files["onnx"]), mapping=SOFTMAX)
    assert len(a.fingerprint()) == 64 and int(a.fingerprint(), 16) >= 0
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert load_network(str(files["ts"]), mapping=SIGMOID).fingerprint() != a.fingerprint()


def test_full_module_pickle_needs_trust(zoo):
    model, files = zoo
    with pytest.raises(UntrustedModelError, match=r"weights_only=True.*refused.*Sequential"):
        load_network(str(files["full"]), mapping=SOFTMAX)
    with pytest.raises(UntrustedModelError, match=r"state_dict.*model\.factory.*torch\.export.*--trust-model"):
        load_network(str(files["full"]), mapping=SOFTMAX)

    network = load_network(str(files["full"]), mapping=SOFTMAX, trust_model=True)
    x = _images(4)
    assert network.kind == "torch_pickle"
    np.testing.assert_allclose(network.forward(x), _reference(model, x, "softmax"), atol=1e-5)


# --------------------------------------------------------------------------- embeddings


@pytest.mark.parametrize("fmt", ["sd", "pt2"])
def test_embed_returns_the_input_of_the_last_linear(zoo, factory_path, fmt):
    model, files = zoo
    factory = f"{factory_path}:build" if fmt == "sd" else None
    x = _images(6)
    with torch.no_grad():
        expected = model[:4](torch.from_numpy(x)).double().numpy()

    features = load_network(str(files[fmt]), factory=factory, mapping=SOFTMAX).embed(x)

    assert features.shape == (6, 4) and features.dtype == np.float64
    np.testing.assert_allclose(features, expected, atol=1e-6)


def test_embed_reads_a_named_layer_output(zoo, factory_path):
    model, files = zoo
    x = _images(3)
    network = load_network(str(files["sd"]), factory=f"{factory_path}:build", mapping=SOFTMAX,
                           embedding_layer="2")
    with torch.no_grad():
        expected = model[:3](torch.from_numpy(x)).double().numpy().reshape(3, -1)
    np.testing.assert_allclose(network.embed(x), expected, atol=1e-6)
    with pytest.raises(ModelError, match=r"model\.embedding_layer = 'head' is not a module.*0, 1, 2"):
        load_network(str(files["sd"]), factory=f"{factory_path}:build", mapping=SOFTMAX,
                     embedding_layer="head")


def test_torchscript_has_no_embedding_and_onnx_only_a_named_output(zoo):
    _, files = zoo
    x = _images(2)
    assert load_network(str(files["ts"]), mapping=SOFTMAX).embed(x) is None
    assert load_network(str(files["onnx"]), mapping=SOFTMAX).embed(x) is None
    with pytest.raises(ModelError, match="TorchScript modules accept no hooks"):
        load_network(str(files["ts"]), mapping=SOFTMAX, embedding_layer="4")


def test_multi_output_models_choose_an_output(zoo, factory_path):
    model, files = zoo
    x = _images(3)
    expected = _reference(model, x, "softmax")
    with torch.no_grad():
        features = model[:4](torch.from_numpy(x)).double().numpy()

    onnx_net = load_network(str(files["two_onnx"]), mapping=SOFTMAX, embedding_layer="features")
    np.testing.assert_allclose(onnx_net.forward(x), expected, atol=1e-5)
    np.testing.assert_allclose(onnx_net.embed(x), features, atol=1e-5)
    with pytest.raises(ModelError, match=r"2 outputs \(logits, features\); set output_name"):
        load_network(str(files["two_onnx"]), mapping=SOFTMAX)

    factory = f"{factory_path}:build_two_outputs"
    torch_net = load_network(str(files["two_sd"]), factory=factory,
                             mapping=OutputMapping("softmax", output_name="0"))
    np.testing.assert_allclose(torch_net.forward(x), expected, atol=1e-5)
    bare = load_network(str(files["two_sd"]), factory=factory, mapping=SOFTMAX)
    with pytest.raises(ModelError, match=r"tuple of 2 outputs; set output_name to the index \('0' to '1'\)"):
        bare.forward(x)


# --------------------------------------------------------------------------- bad input


def test_state_dict_mismatch_names_missing_and_unexpected_keys(zoo, factory_path, tmp_path):
    model, _ = zoo
    state = model.state_dict()
    state["extra.weight"] = state.pop("4.bias")
    path = tmp_path / "renamed.pt"
    torch.save(state, path)

    with pytest.raises(ModelError, match=r"1 missing key\(s\) \(4\.bias\); 1 unexpected key\(s\) \(extra\.weight\)"):
        load_network(str(path), factory=f"{factory_path}:build", mapping=SOFTMAX)


def test_state_dict_shape_mismatch_and_bad_factories(zoo, factory_path):
    _, files = zoo
    sd = str(files["sd"])
    with pytest.raises(ModelError, match=r"other shapes.*4\.weight \(2, 4\) vs \(3, 4\)"):
        load_network(sd, factory=f"{factory_path}:build_wide", mapping=SOFTMAX)
    with pytest.raises(ModelError, match="returned a int; it must return the torch.nn.Module"):
        load_network(sd, factory=f"{factory_path}:not_a_module", mapping=SOFTMAX)
    with pytest.raises(ModelError, match=r"has no attribute 'nope'"):
        load_network(sd, factory=f"{factory_path}:nope", mapping=SOFTMAX)
    with pytest.raises(ConfigError, match=r"model\.factory = 'no-colon' is malformed"):
        load_network(sd, factory="no-colon", mapping=SOFTMAX)
    with pytest.raises(ModelError, match=r"weights only \(a state_dict\).*Set model\.factory"):
        load_network(sd, mapping=SOFTMAX)
    with pytest.raises(ModelError, match=r"complete torchscript model, not a state_dict; remove model\.factory"):
        load_network(str(files["ts"]), factory=f"{factory_path}:build", mapping=SOFTMAX)


def _two_input_onnx(path):
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 1, 8, 8])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 1, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, 8, 8])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "two", [a, b], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def test_onnx_with_two_inputs_needs_input_name(tmp_path):
    path = _two_input_onnx(tmp_path / "two_inputs.onnx")
    with pytest.raises(ModelError, match=r"has 2 inputs \(a, b\); set model\.input_name"):
        load_network(str(path), mapping=SIGMOID)
    with pytest.raises(ModelError, match=r"model\.input_name = 'c' is not an input.*\(inputs: a, b\)"):
        load_network(str(path), mapping=SIGMOID, input_name="c")
    assert load_network(str(path), mapping=SIGMOID, input_name="b").input_name == "b"


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_wrong_image_size_names_both_shapes(zoo, fmt):
    _, files = zoo
    network = load_network(str(files[fmt]), mapping=SIGMOID)
    with pytest.raises(ModelError, match=(r"the model expects \(N, 1, 8, 8\), the images are "
                                          r"\(N, 1, 16, 16\); set \[imaging\.preprocess\] resize = \[8, 8\]")):
        network.forward(_images(2, size=16))
    with pytest.raises(ModelError, match=r"takes 1 channel\(s\), the images have 3"):
        network.forward(_images(2, channels=3))


def test_torch_runtime_shape_error_says_what_the_model_takes(zoo):
    _, files = zoo
    network = load_network(str(files["ts"]), mapping=SIGMOID)
    with pytest.raises(ModelError, match=(r"failed on a batch of shape \(2, 3, 8, 8\).*"
                                          r"first convolution takes 1 channel\(s\), the images have 3")):
        network.forward(_images(2, channels=3))
    with pytest.raises(InputError, match=r"\(N, C, H, W\) or \(N, C, D, H, W\)"):
        network.forward(np.zeros((2, 8, 8), np.float32))


def test_suffix_that_contradicts_the_content_is_reported(zoo, tmp_path):
    _, files = zoo
    ts_as_onnx = shutil.copy(files["ts"], tmp_path / "model.onnx")
    onnx_as_pt = shutil.copy(files["onnx"], tmp_path / "model.pt")
    zip_magic = r"named \.onnx but looks like a torch archive \(a zip archive \(it starts with 'PK'\)\)"
    with pytest.raises(ModelError, match=zip_magic):
        load_network(str(ts_as_onnx), mapping=SIGMOID)
    with pytest.raises(ModelError, match=r"looks like an ONNX model.*rename it to \.onnx"):
        load_network(str(onnx_as_pt), mapping=SIGMOID)


def test_missing_files_and_unsupported_suffixes(tmp_path):
    with pytest.raises(InputError, match="Model file not found"):
        load_network(str(tmp_path / "absent.pt"), mapping=SIGMOID)
    other = tmp_path / "model.h5"
    other.write_bytes(b"\x89HDF")
    with pytest.raises(ModelError, match=r"\.h5 is not a network file; expected one of \.pt"):
        load_network(str(other), mapping=SIGMOID)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="matches none of them"):
        load_network(str(junk), mapping=SIGMOID)


def test_corrupt_files_and_unusable_devices(zoo, tmp_path):
    _, files = zoo
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage")
    with pytest.raises(ModelError, match=r"Cannot load ONNX model .*broken\.onnx: \w+"):
        load_network(str(broken), mapping=SIGMOID)
    with pytest.raises(ConfigError, match="device = 'gpu0' is not a torch device"):
        load_network(str(files["ts"]), mapping=SIGMOID, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="torch sees no CUDA device"):
            load_network(str(files["ts"]), mapping=SIGMOID, device="cuda")


def test_checkpoint_wrappers_and_data_parallel_prefixes(zoo, factory_path, tmp_path):
    model, _ = zoo
    wrapped = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3, "state_dict": model.state_dict()}, wrapped)
    network = load_network(str(wrapped), factory=f"{factory_path}:build", mapping=SOFTMAX)
    x = _images(2)
    np.testing.assert_allclose(network.forward(x), _reference(model, x, "softmax"), atol=1e-5)

    prefixed = tmp_path / "parallel.pt"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, prefixed)
    with pytest.raises(ModelError, match=r"4 missing key\(s\).*4 unexpected.*start with 'module\.'"):
        load_network(str(prefixed), factory=f"{factory_path}:build", mapping=SOFTMAX)


def test_missing_torch_or_onnxruntime_names_the_extra(zoo, monkeypatch):
    _, files = zoo
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingExtraError, match=r"future-audit\[torch\]"):
        load_network(str(files["ts"]), mapping=SIGMOID)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r"'onnxruntime'.*future-audit\[onnx\]"):
        load_network(str(files["onnx"]), mapping=SIGMOID)


# --------------------------------------------------------------------------- output mapping


def test_output_mapping_from_config():
    mapping = OutputMapping.from_config({"activation": "softmax", "outputs": [1]}, "[model.outputs]")
    assert mapping == OutputMapping("softmax", (1,))
    with pytest.raises(ConfigError, match=r"\[model\.outputs\]: unknown key\(s\) activaton, bogus"):
        OutputMapping.from_config({"activaton": "sigmoid", "bogus": 1}, "[model.outputs]")
    with pytest.raises(ConfigError, match=r"\[m\]: activation is required"):
        OutputMapping.from_config({"outputs": [0]}, "[m]")
    with pytest.raises(ConfigError, match=r"\[m\]: activation = 'relu' is not one of 'sigmoid'"):
        OutputMapping.from_config({"activation": "relu"}, "[m]")
    with pytest.raises(ConfigError, match=r"\[m\]: outputs = 1 must be a list"):
        OutputMapping.from_config({"activation": "none", "outputs": 1}, "[m]")
    with pytest.raises(ConfigError, match=r"not indices >= 0: \[-1\]"):
        OutputMapping.from_config({"activation": "none", "outputs": [-1]}, "[m]")
    with pytest.raises(ConfigError, match="repeats a column"):
        OutputMapping.from_config({"activation": "none", "outputs": [0, 0]}, "[m]")
    with pytest.raises(ConfigError, match="output_name = 3 must be a non-empty string"):
        OutputMapping.from_config({"activation": "none", "output_name": 3}, "[m]")


def test_output_mapping_validates_probabilities():
    raw = np.array([[0.2, 0.8], [0.6, 0.4]])
    np.testing.assert_array_equal(OutputMapping("none", (1,)).apply(raw, 2, "m"), raw[:, [1]])
    with pytest.raises(ModelError, match=r"2 of 4 values outside \[0, 1\].*set activation = 'sigmoid'"):
        OutputMapping("none").apply(np.array([[-0.5, 0.5], [1.2, 0.1]]), 2, "m")
    with pytest.raises(ModelError, match=r"1 NaN\): the model returned NaN"):
        OutputMapping("sigmoid").apply(np.array([[np.nan, 0.0]]), 1, "m")
    with pytest.raises(ModelError, match=r"has 2 output column\(s\) \(0\.\.1\), but outputs selects \[2\]"):
        OutputMapping("softmax", (2,)).apply(raw, 2, "m")
    with pytest.raises(ModelError, match="softmax over it is always 1"):
        OutputMapping("softmax").apply(raw[:, :1], 2, "m")
    with pytest.raises(ModelError, match=r"output of shape \(2, 2, 1\) for 2 images"):
        OutputMapping("sigmoid").apply(raw[:, :, None], 2, "m")


# --------------------------------------------------------------------------- batches


class _Progress:
    def __init__(self):
        self.advanced, self.tasks = [], []

    def add_task(self, description, total):
        self.tasks.append((description, total))
        return 0

    def advance(self, task, k):
        self.advanced.append(k)

    def update(self, task, completed):
        self.completed = completed


def test_predict_batches_fills_rows_in_index_order(zoo):
    _, files = zoo
    network = load_network(str(files["onnx"]), mapping=SOFTMAX)
    x = _images(6)
    order = [np.array([4, 5]), np.array([0, 2, 1]), np.array([3])]
    progress = _Progress()

    probs = predict_batches(network, ((idx, x[idx]) for idx in order), progress=progress, total=6)

    np.testing.assert_allclose(probs, network.forward(x), atol=1e-12)
    assert progress.tasks == [("Model inference", 6)] and progress.advanced == [2, 3, 1]
    assert predict_batches(network, iter([(np.array([1, 0]), x[[1, 0]])])).shape == (2, 2)


def test_predict_batches_rejects_gaps_repeats_and_mismatched_indices(zoo):
    _, files = zoo
    network = load_network(str(files["onnx"]), mapping=SOFTMAX)
    x = _images(3)
    with pytest.raises(InputError, match=r"covered 2 of 3 images \(missing rows: 1\)"):
        predict_batches(network, [(np.array([0, 2]), x[[0, 2]])], total=3)
    with pytest.raises(InputError, match="repeat an image"):
        predict_batches(network, [(np.array([0, 1]), x[:2]), (np.array([1]), x[1:2])], total=2)
    with pytest.raises(InputError, match="has 2 images but 1 indices"):
        predict_batches(network, [(np.array([0]), x[:2])])
    with pytest.raises(InputError, match=r"fall outside 0\.\.1"):
        predict_batches(network, [(np.array([0, 5]), x[:2])], total=2)


def test_fixed_batch_onnx_model_runs_in_chunks(zoo, tmp_path):
    model, _ = zoo
    path = tmp_path / "batch1.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.from_numpy(_images(1)),), str(path), dynamo=False,
                          input_names=["x"], output_names=["logits"])
    x = _images(3)
    network = load_network(str(path), mapping=SOFTMAX)
    assert isinstance(network, OnnxNetwork)
    np.testing.assert_allclose(network.forward(x), _reference(model, x, "softmax"), atol=1e-5)


def test_torch_network_type_and_lazy_imports(zoo):
    _, files = zoo
    assert isinstance(load_network(str(files["ts"]), mapping=SIGMOID), TorchNetwork)
    code = ("import sys, audit.io.networks; "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'onnx') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
