"""Named image perturbations at five severities, seeded per sample, for the robustness audit.

Every perturbation takes a floating-point torch batch ``(N, C, H, W)`` or ``(N, C, D, H, W)``
of *preprocessed* intensities (what the model receives) and returns a new tensor of the same
shape, dtype and device. Images are assumed to be roughly in ``[0, 1]`` after normalisation,
but no perturbation relies on it: each computes its scale from the image's own intensity
range, robustly as the 1st to 99th percentile (falling back to min-max, then to 1 for a
constant image), so z-scored or HU-valued inputs get the same relative perturbation.

Families
--------
``generic``
    Batched torch operations: ``gaussian_noise``, ``gaussian_blur``, ``contrast``,
    ``brightness``, ``gamma``, ``jpeg`` (Pillow, one image or slice at a time),
    ``downsample``, ``rotation``, ``translation``.
``mri``
    MONAI transforms, one sample at a time: ``mri_rician_noise`` (``RandRicianNoise``),
    ``mri_bias_field`` (``RandBiasField``), ``mri_gibbs`` (``RandGibbsNoise``),
    ``mri_kspace_spike`` (``RandKSpaceSpikeNoise``). MONAI 1.6 has no ghosting or motion
    transform, so ``mri_ghosting`` and ``mri_motion`` are written here with ``torch.fft``.
``xray``
    ``xray_exposure`` (lower dose: Poisson quantum noise in transmission space) and
    ``xray_gamma`` (detector/look-up-table gamma, brighter or darker per image).
``ct``
    ``ct_noise``: MONAI ``RandGaussianNoise`` with its standard deviation given in HU.

Seeding
-------
Each sample gets its own generator, seeded from ``(seed, perturbation name, sample id)``
through :func:`sample_seed`. Pass ``sample_ids`` (patient or image ids) and a patient gets
the same perturbation whatever batch it is in and wherever it sits; without them the
position in the batch is the id. The severity is deliberately *not* part of the seed: the
five severities of one image share their random draws (common random numbers), so the
noise pattern, rotation direction or spike location stays the same and only its size
grows. The severity curve then measures the severity, not a new draw at each level, and
the degradation is monotone per image for the additive perturbations. Draws are
reproducible for a given device type (CPU and CUDA generators produce different streams).

Every perturbation is monotone in severity: the PSNR against the clean image (:func:`psnr`)
falls as the severity rises, averaged over a batch of smooth images (checked in the tests,
2-D and 3-D). On fine texture the PSNR of ``translation`` levels off once the shift exceeds
the texture's scale (the image still moves further); ``mri_motion`` is therefore graded by
how much of k-space is corrupted rather than by the size of the movement.

torch, MONAI and Pillow are imported when a perturbation is applied, not when this module
is imported, so ``import audit.robustness`` stays cheap.

References
----------
Hendrycks D, Dietterich T (2019) Benchmarking neural network robustness to common
corruptions and perturbations. ICLR (ImageNet-C: five severities per corruption).
Perez-Garcia F, Sparks R, Ourselin S (2021) TorchIO. Comput Methods Programs Biomed 208:106236
(k-space ghosting and motion models). Gudbjartsson H, Patz S (1995) The Rician distribution
of noisy MRI data. Magn Reson Med 34:910.
"""

from __future__ import annotations

import hashlib
import math
import operator
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.errors import ConfigError, InputError, MissingExtraError

if TYPE_CHECKING:
    import torch

__all__ = ["CT_WINDOW_HU", "FAMILIES", "MODALITIES", "PERTURBATIONS", "SEVERITY_LEVELS", "Perturbation",
           "get_perturbations", "psnr", "sample_seed"]

#: The severities every perturbation accepts.
SEVERITY_LEVELS = (1, 2, 3, 4, 5)
#: Perturbation families; ``generic`` applies to every modality.
FAMILIES = ("generic", "mri", "xray", "ct")
#: Modality names accepted by :func:`get_perturbations` (DICOM codes included) -> family.
MODALITIES = {"mri": "mri", "mr": "mri", "xray": "xray", "x-ray": "xray", "cr": "xray",
              "dx": "xray", "ct": "ct", "generic": "generic"}

# Percentiles of the robust intensity range: outliers (a bright marker, a hot pixel) would
# otherwise set the noise scale for the whole image.
_RANGE_QUANTILES = (0.01, 0.99)
# ct_noise states its sd in HU; the preprocessed intensity range is taken to span a
# soft-tissue window of this width (W 400), the usual display window for CT models.
CT_WINDOW_HU = 400.0
# xray_exposure: fraction of quanta transmitted through the most attenuating (brightest)
# pixel; 5% gives the 3-decade-ish dynamic range of a chest radiograph.
_XRAY_MIN_TRANSMISSION = 0.05


@dataclass(frozen=True)
class Perturbation:
    """One named image perturbation defined at five severities.

    Parameters
    ----------
    name : str
        Stable snake_case id (``"gaussian_noise"``); configs and reports refer to it.
    family : str
        ``"generic"``, ``"mri"``, ``"xray"`` or ``"ct"``.
    description : str
        Plain words for the report, with the parameter range.
    severities : tuple of float
        The parameter value at severities 1 to 5 (its unit is in ``description``).
    stochastic : bool
        Whether the output depends on the seed (``False`` for blur, contrast, ...).
    kernel : callable
        ``kernel(batch, value, seeds) -> Tensor``: the implementation, given the parameter
        value and one integer seed per sample. Not part of the comparison or the repr.
    """

    name: str
    family: str
    description: str
    severities: tuple[float, ...]
    stochastic: bool
    kernel: Callable[..., Any] = field(repr=False, compare=False)

    def apply(self, batch: torch.Tensor, severity: int, seed: int,
              sample_ids: Sequence[int | str] | None = None) -> torch.Tensor:
        """Perturb a batch of images.

        Parameters
        ----------
        batch : torch.Tensor
            Floating-point images ``(N, C, H, W)`` or ``(N, C, D, H, W)``, finite. Not
            modified.
        severity : int
            1 (mild) to 5 (severe).
        seed : int
            Non-negative seed; the same seed gives identical output.
        sample_ids : sequence of int or str, optional
            One id per image (patient or image id). The perturbation of an image then
            depends only on ``(seed, name, severity, its id, the image)``, not on the rest of
            the batch. Defaults to the positions ``0 .. N-1``.

        Returns
        -------
        torch.Tensor
            A new tensor with the shape, dtype and device of ``batch``.

        Raises
        ------
        ConfigError
            Severity outside 1..5 or a negative seed.
        InputError
            Not a floating 4-D/5-D tensor, non-finite values, or ``sample_ids`` of the wrong
            length.
        """
        torch = _import_torch()
        value = self._value(severity)
        _check_seed(seed)
        _check_batch(torch, batch, self.name)
        seeds = _sample_seeds(seed, self.name, sample_ids, batch.shape[0])
        if batch.shape[0] == 0:
            return batch.clone()
        # float16/bfloat16 lack some CPU kernels (kthvalue, fft): compute in float32.
        work = batch.detach()
        if work.dtype in (torch.float16, torch.bfloat16):
            work = work.float()
        with torch.no_grad():
            out = self.kernel(work, value, seeds)
        return out.to(device=batch.device, dtype=batch.dtype)

    def _value(self, severity: int) -> float:
        if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) \
                or severity not in SEVERITY_LEVELS:
            raise ConfigError(f"Severity {severity!r} for perturbation '{self.name}' is not "
                              f"valid: expected an integer from 1 to {len(self.severities)}.")
        return self.severities[int(severity) - 1]


def get_perturbations(names: Sequence[str] | None,
                      modality: str | None = None) -> list[Perturbation]:
    """Look perturbations up by name, or choose those that suit a modality.

    Parameters
    ----------
    names : sequence of str or None
        Perturbation names, returned in this order (repeats dropped). ``None`` selects all
        generic perturbations plus those of ``modality``'s family.
    modality : str, optional
        ``"mri"``/``"mr"``, ``"xray"``/``"cr"``/``"dx"``, ``"ct"`` or ``"generic"`` (case
        insensitive). With ``names``, a perturbation of another modality's family is an
        error (k-space artefacts on a radiograph would measure nothing real).

    Returns
    -------
    list of Perturbation

    Raises
    ------
    ConfigError
        An unknown name (the message lists the valid ones), an unknown modality, or a
        perturbation that does not fit the modality.
    """
    family = None
    if modality is not None:
        family = MODALITIES.get(str(modality).strip().lower())
        if family is None:
            raise ConfigError(f"Unknown modality {modality!r} for image perturbations. "
                              f"Valid modalities: {', '.join(sorted(MODALITIES))}.")
    if names is None:
        return [p for p in PERTURBATIONS.values() if p.family in ("generic", family)]
    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in PERTURBATIONS]
    if unknown:
        raise ConfigError(
            f"Unknown image perturbation(s): {', '.join(repr(n) for n in unknown)}. "
            f"Valid names: {', '.join(sorted(PERTURBATIONS))}.")
    chosen = [PERTURBATIONS[n] for n in dict.fromkeys(names)]
    if family is not None and family != "generic":
        wrong = [p for p in chosen if p.family not in ("generic", family)]
        if wrong:
            raise ConfigError(
                f"Perturbation(s) {', '.join(repr(p.name) for p in wrong)} are for "
                f"{'/'.join(sorted({p.family for p in wrong}))} images, but the modality is "
                f"{modality!r}. Remove them or use generic or {family} perturbations: "
                f"{', '.join(p.name for p in PERTURBATIONS.values() if p.family in ('generic', family))}.")
    return chosen


def psnr(clean: torch.Tensor, perturbed: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio of each perturbed image against its clean image.

    ``PSNR = 10 log10(R^2 / MSE)`` with ``R = max - min`` of the clean image (1 for a
    constant image) and the MSE over all channels and voxels of that image.

    Parameters
    ----------
    clean, perturbed : torch.Tensor
        Batches of the same shape ``(N, ...)``.

    Returns
    -------
    torch.Tensor
        Shape ``(N,)``, float64, in dB; ``inf`` where the images are identical.
    """
    torch = _import_torch()
    if clean.shape != perturbed.shape:
        raise InputError(f"psnr needs batches of the same shape; got {tuple(clean.shape)} "
                         f"and {tuple(perturbed.shape)}.")
    a = clean.detach().reshape(clean.shape[0], -1).double()
    b = perturbed.detach().reshape(perturbed.shape[0], -1).double().to(a.device)
    data_range = a.amax(dim=1) - a.amin(dim=1)
    data_range = torch.where(data_range > 0, data_range, torch.ones_like(data_range))
    mse = ((a - b) ** 2).mean(dim=1)
    return 10.0 * torch.log10(data_range ** 2 / mse)


def sample_seed(seed: int, name: str, sample_id: int | str) -> int:
    """The integer seed of one sample's generator, in ``[0, 2**32)``.

    Derived with :class:`numpy.random.SeedSequence` from ``seed``, a CRC-32 of ``name``
    (stable across processes, unlike ``hash``) and ``sample_id`` (a non-negative integer, or
    a string hashed with BLAKE2b). It seeds both the torch generator and MONAI's
    ``set_random_state`` for that sample.
    """
    if isinstance(sample_id, str):
        tag = 1
        value = int.from_bytes(hashlib.blake2b(sample_id.encode("utf-8"), digest_size=8)
                               .digest(), "little")
    else:
        try:
            value = operator.index(sample_id)
        except TypeError:
            raise InputError(f"Sample id {sample_id!r} is not an integer or a string.") \
                from None
        if value < 0:
            raise InputError(f"Sample id {value} is negative; integer ids must be >= 0.")
        tag = 0
    entropy = [int(seed), zlib.crc32(name.encode("utf-8")), tag, value]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0])


# ---------------------------------------------------------------------------- validation --

def _import_torch():
    try:
        import torch
    except ImportError:
        raise MissingExtraError("torch", "torch", "Image perturbations") from None
    return torch


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"Perturbation seed must be a non-negative integer; got {seed!r}.")


def _check_batch(torch, batch, name: str) -> None:
    if not isinstance(batch, torch.Tensor):
        raise InputError(f"Perturbation '{name}' needs a torch.Tensor batch; got "
                         f"{type(batch).__name__}.")
    if batch.ndim not in (4, 5):
        raise InputError(f"Perturbation '{name}' needs a batch (N, C, H, W) or "
                         f"(N, C, D, H, W); got shape {tuple(batch.shape)}.")
    if not batch.is_floating_point():
        raise InputError(f"Perturbation '{name}' needs floating-point intensities; got "
                         f"{batch.dtype}. Convert with batch.float() after preprocessing.")
    if not bool(torch.isfinite(batch).all()):
        raise InputError(f"Perturbation '{name}': the batch has NaN or infinite values.")


def _sample_seeds(seed: int, name: str, sample_ids, n: int) -> list[int]:
    if sample_ids is None:
        sample_ids = range(n)
    elif isinstance(sample_ids, str) or len(sample_ids) != n:
        got = 1 if isinstance(sample_ids, str) else len(sample_ids)
        raise InputError(f"sample_ids has {got} ids for a batch of {n} images; give one id "
                         "per image.")
    return [sample_seed(seed, name, s) for s in sample_ids]


# ------------------------------------------------------------------------------ helpers --

def _spatial_dims(x) -> tuple[int, ...]:
    return tuple(range(2, x.ndim))


def _bcast(values, x):
    """Per-image values (N,) reshaped to broadcast over (N, C, ...)."""
    return values.reshape((-1,) + (1,) * (x.ndim - 1))


def _robust_range(x):
    """Lower bound and span of each image's intensities, shaped to broadcast: (N, 1, ...)."""
    torch = _import_torch()
    flat = x.reshape(x.shape[0], -1)
    m = flat.shape[1]
    # kthvalue instead of torch.quantile: quantile refuses inputs above 2**24 elements
    # (a 256**3 volume), and the lower order statistic is all a noise scale needs.
    lo = flat.kthvalue(int(_RANGE_QUANTILES[0] * (m - 1)) + 1, dim=1).values
    hi = flat.kthvalue(int(_RANGE_QUANTILES[1] * (m - 1)) + 1, dim=1).values
    span = hi - lo
    mn, mx = flat.amin(dim=1), flat.amax(dim=1)
    span = torch.where(span > 0, span, mx - mn)
    lo = torch.where(hi > lo, lo, mn)
    span = torch.where(span > 0, span, torch.ones_like(span))
    return _bcast(lo, x), _bcast(span, x)


def _minmax(x):
    """Minimum and (non-zero) min-max range of each image, shaped (N, 1, ...)."""
    torch = _import_torch()
    flat = x.reshape(x.shape[0], -1)
    mn, mx = flat.amin(dim=1), flat.amax(dim=1)
    rng = torch.where(mx > mn, mx - mn, torch.ones_like(mx))
    return _bcast(mn, x), _bcast(rng, x)


def _generator(torch, seed: int, device):
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def _randn_per_sample(x, seeds):
    """Standard normal noise shaped like x, each sample drawn from its own generator."""
    torch = _import_torch()
    return torch.stack([torch.randn(x.shape[1:], generator=_generator(torch, s, x.device),
                                    device=x.device, dtype=x.dtype) for s in seeds])


def _rngs(seeds):
    """numpy generators for per-sample scalar parameters (a sign, a direction)."""
    return [np.random.default_rng(s) for s in seeds]


# ---------------------------------------------------------------------- generic kernels --

def _gaussian_noise(x, sd, seeds):
    _, span = _robust_range(x)
    return x + sd * span * _randn_per_sample(x, seeds)


def _gaussian_blur(x, sigma, seeds):
    torch = _import_torch()
    import torch.nn.functional as F

    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    n_sp = x.ndim - 2
    conv = F.conv2d if n_sp == 2 else F.conv3d
    # Channels are blurred independently: fold them into the batch, one input channel.
    y = x.reshape((-1, 1) + tuple(x.shape[2:]))
    for axis in range(n_sp):
        shape = [1, 1] + [1] * n_sp
        shape[2 + axis] = kernel.numel()
        pad = [0, 0] * n_sp
        # F.pad lists padding from the last dimension backwards.
        pad[2 * (n_sp - 1 - axis)] = pad[2 * (n_sp - 1 - axis) + 1] = radius
        # Replicate, not zero, padding: zeros would darken every border.
        y = conv(F.pad(y, pad, mode="replicate"), kernel.reshape(shape))
    return y.reshape(x.shape)


def _contrast(x, factor, seeds):
    mean = _bcast(x.reshape(x.shape[0], -1).mean(dim=1), x)
    return mean + factor * (x - mean)


def _brightness(x, shift, seeds):
    _, span = _robust_range(x)
    return x + shift * span


def _gamma_map(x, gamma):
    # Gamma needs values in [0, 1]: min-max (not the robust range) so nothing is clipped.
    mn, rng = _minmax(x)
    return mn + rng * ((x - mn) / rng).clamp(0, 1) ** gamma


def _gamma(x, gamma, seeds):
    return _gamma_map(x, gamma)


def _jpeg(x, quality, seeds):
    torch = _import_torch()
    try:
        from PIL import Image
    except ImportError:
        raise MissingExtraError("pillow", "imaging", "The jpeg perturbation") from None
    import io

    mn, rng = _minmax(x)
    # 8-bit quantisation over each image's (volume's) own range: JPEG works on bytes.
    codes = ((x - mn) / rng * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    out = np.empty(codes.shape, dtype=np.float32)
    n, c = codes.shape[:2]
    # A volume is compressed slice by slice over its last two (in-plane) axes.
    for idx in np.ndindex(codes.shape[:-2] if c != 3 else (n,) + codes.shape[2:-2]):
        if c == 3:
            i, rest = idx[0], idx[1:]
            plane = np.moveaxis(codes[(i, slice(None)) + rest], 0, -1)  # (H, W, 3)
            out[(i, slice(None)) + rest] = np.moveaxis(_jpeg_roundtrip(Image, io, plane,
                                                                       quality, "RGB"), -1, 0)
        else:
            out[idx] = _jpeg_roundtrip(Image, io, codes[idx], quality, "L")
    decoded = torch.from_numpy(out).to(device=x.device, dtype=x.dtype)
    return mn + rng * decoded / 255


def _jpeg_roundtrip(Image, io, plane, quality, mode):
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(plane)).convert(mode).save(
        buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert(mode), dtype=np.float32)


def _downsample(x, factor, seeds):
    import torch.nn.functional as F

    size = tuple(x.shape[2:])
    small = tuple(max(1, round(s / factor)) for s in size)
    # Area averaging on the way down (what a coarser detector does, and no aliasing);
    # linear interpolation back up to the model's input grid.
    down = F.interpolate(x, size=small, mode="area")
    mode = "bilinear" if x.ndim == 4 else "trilinear"
    return F.interpolate(down, size=size, mode=mode, align_corners=False)


def _warp(x, theta):
    """Resample x through an affine map in normalised coordinates (N, d, d+1)."""
    import torch.nn.functional as F

    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Border padding: zeros would paint a frame of "black" that is far from the background
    # of a z-scored image.
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                         align_corners=False)


def _rotation(x, degrees, seeds):
    torch = _import_torch()
    n_sp = x.ndim - 2
    h, w = x.shape[-2], x.shape[-1]
    signs = [1.0 if r.random() < 0.5 else -1.0 for r in _rngs(seeds)]
    angle = torch.tensor(signs, dtype=x.dtype, device=x.device) * math.radians(degrees)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros((x.shape[0], n_sp, n_sp + 1), dtype=x.dtype, device=x.device)
    # Rotation in the in-plane (H, W) axes, about the depth axis for a volume. Normalised
    # coordinates stretch each axis to [-1, 1]: the H/W factors keep the rotation rigid in
    # pixels on a non-square image.
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
    if n_sp == 3:
        theta[:, 2, 2] = 1.0
    return _warp(x, theta)


def _translation(x, fraction, seeds):
    torch = _import_torch()
    n_sp = x.ndim - 2
    directions = []
    for r in _rngs(seeds):
        v = r.standard_normal(n_sp)
        directions.append(v / np.linalg.norm(v))
    d = torch.tensor(np.array(directions), dtype=x.dtype, device=x.device)
    theta = torch.zeros((x.shape[0], n_sp, n_sp + 1), dtype=x.dtype, device=x.device)
    for i in range(n_sp):
        theta[:, i, i] = 1.0
    # The image spans 2 in normalised coordinates, so a shift of `fraction` of its size is
    # 2 * fraction there.
    theta[:, :, n_sp] = 2 * fraction * d
    return _warp(x, theta)


# ------------------------------------------------------------------------- MONAI kernels --

def _monai_per_sample(x, seeds, make):
    """Apply a MONAI transform built by ``make(i, image)`` to each sample, seeded per sample.

    MONAI transforms are channel-first without a batch axis and keep their generator on the
    instance, so each sample gets a fresh, freshly seeded instance.
    """
    torch = _import_torch()
    outs = []
    for i, s in enumerate(seeds):
        image = x[i].clone()  # some MONAI transforms write into their input
        transform = make(i, image)
        transform.set_random_state(seed=s)
        y = transform(image)
        y = y.as_tensor() if hasattr(y, "as_tensor") else torch.as_tensor(y)
        outs.append(y.to(device=x.device, dtype=x.dtype))
    return torch.stack(outs)


def _import_monai_transforms():
    try:
        import monai.transforms as mt
    except ImportError:
        raise MissingExtraError("monai", "torch", "MRI and CT perturbations") from None
    return mt


def _mri_rician_noise(x, sd, seeds):
    mt = _import_monai_transforms()
    _, span = _robust_range(x)
    span = span.flatten().tolist()
    return _monai_per_sample(x, seeds, lambda i, img: mt.RandRicianNoise(
        prob=1.0, mean=0.0, std=float(sd * span[i]), sample_std=False, relative=False))


def _mri_bias_field(x, coeff, seeds):
    mt = _import_monai_transforms()
    mn, _ = _minmax(x)
    # The field multiplies the MR signal, whose zero is the background: measure from each
    # image's minimum so a z-scored image is not flipped around its mean. For images whose
    # minimum is 0 (magnitude images in [0, 1]) this is MONAI's transform unchanged.
    # A symmetric coefficient range makes a field that brightens some regions and darkens
    # others, instead of MONAI's default (0, c) that mostly brightens.
    out = _monai_per_sample(x - mn, seeds, lambda i, img: mt.RandBiasField(
        degree=3, coeff_range=(-coeff, coeff), prob=1.0))
    return out + mn


def _mri_gibbs(x, alpha, seeds):
    mt = _import_monai_transforms()
    return _monai_per_sample(x, seeds, lambda i, img: mt.RandGibbsNoise(
        prob=1.0, alpha=(alpha, alpha)))


def _mri_kspace_spike(x, amplitude, seeds):
    mt = _import_monai_transforms()
    _, span = _robust_range(x)
    span = span.flatten().tolist()
    n_voxels = math.prod(x.shape[2:])
    # A k-space sample of magnitude m becomes, after the inverse FFT (which divides by the
    # number of voxels), a stripe pattern of amplitude m / n_voxels. MONAI takes the log
    # magnitude; ask for stripes of `amplitude` times the image's intensity range.
    def make(i, img):
        log_m = math.log(amplitude * span[i] * n_voxels)
        return mt.RandKSpaceSpikeNoise(prob=1.0, intensity_range=(log_m, log_m),
                                       channel_wise=True)
    return _monai_per_sample(x, seeds, make)


def _ct_noise(x, sd_hu, seeds):
    mt = _import_monai_transforms()
    _, span = _robust_range(x)
    span = span.flatten().tolist()
    return _monai_per_sample(x, seeds, lambda i, img: mt.RandGaussianNoise(
        prob=1.0, mean=0.0, std=float(sd_hu / CT_WINDOW_HU * span[i]), sample_std=False))


# --------------------------------------------------------------------- k-space kernels --
# MONAI 1.6 has no ghosting or motion transform (its intensity transforms stop at Gibbs and
# spike noise), so these two follow TorchIO's k-space models with torch.fft.

def _kspace(x):
    torch = _import_torch()
    dims = _spatial_dims(x)
    return torch.fft.fftshift(torch.fft.fftn(x, dim=dims), dim=dims), dims


def _image(k, dims):
    torch = _import_torch()
    # The real part keeps the sign of z-scored inputs (a magnitude would fold negatives).
    return torch.fft.ifftn(torch.fft.ifftshift(k, dim=dims), dim=dims).real


def _phase_axes(x, seeds):
    """Per sample: the phase-encode axis (one of the two in-plane axes) and a numpy rng."""
    rngs = _rngs(seeds)
    return [(x.ndim - 2 + int(r.integers(2)), r) for r in rngs]


def _mri_ghosting(x, strength, seeds):
    torch = _import_torch()
    k, dims = _kspace(x)
    mask = torch.ones(x.shape[:1] + (1,) + tuple(x.shape[2:]), dtype=x.dtype, device=x.device)
    for i, (axis, r) in enumerate(_phase_axes(x, seeds)):
        n_ghosts = int(r.integers(2, 5))
        length = x.shape[axis]
        offset = np.arange(length) - length // 2
        # Every n-th phase-encode line (counted from the centre, so the mask is symmetric and
        # the image stays real) is damped; the centre line is kept, so the mean intensity is.
        lines = (offset % n_ghosts == 0) & (offset != 0)
        line_factor = torch.ones(length, dtype=x.dtype, device=x.device)
        line_factor[torch.from_numpy(lines).to(x.device)] = 1.0 - strength
        shape = [1] * (x.ndim - 1)
        shape[axis - 1] = length
        mask[i] = mask[i] * line_factor.reshape(shape)
    return _image(k * mask, dims).to(x.dtype)


def _mri_motion(x, share, seeds):
    torch = _import_torch()
    k, dims = _kspace(x)
    n_sp = x.ndim - 2
    phase = torch.zeros(x.shape[:1] + (1,) + tuple(x.shape[2:]), dtype=x.dtype,
                        device=x.device)
    late = torch.zeros_like(phase, dtype=torch.bool)
    for i, (axis, r) in enumerate(_phase_axes(x, seeds)):
        # The patient moves once, rigidly, by 2-4 pixels in a random direction, while the
        # last `share` of the phase-encode lines (acquired in order) is still to come; those
        # lines see the moved anatomy. A shift is a linear phase ramp in k-space (Fourier
        # shift theorem). The severity is the share, not the size of the shift: the error
        # of a line, 2 |sin(pi f d)|, is not monotone in the shift d, but adding lines only
        # adds error, so the artefact grows with the severity for every image.
        direction = r.standard_normal(n_sp)
        shift = r.uniform(2.0, 4.0) * direction / np.linalg.norm(direction)
        ramp = torch.zeros(tuple(x.shape[2:]), dtype=x.dtype, device=x.device)
        for a in range(n_sp):
            length = x.shape[2 + a]
            freq = (torch.arange(length, dtype=x.dtype, device=x.device) - length // 2) / length
            shape = [1] * n_sp
            shape[a] = length
            ramp = ramp + (-2 * math.pi * float(shift[a]) * freq).reshape(shape)
        phase[i, 0] = ramp
        length = x.shape[axis]
        after = torch.arange(length, device=x.device) >= length - round(share * length)
        shape = [1] * n_sp
        shape[axis - 2] = length
        late[i, 0] = after.reshape(shape).expand(tuple(x.shape[2:]))
    moved = k * torch.exp(torch.complex(torch.zeros_like(phase), phase))
    return _image(torch.where(late, moved, k), dims).to(x.dtype)


# ----------------------------------------------------------------------- x-ray kernels --

def _xray_exposure(x, quanta, seeds):
    torch = _import_torch()
    mn, rng = _minmax(x)
    t = ((x - mn) / rng).clamp(0, 1)
    # Bright pixels of a radiograph are attenuating ones, which few quanta reach: treat the
    # image as -log transmission, draw Poisson counts there and take the log back, so noise
    # is heaviest in bone and mediastinum, as in an under-exposed film.
    mu = -math.log(_XRAY_MIN_TRANSMISSION)
    expected = quanta * torch.exp(-mu * t)
    counts = torch.stack([torch.poisson(expected[i], generator=_generator(torch, s, x.device))
                          for i, s in enumerate(seeds)])
    # A pixel that caught no quanta reads as half a quantum: log(0) has no value, and a
    # detector reports its floor there rather than infinity.
    noisy = -torch.log(counts.clamp(min=0.5) / quanta) / mu
    return mn + rng * noisy


def _xray_gamma(x, gamma, seeds):
    torch = _import_torch()
    # The detector's or the viewer's look-up table differs from the training site's in
    # either direction: each image gets gamma or 1 / gamma.
    exponents = [gamma if r.random() < 0.5 else 1.0 / gamma for r in _rngs(seeds)]
    g = _bcast(torch.tensor(exponents, dtype=x.dtype, device=x.device), x)
    return _gamma_map(x, g)


# --------------------------------------------------------------------------- registry --

def _pct(values) -> str:
    return f"{values[0] * 100:g}% to {values[-1] * 100:g}%"


_SPECS: list[tuple[str, str, tuple[float, ...], bool, Callable[..., Any], str]] = [
    ("gaussian_noise", "generic", (0.02, 0.05, 0.08, 0.12, 0.20), True, _gaussian_noise,
     "Gaussian noise, sd {pct} of the intensity range"),
    ("gaussian_blur", "generic", (0.5, 1.0, 1.5, 2.0, 3.0), False, _gaussian_blur,
     "Gaussian blur, sigma {first:g} to {last:g} pixels (voxels) along every axis"),
    ("contrast", "generic", (0.85, 0.7, 0.55, 0.4, 0.25), False, _contrast,
     "Lower contrast: deviations from the image mean scaled to {pct}"),
    ("brightness", "generic", (0.05, 0.1, 0.15, 0.2, 0.3), False, _brightness,
     "Brighter image: intensities shifted up by {pct} of the intensity range"),
    ("gamma", "generic", (1.2, 1.4, 1.6, 1.8, 2.0), False, _gamma,
     ("Gamma curve, exponent {first:g} to {last:g} on min-max scaled intensities (darker "
      "mid-tones)")),
    ("jpeg", "generic", (80, 60, 40, 20, 10), False, _jpeg,
     ("JPEG compression at quality {first:g} down to {last:g} (8-bit, slice by slice for "
      "volumes)")),
    ("downsample", "generic", (2.0, 3.0, 4.0, 6.0, 8.0), False, _downsample,
     "Lower resolution: downsampled by a factor {first:g} to {last:g} and interpolated back"),
    ("rotation", "generic", (2.0, 4.0, 6.0, 8.0, 10.0), True, _rotation,
     "In-plane rotation by {first:g} to {last:g} degrees, direction random per image"),
    ("translation", "generic", (0.02, 0.04, 0.06, 0.08, 0.10), True, _translation,
     "Shift by {pct} of the image size, direction random per image"),
    ("mri_rician_noise", "mri", (0.02, 0.04, 0.06, 0.08, 0.10), True, _mri_rician_noise,
     "MRI Rician noise (MONAI RandRicianNoise), sd {pct} of the intensity range"),
    ("mri_bias_field", "mri", (0.05, 0.1, 0.15, 0.2, 0.3), True, _mri_bias_field,
     ("MRI bias field (MONAI RandBiasField, degree 3), coefficients within +/-{first:g} to "
      "+/-{last:g}")),
    ("mri_gibbs", "mri", (0.35, 0.45, 0.55, 0.65, 0.75), False, _mri_gibbs,
     ("MRI Gibbs ringing (MONAI RandGibbsNoise), alpha {first:g} to {last:g} (share of "
      "k-space radius removed)")),
    ("mri_kspace_spike", "mri", (0.02, 0.04, 0.06, 0.08, 0.10), True, _mri_kspace_spike,
     ("MRI k-space spike (MONAI RandKSpaceSpikeNoise): stripes of {pct} of the intensity "
      "range at a random frequency")),
    ("mri_ghosting", "mri", (0.2, 0.35, 0.5, 0.7, 0.9), True, _mri_ghosting,
     ("MRI ghosting: every 2nd-4th phase-encode line damped by {pct} (hand-written; MONAI "
      "has none)")),
    ("mri_motion", "mri", (0.1, 0.2, 0.3, 0.4, 0.45), True, _mri_motion,
     ("MRI motion: a 2-4 pixel rigid shift with {pct} of the phase-encode lines still to "
      "acquire "
      "(hand-written; MONAI has none)")),
    ("xray_exposure", "xray", (2000.0, 1000.0, 500.0, 250.0, 100.0), True, _xray_exposure,
     ("Lower X-ray dose: Poisson quantum noise, {first:g} down to {last:g} quanta per "
      "unattenuated pixel")),
    ("xray_gamma", "xray", (1.1, 1.2, 1.35, 1.5, 1.7), True, _xray_gamma,
     "X-ray look-up-table gamma {first:g} to {last:g} or its inverse, random per image"),
    ("ct_noise", "ct", (10.0, 20.0, 35.0, 50.0, 75.0), True, _ct_noise,
     ("CT noise (MONAI RandGaussianNoise), sd {first:g} to {last:g} HU, taking the intensity "
      f"range as a {CT_WINDOW_HU:g} HU window")),
]

#: Every image perturbation by name: generic first, then MRI, X-ray and CT.
PERTURBATIONS: dict[str, Perturbation] = {
    name: Perturbation(name=name, family=family,
                       description=text.format(pct=_pct(values), first=values[0],
                                               last=values[-1]),
                       severities=tuple(float(v) for v in values), stochastic=stochastic,
                       kernel=kernel)
    for name, family, values, stochastic, kernel, text in _SPECS
}
