"""Image models: a torch/ONNX network behind the ModelAdapter protocol, fed from a manifest.

A manifest is a table (the audit's data file) with one row per image and a column of image
paths, relative to the manifest's folder or absolute. :class:`ImageModelAdapter` reads the
images lazily (:class:`~audit.imaging.ImageSource`), preprocesses them as declared in
``[imaging]`` / ``[imaging.preprocess]``, and streams them through the network in batches::

    manifest row ──► path ──► read_image ──► Preprocessing ──► batch ──► Network.forward
                                                                          (N, k) probabilities

The prediction cache calls :meth:`ImageModelAdapter.predict_dataset` (the adapter sets
``needs_dataset``), because the manifest's location is what relative paths start from. The
same adapter gives plugins the pieces to run perturbed batches themselves:
``model.image_source(dataset)``, ``model.network.forward(batch)``, ``model.batch_size`` and
``model.workers``.

torch and onnxruntime are imported by :func:`audit.io.networks.load_network`, not here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.errors import ConfigError, InputError
from audit.imaging import ImageSource, Preprocessing
from audit.imaging.readers import check_nifti_slice, check_window
from audit.io.networks import Network, OutputMapping, load_network, predict_batches

if TYPE_CHECKING:
    import pandas as pd

    from audit.io.tables import Dataset

__all__ = ["ImageModelAdapter", "load_image_model"]

# Without [model.outputs] the network must already output probabilities: they are checked,
# never squashed, so a logit model fails with a message that names activation.
DEFAULT_OUTPUTS = OutputMapping(activation="none")


class ImageModelAdapter:
    """A torch or ONNX image model, called on the images that a manifest column names.

    Parameters
    ----------
    network : Network
        The loaded model (:func:`audit.io.networks.load_network`).
    image_column : str
        The manifest column of image paths.
    preprocessing : Preprocessing, optional
        Applied to each image after it is read; default none (values as read).
    window, nifti_slice
        Passed to :func:`audit.imaging.read_image` (``[imaging] window`` / ``nifti_slice``).
    batch_size : int, default 32
        Images per call of ``network.forward``.
    workers : int, default 0
        DataLoader worker processes reading images; 0 reads in the main process. The scores
        do not depend on it.
    output_names : tuple of str, optional
        Names of the output columns (the labels), when known.
    base_dir : pathlib.Path, optional
        Where :meth:`predict` resolves relative paths of a bare frame (default: the working
        directory). :meth:`predict_dataset` uses the manifest's folder instead.

    Attributes
    ----------
    kind : str
        The network's kind: ``"torchscript"``, ``"torch_export"``, ``"state_dict"``,
        ``"torch_pickle"`` or ``"onnx"``.
    source : str
        The model file.
    needs_dataset : bool
        True: the prediction cache calls :meth:`predict_dataset` with the whole Dataset.
    """

    needs_dataset = True

    def __init__(self, network: Network, *, image_column: str,
                 preprocessing: Preprocessing | None = None, window: Any = None,
                 nifti_slice: Any = None, batch_size: int = 32, workers: int = 0,
                 output_names: tuple[str, ...] | None = None,
                 base_dir: Path | None = None) -> None:
        for name, value, minimum in (("batch_size", batch_size, 1), ("workers", workers, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"model.{name}: expected an integer >= {minimum}, got {value!r}.")
        if not isinstance(image_column, str) or not image_column:
            raise ConfigError(f"data.image_column: expected a column name, got {image_column!r}.")
        self.network = network
        self.kind: str = network.kind
        self.source: str = network.source
        self.output_names = None if output_names is None else tuple(output_names)
        self.image_column = image_column
        self.preprocessing = preprocessing if preprocessing is not None else Preprocessing()
        self.window = check_window(window, where="imaging.window")
        self.nifti_slice = check_nifti_slice(nifti_slice, where="imaging.nifti_slice")
        self.batch_size = batch_size
        self.workers = workers
        self.base_dir = base_dir
        self._checked: set[tuple[str, str]] = set()
        self._fingerprint: str | None = None

    # ----------------------------------------------------------------- identity

    def fingerprint(self) -> str:
        """sha256 of the network's fingerprint, the preprocessing and the reading settings.

        The same weights fed other pixels (another resize, window or slice) give other
        scores, so a cache keyed on this must not mix them.
        """
        if self._fingerprint is None:
            settings = {
                "network": self.network.fingerprint(),
                "preprocessing": self.preprocessing.describe(),
                "window": self.window,
                "nifti_slice": self.nifti_slice,
                "image_column": self.image_column,
            }
            text = json.dumps(settings, sort_keys=True, default=str)
            self._fingerprint = hashlib.sha256(text.encode()).hexdigest()
        return self._fingerprint

    # ----------------------------------------------------------------- images

    def image_source(self, dataset: Dataset) -> ImageSource:
        """The images of a manifest dataset, relative paths under the manifest's folder.

        Raises
        ------
        InputError
            The dataset has no image column.
        """
        path = Path(dataset.path)
        return self._source(dataset.frame, path.parent, f"the folder of {path.name}",
                            where=str(path))

    def _source(self, frame: pd.DataFrame, base_dir: Path, base_label: str,
                where: str) -> ImageSource:
        if self.image_column not in frame.columns:
            raise InputError(
                f"The image column '{self.image_column}' is not in {where} (columns: "
                f"{', '.join(map(str, frame.columns[:20]))}). Set data.image_column "
                "(--image-column) to the manifest column of image paths."
            )
        return ImageSource(frame[self.image_column].tolist(), base_dir, self.preprocessing,
                           window=self.window, nifti_slice=self.nifti_slice,
                           base_label=base_label)

    def check_images(self, dataset: Dataset) -> None:
        """Raise InputError unless every image file of ``dataset`` exists (checked once).

        The message counts the missing files and names the first.
        """
        key = (dataset.fingerprint, str(Path(dataset.path).resolve()))
        if key in self._checked:
            return
        self.image_source(dataset).check_paths()
        self._checked.add(key)

    # ----------------------------------------------------------------- predictions

    def predict_dataset(self, dataset: Dataset, progress: Any = None) -> np.ndarray:
        """Float64 probabilities ``(n_rows, k)`` for every image of a manifest dataset.

        Parameters
        ----------
        dataset : Dataset
            A manifest with the image column; relative paths start at its file's folder.
        progress : rich.progress.Progress, optional
            Shows images done, the total and the time remaining.

        Raises
        ------
        InputError
            Image files are missing (counted, the first named), unreadable, or of mixed sizes
            without ``[imaging.preprocess] resize``.
        ModelError
            The network fails or its outputs are not probabilities after the mapping.
        """
        self.check_images(dataset)
        source = self.image_source(dataset)
        return self._predict(source, progress, f"Model on {Path(dataset.path).name}")

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Float64 probabilities for the images named in ``features[image_column]``.

        Relative paths start at ``base_dir`` (default: the working directory); the audit
        itself calls :meth:`predict_dataset`, which starts them at the manifest's folder.
        """
        base = Path.cwd() if self.base_dir is None else Path(self.base_dir)
        source = self._source(features, base, str(base), where="the data passed to predict")
        source.check_paths()
        return self._predict(source, None, "Model inference")

    def _predict(self, source: ImageSource, progress: Any, description: str) -> np.ndarray:
        batches = source.batches(batch_size=self.batch_size, workers=self.workers)
        return predict_batches(self.network, batches, progress=progress, total=len(source),
                               description=description)


def load_image_model(spec: str, *, image_column: str, outputs: OutputMapping | None = None,
                     factory: str | None = None, input_name: str | None = None,
                     embedding_layer: str | None = None, trust_model: bool = False,
                     device: str = "cpu", preprocessing: Preprocessing | None = None,
                     window: Any = None, nifti_slice: Any = None, batch_size: int = 32,
                     workers: int = 0, input_shape: tuple[int | None, ...] | None = None,
                     output_names: tuple[str, ...] | None = None) -> ImageModelAdapter:
    """Load a torch/ONNX model file as an :class:`ImageModelAdapter`.

    Parameters
    ----------
    spec : str
        The model file (see :func:`audit.io.networks.load_network` for the forms).
    image_column : str
        The manifest column of image paths.
    outputs : OutputMapping, optional
        ``[model.outputs]``; default ``activation="none"`` with every output column.
    factory, input_name, embedding_layer, trust_model, device, input_shape
        Passed to :func:`~audit.io.networks.load_network`.
    preprocessing, window, nifti_slice, batch_size, workers, output_names
        See :class:`ImageModelAdapter`.

    Raises
    ------
    InputError, ModelError, UntrustedModelError, MissingExtraError, ConfigError
        As :func:`~audit.io.networks.load_network` raises them.
    """
    network = load_network(spec, factory=factory, mapping=outputs or DEFAULT_OUTPUTS,
                           input_name=input_name, embedding_layer=embedding_layer,
                           trust_model=trust_model, device=device, input_shape=input_shape)
    return ImageModelAdapter(network, image_column=image_column, preprocessing=preprocessing,
                             window=window, nifti_slice=nifti_slice, batch_size=batch_size,
                             workers=workers, output_names=output_names)
