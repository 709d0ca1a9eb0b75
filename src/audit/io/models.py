"""Model adapters: one small Protocol over every kind of model the audit can call.

:func:`load_model` turns the ``model`` setting into a :class:`ModelAdapter`:

=============================  =====================  =====================================
spec                           adapter                notes
=============================  =====================  =====================================
``None`` + score columns       PredictionsAdapter     scores already in the data
``*.skops``                    SkopsAdapter           untrusted types must be listed
``*.pkl/.pickle/.joblib``      PickleAdapter          needs ``--trust-model``
``package.module:function``    CallableAdapter        ``function(DataFrame) -> scores``
``*.pt/.pth/.ts/.pt2/.bin``,   ImageModelAdapter      torch/ONNX image models: need an
``*.safetensors/.onnx``                               image column (``--image-column``)
=============================  =====================  =====================================

Every adapter returns float64 probabilities of shape ``(n_rows, n_outputs)``. scikit-learn,
skops, joblib, torch and onnxruntime are imported inside functions so that
``import audit.io.models`` (and the CLI's ``--help``) stays fast. Torch and ONNX models read
images (:mod:`audit.io.image_model`); tabular torch/ONNX models are not supported.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

import numpy as np

from audit.errors import USER_CODE_ERRORS, InputError, ModelError, UntrustedModelError, describe_failure
from audit.io.networks import NETWORK_SUFFIXES  # light: torch and onnxruntime load lazily

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CallableAdapter",
    "ModelAdapter",
    "PickleAdapter",
    "PredictionsAdapter",
    "SkopsAdapter",
    "is_network_model",
    "load_model",
    "validate_probabilities",
]

SKOPS_SUFFIXES = (".skops",)
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")

SUPPORTED_FORMS = (
    "a scikit-learn model saved with skops (.skops), "
    "a pickle/joblib file (.pkl, .pickle, .joblib; needs --trust-model), "
    "a Python function 'package.module:function', "
    "a torch or ONNX image model (.pt, .pt2, .onnx, ...; with --image-column), "
    "or no model with score columns that already hold the predictions"
)
CALLABLE_FORM = "'package.module:function' (the module importable from sys.path)"


@runtime_checkable
class ModelAdapter(Protocol):
    """What the audit needs from a model, whatever framework it comes from.

    Attributes
    ----------
    kind : str
        ``"predictions"``, ``"sklearn"``, ``"callable"``, or for image models the network's
        kind (``"torchscript"``, ``"torch_export"``, ``"state_dict"``, ``"torch_pickle"``,
        ``"onnx"``).
    source : str
        The path or dotted name the model came from, for the report.
    output_names : tuple of str or None
        Names of the output columns, None when unknown.
    """

    kind: str
    source: str
    output_names: tuple[str, ...] | None

    def fingerprint(self) -> str:
        """Return a stable identifier of the model (sha256 hex for files)."""
        ...

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Return float64 probabilities of shape ``(n_rows, n_outputs)``."""
        ...

    # An adapter may also set ``needs_dataset = True`` and define
    # ``predict_dataset(dataset, progress=None)``: the prediction cache then passes it the
    # whole Dataset (its file locates the images a manifest names) instead of a frame.


# --------------------------------------------------------------------------- helpers


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _short_list(names, limit: int = 10) -> str:
    names = [str(n) for n in names]
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _as_probability_matrix(result: Any, n_rows: int, source: str) -> np.ndarray:
    """Coerce a model's output to a float64 ``(n_rows, k)`` array or raise ModelError."""
    try:
        scores = np.asarray(result, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelError(
            f"Model {source} returned {type(result).__name__}, which cannot be read as numbers "
            f"({exc}); it must return probabilities, shape ({n_rows},) or ({n_rows}, k)."
        ) from exc
    if scores.ndim == 1:
        scores = scores.reshape(-1, 1)
    if scores.ndim != 2:
        raise ModelError(
            f"Model {source} returned an array of shape {scores.shape}; "
            f"expected ({n_rows},) or ({n_rows}, k)."
        )
    if scores.shape[0] != n_rows:
        raise ModelError(
            f"Model {source} returned {scores.shape[0]} rows of scores for {n_rows} input rows; "
            f"it must return one row per input row, shape ({n_rows},) or ({n_rows}, k)."
        )
    return scores


def validate_probabilities(scores: Any, source: str) -> None:
    """Raise InputError unless every score is a probability in [0, 1].

    NaN and infinite values count as out of range. Nothing is clamped: a model that outputs
    logits or uncalibrated scores must be fixed, not silently repaired.
    """
    try:
        values = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"Scores from {source} are not numeric: {exc}") from exc
    bad = ~((values >= 0.0) & (values <= 1.0))  # NaN compares False, so it is bad too
    n_bad = int(bad.sum())
    if n_bad == 0:
        return
    finite = values[np.isfinite(values)]
    n_nan = int(np.isnan(values).sum())
    low = f"{finite.min():.6g}" if finite.size else "nan"
    high = f"{finite.max():.6g}" if finite.size else "nan"
    nan_note = f", {n_nan} NaN" if n_nan else ""
    raise InputError(
        f"Scores from {source} must be probabilities in [0, 1], but {n_bad} of {values.size} "
        f"values are out of range (min {low}, max {high}{nan_note}). If these are logits or "
        "decision scores, apply a sigmoid/softmax or calibrate the model "
        "(sklearn.calibration.CalibratedClassifierCV)."
    )


# --------------------------------------------------------------------------- predictions


class PredictionsAdapter:
    """Scores that are already columns of the data; ``predict`` reads them back."""

    kind = "predictions"

    def __init__(self, score_columns) -> None:
        if isinstance(score_columns, str):
            score_columns = (score_columns,)
        self.score_columns: tuple[str, ...] = tuple(score_columns)
        if not self.score_columns:
            raise InputError("PredictionsAdapter needs at least one score column.")
        self.output_names: tuple[str, ...] | None = self.score_columns
        self.source = "score columns: " + ", ".join(self.score_columns)

    def fingerprint(self) -> str:
        # Identifies the columns only: a prediction cache must also key on the dataset.
        return "predictions:" + ",".join(sorted(self.score_columns))

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        missing = [c for c in self.score_columns if c not in features.columns]
        if missing:
            raise InputError(
                f"Score column(s) {_short_list(repr(c) for c in missing)} not found in the data "
                f"(columns: {_short_list(features.columns)}). Set the score columns to "
                "existing columns."
            )
        for column in self.score_columns:
            dtype = features[column].dtype
            if not is_numeric_dtype(dtype) or is_bool_dtype(dtype):
                raise InputError(
                    f"Score column {column!r} has dtype {dtype}, but scores must be numeric "
                    "probabilities in [0, 1]."
                )
        return features.loc[:, list(self.score_columns)].to_numpy(
            dtype=np.float64, na_value=np.nan
        )


# --------------------------------------------------------------------------- scikit-learn


class _EstimatorAdapter:
    """Shared by skops and pickle files: a fitted scikit-learn-like classifier."""

    kind = "sklearn"
    output_names: tuple[str, ...] | None = None

    def __init__(self, path: Path, estimator: Any) -> None:
        self.path = path
        self.source = str(path)
        self.estimator = estimator
        self._fingerprint: str | None = None
        self._check_estimator()

    def _check_estimator(self) -> None:
        est = self.estimator
        name = type(est).__name__
        if not hasattr(est, "predict_proba"):
            if hasattr(est, "decision_function"):
                raise ModelError(
                    f"Model {self.source} ({name}) has decision_function but no predict_proba; "
                    "the audit needs probabilities. Wrap it in "
                    "sklearn.calibration.CalibratedClassifierCV and save it again."
                )
            raise ModelError(
                f"Model {self.source} ({name}) has no predict_proba; the audit needs a "
                "classifier that returns probabilities."
            )
        if hasattr(est, "fit"):
            from sklearn.exceptions import NotFittedError
            from sklearn.utils.validation import check_is_fitted

            try:
                check_is_fitted(est)
            except NotFittedError as exc:
                raise ModelError(f"Model {self.source} ({name}) is not fitted.") from exc
            except TypeError:  # not a scikit-learn estimator; predict will tell
                pass

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = _sha256_file(self.path)
        return self._fingerprint

    def _select_features(self, features: pd.DataFrame) -> Any:
        est = self.estimator
        names = getattr(est, "feature_names_in_", None)
        if names is not None:
            names = [str(n) for n in names]
            missing = [n for n in names if n not in features.columns]
            if missing:
                raise InputError(
                    f"Model {self.source} needs feature column(s) missing from the data: "
                    f"{_short_list(repr(n) for n in missing)} "
                    f"(data columns: {_short_list(features.columns)}). Rename the columns or "
                    "use the data the model was trained on."
                )
            # Extra columns (label, site, sensitive attributes) are dropped, not passed on.
            return features.loc[:, names]
        n_expected = getattr(est, "n_features_in_", None)
        if n_expected is not None and n_expected != features.shape[1]:
            raise InputError(
                f"Model {self.source} was fitted without column names and expects "
                f"{n_expected} features by position, but the data passed has "
                f"{features.shape[1]} columns ({_short_list(features.columns)}). Pass only "
                "the feature columns, in training order."
            )
        # Without names, pass values: a DataFrame would make sklearn warn about feature names.
        return features.to_numpy()

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        X = self._select_features(features)
        try:
            proba = self.estimator.predict_proba(X)
        except USER_CODE_ERRORS as exc:  # the user's model failed; chain it for --debug
            raise ModelError(
                f"Model {self.source} failed in predict_proba: {describe_failure(exc)}"
            ) from exc
        n_rows = len(features)
        if isinstance(proba, list):  # multi-output: one (n, n_classes) array per output
            columns = [
                self._positive_column(p, n_rows, f" (output {i})") for i, p in enumerate(proba)
            ]
            return np.column_stack(columns)
        return self._positive_column(proba, n_rows, "").reshape(-1, 1)

    def _positive_column(self, proba: Any, n_rows: int, where: str) -> np.ndarray:
        proba = _as_probability_matrix(proba, n_rows, self.source + where)
        if proba.shape[1] != 2:
            raise ModelError(
                f"Model {self.source}{where} returns probabilities for {proba.shape[1]} classes; "
                "the audit supports binary classifiers (one positive-class probability per "
                "output). Train one binary classifier per finding, or use MultiOutputClassifier."
            )
        # Column 1 is classes_[1], the greater label: sklearn's positive class for binary y.
        return proba[:, 1]


def _load_skops(path: Path, trusted_types) -> Any:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except USER_CODE_ERRORS as exc:
        raise ModelError(f"Cannot read skops file {path}: {describe_failure(exc)}") from exc
    trusted = set(trusted_types)
    refused = [t for t in untrusted if t not in trusted]
    if refused:
        raise UntrustedModelError(
            f"Refusing to load {path}: it contains types that skops does not trust by default: "
            f"{', '.join(refused)}. To allow them, add them to model.trusted_types in "
            "audit.toml (only if you trust the file's author)."
        )
    allowed = [t for t in untrusted if t in trusted]
    try:
        return sio.load(path, trusted=allowed)
    except USER_CODE_ERRORS as exc:
        raise ModelError(f"Cannot load skops file {path}: {describe_failure(exc)}") from exc


class SkopsAdapter(_EstimatorAdapter):
    """A scikit-learn model saved with ``skops.io.dump``.

    Types outside skops' default trusted set must be named in ``trusted_types``
    (``model.trusted_types`` in audit.toml), or loading raises UntrustedModelError.
    """

    def __init__(self, path: str | Path, trusted_types=()) -> None:
        path = Path(path)
        if isinstance(trusted_types, str):
            trusted_types = (trusted_types,)
        self.trusted_types: tuple[str, ...] = tuple(trusted_types)
        super().__init__(path, _load_skops(path, self.trusted_types))


class PickleAdapter(_EstimatorAdapter):
    """A pickle or joblib file; loading one runs arbitrary code, so it needs ``trust_model``."""

    def __init__(self, path: str | Path, trust_model: bool) -> None:
        path = Path(path)
        if not trust_model:
            raise UntrustedModelError(
                f"Refusing to load {path}: pickle/joblib files run arbitrary code when loaded. "
                "Re-run with --trust-model only if you trust the file, or save the model with "
                "skops (skops.io.dump) instead."
            )
        import joblib

        try:
            estimator = joblib.load(path)
        except USER_CODE_ERRORS as exc:
            raise ModelError(f"Cannot load {path}: {describe_failure(exc)}") from exc
        super().__init__(path, estimator)


# --------------------------------------------------------------------------- callable


def _resolve_callable(spec: str) -> tuple[Callable[..., Any], Any]:
    module_name, sep, attr_path = spec.partition(":")
    parts = attr_path.split(".") if attr_path else []
    if (
        not sep
        or ":" in attr_path
        or not all(p.isidentifier() for p in module_name.split("."))
        or not parts
        or not all(p.isidentifier() for p in parts)
    ):
        raise ModelError(f"Malformed model function {spec!r}: expected the form {CALLABLE_FORM}.")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise ModelError(
                f"Cannot import module {module_name!r} for model function {spec!r}: no such "
                f"module. Expected the form {CALLABLE_FORM}."
            ) from exc
        raise ModelError(  # the module exists but one of its own imports is missing
            f"Importing module {module_name!r} for model function {spec!r} failed: {exc}"
        ) from exc
    except USER_CODE_ERRORS as exc:
        raise ModelError(
            f"Importing module {module_name!r} for model function {spec!r} failed: "
            f"{describe_failure(exc)}"
        ) from exc
    obj: Any = module
    for part in parts:
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ModelError(
                f"Module {module_name!r} has no attribute {attr_path!r} (model function "
                f"{spec!r}). Expected the form {CALLABLE_FORM}."
            ) from exc
    if not callable(obj):
        raise ModelError(
            f"Model function {spec!r} is a {type(obj).__name__}, not a callable. "
            f"Expected the form {CALLABLE_FORM}."
        )
    return obj, module


class CallableAdapter:
    """A Python function ``"package.module:function"`` called as ``function(features)``."""

    kind = "callable"
    output_names: tuple[str, ...] | None = None

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.source = spec
        self.function, self._module = _resolve_callable(spec)

    def fingerprint(self) -> str:
        # The source file alone would give two functions of one module the same fingerprint
        # (and the same cached predictions), so the spec is hashed along with it.
        digest = hashlib.sha256()
        try:
            source_file = inspect.getsourcefile(self._module)
        except TypeError:  # built-in or C extension module
            source_file = None
        if source_file and Path(source_file).is_file():
            digest.update(Path(source_file).read_bytes())
            digest.update(b"\0")
        digest.update(f"{self._module.__name__}:{self.function.__qualname__}".encode())
        return digest.hexdigest()

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        try:
            # A copy, so that a function that edits its input cannot change the audit's data.
            result = self.function(features.copy())
        except USER_CODE_ERRORS as exc:
            raise ModelError(
                f"Model function {self.spec!r} raised {describe_failure(exc)}"
            ) from exc
        return _as_probability_matrix(result, len(features), f"function {self.spec!r}")


# --------------------------------------------------------------------------- load_model


def is_network_model(spec: str | None) -> bool:
    """Whether a model setting names a torch/ONNX network file (by its suffix)."""
    return bool(spec) and Path(spec).suffix.lower() in NETWORK_SUFFIXES


def _network_without_images(path: Path) -> ModelError:
    return ModelError(
        f"Model {path}: torch and ONNX models are audited as image models (the imaging support): "
        "pass --image-column COLUMN (data.image_column), the manifest column of image paths "
        "relative to the manifest's folder. Tabular torch/ONNX models are not yet supported; "
        "export a tabular model with skops, or wrap it in a Python function 'package.module:function'."
    )


def load_model(
    spec: str | None,
    *,
    score_columns=(),
    trust_model: bool = False,
    trusted_types=(),
    image_column: str | None = None,
    **network_options: Any,
) -> ModelAdapter:
    """Return the adapter for a model setting.

    Parameters
    ----------
    spec : str or None
        A model file path (``.skops``, ``.pkl``, ``.pickle``, ``.joblib``; a torch or ONNX
        network, see :func:`audit.io.networks.load_network`), a function
        ``"package.module:function"``, or None/"" when the scores are already in the data.
    score_columns : sequence of str
        Columns holding precomputed probabilities; used only when ``spec`` is empty.
    trust_model : bool
        Allow loading pickle/joblib files (they run arbitrary code when loaded), and torch.save
        files of whole pickled modules.
    trusted_types : sequence of str
        skops types to trust beyond skops' defaults.
    image_column : str, optional
        The manifest column of image paths; required for torch/ONNX models.
    **network_options
        For torch/ONNX models only: ``factory``, ``input_name``, ``embedding_layer``,
        ``outputs`` (an OutputMapping), ``device``, ``batch_size``, ``workers``,
        ``preprocessing``, ``window``, ``nifti_slice``
        (see :func:`audit.io.image_model.load_image_model`).

    Raises
    ------
    InputError
        The model file does not exist.
    UntrustedModelError
        A pickle without ``trust_model``, or a skops file with types not in ``trusted_types``.
    ModelError
        Any other spec that cannot be loaded, with the supported forms; a torch/ONNX model
        without an image column.
    """
    if isinstance(score_columns, str):
        score_columns = (score_columns,)
    if spec is None or not spec.strip():
        if score_columns:
            return PredictionsAdapter(score_columns)
        raise ModelError(f"No model given. Give {SUPPORTED_FORMS}.")
    if score_columns:
        raise ModelError(
            f"Both a model ({spec}) and score columns ({', '.join(score_columns)}) were given; "
            "give one: the model to call, or the columns that already hold its predictions."
        )

    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix in NETWORK_SUFFIXES:
        if not image_column:
            raise _network_without_images(path)
        from audit.io.image_model import load_image_model

        return load_image_model(spec, image_column=image_column, trust_model=trust_model,
                                **network_options)
    if network_options:
        raise TypeError(
            f"load_model: {', '.join(sorted(network_options))} apply to torch/ONNX models only, "
            f"not to {spec!r}"
        )
    if suffix in SKOPS_SUFFIXES + PICKLE_SUFFIXES:
        if not path.exists():
            raise InputError(f"Model file not found: {path}")
        if not path.is_file():
            raise InputError(f"Model path is not a file: {path}")
        if suffix in SKOPS_SUFFIXES:
            return SkopsAdapter(path, trusted_types=trusted_types)
        return PickleAdapter(path, trust_model=trust_model)
    if ":" in spec and not path.is_file():
        return CallableAdapter(spec)
    where = "" if path.exists() else " (no such file)"
    raise ModelError(f"Unsupported model {spec!r}{where}. Give {SUPPORTED_FORMS}.")
