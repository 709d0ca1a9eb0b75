"""Image perturbations: determinism, seeding per sample, severity monotonicity, references."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest

from audit.errors import ConfigError, InputError
from audit.robustness import (
    FAMILIES,
    PERTURBATIONS,
    Perturbation,
    get_perturbations,
    psnr,
    sample_seed,
)
from audit.robustness.perturbations import CT_WINDOW_HU

# audit.robustness itself imports neither (checked below); the perturbations need both.
torch = pytest.importorskip("torch")
pytest.importorskip("monai")

NAMES = list(PERTURBATIONS)
STOCHASTIC = [n for n, p in PERTURBATIONS.items() if p.stochastic]
DETERMINISTIC = [n for n, p in PERTURBATIONS.items() if not p.stochastic]


def _blob(yy, xx, cy, cx, width):
    return torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / width)


@pytest.fixture(scope="module")
def batch2d():
    """4 x 1 x 64 x 64 smooth images in [0, 1]: gradients plus two blobs each."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    images = [0.3 * xx + 0.05 * (i + 1) * yy + 0.5 * _blob(yy, xx, 0.5, 0.3 + 0.1 * i, 0.02)
              + 0.5 * _blob(yy, xx, 0.3 + 0.1 * i, 0.7, 0.01) for i in range(4)]
    batch = torch.stack(images)[:, None]
    return (batch - batch.amin()) / (batch.amax() - batch.amin())


@pytest.fixture(scope="module")
def batch3d():
    """2 x 1 x 16 x 32 x 32 smooth volumes: a gradient plus a blob."""
    zz, yy, xx = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 32),
                                torch.linspace(0, 1, 32), indexing="ij")
    volumes = [0.3 * xx + 0.2 * zz + 0.7 * torch.exp(
        -((xx - 0.4 - 0.2 * i) ** 2 + (yy - 0.5) ** 2 + (zz - 0.5) ** 2) / 0.03)
        for i in range(2)]
    return torch.stack(volumes)[:, None]


def _mean_psnr(p: Perturbation, batch, seed=0):
    return [psnr(batch, p.apply(batch, s, seed=seed)).mean().item() for s in range(1, 6)]


# ----------------------------------------------------------------------------- registry --

def test_registry_entries_are_complete():
    assert {"gaussian_noise", "gaussian_blur", "contrast", "brightness", "gamma", "jpeg",
            "downsample", "rotation", "translation", "mri_rician_noise", "mri_bias_field",
            "mri_gibbs", "mri_kspace_spike", "mri_ghosting", "mri_motion", "xray_exposure",
            "xray_gamma", "ct_noise"} <= set(PERTURBATIONS)
    for name, p in PERTURBATIONS.items():
        assert p.name == name
        assert p.family in FAMILIES
        assert len(p.severities) == 5
        assert p.description and "{" not in p.description
        assert name.startswith(p.family + "_") or p.family == "generic"


def test_import_does_not_load_torch_or_monai():
    code = ("import sys, audit.robustness; "
            "print(sorted(m for m in ('torch', 'monai', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_get_perturbations_by_name_keeps_order_and_drops_repeats():
    chosen = get_perturbations(["rotation", "gaussian_noise", "rotation"])
    assert [p.name for p in chosen] == ["rotation", "gaussian_noise"]


def test_get_perturbations_by_modality():
    mri = {p.name for p in get_perturbations(None, modality="MR")}
    generic = {n for n, p in PERTURBATIONS.items() if p.family == "generic"}
    assert generic < mri
    assert "mri_gibbs" in mri and "ct_noise" not in mri and "xray_gamma" not in mri
    assert {p.name for p in get_perturbations(None)} == generic
    assert {p.name for p in get_perturbations(None, modality="dx")} == generic | {
        "xray_exposure", "xray_gamma"}


def test_unknown_name_lists_valid_names():
    with pytest.raises(ConfigError, match=r"'speckle'.*Valid names: brightness, contrast, "
                                          r"ct_noise, downsample"):
        get_perturbations(["gaussian_noise", "speckle"])


def test_unknown_modality_and_wrong_family_are_config_errors():
    with pytest.raises(ConfigError, match="Unknown modality 'pet'.*Valid modalities: cr, ct"):
        get_perturbations(None, modality="pet")
    with pytest.raises(ConfigError, match="'mri_gibbs' are for mri images, but the modality "
                                          "is 'ct'.*ct_noise"):
        get_perturbations(["gaussian_noise", "mri_gibbs"], modality="ct")


# -------------------------------------------------------------- properties of every one --

@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_and_input_preserved_and_deterministic(name, batch2d):
    p = PERTURBATIONS[name]
    before = batch2d.clone()
    out = p.apply(batch2d, 3, seed=11)
    assert out.shape == batch2d.shape and out.dtype == torch.float32
    assert type(out) is torch.Tensor  # MONAI's MetaTensor is unwrapped
    assert torch.equal(batch2d, before)
    assert torch.isfinite(out).all()
    assert not torch.equal(out, batch2d)
    assert torch.equal(out, p.apply(batch2d, 3, seed=11))


@pytest.mark.parametrize("name", STOCHASTIC)
def test_a_different_seed_gives_a_different_output(name, batch2d):
    p = PERTURBATIONS[name]
    assert not torch.equal(p.apply(batch2d, 3, seed=1), p.apply(batch2d, 3, seed=2))


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_ones_ignore_the_seed(name, batch2d):
    p = PERTURBATIONS[name]
    assert torch.equal(p.apply(batch2d, 3, seed=1), p.apply(batch2d, 3, seed=2))


@pytest.mark.parametrize("name", NAMES)
def test_psnr_falls_strictly_with_severity_2d(name, batch2d):
    values = _mean_psnr(PERTURBATIONS[name], batch2d)
    assert all(a > b for a, b in itertools.pairwise(values)), values


@pytest.mark.parametrize("name", NAMES)
def test_volumes_work_and_psnr_falls_strictly_3d(name, batch3d):
    p = PERTURBATIONS[name]
    assert p.apply(batch3d, 2, seed=0).shape == batch3d.shape
    values = _mean_psnr(p, batch3d)
    assert all(a > b for a, b in itertools.pairwise(values)), values


@pytest.mark.parametrize("name", STOCHASTIC)
def test_sample_ids_make_a_patient_independent_of_the_batch(name, batch2d):
    p = PERTURBATIONS[name]
    full = p.apply(batch2d, 4, seed=5, sample_ids=[10, 11, 12, 13])
    other = p.apply(batch2d[[2, 0]], 4, seed=5, sample_ids=[12, 10])
    torch.testing.assert_close(other[0], full[2], rtol=0, atol=1e-6)
    torch.testing.assert_close(other[1], full[0], rtol=0, atol=1e-6)
    # Without ids the position is the id: copies of one image get different draws (some
    # draws are discrete, a rotation's sign, so two copies may agree, but not all eight).
    copies = p.apply(batch2d[[0] * 8], 4, seed=5)
    assert not all(torch.equal(copies[0], c) for c in copies[1:])


def test_string_sample_ids_and_sample_seed():
    assert sample_seed(0, "gaussian_noise", "P001") == sample_seed(0, "gaussian_noise", "P001")
    seeds = {sample_seed(0, "gaussian_noise", "P001"), sample_seed(0, "gaussian_noise", "P002"),
             sample_seed(1, "gaussian_noise", "P001"), sample_seed(0, "rotation", "P001")}
    assert len(seeds) == 4 and all(0 <= s < 2**32 for s in seeds)
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    p = PERTURBATIONS["gaussian_noise"]
    a = p.apply(x, 2, 0, sample_ids=["P001", "P002"])
    b = p.apply(x[[1]], 2, 0, sample_ids=["P002"])
    assert torch.equal(a[1], b[0])


def test_severities_share_their_draws(batch2d):
    # Common random numbers: severity 5 noise is exactly 10x severity 1 noise (0.2 / 0.02).
    p = PERTURBATIONS["gaussian_noise"]
    d1 = p.apply(batch2d, 1, 3) - batch2d
    d5 = p.apply(batch2d, 5, 3) - batch2d
    torch.testing.assert_close(d5, 10 * d1, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
@pytest.mark.parametrize("name", ["gaussian_noise", "gaussian_blur", "mri_rician_noise",
                                  "mri_ghosting", "jpeg"])
def test_other_float_dtypes_are_preserved(name, dtype, batch2d):
    out = PERTURBATIONS[name].apply(batch2d.to(dtype), 2, seed=0)
    assert out.dtype == dtype and out.shape == batch2d.shape


def test_rgb_batch_goes_through_jpeg_and_others():
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for name in ("jpeg", "rotation", "gaussian_blur", "mri_gibbs"):
        assert PERTURBATIONS[name].apply(x, 3, 0).shape == x.shape


def test_empty_batch_comes_back_empty():
    out = PERTURBATIONS["gaussian_noise"].apply(torch.zeros(0, 1, 8, 8), 1, 0)
    assert out.shape == (0, 1, 8, 8)


# ---------------------------------------------------------------------- bad arguments --

@pytest.mark.parametrize("severity", [0, 6, 2.0, True, "3"])
def test_bad_severity_is_a_config_error(severity, batch2d):
    with pytest.raises(ConfigError, match="Severity .* for perturbation 'gaussian_noise' is "
                                          "not valid: expected an integer from 1 to 5"):
        PERTURBATIONS["gaussian_noise"].apply(batch2d, severity, 0)


def test_bad_seed_is_a_config_error(batch2d):
    with pytest.raises(ConfigError, match="seed must be a non-negative integer; got -1"):
        PERTURBATIONS["gaussian_noise"].apply(batch2d, 1, -1)


def test_bad_batches_are_input_errors(batch2d):
    p = PERTURBATIONS["gaussian_noise"]
    with pytest.raises(InputError, match=r"needs a batch \(N, C, H, W\).*got shape \(1, 64, 64\)"):
        p.apply(batch2d[0], 1, 0)
    with pytest.raises(InputError, match="floating-point intensities; got torch.uint8"):
        p.apply((batch2d * 255).to(torch.uint8), 1, 0)
    with pytest.raises(InputError, match="NaN or infinite"):
        p.apply(batch2d.clone().fill_(float("nan")), 1, 0)
    with pytest.raises(InputError, match="needs a torch.Tensor batch; got ndarray"):
        p.apply(batch2d.numpy(), 1, 0)
    with pytest.raises(InputError, match="sample_ids has 2 ids for a batch of 4 images"):
        p.apply(batch2d, 1, 0, sample_ids=[1, 2])
    with pytest.raises(InputError, match="Sample id -3 is negative"):
        p.apply(batch2d, 1, 0, sample_ids=[1, 2, 3, -3])


# ---------------------------------------------------------------------------- psnr --

def test_psnr_hand_computed():
    clean = torch.zeros(2, 1, 10, 10)
    clean[:, 0, 0, 0] = 1.0  # data range 1
    noisy = clean + 0.1  # MSE 0.01
    noisy[1] = clean[1]
    result = psnr(clean, noisy)
    assert result.dtype == torch.float64 and result.shape == (2,)
    assert result[0].item() == pytest.approx(20.0)
    assert math.isinf(result[1].item())
    with pytest.raises(InputError, match="same shape"):
        psnr(clean, noisy[:1])


# ------------------------------------------------------- each one against a reference --

def test_gaussian_noise_sd_is_a_share_of_the_robust_range():
    x = torch.rand(2, 1, 128, 128, generator=torch.Generator().manual_seed(0)) * 4 - 1
    flat = x.reshape(2, -1).double()
    span = torch.quantile(flat, 0.99, dim=1) - torch.quantile(flat, 0.01, dim=1)
    resid = (PERTURBATIONS["gaussian_noise"].apply(x, 5, 0) - x).reshape(2, -1).double()
    np.testing.assert_allclose(resid.std(dim=1) / span, 0.20, rtol=0.03)


def test_gaussian_blur_matches_scipy(batch2d, batch3d):
    from scipy.ndimage import gaussian_filter

    p = PERTURBATIONS["gaussian_blur"]
    for batch, severity in ((batch2d, 2), (batch2d, 5), (batch3d, 3)):
        sigma = p.severities[severity - 1]
        radius = math.ceil(3 * sigma)
        sigmas = (0, 0) + (sigma,) * (batch.ndim - 2)
        radii = (0, 0) + (radius,) * (batch.ndim - 2)
        expected = gaussian_filter(batch.double().numpy(), sigma=sigmas, radius=radii,
                                   mode="nearest")
        np.testing.assert_allclose(p.apply(batch, severity, 0).numpy(), expected, atol=2e-6)


def test_contrast_brightness_and_gamma_formulas(batch2d):
    x = batch2d  # min 0, max 1
    out = PERTURBATIONS["contrast"].apply(x, 5, 0)
    np.testing.assert_allclose(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(out.std(dim=(1, 2, 3)) / x.std(dim=(1, 2, 3)), 0.25, rtol=1e-4)
    flat = x.reshape(4, -1).double()
    span = torch.quantile(flat, 0.99, dim=1) - torch.quantile(flat, 0.01, dim=1)
    shift = (PERTURBATIONS["brightness"].apply(x, 2, 0) - x).reshape(4, -1)
    np.testing.assert_allclose(shift.amax(dim=1), 0.1 * span, rtol=2e-3)
    np.testing.assert_allclose(shift.amin(dim=1), 0.1 * span, rtol=2e-3)
    # Each image of batch2d does not span [0, 1] alone: use one that does.
    one = (x[:1] - x[:1].amin()) / (x[:1].amax() - x[:1].amin())
    torch.testing.assert_close(PERTURBATIONS["gamma"].apply(one, 5, 0), one ** 2.0)


def test_xray_gamma_uses_gamma_or_its_inverse_per_image():
    x = torch.linspace(0, 1, 64).repeat(8, 1, 64, 1)
    out = PERTURBATIONS["xray_gamma"].apply(x, 5, seed=0)
    exponents = []
    for i in range(8):
        if torch.allclose(out[i], x[i] ** 1.7, atol=1e-6):
            exponents.append(1.7)
        else:
            torch.testing.assert_close(out[i], x[i] ** (1 / 1.7), rtol=1e-5, atol=1e-6)
            exponents.append(1 / 1.7)
    assert len(set(exponents)) == 2  # both directions occur among 8 images


def _centroid(image):
    h, w = image.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing="ij")
    weight = image.double()
    return (weight * yy).sum() / weight.sum(), (weight * xx).sum() / weight.sum()


def test_rotation_angle_is_rigid_on_a_non_square_image():
    h, w = 64, 96
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing="ij")
    image = torch.exp(-((yy - 20) ** 2 + (xx - 70) ** 2) / 8.0)[None, None].repeat(4, 1, 1, 1)
    out = PERTURBATIONS["rotation"].apply(image, 5, seed=0)  # 10 degrees
    cy, cx = (h - 1) / 2, (w - 1) / 2
    y0, x0 = _centroid(image[0, 0])
    before = math.atan2(y0 - cy, x0 - cx)
    for i in range(4):
        y1, x1 = _centroid(out[i, 0])
        turned = math.degrees(math.atan2(y1 - cy, x1 - cx) - before)
        assert abs(turned) == pytest.approx(10.0, abs=0.3)
        assert math.hypot(y1 - cy, x1 - cx) == pytest.approx(math.hypot(y0 - cy, x0 - cx),
                                                             rel=0.01)


def test_translation_moves_by_the_stated_share_of_the_size():
    h, w = 64, 96
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing="ij")
    image = torch.exp(-((yy - 32) ** 2 + (xx - 48) ** 2) / 10.0)[None, None].repeat(3, 1, 1, 1)
    out = PERTURBATIONS["translation"].apply(image, 5, seed=1)  # 10%
    y0, x0 = _centroid(image[0, 0])
    for i in range(3):
        y1, x1 = _centroid(out[i, 0])
        assert math.hypot((y1 - y0) / h, (x1 - x0) / w) == pytest.approx(0.10, rel=0.02)


def test_downsample_factor_two_is_area_then_bilinear(batch2d):
    import torch.nn.functional as F

    expected = F.interpolate(F.avg_pool2d(batch2d, 2), size=(64, 64), mode="bilinear",
                             align_corners=False)
    torch.testing.assert_close(PERTURBATIONS["downsample"].apply(batch2d, 1, 0), expected)


def test_jpeg_quality_orders_the_error_and_handles_volumes(batch3d):
    p = PERTURBATIONS["jpeg"]
    out = p.apply(batch3d, 1, 0)
    assert out.shape == batch3d.shape
    assert psnr(batch3d, out).min() > 40  # quality 80 is mild


def test_xray_exposure_noise_is_heaviest_where_the_image_is_bright():
    x = torch.cat([torch.full((1, 1, 64, 32), 0.1), torch.full((1, 1, 64, 32), 0.9)], dim=-1)
    x = x.repeat(2, 1, 1, 1)
    resid = PERTURBATIONS["xray_exposure"].apply(x, 3, 0) - x
    assert resid[..., 32:].std() > 2 * resid[..., :32].std()


@pytest.mark.parametrize("name", ["mri_ghosting", "mri_motion"])
def test_kspace_artefacts_keep_the_mean_intensity(name, batch2d):
    # Both leave the centre of k-space alone, so the mean (the DC term) is unchanged.
    out = PERTURBATIONS[name].apply(batch2d, 5, 0)
    np.testing.assert_allclose(out.mean(dim=(1, 2, 3)), batch2d.mean(dim=(1, 2, 3)), atol=1e-5)


def test_ct_noise_sd_is_given_in_hu(batch2d):
    flat = batch2d.reshape(4, -1).double()
    span = torch.quantile(flat, 0.99, dim=1) - torch.quantile(flat, 0.01, dim=1)
    resid = (PERTURBATIONS["ct_noise"].apply(batch2d, 5, 0) - batch2d).reshape(4, -1).double()
    np.testing.assert_allclose(resid.std(dim=1) / span * CT_WINDOW_HU, 75.0, rtol=0.05)


# ----------------------------------------------------- MONAI-based ones call MONAI --

def _monai_direct(transform, image, seed, name, sample_id):
    transform.set_random_state(seed=sample_seed(seed, name, sample_id))
    return transform(image.clone()).as_tensor()


def _span(image):
    flat = image.reshape(-1)
    m = flat.numel()
    return (flat.kthvalue(int(0.99 * (m - 1)) + 1).values
            - flat.kthvalue(int(0.01 * (m - 1)) + 1).values).item()


@pytest.mark.parametrize("name", ["mri_rician_noise", "mri_bias_field", "mri_gibbs",
                                  "mri_kspace_spike", "ct_noise"])
def test_monai_based_ones_equal_the_monai_transform(name, batch2d):
    import monai.transforms as mt

    p = PERTURBATIONS[name]
    severity, seed = 4, 9
    value = p.severities[severity - 1]
    out = p.apply(batch2d, severity, seed, sample_ids=[100, 101, 102, 103])
    for i in range(4):
        image = batch2d[i] - batch2d[i].amin()  # bias field: MONAI's own zero
        offset = batch2d[i].amin()
        span = _span(batch2d[i])
        if name == "mri_rician_noise":
            transform = mt.RandRicianNoise(prob=1.0, std=value * span, sample_std=False)
        elif name == "mri_bias_field":
            transform = mt.RandBiasField(degree=3, coeff_range=(-value, value), prob=1.0)
        elif name == "mri_gibbs":
            transform = mt.RandGibbsNoise(prob=1.0, alpha=(value, value))
        elif name == "mri_kspace_spike":
            log_m = math.log(value * span * 64 * 64)
            transform = mt.RandKSpaceSpikeNoise(prob=1.0, intensity_range=(log_m, log_m))
        else:
            transform = mt.RandGaussianNoise(prob=1.0, std=value / CT_WINDOW_HU * span,
                                             sample_std=False)
        if name == "mri_bias_field":
            expected = _monai_direct(transform, image, seed, name, 100 + i) + offset
        else:
            expected = _monai_direct(transform, batch2d[i], seed, name, 100 + i)
        torch.testing.assert_close(out[i], expected, rtol=1e-5, atol=1e-5)


def test_monai_transform_is_really_called(monkeypatch, batch2d):
    import monai.transforms as mt

    calls = []
    original = mt.RandRicianNoise.__call__

    def spy(self, img, *args, **kwargs):
        calls.append(tuple(img.shape))
        return original(self, img, *args, **kwargs)

    monkeypatch.setattr(mt.RandRicianNoise, "__call__", spy)
    PERTURBATIONS["mri_rician_noise"].apply(batch2d, 1, 0)
    assert calls == [(1, 64, 64)] * 4  # channel-first, one sample at a time


# ----------------------------------------------------------------------------- device --

@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_runs_on_cuda_and_stays_there(name, batch2d):
    p = PERTURBATIONS[name]
    x = batch2d.cuda()
    out = p.apply(x, 3, seed=0, sample_ids=[1, 2, 3, 4])
    assert out.device == x.device and out.shape == x.shape
    assert torch.equal(out, p.apply(x, 3, seed=0, sample_ids=[1, 2, 3, 4]))
    values = _mean_psnr(p, x)
    assert all(a > b for a, b in itertools.pairwise(values)), values
