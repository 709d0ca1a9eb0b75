"""ImageSource streaming and Preprocessing, checked against direct reads and torch/hand formulas."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("PIL")
torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from audit.errors import ConfigError, InputError, MissingExtraError  # noqa: E402
from audit.imaging import ImageSource, Preprocessing, read_image  # noqa: E402
from audit.imaging.loader import _Failure  # noqa: E402

N_IMAGES = 60


def write_png(path, values):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values).save(path)
    return path


@pytest.fixture
def image_dir(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(N_IMAGES):
        values = rng.integers(0, 256, (8, 6), dtype=np.uint8)
        write_png(tmp_path / "images" / f"img_{i:03d}.png", values)
        paths.append(f"images/img_{i:03d}.png")
    return tmp_path, paths


def collect(source, **kwargs):
    parts = list(source.batches(**kwargs))
    indices = np.concatenate([i for i, _ in parts])
    batch = np.concatenate([b for _, b in parts])
    return parts, indices, batch


# --------------------------------------------------------------------------- ImageSource


def test_batches_in_order_equal_direct_reads(image_dir):
    base, paths = image_dir
    source = ImageSource(paths, base, Preprocessing())
    parts, indices, batch = collect(source, batch_size=16)
    assert [len(i) for i, _ in parts] == [16, 16, 16, 12]
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices, np.arange(N_IMAGES))
    assert batch.dtype == np.float32 and batch.shape == (N_IMAGES, 1, 8, 6)
    direct = np.stack([read_image(base / p) for p in paths])
    np.testing.assert_array_equal(batch, direct)
    np.testing.assert_array_equal(source[7], direct[7])
    assert len(source) == N_IMAGES


# torch warns when the machine has fewer cores than workers; the output must not change.
@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
def test_workers_give_the_same_output(image_dir):
    base, paths = image_dir
    preprocessing = Preprocessing(resize=(5, 4), normalize="minmax")
    source = ImageSource(paths, base, preprocessing)
    _, idx0, batch0 = collect(source, batch_size=16, workers=0)
    _, idx2, batch2 = collect(source, batch_size=16, workers=2)
    np.testing.assert_array_equal(idx0, idx2)
    np.testing.assert_array_equal(batch0, batch2)


def test_absolute_paths_ignore_base_dir(image_dir, tmp_path):
    base, paths = image_dir
    source = ImageSource([str(base / paths[0])], tmp_path / "elsewhere", Preprocessing())
    np.testing.assert_array_equal(source[0], read_image(base / paths[0]))


def test_mixed_sizes_need_resize(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((12, 12), np.uint8))
    write_png(tmp_path / "b.png", np.zeros((6, 6), np.uint8))
    source = ImageSource(["a.png", "b.png"], tmp_path, Preprocessing())
    message = (r"images of mixed sizes \(first: a\.png 1x12x12, then b\.png 1x6x6\); "
               r"set \[imaging\.preprocess\] resize = \[H, W\]")
    with pytest.raises(InputError, match=message):
        list(source.batches(batch_size=2))
    # Across batches too: whether a data set works must not depend on the batch size.
    with pytest.raises(InputError, match=message):
        list(source.batches(batch_size=1))
    resized = ImageSource(["a.png", "b.png"], tmp_path, Preprocessing(resize=(8, 8)))
    _, indices, batch = collect(resized, batch_size=2)
    assert batch.shape == (2, 1, 8, 8)


def test_mixed_channels_suggest_channels(tmp_path):
    write_png(tmp_path / "gray.png", np.zeros((4, 4), np.uint8))
    write_png(tmp_path / "rgb.png", np.zeros((4, 4, 3), np.uint8))
    source = ImageSource(["gray.png", "rgb.png"], tmp_path, Preprocessing())
    with pytest.raises(InputError, match=r"then rgb\.png 3x4x4\); set \[imaging\.preprocess\] channels"):
        list(source.batches())
    _, _, batch = collect(ImageSource(["gray.png", "rgb.png"], tmp_path, Preprocessing(channels=3)))
    assert batch.shape == (2, 3, 4, 4)


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
@pytest.mark.parametrize("workers", [0, 2])
def test_read_error_surfaces_as_our_input_error(image_dir, workers):
    base, paths = image_dir
    data = (base / paths[20]).read_bytes()
    (base / "images" / "broken.png").write_bytes(data[: len(data) // 2])
    source = ImageSource(paths[:20] + ["images/broken.png"] + paths[21:], base, Preprocessing())
    with pytest.raises(InputError, match=r"broken\.png cannot be read as an image") as info:
        list(source.batches(batch_size=8, workers=workers))
    assert type(info.value) is InputError
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)


def test_failure_carries_errors_with_other_init_signatures():
    original = MissingExtraError("pydicom", "imaging", "Reading DICOM images")
    copy = pickle.loads(pickle.dumps(_Failure(original))).exc
    assert type(copy) is MissingExtraError
    assert str(copy) == str(original) and copy.package == "pydicom" and copy.extra == "imaging"


def test_check_paths_counts_missing(image_dir):
    base, paths = image_dir
    given = paths[:3] + ["images/gone_a.png"] + paths[3:5] + ["images/gone_b.png"]
    source = ImageSource(given, base, Preprocessing(), base_label="manifest.csv's folder")
    with pytest.raises(InputError, match=r"^2 of 7 image paths do not exist; the first: "
                                         r"images/gone_a\.png \(relative to manifest\.csv's folder\)"):
        source.check_paths()
    ImageSource(paths, base, Preprocessing()).check_paths()  # all present: no error


def test_check_paths_all_missing_hints_at_the_folder(image_dir, tmp_path):
    _, paths = image_dir
    source = ImageSource(paths, tmp_path / "wrong", Preprocessing())
    with pytest.raises(InputError, match=rf"60 of 60 .*relative to {tmp_path / 'wrong'}.*folder .* wrong"):
        source.check_paths()


class RecordingProgress:
    def __init__(self):
        self.tasks, self.advanced, self.completed = [], 0, None

    def add_task(self, description, total):
        self.tasks.append((description, total))
        return 0

    def advance(self, task, k):
        self.advanced += k

    def update(self, task, completed):
        self.completed = completed


def test_progress_counts_images(image_dir):
    base, paths = image_dir
    progress = RecordingProgress()
    list(ImageSource(paths, base, Preprocessing()).batches(batch_size=25, progress=progress,
                                                          description="Reading test images"))
    assert progress.tasks == [("Reading test images", N_IMAGES)]
    assert progress.advanced == N_IMAGES and progress.completed == N_IMAGES


def test_batches_stream_lazily(image_dir):
    base, paths = image_dir
    seen = []

    class Counting(Preprocessing):
        def __call__(self, array):
            seen.append(1)
            return super().__call__(array)

    batches = ImageSource(paths, base, Counting()).batches(batch_size=10)
    next(batches)
    assert len(seen) == 10  # one batch read, not the whole set
    batches.close()


def test_source_pickles_for_spawned_workers(image_dir):
    base, paths = image_dir
    source = ImageSource(paths, base, Preprocessing(resize=(4, 4)), window=(100, 50))
    copy = pickle.loads(pickle.dumps(source))
    np.testing.assert_array_equal(copy[3], source[3])


def test_settings_are_checked_up_front(image_dir):
    base, paths = image_dir
    with pytest.raises(ConfigError, match="window"):
        ImageSource(paths, base, Preprocessing(), window=(40, 0))
    with pytest.raises(InputError, match="batch_size"):
        next(ImageSource(paths, base, Preprocessing()).batches(batch_size=0))


# --------------------------------------------------------------------------- Preprocessing


@pytest.fixture
def gray():
    return np.random.default_rng(1).uniform(0, 255, (1, 10, 12)).astype(np.float32)


def test_minmax(gray):
    x = gray.astype(np.float64)
    expected = (x - x.min()) / (x.max() - x.min())
    np.testing.assert_allclose(Preprocessing(normalize="minmax")(gray), expected, atol=1e-6)
    np.testing.assert_array_equal(Preprocessing(normalize="minmax")(np.full((1, 3, 3), 7.0)), 0)


def test_zscore(gray):
    x = gray.astype(np.float64)
    expected = (x - x.mean()) / x.std()
    out = Preprocessing(normalize="zscore")(gray)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert abs(out.mean()) < 1e-5 and abs(out.std() - 1) < 1e-5


def test_fixed_range_does_not_clip():
    x = np.array([[[-51.0, 0.0, 127.5, 255.0, 510.0]]], dtype=np.float32)
    out = Preprocessing(normalize="range", range=(0, 255))(x)
    np.testing.assert_allclose(out, [[[-0.2, 0.0, 0.5, 1.0, 2.0]]], atol=1e-7)


def test_channels():
    rgb = np.random.default_rng(2).uniform(0, 1, (3, 4, 5)).astype(np.float32)
    gray = rgb[:1]
    np.testing.assert_allclose(Preprocessing(channels=1)(rgb), (rgb[0] + rgb[1] + rgb[2])[None] / 3,
                               atol=1e-6)
    out = Preprocessing(channels=3)(gray)
    assert out.shape == (3, 4, 5)
    for c in range(3):
        np.testing.assert_array_equal(out[c], gray[0])
    with pytest.raises(InputError, match="has 2 channels"):
        Preprocessing(channels=3)(np.zeros((2, 4, 4), np.float32))


@pytest.mark.parametrize("size", [(4, 6), (20, 30), (10, 30)])
def test_resize_2d_matches_interpolate(gray, size):
    shrinks = size[0] < 10 or size[1] < 12
    expected = F.interpolate(torch.from_numpy(gray)[None], size=size, mode="bilinear",
                             align_corners=False, antialias=shrinks)[0].numpy()
    np.testing.assert_array_equal(Preprocessing(resize=size)(gray), expected)


def test_resize_3d_matches_interpolate():
    volume = np.random.default_rng(3).uniform(0, 1, (1, 6, 8, 8)).astype(np.float32)
    expected = F.interpolate(torch.from_numpy(volume)[None], size=(3, 4, 5), mode="trilinear",
                             align_corners=False)[0].numpy()
    np.testing.assert_array_equal(Preprocessing(resize=(3, 4, 5))(volume), expected)
    with pytest.raises(InputError,
                       match=r"resize = \[4, 4\] has 2 sizes but the image is 3-D .*\[D, H, W\]"):
        Preprocessing(resize=(4, 4))(volume)


def test_steps_run_in_declared_order(gray):
    pre = Preprocessing(resize=(5, 6), channels=3, normalize="minmax")
    resized = F.interpolate(torch.from_numpy(gray)[None], size=(5, 6), mode="bilinear",
                            align_corners=False, antialias=True)[0].numpy().astype(np.float64)
    expected = np.repeat((resized - resized.min()) / (resized.max() - resized.min()), 3, axis=0)
    np.testing.assert_allclose(pre(gray), expected, atol=1e-6)


def test_from_config_and_describe():
    pre = Preprocessing.from_config({"resize": [224, 224], "normalize": "range", "range": [0, 255],
                                     "channels": 3})
    assert pre == Preprocessing(resize=(224, 224), normalize="range", range=(0.0, 255.0), channels=3)
    assert pre.describe() == "resize 224x224, channels 3, normalize range [0, 255] to [0, 1], float32"
    assert Preprocessing.from_config(None).describe() == "none (values as read, float32)"


@pytest.mark.parametrize("table, message", [
    ({"size": [4, 4]},
     r"\[imaging\.preprocess\] has unknown key\(s\) 'size'; valid keys: resize, normalize, range"),
    ({"normalize": "robust"}, r"normalize = 'robust' is not one of none, minmax, zscore, range"),
    ({"normalize": "range"}, r"normalize = \"range\" needs range"),
    ({"normalize": "range", "range": [5, 5]}, r"high must be above low"),
    ({"range": [0, 255]}, r"range = \[0, 255\] is set but normalize is 'none'"),
    ({"resize": [0, 4]}, r"resize = \(0, 4\): give positive whole numbers"),
    ({"resize": [4, 4, 4, 4]}, r"resize"),
    ({"channels": 2}, r"channels = 2: use 1 \(gray\) or 3"),
    ({"dtype": "float64"}, r"only \"float32\""),
    ({"monai": "no_colon"}, r"monai = 'no_colon' is not 'package\.module:function'"),
    ({"monai": "surely_not_a_module_x:make"}, r"cannot be imported"),
])
def test_from_config_errors(table, message):
    with pytest.raises(ConfigError, match=message):
        Preprocessing.from_config(table)


# --------------------------------------------------------------------------- MONAI


def make_add_one():
    """A factory as a user's module would define it: returns a MONAI Compose."""
    from monai.transforms import Compose, Lambda

    return Compose([Lambda(lambda x: x + 1)])


def test_monai_transform_object_runs_after_declared_steps(gray):
    pytest.importorskip("monai")
    x = gray.astype(np.float64)
    minmax = (x - x.min()) / (x.max() - x.min())
    out = Preprocessing(normalize="minmax", monai=make_add_one())(gray)
    assert out.dtype == np.float32 and isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, minmax + 1, atol=1e-6)  # MONAI first would give minmax itself


def test_monai_spec_is_resolved_with_importlib(gray, tmp_path, monkeypatch):
    pytest.importorskip("monai")
    (tmp_path / "site_transforms.py").write_text(
        "from monai.transforms import Compose, ScaleIntensity\n"
        "def make():\n"
        "    return Compose([ScaleIntensity(minv=0.0, maxv=2.0)])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    pre = Preprocessing.from_config({"monai": "site_transforms:make"})
    x = gray.astype(np.float64)
    np.testing.assert_allclose(pre(gray), 2 * (x - x.min()) / (x.max() - x.min()), atol=1e-5)
    assert pre.describe() == "then MONAI site_transforms:make, float32"


def test_monai_failure_names_the_image(image_dir):
    base, paths = image_dir

    def broken(array):
        raise ValueError("bad intensity")

    source = ImageSource(paths, base, Preprocessing(monai=broken))
    with pytest.raises(InputError, match=r"Image images/img_000\.png: the MONAI transform .*broken "
                                         r"failed on an image of shape 1x8x6: ValueError: bad intensity"):
        list(source.batches())
