"""`future-audit run` on an image manifest: torch/ONNX models end to end, and bad input.

One folder of 40 tiny PNGs (brighter images are y = 1), a seeded CNN saved as TorchScript,
ONNX and a state_dict; the fairness plugin audits the image model like any other. Each bad
input must exit 4 with one line that names the file, column or key and the fix.
"""

from __future__ import annotations

import json
import shutil
import textwrap

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("PIL")

from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from audit.cli import app  # noqa: E402

runner = CliRunner()
N_IMAGES = 40
SIZE = 16
FACTORIES = textwrap.dedent(
    """
    import torch


    def build():
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 1),
        )


    def build_other():
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 1))
    """
)


def write_manifest(root, n=N_IMAGES, seed=1):
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        y = i % 2
        values = np.clip(rng.normal(70 + 110 * y, 30, (SIZE, SIZE)), 0, 255).astype(np.uint8)
        name = f"images/img_{i:03d}.png"
        Image.fromarray(values).save(root / name)
        rows.append({"path": name, "y": y, "sex": "F" if i % 4 < 2 else "M"})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


def two_input_onnx(path):
    from onnx import TensorProto, helper

    shape = ["N", 1, SIZE, SIZE]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("x", "y")]
    output = helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)
    graph = helper.make_graph([helper.make_node("Add", ["x", "y"], ["out"])], "two", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("image_audit")
    (root / "tinynets.py").write_text(FACTORIES)
    namespace: dict = {}
    exec(FACTORIES, namespace)
    model = namespace["build"]()
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.from_numpy(rng.normal(scale=0.7, size=tuple(param.shape))))
    model.eval()
    write_manifest(root)
    write_manifest(root / "ref", seed=2)  # reference data: its own folder of images
    with pytest.MonkeyPatch.context() as mp, __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")  # torch.jit / exporter deprecation notes
        mp.chdir(root)
        torch.jit.script(model).save("model.pt")
        torch.onnx.export(model, (torch.zeros(2, 1, SIZE, SIZE),), "model.onnx", dynamo=True,
                          input_names=["x"], output_names=["logits"],
                          dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.save(model.state_dict(), root / "weights.pt")
    two_input_onnx(root / "two_inputs.onnx")
    return root


def write_config(root, name, model, *, model_extra="", preprocess='normalize = "range"\nrange = [0, 255]'):
    path = root / name
    path.write_text(
        f'[data]\npath = "manifest.csv"\nlabel = "y"\nsensitive = ["sex"]\n'
        f'[model]\npath = "{model}"\n{model_extra}\n'
        '[model.outputs]\nactivation = "sigmoid"\n'
        f"[imaging.preprocess]\n{preprocess}\n"
    )
    return path


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


RUN = ("--plugin", "fairness", "--threshold", "0.5", "--min-cell", "3", "--seed", "1",
       "--format", "json", "--quiet")


@pytest.mark.parametrize("model, kind", [("model.pt", "torchscript"), ("model.onnx", "onnx")])
def test_fairness_audit_of_an_image_model(project, tmp_path, model, kind):
    config = write_config(project, f"audit-{kind}.toml", model)
    out = tmp_path / "out"
    extra = ("--reference", project / "ref" / "manifest.csv") if kind == "onnx" else ()
    res = invoke("run", "--config", config, "--image-column", "path", *extra, "--out", out, *RUN)
    assert res.exit_code in (0, 1), res.output
    result = json.loads((out / "results.json").read_text())
    prov = result["provenance"]
    assert prov["model"]["kind"] == kind and prov["model"]["source"] == model
    assert prov["model_calls"] == (2 if kind == "onnx" else 1)
    assert result["config"]["data"]["image_column"] == "path"
    assert result["config"]["model"]["outputs"]["activation"] == "sigmoid"
    assert result["config"]["imaging"]["preprocess"]["normalize"] == "range"
    assert result["data_summary"]["modality"] == "imaging"
    fairness = next(p for p in result["plugins"] if p["plugin"] == "fairness")
    assert fairness["status"] not in ("ERROR", "SKIPPED"), fairness["summary"]
    assert {m["group"]["sex"] for m in fairness["metrics"] if m.get("group")} == {"F", "M"}


def _bad(project, tmp_path, args, match):
    out = tmp_path / "bad-out"
    res = invoke("run", *args, "--out", out, *RUN)
    assert res.exit_code == 4, res.output
    lines = [line for line in res.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "Traceback" not in res.output
    assert match in lines[0], lines[0]
    assert not out.exists()
    return lines[0]


def test_missing_images_are_counted(project, tmp_path):
    frame = pd.read_csv(project / "manifest.csv")
    frame.loc[[5, 6], "path"] = ["images/gone_5.png", "images/gone_6.png"]
    frame.to_csv(project / "gone.csv", index=False)
    config = write_config(project, "gone.toml", "model.pt")
    _bad(project, tmp_path, ["--config", config, "--data", project / "gone.csv", "--image-column", "path"],
         "2 of 40 image paths do not exist; the first: images/gone_5.png (relative to the folder of gone.csv)")


def test_unreadable_image(project, tmp_path):
    root = tmp_path / "broken"
    write_manifest(root, n=8)
    (root / "images" / "img_003.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    shutil.copy(project / "model.pt", root / "model.pt")
    config = write_config(root, "audit.toml", "model.pt")
    line = _bad(project, tmp_path, ["--config", config, "--image-column", "path"], "img_003.png")
    assert "PNG" in line or "image" in line.lower()


def test_mixed_sizes_without_resize(project, tmp_path):
    root = tmp_path / "mixed"
    write_manifest(root, n=8)
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(root / "images" / "img_005.png")
    shutil.copy(project / "model.pt", root / "model.pt")
    config = write_config(root, "audit.toml", "model.pt")
    _bad(project, tmp_path, ["--config", config, "--image-column", "path"],
         "images of mixed sizes (first: images/img_000.png 1x16x16, then images/img_005.png 1x12x12); "
         "set [imaging.preprocess] resize = [H, W]")


def test_input_shape_mismatch_names_resize(project, tmp_path):
    config = write_config(project, "small.toml", "model.onnx",
                          preprocess='resize = [12, 12]\nnormalize = "range"\nrange = [0, 255]')
    _bad(project, tmp_path, ["--config", config, "--image-column", "path"],
         "the model expects (N, 1, 16, 16), the images are (N, 1, 12, 12); set [imaging.preprocess] resize = [16, 16]")


def test_onnx_with_several_inputs_needs_input_name(project, tmp_path):
    config = write_config(project, "two.toml", "two_inputs.onnx")
    _bad(project, tmp_path, ["--config", config, "--image-column", "path"],
         "two_inputs.onnx has 2 inputs (x, y); set model.input_name")


def test_state_dict_needs_a_matching_factory(project, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(project))
    config = write_config(project, "weights.toml", "weights.pt")
    _bad(project, tmp_path, ["--config", config, "--image-column", "path"],
         "weights.pt holds weights only (a state_dict), not the architecture. Set model.factory")
    config = write_config(project, "other.toml", "weights.pt", model_extra='factory = "tinynets:build_other"')
    _bad(project, tmp_path, ["--config", config, "--image-column", "path"],
         "do not fit the model built by model.factory = 'tinynets:build_other'")
    config = write_config(project, "factory.toml", "weights.pt", model_extra='factory = "tinynets:build"')
    res = invoke("run", "--config", config, "--image-column", "path", "--out", tmp_path / "ok", *RUN)
    assert res.exit_code in (0, 1), res.output
    assert json.loads((tmp_path / "ok" / "results.json").read_text())["provenance"]["model"]["kind"] == "state_dict"


def test_torchscript_named_onnx_and_the_reverse(project, tmp_path):
    shutil.copy(project / "model.pt", project / "fake.onnx")
    shutil.copy(project / "model.onnx", project / "fake.pt")
    config = write_config(project, "fake-onnx.toml", "fake.onnx")
    _bad(project, tmp_path, ["--config", config, "--image-column", "path"],
         "fake.onnx is named .onnx but looks like a torch archive")
    config = write_config(project, "fake-pt.toml", "fake.pt")
    _bad(project, tmp_path, ["--config", config, "--image-column", "path"],
         "fake.pt looks like an ONNX model (a protobuf ModelProto), not a torch file; rename it to .onnx")


def test_network_model_without_image_column(project, tmp_path):
    _bad(project, tmp_path, ["--data", project / "manifest.csv", "--label", "y", "--model", project / "model.pt"],
         "model.pt: torch and ONNX models are audited as image models")


def test_bad_outputs_key_is_a_config_error(project, tmp_path):
    config = project / "bad-key.toml"
    config.write_text('[data]\npath = "manifest.csv"\nlabel = "y"\n[model]\npath = "model.pt"\n'
                      '[model.outputs]\nactivation = "sigmoid"\ncolumns = [0]\n')
    _bad(project, tmp_path, ["--config", config, "--image-column", "path"],
         "[model.outputs]: unknown key(s) columns; allowed keys are activation, outputs, output_name")
