"""Perturbations for the robustness audit, at five severities each, seeded.

- :mod:`.perturbations`: images (torch batches ``(N, C, H, W)`` or ``(N, C, D, H, W)``):
  generic corruptions and MRI, X-ray and CT artefacts (MONAI where it has them), plus
  :func:`psnr` to measure how much a perturbation changed an image.
- :mod:`.tabular`: feature tables (pandas): noise, missing values, unit shifts, rounding.

Importing this package does not import torch, MONAI or Pillow; they load when an image
perturbation is applied.
"""

from .perturbations import (
    FAMILIES,
    MODALITIES,
    PERTURBATIONS,
    SEVERITY_LEVELS,
    Perturbation,
    get_perturbations,
    psnr,
    sample_seed,
)
from .tabular import (
    TABULAR_PERTURBATIONS,
    TabularPerturbation,
    get_tabular_perturbations,
)

__all__ = [
    "FAMILIES",
    "MODALITIES",
    "PERTURBATIONS",
    "SEVERITY_LEVELS",
    "TABULAR_PERTURBATIONS",
    "Perturbation",
    "TabularPerturbation",
    "get_perturbations",
    "get_tabular_perturbations",
    "psnr",
    "sample_seed",
]
