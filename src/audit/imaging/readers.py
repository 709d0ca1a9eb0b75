"""Read one image file into a float32, channel-first array.

:func:`read_image` picks the reader from the file name:

=================================================  ========  ==================================
suffix                                             package   result
=================================================  ========  ==================================
``.png .jpg .jpeg .bmp .tif .tiff``                Pillow    ``(C, H, W)``; ``(C, D, H, W)`` for
                                                             a multi-page TIFF
``.dcm .dicom``, or any other name whose bytes     pydicom   ``(C, H, W)``; ``(C, F, H, W)``
128-131 are ``DICM``                                         for F frames
``.nii .nii.gz``                                   nibabel   ``(1, I, J, K)``; ``(1, H, W)``
                                                             with ``nifti_slice``
=================================================  ========  ==================================

``C`` is 1 for grayscale and 3 for colour (an alpha channel is dropped). Values are returned as
stored (an 8-bit PNG gives 0..255, a 16-bit one 0..65535): nothing is scaled unless a DICOM
header (rescale, MONOCHROME1) or a ``window`` says so. Pillow, pydicom and nibabel are imported
inside the readers so that ``import audit.imaging`` stays fast; a missing one raises
:class:`~audit.errors.MissingExtraError` naming the ``imaging`` extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from audit.errors import ConfigError, InputError, MissingExtraError

__all__ = [
    "DICOM_SUFFIXES",
    "NIFTI_SUFFIXES",
    "PILLOW_SUFFIXES",
    "apply_window",
    "check_nifti_slice",
    "check_window",
    "read_image",
]

PILLOW_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
_SUPPORTED = ", ".join(PILLOW_SUFFIXES + DICOM_SUFFIXES + NIFTI_SUFFIXES)
# Anatomical plane -> the pair of axis codes (nibabel.aff2axcodes) of the axis it is normal to.
_PLANES = {"axial": ("S", "I"), "coronal": ("A", "P"), "sagittal": ("L", "R")}
_DECODER_HINT = (
    "install a decoder: pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg "
    "(or python-gdcm)"
)

Window = tuple[float, float] | str | None
NiftiSlice = tuple[str | int, int | str] | None


# --------------------------------------------------------------------------- settings


def check_window(window: Any, where: str = "window") -> Window:
    """Validate a ``window`` setting: None, ``"header"`` or ``(center, width)``.

    Raises
    ------
    ConfigError
        When the value is none of these, or the width is below 1 (DICOM PS3.3 C.11.2.1.2
        requires a linear window at least 1 wide).
    """
    if window is None or (isinstance(window, str) and window == "header"):
        return window
    if isinstance(window, str) or not isinstance(window, Sequence) or len(window) != 2:
        raise ConfigError(
            f"{where} = {window!r} is not a window; use \"header\" (the DICOM WindowCenter/"
            "WindowWidth) or [center, width], e.g. [40, 400] for a CT soft-tissue window."
        )
    try:
        center, width = float(window[0]), float(window[1])
    except (TypeError, ValueError):
        raise ConfigError(f"{where} = {window!r}: center and width must be numbers.") from None
    if not (np.isfinite(center) and np.isfinite(width)) or width < 1:
        raise ConfigError(
            f"{where} = {window!r}: the width must be a finite number of at least 1 "
            "(DICOM PS3.3 C.11.2.1.2)."
        )
    return (center, width)


def check_nifti_slice(nifti_slice: Any, where: str = "nifti_slice") -> NiftiSlice:
    """Validate ``nifti_slice``: ``(plane or axis, index or "middle")`` or None.

    The plane is ``"axial"``, ``"coronal"`` or ``"sagittal"`` (found from the affine), or an
    array axis 0, 1 or 2.

    Raises
    ------
    ConfigError
        When the value has another form.
    """
    if nifti_slice is None:
        return None
    form = ('["axial" | "coronal" | "sagittal" | 0 | 1 | 2, index or "middle"], '
            'e.g. ["axial", "middle"]')
    if isinstance(nifti_slice, str) or not isinstance(nifti_slice, Sequence) or len(nifti_slice) != 2:
        raise ConfigError(f"{where} = {nifti_slice!r} is not a slice; use {form}.")
    axis, index = nifti_slice
    valid_axis = (isinstance(axis, str) and axis in _PLANES) or (
        isinstance(axis, int) and not isinstance(axis, bool) and 0 <= axis <= 2)
    valid_index = (isinstance(index, str) and index == "middle") or (
        isinstance(index, int) and not isinstance(index, bool))
    if not (valid_axis and valid_index):
        raise ConfigError(f"{where} = {nifti_slice!r} is not a slice; use {form}.")
    return (axis, index)


def apply_window(values: np.ndarray, center: float, width: float,
                 function: str = "LINEAR") -> np.ndarray:
    """Map values to [0, 1] with a DICOM VOI window (PS3.3 C.11.2.1.2 and C.11.2.1.3).

    With ``ymin = 0`` and ``ymax = 1``, ``LINEAR`` (the default) is::

        y = 0                                   if x <= c - 0.5 - (w - 1) / 2
        y = 1                                   if x >  c - 0.5 + (w - 1) / 2
        y = (x - (c - 0.5)) / (w - 1) + 0.5     otherwise

    ``LINEAR_EXACT`` is ``(x - c) / w + 0.5`` limited to [0, 1], and ``SIGMOID`` is
    ``1 / (1 + exp(-4 (x - c) / w))``.

    Parameters
    ----------
    values : numpy.ndarray
        Modality values (after rescale slope and intercept).
    center, width : float
        Window center and width.
    function : str
        The header's VOILUTFunction.

    Returns
    -------
    numpy.ndarray
        float64 values in [0, 1].
    """
    x = np.asarray(values, dtype=np.float64)
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((x - center) / width + 0.5, 0.0, 1.0)
    if width == 1:  # the middle branch is empty: a threshold at c - 0.5
        return (x > center - 0.5).astype(np.float64)
    # Limiting the linear ramp to [0, 1] is exactly the standard's three branches.
    return np.clip((x - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


# --------------------------------------------------------------------------- dispatch


def read_image(path: str | Path, *, window: Window = None,
               nifti_slice: NiftiSlice = None) -> np.ndarray:
    """Read an image file as a float32, channel-first array.

    Parameters
    ----------
    path : str or pathlib.Path
        A PNG/JPEG/BMP/TIFF, DICOM or NIfTI file (see the module docstring).
    window : None, "header" or (center, width)
        None returns modality values. ``(center, width)`` maps every format to [0, 1] with
        the DICOM linear window (:func:`apply_window`). ``"header"`` uses the first
        WindowCenter/WindowWidth (and the VOILUTFunction) of a DICOM header.
    nifti_slice : (plane or axis, index or "middle"), optional
        For NIfTI volumes: return the 2-D slice ``(1, H, W)`` normal to the plane
        (``"axial"``, ``"coronal"``, ``"sagittal"``, from the affine's orientation) or to an
        array axis (0, 1, 2); H and W are the two remaining array axes in file order. Other
        formats are read whole.

    Returns
    -------
    numpy.ndarray
        float32, ``(C, H, W)`` for 2-D images and ``(C, D, H, W)`` for volumes.

    Notes
    -----
    DICOM: pixel values go through the modality transform (RescaleSlope/RescaleIntercept or
    a Modality LUT, via ``pydicom.pixels.apply_rescale``), then the window, then MONOCHROME1
    inversion so that high values are bright: ``1 - y`` after a window, otherwise
    ``lo + hi - x`` with ``[lo, hi]`` the rescaled range that BitsStored and
    PixelRepresentation can hold (the same stored value inverts the same way in every file,
    which inverting by each image's own min and max would not). Colour DICOM is returned as RGB.

    NIfTI: ``get_fdata(dtype=float32)`` applies the header's scl_slope/scl_inter. The array
    keeps nibabel's voxel order ``(i, j, k)`` and is not reoriented. Axes of length 1 after
    the third are dropped (a 2-D slice stored as ``(X, Y, 1)`` stays 3-D); a 4-D series with
    more than one volume is refused.

    Raises
    ------
    InputError
        The file is missing, truncated, unreadable or of an unsupported kind.
    ConfigError
        ``window`` or ``nifti_slice`` has an invalid form.
    MissingExtraError
        Pillow, pydicom or nibabel is needed and not installed.
    """
    path = Path(path)
    window = check_window(window)
    nifti_slice = check_nifti_slice(nifti_slice)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise InputError(f"Image {path} {what}; check the image path (and the folder it is "
                         "relative to).")
    name = path.name.lower()
    if name.endswith(PILLOW_SUFFIXES):
        array = _read_pillow(path)
    elif name.endswith(NIFTI_SUFFIXES):
        array = _read_nifti(path, nifti_slice)
    elif name.endswith(DICOM_SUFFIXES) or _has_dicom_preamble(path):
        # DICOM applies its own window (it must come before MONOCHROME1 inversion).
        return _read_dicom(path, window)
    else:
        raise InputError(
            f"Image {path} has an unsupported file type '{''.join(path.suffixes) or '(none)'}' "
            f"and is not DICOM; supported: {_SUPPORTED}, or DICOM files without a suffix."
        )
    if window == "header":
        raise InputError(f"Image {path} has no window header: window = \"header\" works for "
                         "DICOM only; set window = [center, width] or remove it.")
    if window is not None:
        array = apply_window(array, *window)
    return np.asarray(array, dtype=np.float32)


def _has_dicom_preamble(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _unreadable(path: Path, kind: str, exc: BaseException, fix: str) -> InputError:
    detail = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever the library said
    return InputError(f"Image {path} cannot be read as {kind} ({detail}); {fix}")


# --------------------------------------------------------------------------- Pillow


def _read_pillow(path: Path) -> np.ndarray:
    try:
        from PIL import Image, ImageFile, ImageSequence
    except ImportError:
        raise MissingExtraError("pillow", "imaging", "Reading PNG/JPEG/BMP/TIFF images") from None
    # WeasyPrint sets Pillow's process-wide LOAD_TRUNCATED_IMAGES = True when imported (the PDF
    # report does), which would silently pad a truncated scan with grey: an audit must refuse it.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    # Pillow signals bad files with several types; SyntaxError is what some of its plugins raise
    # for broken headers, and DecompressionBombError is not an OSError.
    errors = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
    try:
        with Image.open(path) as image:
            pages = [_pillow_page(page) for page in ImageSequence.Iterator(image)]
    except errors as exc:
        raise _unreadable(path, "an image", exc,
                          "the file may be truncated or corrupt; re-export it.") from exc
    if len(pages) == 1:
        return pages[0]
    if len({page.shape for page in pages}) > 1:
        raise InputError(f"Image {path} has {len(pages)} pages of different sizes; a multi-page "
                         "TIFF is read as a volume, so every page must have the same size.")
    return np.stack(pages, axis=1)  # (C, D, H, W)


def _pillow_page(image: Any) -> np.ndarray:
    mode = image.mode
    if mode in ("LA", "La", "PA"):
        image = image.convert("L") if mode != "PA" else image.convert("RGB")
    elif mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBa", "RGBX"):
        image = image.convert("RGB")
    elif mode == "1":
        image = image.convert("L")  # 0/255, as Pillow displays it
    # np.asarray forces the decode: a truncated file fails here, inside the caller's try.
    array = np.asarray(image)
    if array.ndim == 2:
        return array.astype(np.float32)[None]
    return np.moveaxis(array[..., :3], -1, 0).astype(np.float32)  # drops alpha


# --------------------------------------------------------------------------- DICOM


def _read_dicom(path: Path, window: Window) -> np.ndarray:
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
        from pydicom.pixels import apply_color_lut, apply_rescale
    except ImportError:
        raise MissingExtraError("pydicom", "imaging", "Reading DICOM images") from None
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError) as exc:
        raise _unreadable(path, "DICOM", exc,
                          "the file may be truncated, or not DICOM despite its name.") from exc
    if not any(tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise InputError(f"DICOM file {path} has no pixel data (Modality "
                         f"{ds.get('Modality', 'unknown')}); list only image files.")
    try:
        pixels = ds.pixel_array
    except (RuntimeError, NotImplementedError) as exc:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", "its transfer syntax")
        raise InputError(f"DICOM file {path} is compressed with {name}, which pydicom cannot "
                         f"decode here; {_DECODER_HINT}.") from exc
    except (ValueError, AttributeError, TypeError, KeyError, OSError) as exc:
        raise _unreadable(path, "DICOM pixel data", exc,
                          "the file may be truncated or its image header inconsistent.") from exc

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        return _dicom_gray(path, ds, pixels, photometric, window, apply_rescale)
    if photometric == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds)
    elif int(ds.get("SamplesPerPixel", 1)) != 3:
        raise InputError(f"DICOM file {path} has PhotometricInterpretation {photometric}, "
                         "which is not supported; convert it to MONOCHROME2 or RGB.")
    if window == "header":
        raise InputError(f"DICOM file {path} is a colour image ({photometric}); window = "
                         "\"header\" applies to grayscale DICOM only.")
    # pydicom gives (H, W, 3) or (F, H, W, 3); channels go first.
    array = np.moveaxis(pixels, -1, 0).astype(np.float64)
    if window is not None:
        array = apply_window(array, *window)
    return array.astype(np.float32)


def _dicom_gray(path: Path, ds: Any, pixels: np.ndarray, photometric: str, window: Window,
                apply_rescale: Any) -> np.ndarray:
    values = np.asarray(apply_rescale(pixels, ds), dtype=np.float64)
    if window is not None:
        center, width, function = _header_window(path, ds) if window == "header" else (*window, "LINEAR")
        values = apply_window(values, center, width, function)
        if photometric == "MONOCHROME1":
            values = 1.0 - values
    elif photometric == "MONOCHROME1":
        lo, hi = _stored_range(ds, apply_rescale)
        values = lo + hi - values
    return values.astype(np.float32)[None]  # (1, H, W), or (1, F, H, W) for F frames


def _stored_range(ds: Any, apply_rescale: Any) -> tuple[float, float]:
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)))
    if int(ds.get("PixelRepresentation", 0)) == 1:
        stored = np.array([-(2 ** (bits - 1)), 2 ** (bits - 1) - 1], dtype=np.float64)
    else:
        stored = np.array([0, 2 ** bits - 1], dtype=np.float64)
    rescaled = np.asarray(apply_rescale(stored, ds), dtype=np.float64)
    return float(rescaled.min()), float(rescaled.max())


def _first(value: Any) -> float:
    # WindowCenter/WindowWidth may hold several windows; the first is the default one.
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0]
    return float(value)


def _header_window(path: Path, ds: Any) -> tuple[float, float, str]:
    if "WindowCenter" not in ds or "WindowWidth" not in ds:
        raise InputError(f"DICOM file {path} has no WindowCenter/WindowWidth; set window = "
                         "[center, width] instead of \"header\", or remove window.")
    try:
        center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
    except (TypeError, ValueError, IndexError) as exc:
        raise InputError(f"DICOM file {path} has an unreadable window ({exc}); set window = "
                         "[center, width].") from exc
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        raise InputError(f"DICOM file {path} has VOILUTFunction {function}, which is not "
                         "supported; set window = [center, width].")
    invalid = width < 1 if function == "LINEAR" else width <= 0  # PS3.3 C.11.2.1.2, C.11.2.1.3
    if invalid:
        raise InputError(f"DICOM file {path} has WindowWidth {width}, which is invalid for "
                         f"{function}; set window = [center, width].")
    return center, width, function


# --------------------------------------------------------------------------- NIfTI


def _read_nifti(path: Path, nifti_slice: NiftiSlice) -> np.ndarray:
    try:
        import nibabel
        from nibabel.filebasedimages import ImageFileError
    except ImportError:
        raise MissingExtraError("nibabel", "imaging", "Reading NIfTI images") from None
    import zlib

    try:
        image = nibabel.load(path)
        data = image.get_fdata(dtype=np.float32)
    except (ImageFileError, OSError, EOFError, ValueError, zlib.error) as exc:
        raise _unreadable(path, "NIfTI", exc, "the file may be truncated or corrupt.") from exc
    shape = data.shape
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim > 3:
        raise InputError(f"NIfTI file {path} is a {len(shape)}-D series of shape {shape}; only "
                         "2-D images and 3-D volumes are read. Extract one volume first "
                         "(e.g. fslroi, or nibabel's image.slicer[..., 0]).")
    if nifti_slice is None:
        return data[None]
    if data.ndim != 3:
        raise InputError(f"NIfTI file {path} is 2-D (shape {shape}); nifti_slice needs a 3-D "
                         "volume; remove nifti_slice.")
    axis, index = nifti_slice
    if isinstance(axis, str):
        plane = axis
        codes = nibabel.aff2axcodes(image.affine)
        axis = next((i for i, code in enumerate(codes) if code in _PLANES[plane]), None)
        if axis is None:
            raise InputError(f"NIfTI file {path} has an affine without a clear orientation "
                             f"(axis codes {codes}), so the {plane} plane is unknown; give an "
                             "array axis instead, e.g. nifti_slice = [2, \"middle\"].")
    size = data.shape[axis]
    position = size // 2 if index == "middle" else index
    if not -size <= position < size:
        raise InputError(f"NIfTI file {path} has {size} slices along axis {axis} (shape "
                         f"{shape}); slice {index} does not exist.")
    return np.take(data, position, axis=axis)[None]
