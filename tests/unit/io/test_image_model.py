"""Image models (audit.io.image_model): a manifest of PNGs through TorchScript and ONNX.

40 tiny grayscale PNGs whose label follows their brightness, one seeded CNN saved as
TorchScript and as ONNX; the adapter's scores must be the module's own forward pass on the
same preprocessed pixels, whatever the batch size or the number of reading workers.
"""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")  # torch's dynamo ONNX exporter
pytest.importorskip("PIL")

from PIL import Image  # noqa: E402

from audit.core.config import DataConfig, build_config, read_config_file  # noqa: E402
from audit.core.context import PredictionCache  # noqa: E402
from audit.errors import ConfigError, InputError, ModelError  # noqa: E402
from audit.imaging import Preprocessing  # noqa: E402
from audit.io.image_model import ImageModelAdapter  # noqa: E402
from audit.io.models import ModelAdapter, load_model  # noqa: E402
from audit.io.networks import OutputMapping  # noqa: E402
from audit.io.tables import load_dataset  # noqa: E402

N_IMAGES = 40
SIZE = 16
RANGE = Preprocessing(normalize="range", range=(0, 255))
SIGMOID = OutputMapping(activation="sigmoid")


def tiny_cnn():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 1),
    )
    rng = np.random.default_rng(0)  # weights from a numpy Generator: no global torch seed
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.from_numpy(rng.normal(scale=0.7, size=tuple(param.shape))))
    return model.eval()


def write_manifest(root, n=N_IMAGES, size=SIZE):
    """PNGs under root/images and root/manifest.csv (path, y, sex); brighter images are y = 1."""
    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        y = i % 2
        values = np.clip(rng.normal(70 + 110 * y, 30, (size, size)), 0, 255).astype(np.uint8)
        name = f"images/img_{i:03d}.png"
        Image.fromarray(values).save(root / name)
        rows.append({"path": name, "y": y, "sex": "F" if i % 4 < 2 else "M"})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def save_torchscript(model, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated
        torch.jit.script(model).save(str(path))
    return path


def save_onnx(model, path):
    example = torch.zeros(2, 1, SIZE, SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation and tracing notes
        torch.onnx.export(model, (example,), str(path), dynamo=True, input_names=["x"],
                          output_names=["logits"],
                          dynamic_shapes=({0: torch.export.Dim("batch")},))
    return path


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("image_model")
    model = tiny_cnn()
    return {
        "root": root, "model": model, "manifest": write_manifest(root),
        "ts": save_torchscript(model, root / "model.pt"),
        "onnx": save_onnx(model, root / "model.onnx"),
    }


def manifest_dataset(path, **data):
    cfg = DataConfig(path=path, label=("y",), image_column="path", **data)
    return load_dataset(path, cfg, name="data", need_features=False, need_scores=False)


def reference_scores(zoo):
    """The module's own forward pass on the PNGs read with Pillow and scaled by hand."""
    frame = pd.read_csv(zoo["manifest"])
    pixels = np.stack([np.asarray(Image.open(zoo["root"] / p), dtype=np.float32) / 255.0
                       for p in frame["path"]])[:, None]
    with torch.no_grad():
        logits = zoo["model"](torch.from_numpy(pixels)).double()
    return torch.sigmoid(logits).numpy()


def adapter(zoo, fmt="ts", **options):
    options = {"outputs": SIGMOID, "preprocessing": RANGE, **options}
    return load_model(str(zoo[fmt]), image_column="path", **options)


# --------------------------------------------------------------------------- scores


@pytest.mark.parametrize("fmt, kind", [("ts", "torchscript"), ("onnx", "onnx")])
def test_scores_equal_the_modules_forward(zoo, fmt, kind):
    model = adapter(zoo, fmt, batch_size=7)
    assert isinstance(model, ImageModelAdapter) and isinstance(model, ModelAdapter)
    assert (model.kind, model.source, model.image_column) == (kind, str(zoo[fmt]), "path")
    assert (model.batch_size, model.workers, model.output_names) == (7, 0, None)
    scores = model.predict_dataset(manifest_dataset(zoo["manifest"]))
    assert scores.dtype == np.float64 and scores.shape == (N_IMAGES, 1)
    np.testing.assert_allclose(scores, reference_scores(zoo), rtol=0, atol=1e-5)


def test_batch_size_and_workers_leave_scores_unchanged(zoo):
    ds = manifest_dataset(zoo["manifest"])
    serial = adapter(zoo, batch_size=7, workers=0).predict_dataset(ds)
    parallel = adapter(zoo, batch_size=7, workers=2).predict_dataset(ds)
    np.testing.assert_array_equal(parallel, serial)
    whole = adapter(zoo, batch_size=64).predict_dataset(ds)
    np.testing.assert_allclose(whole, serial, rtol=0, atol=1e-6)


def test_predict_on_a_frame_resolves_paths_from_base_dir(zoo):
    model = adapter(zoo)
    ds = manifest_dataset(zoo["manifest"])
    model.base_dir = zoo["root"]
    np.testing.assert_array_equal(model.predict(ds.frame), model.predict_dataset(ds))


def test_image_source_is_the_manifests_images(zoo):
    model = adapter(zoo)
    source = model.image_source(manifest_dataset(zoo["manifest"]))
    assert len(source) == N_IMAGES and source.base_dir == zoo["root"]
    assert source.resolve(0) == zoo["root"] / "images" / "img_000.png"
    batch = source[0][None]
    np.testing.assert_array_equal(model.network.forward(batch),
                                  model.predict_dataset(manifest_dataset(zoo["manifest"]))[:1])


# --------------------------------------------------------------------------- fingerprint and cache


def test_fingerprint_changes_with_what_the_model_sees(zoo):
    base = adapter(zoo).fingerprint()
    assert len(base) == 64 and adapter(zoo).fingerprint() == base
    assert adapter(zoo, preprocessing=Preprocessing(normalize="minmax")).fingerprint() != base
    assert adapter(zoo, preprocessing=Preprocessing(normalize="range", range=(0, 256))).fingerprint() != base
    assert adapter(zoo, window=[128, 256]).fingerprint() != base
    assert adapter(zoo, outputs=OutputMapping("none")).fingerprint() != base
    assert adapter(zoo, "onnx").fingerprint() != base
    assert adapter(zoo, batch_size=5, workers=1).fingerprint() == base  # same scores


class Progress:
    """Records what audit.core.progress.track asks of a rich Progress."""

    def __init__(self):
        self.tasks, self.done = {}, {}

    def add_task(self, description, total):
        self.tasks[len(self.tasks)] = (description, total)
        self.done[len(self.done)] = 0
        return len(self.tasks) - 1

    def advance(self, task, k):
        self.done[task] += k

    def update(self, task, completed):
        pass


def test_model_called_once_per_dataset_with_progress(zoo):
    model = adapter(zoo, batch_size=7)
    forward_calls = []
    forward = model.network.forward
    model.network.forward = lambda batch: (forward_calls.append(len(batch)), forward(batch))[1]
    cache, progress = PredictionCache(), Progress()
    ds = manifest_dataset(zoo["manifest"])

    first = cache.get(model, ds, [], progress=progress)
    again = cache.get(model, ds, [], progress=progress)

    assert cache.calls == 1 and again is first
    assert forward_calls == [7, 7, 7, 7, 7, 5]
    assert progress.tasks == {0: ("Model on manifest.csv", N_IMAGES)} and progress.done == {0: N_IMAGES}
    np.testing.assert_allclose(first, reference_scores(zoo), atol=1e-5)


# --------------------------------------------------------------------------- bad input


def test_a_network_without_an_image_column_is_refused(zoo):
    with pytest.raises(ModelError, match=r"model\.pt: torch and ONNX models .*--image-column.*"
                                         r"Tabular torch/ONNX models are not yet supported"):
        load_model(str(zoo["ts"]))


def test_missing_images_are_counted_and_the_first_named(zoo, tmp_path):
    frame = pd.read_csv(zoo["manifest"])
    frame.loc[[3, 8, 9], "path"] = ["images/gone_3.png", "images/gone_8.png", "images/gone_9.png"]
    manifest = tmp_path / "manifest.csv"
    frame.to_csv(manifest, index=False)
    shutil.copytree(zoo["root"] / "images", tmp_path / "images")
    model = adapter(zoo)
    with pytest.raises(InputError, match=r"3 of 40 image paths do not exist; the first: images/gone_3\.png "
                                         r"\(relative to the folder of manifest\.csv\)"):
        model.predict_dataset(manifest_dataset(manifest))


def test_mixed_sizes_without_resize_name_the_setting(zoo, tmp_path):
    root = tmp_path / "mixed"
    manifest = write_manifest(root, n=6)
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(root / "images" / "img_004.png")
    with pytest.raises(InputError, match=r"mixed sizes .*img_004\.png 1x12x12.*resize = \[H, W\]"):
        adapter(zoo, batch_size=2).predict_dataset(manifest_dataset(manifest))
    resized = adapter(zoo, preprocessing=Preprocessing(resize=(SIZE, SIZE), normalize="range", range=(0, 255)))
    assert resized.predict_dataset(manifest_dataset(manifest)).shape == (6, 1)


def test_image_column_values_must_be_present_text(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,y\n007,1\na.png,0\n,1\nb.png,0\n   ,1\n")
    with pytest.raises(InputError, match=r"Image column 'path' in .*m\.csv has 2 missing image paths "
                                         r"\(empty cells\); the first in data row 3, line 4 of the file"):
        manifest_dataset(manifest)
    manifest.write_text("path,y\n007,1\nNA,0\n")
    assert manifest_dataset(manifest).frame["path"].tolist() == ["007", "NA"]  # text, as written
    parquet = tmp_path / "m.parquet"
    pd.DataFrame({"path": [1, 2], "y": [0, 1]}).to_parquet(parquet)
    with pytest.raises(InputError, match=r"must hold file paths \(text\).*the first, 1, in data row 1\)"):
        manifest_dataset(parquet)


def test_image_column_must_exist(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,y\na.png,1\n")
    with pytest.raises(InputError, match=r"Column 'path' not found in .*m\.csv"):
        manifest_dataset(manifest)


# --------------------------------------------------------------------------- configuration

BASE = {"data": {"path": "m.csv", "label": "y", "image_column": "path"}, "model": {"path": "net.onnx"}}


def build(raw, tmp=None, flags=None):
    from pathlib import Path

    return build_config(raw, base_dir=tmp or Path("/tmp"), flags=flags or {}, plugin_names=("fairness",))


def with_section(section, **values):
    raw = {k: dict(v) for k, v in BASE.items()}
    raw.setdefault(section, {}).update(values)
    return raw


def test_image_config_defaults_and_record(tmp_path):
    cfg = build(BASE, tmp=tmp_path)
    assert cfg.data.image_column == "path" and cfg.data.features == ()
    m = cfg.model
    assert (m.batch_size, m.workers, m.device, m.factory, m.input_name, m.outputs) == (32, 0, "cpu", None, None, None)
    assert cfg.imaging.preprocess == Preprocessing() and cfg.imaging.window is None

    raw = with_section("model", factory="nets:build", batch_size=8, workers=2, embedding_layer="4",
                       outputs={"activation": "softmax", "outputs": [1]})
    raw["model"]["path"] = "weights.pt"
    raw["imaging"] = {"window": [40, 400], "nifti_slice": ["axial", "middle"],
                      "preprocess": {"resize": [16, 16], "normalize": "minmax"}}
    cfg = build(raw, tmp=tmp_path, flags={"image_column": "img"})
    assert cfg.data.image_column == "img"  # the flag wins
    assert cfg.model.outputs == OutputMapping("softmax", outputs=(1,))
    assert cfg.imaging.preprocess == Preprocessing(resize=(16, 16), normalize="minmax")
    assert (cfg.imaging.window, cfg.imaging.nifti_slice) == ((40.0, 400.0), ("axial", "middle"))
    record = cfg.to_dict()
    assert record["data"]["image_column"] == "img"
    assert record["model"] == {
        "path": "weights.pt", "trusted_types": [], "trust_model": False, "factory": "nets:build",
        "input_name": None, "embedding_layer": "4", "batch_size": 8, "workers": 2, "device": "cpu",
        "outputs": {"activation": "softmax", "outputs": [1], "output_name": None}}
    assert record["imaging"] == {
        "window": [40.0, 400.0], "nifti_slice": ["axial", "middle"],
        "preprocess": {"resize": [16, 16], "normalize": "minmax", "range": None, "channels": None,
                       "dtype": "float32", "monai": None,
                       "description": "resize 16x16, normalize minmax, float32"}}


def test_image_config_in_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.future-audit.data]\npath = "m.csv"\nlabel = "y"\nimage_column = "path"\n'
        '[tool.future-audit.model]\npath = "net.onnx"\ninput_name = "x"\n'
        '[tool.future-audit.model.outputs]\nactivation = "sigmoid"\n'
        '[tool.future-audit.imaging.preprocess]\nnormalize = "range"\nrange = [0, 255]\n')
    cfg = build(read_config_file(tmp_path / "pyproject.toml"), tmp=tmp_path)
    assert cfg.model.input_name == "x" and cfg.model.outputs == SIGMOID
    assert cfg.imaging.preprocess == RANGE


@pytest.mark.parametrize("section, values, match", [
    ("model", {"outputs": {"activaton": "sigmoid"}}, r"\[model.outputs\]: unknown key\(s\) activaton; "
                                                     r"allowed keys are activation, outputs, output_name"),
    ("model", {"outputs": {"activation": "relu"}}, r"\[model.outputs\]: activation = 'relu' is not one of"),
    ("model", {"outputs": {"activation": "softmax", "outputs": [0, 0]}}, "repeats a column"),
    ("model", {"outputs": [1]}, r"\[model.outputs\] must be a table"),
    ("model", {"factory": "no_colon"}, r"model.factory: 'no_colon' is not 'package.module:function'"),
    ("model", {"batch_size": 0}, r"model.batch_size: expected an integer >= 1"),
    ("model", {"workers": -1}, r"model.workers: expected an integer >= 0"),
    ("model", {"device": "gpu"}, r"model.device: 'gpu' is not"),
    ("model", {"imput_name": "x"}, r"Unknown key 'model.imput_name'. Valid keys: batch_size, device, "
                                   r"embedding_layer, factory, input_name, outputs, path, trusted_types, workers"),
    ("imaging", {"windw": "header"}, r"Unknown key 'imaging.windw'. Valid keys: nifti_slice, preprocess, window"),
    ("imaging", {"window": [40]}, r"imaging.window = \[40\] is not a window"),
    ("imaging", {"nifti_slice": ["top", "middle"]}, r"imaging.nifti_slice = \['top', 'middle'\] is not a slice"),
    ("imaging", {"preprocess": {"resise": [2, 2]}}, r"\[imaging.preprocess\] has unknown key\(s\) 'resise'"),
    ("imaging", {"preprocess": {"normalize": "range"}}, r"\[imaging.preprocess\] normalize = \"range\" needs range"),
    ("imaging", {"preprocess": "minmax"}, r"imaging.preprocess must be a table"),
    ("data", {"sensitive": ["path"]}, r"data.image_column 'path' is also data.sensitive"),
])
def test_image_config_errors_name_the_key(section, values, match):
    with pytest.raises(ConfigError, match=match):
        build(with_section(section, **values))


def test_network_keys_are_refused_for_other_models():
    raw = with_section("model", batch_size=8, outputs={"activation": "sigmoid"})
    raw["model"]["path"] = "model.skops"
    with pytest.raises(ConfigError, match=r"model.batch_size, model.outputs apply to torch/ONNX image models "
                                          r".*but the config has model 'model.skops'"):
        build(raw)


def test_identical_manifests_in_two_folders_are_two_datasets(zoo, tmp_path):
    # Same manifest text, other pixels: the cache must not hand one folder's scores to the other.
    other = write_manifest(tmp_path / "other")
    for png in (tmp_path / "other" / "images").iterdir():
        Image.fromarray(255 - np.asarray(Image.open(png))).save(png)
    first, second = manifest_dataset(zoo["manifest"]), manifest_dataset(other)
    assert first.fingerprint == second.fingerprint
    model, cache = adapter(zoo), PredictionCache()
    a, b = cache.get(model, first, []), cache.get(model, second, [])
    assert cache.calls == 2 and not np.allclose(a, b)
