"""Declared preprocessing of channel-first image arrays: resize, channels, intensity, MONAI.

The steps run in this order, each only when set:

1. ``resize``: spatial size ``[H, W]`` or ``[D, H, W]`` with ``torch.nn.functional.interpolate``
   (bilinear for 2-D, trilinear for 3-D, ``align_corners=False``; antialiased when a 2-D image
   shrinks along any axis, as Pillow does).
2. ``channels``: 1 averages RGB to gray; 3 repeats gray into three channels.
3. ``normalize``: ``"none"``, ``"minmax"`` (each image to [0, 1]), ``"zscore"`` (each image to
   mean 0, population standard deviation 1) or ``"range"`` (fixed ``range = [low, high]`` to
   [0, 1]; values outside it stay outside: nothing is clipped).
4. ``monai``: a MONAI transform (or any callable on a channel-first array), last, so that it sees
   what a model trained with the declared steps would see.

torch is imported only when an image is resized, so ``import audit.imaging`` stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audit.errors import USER_CODE_ERRORS, ConfigError, InputError, MissingExtraError, describe_failure

__all__ = ["NORMALIZATIONS", "Preprocessing"]

NORMALIZATIONS = ("none", "minmax", "zscore", "range")
_KEYS = ("resize", "normalize", "range", "channels", "dtype", "monai")
_DTYPES = ("float32",)


@dataclass(frozen=True)
class Preprocessing:
    """Preprocessing applied to every image after it is read.

    Parameters
    ----------
    resize : tuple of int, optional
        Spatial output size, ``(H, W)`` for 2-D images or ``(D, H, W)`` for volumes.
    normalize : {"none", "minmax", "zscore", "range"}
        Intensity normalisation (see the module docstring for the formulas).
    range : tuple of float, optional
        ``(low, high)`` for ``normalize="range"``: ``(x - low) / (high - low)``.
    channels : {1, 3}, optional
        Number of output channels; None keeps what the file has.
    dtype : {"float32"}
        Output dtype.
    monai : str or callable, optional
        ``"package.module:function"`` naming a function that takes no arguments and returns a
        transform (e.g. a ``monai.transforms.Compose``), or the transform itself. It is applied
        to the channel-first array after the declared steps.
    where : str
        Where the settings came from, for error messages.

    Examples
    --------
    >>> Preprocessing.from_config({"resize": [224, 224], "normalize": "range",
    ...                            "range": [0, 255], "channels": 3}).describe()
    'resize 224x224, channels 3, normalize range [0, 255] to [0, 1], float32'
    """

    resize: tuple[int, ...] | None = None
    normalize: str = "none"
    range: tuple[float, float] | None = None
    channels: int | None = None
    dtype: str = "float32"
    monai: str | Callable[..., Any] | None = None
    where: str = field(default="[imaging.preprocess]", compare=False, repr=False)
    _transform: Callable[..., Any] | None = field(default=None, init=False, compare=False,
                                                  repr=False)

    def __post_init__(self) -> None:
        where = self.where
        if self.resize is not None:
            sizes = self.resize
            if (isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__")
                    or len(sizes) not in (2, 3)
                    or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                               for s in sizes)):
                raise ConfigError(f"{where} resize = {sizes!r}: give positive whole numbers, "
                                  "[H, W] for 2-D images or [D, H, W] for volumes.")
            object.__setattr__(self, "resize", tuple(sizes))
        if self.normalize not in NORMALIZATIONS:
            raise ConfigError(f"{where} normalize = {self.normalize!r} is not one of "
                              f"{', '.join(NORMALIZATIONS)}.")
        if self.normalize == "range":
            object.__setattr__(self, "range", _check_range(self.range, where))
        elif self.range is not None:
            raise ConfigError(f"{where} range = {list(self.range)!r} is set but normalize is "
                              f"{self.normalize!r}; set normalize = \"range\" or remove range.")
        channels = self.channels
        if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
            raise ConfigError(f"{where} channels = {channels!r}: use 1 (gray) or 3 (RGB), "
                              "or leave it out to keep the file's channels.")
        if self.dtype not in _DTYPES:
            raise ConfigError(f"{where} dtype = {self.dtype!r}: only \"float32\" is supported.")
        if self.monai is not None:
            object.__setattr__(self, "_transform", _resolve_transform(self.monai, where))

    @classmethod
    def from_config(cls, mapping: Mapping[str, Any] | None,
                    where: str = "[imaging.preprocess]") -> Preprocessing:
        """Build from a config table, refusing unknown keys.

        Parameters
        ----------
        mapping : mapping or None
            The ``[imaging.preprocess]`` table (None or empty: no preprocessing).
        where : str
            The table's name in messages.

        Raises
        ------
        ConfigError
            An unknown key or an invalid value, naming the key.
        """
        mapping = dict(mapping or {})
        unknown = sorted(set(mapping) - set(_KEYS))
        if unknown:
            raise ConfigError(f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; "
                              f"valid keys: {', '.join(_KEYS)}.")
        for key in ("resize", "range"):
            if isinstance(mapping.get(key), list):
                mapping[key] = tuple(mapping[key])
        return cls(**mapping, where=where)

    def __call__(self, array: np.ndarray) -> np.ndarray:
        """Apply the steps to one channel-first image; returns a new float32 array.

        Raises
        ------
        InputError
            The image does not fit the settings (resize rank, channel count) or the MONAI
            transform failed on it.
        """
        x = np.asarray(array, dtype=np.float32)
        if x.ndim not in (3, 4):
            raise InputError(f"expected a channel-first image (C, H, W) or (C, D, H, W), got "
                             f"shape {_shape(x)}")
        if self.resize is not None:
            x = self._resize(x)
        if self.channels is not None:
            x = self._channels(x)
        x = self._normalize(x)
        if self._transform is not None:
            x = self._apply_transform(x)
        return np.ascontiguousarray(x, dtype=np.float32)

    def describe(self) -> str:
        """One line for the report, e.g. ``"resize 224x224, normalize minmax, float32"``."""
        parts = []
        if self.resize is not None:
            parts.append("resize " + "x".join(map(str, self.resize)))
        if self.channels is not None:
            parts.append(f"channels {self.channels}")
        if self.normalize == "range":
            low, high = self.range
            parts.append(f"normalize range [{low:g}, {high:g}] to [0, 1]")
        elif self.normalize != "none":
            parts.append(f"normalize {self.normalize}")
        if self.monai is not None:
            name = self.monai if isinstance(self.monai, str) else _callable_name(self.monai)
            parts.append(f"then MONAI {name}")
        return ", ".join(parts + [self.dtype]) if parts else f"none (values as read, {self.dtype})"

    # ----------------------------------------------------------------------- steps

    def _resize(self, x: np.ndarray) -> np.ndarray:
        spatial = x.shape[1:]
        if len(self.resize) != len(spatial):
            form = "[D, H, W]" if len(spatial) == 3 else "[H, W]"
            raise InputError(f"{self.where} resize = {list(self.resize)} has {len(self.resize)} "
                             f"sizes but the image is {len(spatial)}-D ({_shape(x)}); give {form}")
        if tuple(spatial) == self.resize:
            return x
        try:
            import torch
            import torch.nn.functional as F
        except ImportError:
            raise MissingExtraError("torch", "torch", "Resizing images") from None
        batch = torch.from_numpy(np.ascontiguousarray(x))[None]
        if len(spatial) == 2:
            shrinks = any(new < old for new, old in zip(self.resize, spatial))
            out = F.interpolate(batch, size=self.resize, mode="bilinear", align_corners=False,
                                antialias=shrinks)
        else:  # torch has no antialiased trilinear mode
            out = F.interpolate(batch, size=self.resize, mode="trilinear", align_corners=False)
        return out[0].numpy()

    def _channels(self, x: np.ndarray) -> np.ndarray:
        have = x.shape[0]
        if have == self.channels:
            return x
        if have == 3 and self.channels == 1:
            return x.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
        if have == 1 and self.channels == 3:
            return np.repeat(x, 3, axis=0)
        raise InputError(f"the image has {have} channels ({_shape(x)}); {self.where} channels = "
                         f"{self.channels} converts only between 1 and 3 channels")

    def _normalize(self, x: np.ndarray) -> np.ndarray:
        if self.normalize == "none":
            return x
        values = x.astype(np.float64)
        if self.normalize == "range":
            low, high = self.range
            return ((values - low) / (high - low)).astype(np.float32)
        if self.normalize == "minmax":
            low, high = values.min(), values.max()
            # A constant image has no contrast to stretch; zeros keep it finite.
            scale = high - low
            return (np.zeros_like(values) if scale == 0 else (values - low) / scale).astype(np.float32)
        mean, std = values.mean(), values.std()
        return ((values - mean) / std if std > 0 else values - mean).astype(np.float32)

    def _apply_transform(self, x: np.ndarray) -> np.ndarray:
        try:
            out = self._transform(x)
        except USER_CODE_ERRORS as exc:
            raise InputError(f"the MONAI transform {self.describe_transform()} failed on an image "
                             f"of shape {_shape(x)}: {describe_failure(exc)}") from exc
        if hasattr(out, "detach"):  # a torch.Tensor or MONAI MetaTensor
            out = out.detach().cpu().numpy()
        try:
            return np.asarray(out, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InputError(f"the MONAI transform {self.describe_transform()} returned "
                             f"{type(out).__name__}, not an array: {exc}") from exc

    def describe_transform(self) -> str:
        """The name of the MONAI transform setting (``""`` when there is none)."""
        if self.monai is None:
            return ""
        return self.monai if isinstance(self.monai, str) else _callable_name(self.monai)


def _shape(x: np.ndarray) -> str:
    return "x".join(map(str, x.shape))


def _callable_name(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__name__


def _check_range(value: Any, where: str) -> tuple[float, float]:
    form = "give range = [low, high], e.g. [0, 255] for 8-bit images"
    if value is None:
        raise ConfigError(f"{where} normalize = \"range\" needs range; {form}.")
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} range = {value!r} is not two numbers; {form}.") from None
    if not (np.isfinite(low) and np.isfinite(high) and high > low):
        raise ConfigError(f"{where} range = {value!r}: high must be above low and both finite; "
                          f"{form}.")
    return (low, high)


def _resolve_transform(spec: Any, where: str) -> Callable[..., Any]:
    if callable(spec):
        return spec  # the transform itself
    form = "'package.module:function' naming a function that returns a MONAI transform"
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise ConfigError(f"{where} monai = {spec!r} is not {form}.")
    module_name, attr = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except USER_CODE_ERRORS as exc:
        raise ConfigError(f"{where} monai = {spec!r}: module {module_name!r} cannot be imported "
                          f"({describe_failure(exc)}); it must be importable from sys.path.") from exc
    factory = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise ConfigError(f"{where} monai = {spec!r}: {module_name!r} has no {attr!r}.")
    if not callable(factory):
        raise ConfigError(f"{where} monai = {spec!r}: {attr!r} is not a function.")
    try:
        transform = factory()
    except USER_CODE_ERRORS as exc:
        raise ConfigError(f"{where} monai = {spec!r}: calling {attr}() failed "
                          f"({describe_failure(exc)}); it must take no arguments.") from exc
    if not callable(transform):
        raise ConfigError(f"{where} monai = {spec!r}: {attr}() returned "
                          f"{type(transform).__name__}, not a transform (a callable).")
    return transform
