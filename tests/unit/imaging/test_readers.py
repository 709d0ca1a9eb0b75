"""read_image against independent computations: pydicom's own pixels, nibabel, Pillow, PS3.3."""

from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("PIL")
pydicom = pytest.importorskip("pydicom")
nibabel = pytest.importorskip("nibabel")

from PIL import Image  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402

from audit.errors import ConfigError, InputError  # noqa: E402
from audit.imaging.readers import apply_window, check_nifti_slice, check_window, read_image  # noqa: E402


def bundled(name):
    """A test file shipped inside the pydicom wheel; never downloads one."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not bundled with this pydicom")
    return path


def linear_window(x, c, w):
    """DICOM PS3.3 C.11.2.1.2.1 with ymin = 0, ymax = 1, written branch by branch."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    low = x <= c - 0.5 - (w - 1) / 2
    high = x > c - 0.5 + (w - 1) / 2
    mid = ~low & ~high
    out[low] = 0.0
    out[high] = 1.0
    out[mid] = (x[mid] - (c - 0.5)) / (w - 1) + 0.5
    return out


# --------------------------------------------------------------------------- DICOM


def test_dicom_rescale_slope_intercept():
    path = bundled("CT_small.dcm")
    ds = pydicom.dcmread(path)
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    assert (slope, intercept) == (1.0, -1024.0)
    expected = ds.pixel_array.astype(np.float64) * slope + intercept
    image = read_image(path)
    assert image.dtype == np.float32 and image.shape == (1, 128, 128)
    np.testing.assert_array_equal(image[0], expected.astype(np.float32))


def test_dicom_rescale_non_unit_slope(tmp_path):
    ds = pydicom.dcmread(bundled("CT_small.dcm"))
    ds.RescaleSlope, ds.RescaleIntercept = 0.5, 10
    ds.save_as(tmp_path / "scaled.dcm")
    expected = ds.pixel_array.astype(np.float64) * 0.5 + 10
    np.testing.assert_allclose(read_image(tmp_path / "scaled.dcm")[0], expected, rtol=0, atol=1e-4)


def test_dicom_without_suffix_is_sniffed(tmp_path):
    for name in ("IM0001", "1.2.840.10008.5"):
        shutil.copy(bundled("CT_small.dcm"), tmp_path / name)
        np.testing.assert_array_equal(read_image(tmp_path / name), read_image(bundled("CT_small.dcm")))


def test_monochrome1_inverted_over_the_stored_range(tmp_path):
    ds = pydicom.dcmread(bundled("CT_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "mono1.dcm")
    # BitsStored 16, signed: stored values -32768..32767, rescaled by slope 1, intercept -1024.
    assert (ds.BitsStored, ds.PixelRepresentation) == (16, 1)
    lo, hi = -32768 - 1024, 32767 - 1024
    hu = ds.pixel_array.astype(np.float64) - 1024
    np.testing.assert_array_equal(read_image(tmp_path / "mono1.dcm")[0], (lo + hi - hu).astype(np.float32))


def test_monochrome1_inverted_after_window(tmp_path):
    ds = pydicom.dcmread(bundled("CT_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "mono1.dcm")
    hu = ds.pixel_array.astype(np.float64) - 1024
    expected = 1.0 - linear_window(hu, 40, 400)
    np.testing.assert_allclose(read_image(tmp_path / "mono1.dcm", window=(40, 400))[0], expected,
                               atol=1e-6)


def test_window_from_header_follows_ps33():
    path = bundled("MR_small.dcm")
    ds = pydicom.dcmread(path)
    assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (600.0, 1600.0)
    expected = linear_window(ds.pixel_array, 600.0, 1600.0)
    image = read_image(path, window="header")
    assert image.shape == (1, 64, 64)
    assert (expected == 1.0).any()  # the window is reached at the top
    np.testing.assert_allclose(image[0], expected, atol=1e-6)


def test_window_from_config_reaches_both_ends():
    path = bundled("CT_small.dcm")
    hu = pydicom.dcmread(path).pixel_array.astype(np.float64) - 1024
    expected = linear_window(hu, 40, 400)
    assert (expected == 0).any() and (expected == 1).any()
    np.testing.assert_allclose(read_image(path, window=[40, 400])[0], expected, atol=1e-6)


def test_multivalued_header_window_uses_the_first(tmp_path):
    ds = pydicom.dcmread(bundled("MR_small.dcm"))
    ds.WindowCenter, ds.WindowWidth = [300, 900], [800, 100]
    ds.save_as(tmp_path / "two.dcm")
    expected = linear_window(ds.pixel_array, 300, 800)
    np.testing.assert_allclose(read_image(tmp_path / "two.dcm", window="header")[0], expected, atol=1e-6)


def test_sigmoid_voi_function(tmp_path):
    ds = pydicom.dcmread(bundled("MR_small.dcm"))
    ds.VOILUTFunction = "SIGMOID"
    ds.save_as(tmp_path / "sigmoid.dcm")
    x = ds.pixel_array.astype(np.float64)
    expected = 1 / (1 + np.exp(-4 * (x - 600) / 1600))  # PS3.3 C.11.2.1.3.1, ymin 0, ymax 1
    np.testing.assert_allclose(read_image(tmp_path / "sigmoid.dcm", window="header")[0], expected,
                               atol=1e-6)


def test_header_window_missing():
    with pytest.raises(InputError, match=r"CT_small\.dcm has no WindowCenter/WindowWidth"):
        read_image(bundled("CT_small.dcm"), window="header")


def test_multiframe_dicom_is_a_volume():
    path = bundled("rtdose.dcm")
    ds = pydicom.dcmread(path)
    image = read_image(path)
    assert image.shape == (1, 15, 10, 10)
    np.testing.assert_array_equal(image[0], ds.pixel_array.astype(np.float32))


def test_rgb_dicom_is_channel_first():
    path = bundled("SC_rgb_small_odd.dcm")
    pixels = pydicom.dcmread(path).pixel_array
    np.testing.assert_array_equal(read_image(path), np.moveaxis(pixels, -1, 0).astype(np.float32))


def test_truncated_dicom():
    with pytest.raises(InputError, match=r"MR_truncated\.dcm cannot be read as DICOM pixel data"):
        read_image(bundled("MR_truncated.dcm"))


def test_dicom_without_pixels():
    with pytest.raises(InputError, match=r"rtplan\.dcm has no pixel data"):
        read_image(bundled("rtplan.dcm"))


def test_not_dicom_despite_suffix(tmp_path):
    (tmp_path / "fake.dcm").write_bytes(b"not a dicom file at all" * 10)
    with pytest.raises(InputError, match=r"fake\.dcm cannot be read as DICOM"):
        read_image(tmp_path / "fake.dcm")


def test_compressed_dicom_without_decoder():
    path = bundled("MR_small_jpeg_ls_lossless.dcm")
    try:
        pydicom.dcmread(path).pixel_array
    except RuntimeError:
        pass
    else:
        pytest.skip("a JPEG-LS decoder is installed")
    with pytest.raises(InputError, match=r"JPEG-LS.*pip install pylibjpeg"):
        read_image(path)


# --------------------------------------------------------------------------- Pillow


def test_png_8_bit_round_trip(tmp_path):
    values = np.random.default_rng(0).integers(0, 256, (20, 30), dtype=np.uint8)
    Image.fromarray(values).save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image.dtype == np.float32 and image.shape == (1, 20, 30)
    np.testing.assert_array_equal(image[0], values)


def test_png_16_bit_keeps_values(tmp_path):
    values = np.random.default_rng(1).integers(0, 65536, (12, 9), dtype=np.uint16)
    values[0, 0] = 65535
    Image.fromarray(values).save(tmp_path / "a16.png")
    with Image.open(tmp_path / "a16.png") as check:
        assert check.mode.startswith("I")
    np.testing.assert_array_equal(read_image(tmp_path / "a16.png")[0], values.astype(np.float32))


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_colour_png_has_three_channels(tmp_path, mode):
    values = np.random.default_rng(2).integers(0, 256, (7, 5, len(mode)), dtype=np.uint8)
    Image.fromarray(values, mode=mode).save(tmp_path / "c.png")
    image = read_image(tmp_path / "c.png")
    assert image.shape == (3, 7, 5)
    np.testing.assert_array_equal(image, np.moveaxis(values[..., :3], -1, 0))


def test_multipage_tiff_is_a_volume(tmp_path):
    pages = np.random.default_rng(3).integers(0, 256, (3, 6, 4), dtype=np.uint8)
    frames = [Image.fromarray(p) for p in pages]
    frames[0].save(tmp_path / "stack.tif", save_all=True, append_images=frames[1:])
    image = read_image(tmp_path / "stack.tif")
    assert image.shape == (1, 3, 6, 4)
    np.testing.assert_array_equal(image[0], pages)


def test_config_window_applies_to_png(tmp_path):
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(values).save(tmp_path / "w.png")
    np.testing.assert_allclose(read_image(tmp_path / "w.png", window=(100, 50))[0],
                               linear_window(values, 100, 50), atol=1e-6)
    with pytest.raises(InputError, match=r"w\.png has no window header"):
        read_image(tmp_path / "w.png", window="header")


def test_truncated_png(tmp_path):
    values = np.random.default_rng(4).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(values).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "half.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"half\.png cannot be read as an image") as info:
        read_image(tmp_path / "half.png")
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nothere\.png does not exist"):
        read_image(tmp_path / "nothere.png")


def test_unsupported_suffix(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match=r"notes\.txt has an unsupported file type '\.txt'.*\.png.*\.nii\.gz"):
        read_image(tmp_path / "notes.txt")


# --------------------------------------------------------------------------- NIfTI


def write_scaled_nifti(path, raw, slope, inter, affine=None):
    """An int16 NIfTI whose header says value = raw * slope + inter (patched after writing,
    since nibabel recomputes scaling when it saves)."""
    image = nibabel.Nifti1Image(raw.astype(np.int16), np.eye(4) if affine is None else affine)
    image.header.set_data_dtype(np.int16)
    plain = path.with_name("plain.nii")
    nibabel.save(image, plain)
    data = bytearray(plain.read_bytes())
    assert struct.unpack("<i", data[:4])[0] == 348  # little-endian NIfTI-1
    data[112:120] = struct.pack("<ff", slope, inter)  # scl_slope, scl_inter
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb") as fh:
            fh.write(bytes(data))
    else:
        path.write_bytes(bytes(data))
    return path


@pytest.fixture
def raw_volume():
    return np.random.default_rng(5).integers(-100, 100, (4, 5, 6)).astype(np.int16)


@pytest.mark.parametrize("name", ["vol.nii", "vol.nii.gz"])
def test_nifti_volume_with_scaling(tmp_path, raw_volume, name):
    path = write_scaled_nifti(tmp_path / name, raw_volume, 2.0, 10.0)
    image = read_image(path)
    assert image.dtype == np.float32 and image.shape == (1, 4, 5, 6)
    np.testing.assert_array_equal(image[0], raw_volume * 2.0 + 10.0)


def test_nifti_slices_follow_the_affine(tmp_path, raw_volume):
    # Array axis 0 runs inferior->superior, axis 1 posterior->anterior, axis 2 left->right.
    affine = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    path = write_scaled_nifti(tmp_path / "perm.nii", raw_volume, 1.0, 0.0, affine)
    assert nibabel.aff2axcodes(affine) == ("S", "A", "R")
    np.testing.assert_array_equal(read_image(path, nifti_slice=("axial", 1)), raw_volume[1][None])
    np.testing.assert_array_equal(read_image(path, nifti_slice=("sagittal", "middle")),
                                  raw_volume[:, :, 3][None])
    np.testing.assert_array_equal(read_image(path, nifti_slice=["coronal", 0]), raw_volume[:, 0][None])
    np.testing.assert_array_equal(read_image(path, nifti_slice=(2, 5)), raw_volume[:, :, 5][None])
    with pytest.raises(InputError, match=r"perm\.nii has 4 slices along axis 0.*slice 9"):
        read_image(path, nifti_slice=("axial", 9))


def test_nifti_4d_refused(tmp_path):
    nibabel.save(nibabel.Nifti1Image(np.zeros((3, 3, 3, 2), np.float32), np.eye(4)), tmp_path / "t.nii")
    with pytest.raises(InputError, match=r"t\.nii is a 4-D series of shape \(3, 3, 3, 2\)"):
        read_image(tmp_path / "t.nii")
    nibabel.save(nibabel.Nifti1Image(np.ones((3, 3, 3, 1), np.float32), np.eye(4)), tmp_path / "one.nii")
    assert read_image(tmp_path / "one.nii").shape == (1, 3, 3, 3)


def test_truncated_nifti(tmp_path, raw_volume):
    path = write_scaled_nifti(tmp_path / "vol.nii.gz", raw_volume, 1.0, 0.0)
    data = path.read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.nii\.gz cannot be read as NIfTI"):
        read_image(tmp_path / "cut.nii.gz")


# --------------------------------------------------------------------------- settings


def test_apply_window_width_one_is_a_threshold():
    np.testing.assert_array_equal(apply_window(np.array([9.0, 9.5, 9.6, 12]), 10, 1), [0, 0, 1, 1])


@pytest.mark.parametrize("bad", ["middle", (40,), (40, 0), ("a", 3), (40, float("nan")),
                                 np.array([40, 400])])
def test_bad_window(bad):
    with pytest.raises(ConfigError, match="window"):
        check_window(bad)


@pytest.mark.parametrize("bad", ["axial", ("axial",), ("transverse", 3), (3, 1), ("axial", 1.5),
                                 (["axial"], 1)])
def test_bad_nifti_slice(bad):
    with pytest.raises(ConfigError, match="nifti_slice"):
        check_nifti_slice(bad)


def test_import_is_lazy():
    code = ("import sys, audit.imaging; "
            "print(sorted(m for m in ('torch', 'pydicom', 'nibabel', 'PIL', 'monai') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_truncated_png_is_refused_even_after_weasyprint_import(tmp_path):
    # WeasyPrint turns on Pillow's LOAD_TRUNCATED_IMAGES for the whole process.
    from PIL import Image, ImageFile

    path = tmp_path / "half.png"
    Image.fromarray(np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with pytest.raises(InputError, match=r"half\.png cannot be read"):
            read_image(path)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
