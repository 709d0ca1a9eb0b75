"""Imaging: read DICOM, NIfTI and PNG/JPEG/TIFF files, preprocess them, stream them in batches.

- :func:`read_image` reads one file as a float32, channel-first array (``readers``).
- :class:`Preprocessing` is the declared ``[imaging.preprocess]`` table: resize, channels,
  intensity normalisation, then an optional MONAI transform (``preprocess``).
- :class:`ImageSource` is a lazy list of images whose ``batches()`` streams them through a
  torch DataLoader (``loader``).

Pillow, pydicom, nibabel and torch are imported only when first needed, so importing this
package costs no more than numpy.
"""

from audit.imaging.loader import ImageSource
from audit.imaging.preprocess import Preprocessing
from audit.imaging.readers import apply_window, read_image

__all__ = ["ImageSource", "Preprocessing", "apply_window", "read_image"]
