"""Stream images from a list of paths: read, preprocess, batch.

:class:`ImageSource` is the lazy reader behind an image manifest: it holds paths, not pixels,
so memory does not grow with the number of images. :meth:`ImageSource.batches` runs a
``torch.utils.data.DataLoader`` (optionally with worker processes) in the manifest's order.

Errors raised while reading in a worker come back as the same :class:`~audit.errors.AuditError`
the main process would raise, not as torch's wrapper with a worker traceback in its message.
"""

from __future__ import annotations

import operator
from functools import partial
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from audit.core.progress import track
from audit.errors import AuditError, InputError, MissingExtraError
from audit.imaging.preprocess import Preprocessing
from audit.imaging.readers import NiftiSlice, Window, check_nifti_slice, check_window, read_image

__all__ = ["ImageSource"]


class ImageSource:
    """Images named by paths, read and preprocessed on demand.

    Parameters
    ----------
    paths : sequence of str or pathlib.Path
        One path per image, in manifest order; relative paths are relative to ``base_dir``.
    base_dir : pathlib.Path
        The folder relative paths start from (usually the manifest's folder).
    preprocessing : Preprocessing
        Applied to every image after :func:`~audit.imaging.readers.read_image`.
    window, nifti_slice
        Passed to :func:`~audit.imaging.readers.read_image`; validated here, before any image
        is read.
    base_label : str, optional
        How messages name ``base_dir`` (e.g. ``"data/manifest.csv's folder"``); default the
        folder's path.
    """

    def __init__(self, paths: Sequence[str | Path], base_dir: Path,
                 preprocessing: Preprocessing, *, window: Window = None,
                 nifti_slice: NiftiSlice = None, base_label: str | None = None) -> None:
        self.paths = [str(p) for p in paths]
        self.base_dir = Path(base_dir)
        self.preprocessing = preprocessing
        self.window = check_window(window)
        self.nifti_slice = check_nifti_slice(nifti_slice)
        self.base_label = base_label or str(self.base_dir)

    def __len__(self) -> int:
        return len(self.paths)

    def resolve(self, i: int) -> Path:
        """The file of image ``i``: its path, under ``base_dir`` unless absolute."""
        path = Path(self.paths[i])
        return path if path.is_absolute() else self.base_dir / path

    def __getitem__(self, i: int) -> np.ndarray:
        """Read and preprocess image ``i``; float32, channel-first."""
        i = operator.index(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"image index {i} out of range for {len(self)} images")
        array = read_image(self.resolve(i), window=self.window, nifti_slice=self.nifti_slice)
        try:
            return self.preprocessing(array)
        except InputError as exc:
            raise InputError(f"Image {self.paths[i]}: {exc}") from exc

    def check_paths(self) -> None:
        """Raise InputError when any image file is missing, counting them and naming the first.

        Raises
        ------
        InputError
            ``"312 of 5000 image paths do not exist; the first: images/a.png (relative to
            ...)"``.
        """
        missing = [i for i in range(len(self)) if not self.resolve(i).is_file()]
        if not missing:
            return
        first = self.paths[missing[0]]
        where = "" if Path(first).is_absolute() else f" (relative to {self.base_label})"
        hint = ("; none exists, so the folder they are relative to is probably wrong"
                if len(missing) == len(self) and len(self) > 1 else "")
        raise InputError(
            f"{len(missing)} of {len(self)} image paths do not exist; the first: "
            f"{first}{where}{hint}. Fix the paths in the manifest or move the files."
        )

    def batches(self, batch_size: int = 32, workers: int = 0, progress: Any = None,
                description: str = "Reading images") -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(indices, batch)`` in manifest order, reading as it goes.

        Parameters
        ----------
        batch_size : int
            Images per batch (the last may be smaller).
        workers : int
            Worker processes reading in parallel (``DataLoader(num_workers=...)``); 0 reads in
            this process. The output is the same for any number of workers.
        progress : rich.progress.Progress, optional
            Advanced by the number of images in each batch.
        description : str
            The progress task's label.

        Yields
        ------
        indices : numpy.ndarray
            int64 positions of the images in ``paths``.
        batch : numpy.ndarray
            float32, ``(n, C, H, W)`` or ``(n, C, D, H, W)``.

        Raises
        ------
        InputError
            An image cannot be read, or the images differ in size (every image of the source
            must have one shape, whatever the batch size, so set ``resize``).
        """
        if batch_size < 1 or workers < 0:
            raise InputError(f"batch_size must be at least 1 and workers at least 0 "
                             f"(got {batch_size} and {workers})")
        try:
            from torch.utils.data import DataLoader
        except ImportError:
            raise MissingExtraError("torch", "torch", "Streaming images in batches") from None
        loader = DataLoader(_Items(self), batch_size=batch_size, shuffle=False,
                            num_workers=workers,
                            collate_fn=partial(_collate, where=self.preprocessing.where))
        first: tuple[str, tuple[int, ...]] | None = None
        with track(progress, description, total=len(self)) as advance:
            for item in loader:
                if isinstance(item, _Failure):
                    raise item.exc
                indices, batch, name = item
                if first is None:
                    first = (name, batch.shape[1:])
                elif batch.shape[1:] != first[1]:
                    raise InputError(_mixed_sizes_message(first, (name, batch.shape[1:]),
                                                          self.preprocessing.where))
                advance(len(indices))
                yield indices, batch



def _mixed_sizes_message(first: tuple[str, tuple[int, ...]], then: tuple[str, tuple[int, ...]],
                        where: str) -> str:
    """``images of mixed sizes (first: a.png 1x512x512, then b.png 1x256x256); set ...``."""
    (name_a, shape_a), (name_b, shape_b) = first, then
    shown = (f"images of mixed sizes (first: {name_a} {'x'.join(map(str, shape_a))}, then "
             f"{name_b} {'x'.join(map(str, shape_b))}); ")
    if shape_a[1:] == shape_b[1:]:
        return shown + f"set {where} channels = 1 or 3"
    form = "[D, H, W]" if len(shape_a) == 4 or len(shape_b) == 4 else "[H, W]"
    return shown + f"set {where} resize = {form}"


# --------------------------------------------------------------------------- DataLoader glue
# Module level (not closures) so that they pickle when workers start with "spawn".


class _Failure:
    """An AuditError raised in a worker, carried back to be raised as itself.

    DataLoader re-raises a worker's exception as ``type(exc)(formatted traceback)``, which
    garbles our one-line messages and fails for exceptions whose __init__ takes other
    arguments (MissingExtraError); returning the error as data avoids both.
    """

    def __init__(self, exc: AuditError) -> None:
        self.exc = exc

    def __reduce__(self) -> tuple[Any, ...]:
        exc = self.exc
        return (_rebuild_failure, (type(exc), exc.args, dict(vars(exc))))


def _rebuild_failure(cls: type, args: tuple[Any, ...], state: dict[str, Any]) -> _Failure:
    exc = cls.__new__(cls)  # skips __init__, whose signature may differ from args
    exc.args = args
    exc.__dict__.update(state)
    return _Failure(exc)


class _Items:
    """Map-style dataset over an ImageSource: ``(index, array, path)`` or a _Failure."""

    def __init__(self, source: ImageSource) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray, str] | _Failure:
        try:
            return i, self.source[i], self.source.paths[i]
        except AuditError as exc:
            return _Failure(exc)


def _collate(items: list[Any], where: str) -> tuple[np.ndarray, np.ndarray, str] | _Failure:
    for item in items:
        if isinstance(item, _Failure):
            return item
    indices = np.array([i for i, _, _ in items], dtype=np.int64)
    _, first_array, first_name = items[0]
    for _, array, name in items[1:]:
        if array.shape != first_array.shape:
            return _Failure(InputError(_mixed_sizes_message(
                (first_name, first_array.shape), (name, array.shape), where)))
    return indices, np.stack([array for _, array, _ in items]), first_name
