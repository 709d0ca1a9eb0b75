"""Neural-network adapters: torch and ONNX image models behind one small Protocol.

:func:`load_network` reads the file's *content* (not only its suffix) to pick the loader:

==========================================  ================  ================================
file                                        ``kind``          notes
==========================================  ================  ================================
TorchScript zip (``code/``, constants.pkl)  ``torchscript``   ``torch.jit.load``; no trust
torch.export zip (``.pt2``)                 ``torch_export``  ``torch.export.load().module()``
weights (torch.save dict or .safetensors)   ``state_dict``    needs ``factory``; loaded with
                                                              ``weights_only=True``
torch.save of a whole ``nn.Module``         ``torch_pickle``  only with ``trust_model=True``
ONNX protobuf (``.onnx``)                   ``onnx``          onnxruntime, CPU provider
==========================================  ================  ================================

Every :class:`Network` takes a float32 batch ``(N, C, H, W)`` or ``(N, C, D, H, W)`` and returns
float64 probabilities ``(N, k)`` after its :class:`OutputMapping` (activation, then column
selection). Inference is deterministic on CPU: torch runs in ``eval()`` and
``torch.inference_mode()``, no random op runs, and no seed or ``use_deterministic_algorithms``
is needed there (on CUDA some kernels are not bit-reproducible; CPU is the default).

torch and onnxruntime are imported inside functions: ``import audit.io.networks`` stays fast.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import re
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from audit.core.progress import track
from audit.errors import (
    USER_CODE_ERRORS,
    ConfigError,
    InputError,
    MissingExtraError,
    ModelError,
    UntrustedModelError,
    describe_failure,
)

__all__ = [
    "ACTIVATIONS",
    "NETWORK_SUFFIXES",
    "Network",
    "OnnxNetwork",
    "OutputMapping",
    "TorchNetwork",
    "load_network",
    "predict_batches",
]

ACTIVATIONS = ("sigmoid", "softmax", "none")
TORCH_SUFFIXES = (".pt", ".pth", ".ts", ".pt2", ".bin", ".safetensors")
ONNX_SUFFIXES = (".onnx",)
NETWORK_SUFFIXES = TORCH_SUFFIXES + ONNX_SUFFIXES

# The config keys named in messages, in one place so that a renamed key is one edit.
KEY_FACTORY = "model.factory"
KEY_INPUT_NAME = "model.input_name"
KEY_OUTPUT_NAME = "output_name"
KEY_EMBEDDING = "model.embedding_layer"
KEY_RESIZE = "[imaging.preprocess] resize"
TRUST_FLAG = "--trust-model"
FACTORY_FORM = "'package.module:function' (the module importable from sys.path)"

_MAPPING_KEYS = ("activation", "outputs", "output_name")
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"
_STATE_DICT_WRAPPERS = ("state_dict", "model_state_dict")


# --------------------------------------------------------------------------- helpers


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _short_list(names, limit: int = 5) -> str:
    names = [str(n) for n in names]
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _format_shape(per_sample) -> str:
    dims = ["N"] + ["?" if d is None else str(d) for d in per_sample]
    return "(" + ", ".join(dims) + ")"


def _cause(exc: BaseException) -> str:
    """One line naming a user-code failure: ``Type: first line of the message``."""
    return _first_line(describe_failure(exc))


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    if not lines:
        return ""
    # TorchScript puts its interpreter traceback first and the actual error last.
    if lines[0].startswith("The following operation failed in the TorchScript interpreter"):
        return lines[-1]
    return lines[0]


# --------------------------------------------------------------------------- output mapping


def _check_activation(value: Any, where: str) -> str:
    if value not in ACTIVATIONS:
        allowed = ", ".join(repr(a) for a in ACTIVATIONS)
        raise ConfigError(
            f"{where}: activation = {value!r} is not one of {allowed}. Use 'sigmoid' for "
            "independent logits (one per label), 'softmax' for logits of mutually exclusive "
            "classes, 'none' when the model already outputs probabilities."
        )
    return value


def _check_outputs(value: Any, where: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError(
            f"{where}: outputs = {value!r} must be a list of output column indices "
            "(0-based), one per label in label order, e.g. outputs = [1]."
        )
    items = list(value)
    bad = [v for v in items if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0]
    if not items or bad:
        why = "is empty" if not items else f"has entries that are not indices >= 0: {bad!r}"
        raise ConfigError(
            f"{where}: outputs {why}; give 0-based output column indices in label order, "
            "e.g. outputs = [1]."
        )
    if len(set(items)) != len(items):
        raise ConfigError(f"{where}: outputs = {items!r} repeats a column; list each once.")
    return tuple(int(v) for v in items)


def _check_output_name(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: output_name = {value!r} must be a non-empty string.")
    return value


@dataclass(frozen=True)
class OutputMapping:
    """How a network's raw output becomes one probability per label.

    Parameters
    ----------
    activation : {"sigmoid", "softmax", "none"}
        Applied to all output columns first (softmax needs every logit). ``"none"`` means the
        outputs already are probabilities; they are checked, never clamped.
    outputs : tuple of int or None, default None
        The output columns to keep, one per label in label order; None keeps all, in order.
        ``outputs=(1,)`` keeps the positive class of a two-logit softmax classifier.
    output_name : str or None, default None
        For a model with several outputs: the ONNX output name, the key of a dict output, or
        the index (``"0"``, ``"1"``) into a tuple output.
    """

    activation: str
    outputs: tuple[int, ...] | None = None
    output_name: str | None = None

    def __post_init__(self) -> None:
        where = "OutputMapping"
        _check_activation(self.activation, where)
        object.__setattr__(self, "outputs", _check_outputs(self.outputs, where))
        _check_output_name(self.output_name, where)

    @classmethod
    def from_config(cls, mapping: dict, where: str) -> OutputMapping:
        """Build a mapping from a config table such as ``[model.outputs]``.

        Parameters
        ----------
        mapping : dict
            Keys ``activation`` (required), ``outputs``, ``output_name``.
        where : str
            The config location, named in every error (e.g. ``"[model.outputs]"``).

        Raises
        ------
        ConfigError
            An unknown key, a missing ``activation``, or a value of the wrong kind.
        """
        if not isinstance(mapping, Mapping):
            raise ConfigError(
                f"{where} must be a table with keys {', '.join(_MAPPING_KEYS)}, "
                f"not {type(mapping).__name__}."
            )
        unknown = sorted(str(k) for k in mapping if k not in _MAPPING_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(unknown)}; allowed keys are "
                f"{', '.join(_MAPPING_KEYS)}."
            )
        if "activation" not in mapping:
            raise ConfigError(
                f"{where}: activation is required: one of "
                f"{', '.join(repr(a) for a in ACTIVATIONS)}."
            )
        return cls(
            activation=_check_activation(mapping["activation"], where),
            outputs=_check_outputs(mapping.get("outputs"), where),
            output_name=_check_output_name(mapping.get("output_name"), where),
        )

    def apply(self, raw: Any, n_rows: int, source: str) -> np.ndarray:
        """Turn a raw output ``(n_rows,)`` or ``(n_rows, k)`` into validated probabilities.

        Raises
        ------
        ModelError
            The output has the wrong shape, a selected column does not exist, or a value is
            NaN or outside [0, 1] after the activation.
        """
        scores = np.asarray(raw, dtype=np.float64)
        if scores.ndim == 1:
            scores = scores.reshape(-1, 1)
        if scores.ndim != 2 or scores.shape[0] != n_rows:
            raise ModelError(
                f"Model {source} returned an output of shape {scores.shape} for {n_rows} "
                f"images; the audit needs one row of class scores per image, ({n_rows}, k). "
                f"If the model has several outputs, choose one with {KEY_OUTPUT_NAME}."
            )
        scores = self._activate(scores, source)
        if self.outputs is not None:
            k = scores.shape[1]
            missing = [i for i in self.outputs if i >= k]
            if missing:
                raise ModelError(
                    f"Model {source} has {k} output column(s) (0..{k - 1}), but outputs "
                    f"selects {missing}; fix outputs in the model's output mapping."
                )
            scores = scores[:, list(self.outputs)]
        self._validate(scores, source)
        return scores

    def _activate(self, scores: np.ndarray, source: str) -> np.ndarray:
        from scipy.special import expit, softmax

        if self.activation == "sigmoid":
            return expit(scores)
        if self.activation == "softmax":
            if scores.shape[1] == 1:
                raise ModelError(
                    f"Model {source} has one output column: a softmax over it is always 1. "
                    "Use activation = 'sigmoid' for a single logit."
                )
            return softmax(scores, axis=1)
        return scores

    def _validate(self, scores: np.ndarray, source: str) -> None:
        bad = ~((scores >= 0.0) & (scores <= 1.0))  # NaN compares False: it counts as bad
        n_bad = int(bad.sum())
        if n_bad == 0:
            return
        finite = scores[np.isfinite(scores)]
        span = (f"min {finite.min():.6g}, max {finite.max():.6g}" if finite.size
                else "no finite value")
        n_nan = int(np.isnan(scores).sum())
        hint = (
            "the model returned NaN or infinite values; check its weights and the input scaling"
            if self.activation != "none" or n_nan
            else "if these are logits, set activation = 'sigmoid' or 'softmax'"
        )
        raise ModelError(
            f"Model {source} gave {n_bad} of {scores.size} values outside [0, 1] after "
            f"activation {self.activation!r} ({span}, {n_nan} NaN): {hint}."
        )


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class Network(Protocol):
    """What the audit needs from an image model, whatever framework it comes from.

    Attributes
    ----------
    kind : str
        ``"torchscript"``, ``"torch_export"``, ``"state_dict"``, ``"torch_pickle"`` or
        ``"onnx"``.
    source : str
        The model file, for the report.
    input_shape : tuple of (int or None) or None
        The per-sample input shape (without the batch dimension) when known from the ONNX
        metadata, the exported program or the configuration; None marks a free dimension.
    """

    kind: str
    source: str
    input_shape: tuple[int | None, ...] | None

    def fingerprint(self) -> str:
        """Return a sha256 hex digest of the model file(s) and the output settings."""
        ...

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Return float64 probabilities ``(N, k)`` for a float32 batch ``(N, C, ...)``."""
        ...

    def embed(self, batch: np.ndarray) -> np.ndarray | None:
        """Return penultimate-layer features ``(N, d)``, or None when not available."""
        ...


def _check_batch(batch: Any, expected: tuple[int | None, ...] | None, source: str) -> np.ndarray:
    if not isinstance(batch, np.ndarray):
        raise InputError(
            f"Model {source} takes a numpy array batch, not {type(batch).__name__}."
        )
    if batch.ndim not in (4, 5):
        raise InputError(
            f"Model {source} takes a batch of shape (N, C, H, W) or (N, C, D, H, W); "
            f"got shape {batch.shape}."
        )
    got = tuple(batch.shape[1:])
    if expected is not None and not _shape_matches(expected, got):
        raise ModelError(
            f"Model {source}: the model expects {_format_shape(expected)}, the images are "
            f"{_format_shape(got)}; {_shape_hint(expected, got)}."
        )
    return batch


def _shape_matches(expected, got) -> bool:
    return len(expected) == len(got) and all(e is None or e == g for e, g in zip(expected, got))


def _shape_hint(expected, got) -> str:
    if len(expected) != len(got):
        return (f"the model takes {len(expected) - 1}-D images (channels first), these are "
                f"{len(got) - 1}-D")
    if expected[0] is not None and expected[0] != got[0]:
        return (f"the model takes {expected[0]} channel(s), the images have {got[0]}: convert "
                "them in preprocessing (e.g. grayscale or RGB)")
    spatial = list(expected[1:])
    if all(d is not None for d in spatial):
        return f"set {KEY_RESIZE} = {spatial}"
    return f"set {KEY_RESIZE} to the size the model was trained on"


def _fingerprint(files: Iterable[Path], settings: dict) -> str:
    # The settings are hashed with the files: the same weights read with another activation
    # or output column give other probabilities, and a cache keyed on this must not mix them.
    digest = hashlib.sha256()
    for path in files:
        digest.update(_sha256_file(path).encode())
        digest.update(b"\0")
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------- sniffing


def _sniff(path: Path) -> str:
    """Name the file's format from its bytes: the suffix alone is often wrong."""
    with path.open("rb") as fh:
        head = fh.read(16)
    if head.startswith(_ZIP_MAGIC):
        return _sniff_zip(path)
    if head.startswith(_PICKLE_MAGIC):
        return "pickle"  # torch.save's legacy (non-zip) format is a pickle stream
    if _is_safetensors(path, head):
        return "safetensors"
    if _is_onnx(path, head):
        return "onnx"
    return "unknown"


def _sniff_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        return "unknown"
    # Entries sit under one top-level folder named after the archive ("m/constants.pkl").
    inner = {name.split("/", 1)[-1] for name in names}
    if ("archive_format" in inner or any(n.startswith("models/") for n in inner)
            or any("serialized_exported_program" in n for n in inner)):  # torch < 2.6 layout
        return "torch_export"
    if "constants.pkl" in inner or any(n.startswith("code/") for n in inner):
        return "torchscript"
    if "data.pkl" in inner:
        return "torch_save"
    return "zip"


def _is_safetensors(path: Path, head: bytes) -> bool:
    if len(head) < 9:
        return False
    header_len = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 0 < header_len < path.stat().st_size


def _is_onnx(path: Path, head: bytes) -> bool:
    try:
        import onnx
    except ImportError:
        # A ModelProto starts with field 1 (ir_version, a varint): tag byte 0x08.
        return head[:1] == b"\x08"
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # any parse failure means: not ONNX
        return False
    return model.ir_version > 0 and len(model.graph.node) > 0


def _refuse_torch_as_onnx(path: Path) -> None:
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(_ZIP_MAGIC) or head.startswith(_PICKLE_MAGIC):
        what = "a zip archive (it starts with 'PK')" if head.startswith(_ZIP_MAGIC) else "a pickle"
        raise ModelError(
            f"Model {path} is named .onnx but looks like a torch archive ({what}), not an ONNX "
            "protobuf. Rename it to .pt (TorchScript or a state_dict) or .pt2 (torch.export), "
            "or export it to ONNX with torch.onnx.export."
        )


# --------------------------------------------------------------------------- torch loading


def _import_torch(path: Path) -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingExtraError("torch", "torch", f"Loading the torch model {path}") from exc
    return torch


def _torch_device(torch: Any, device: str) -> Any:
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"device = {device!r} is not a torch device ('cpu', 'cuda', 'cuda:0')."
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device = {device!r} was requested, but torch sees no CUDA device; use 'cpu'."
        )
    return dev


def _load_torchscript(torch: Any, path: Path, device: Any) -> Any:
    jit = getattr(torch, "jit", None)
    if jit is None or not hasattr(jit, "load"):
        raise ModelError(
            f"Model {path} is TorchScript, which this version of torch can no longer load. "
            "Re-save the model with torch.export (torch.export.save, .pt2)."
        )
    try:
        with warnings.catch_warnings():
            # torch.jit is deprecated in favour of torch.export; auditing an existing model
            # cannot act on that, so the warning is not passed on to the user.
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
            module = jit.load(str(path), map_location=device)
    except USER_CODE_ERRORS as exc:
        raise ModelError(f"Cannot load TorchScript model {path}: {_cause(exc)}") from exc
    return module.eval()


def _load_exported(torch: Any, path: Path) -> Any:
    try:
        return torch.export.load(str(path))
    except USER_CODE_ERRORS as exc:
        raise ModelError(f"Cannot load torch.export model {path}: {_cause(exc)}") from exc


def _refused_global(exc: BaseException) -> str:
    match = re.search(r"GLOBAL ([\w.]+)", str(exc))
    return f" (it refused {match.group(1)})" if match else ""


def _untrusted_pickle(path: Path, exc: BaseException) -> UntrustedModelError:
    return UntrustedModelError(
        f"Refusing to load {path}: it is a torch.save file of pickled Python objects, such as a "
        f"whole nn.Module, which torch.load(weights_only=True) refused{_refused_global(exc)}; "
        "unpickling it would run arbitrary code. Save the weights instead "
        f"(torch.save(model.state_dict(), path)) and set {KEY_FACTORY} = "
        "'package.module:function' that builds the architecture, or save the whole model with "
        "torch.export (torch.export.save, .pt2) or TorchScript. Re-run with "
        f"{TRUST_FLAG} only if you trust the file's author."
    )


def _torch_load(torch: Any, path: Path, trust_model: bool) -> Any:
    """``torch.load`` with ``weights_only=True``; a full unpickle only when trusted."""
    import pickle

    try:
        return torch.load(str(path), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        if not trust_model:
            raise _untrusted_pickle(path, exc) from exc
    except USER_CODE_ERRORS as exc:
        raise ModelError(f"Cannot read torch file {path}: {_cause(exc)}") from exc
    try:
        return torch.load(str(path), weights_only=False, map_location="cpu")
    except USER_CODE_ERRORS as exc:
        raise ModelError(
            f"Cannot unpickle {path} (trusted): {_cause(exc)}. The classes "
            "it was saved with must be importable under the same module names."
        ) from exc


_SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
    "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
}


def _read_safetensors(torch: Any, path: Path) -> dict:
    """Read a .safetensors file (8-byte header length, JSON header, raw little-endian data)."""
    try:
        raw = path.read_bytes()
        header_len = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + header_len])
        header.pop("__metadata__", None)
        data = raw[8 + header_len:]
        state = {}
        for name, info in header.items():
            dtype = getattr(torch, _SAFETENSORS_DTYPES[info["dtype"]])
            start, end = info["data_offsets"]
            flat = (torch.frombuffer(bytearray(data[start:end]), dtype=dtype) if end > start
                    else torch.empty(0, dtype=dtype))
            state[name] = flat.reshape(info["shape"])
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ModelError(
            f"Cannot read safetensors file {path}: {type(exc).__name__}: {exc}"
        ) from exc
    return state


def _as_state_dict(torch: Any, obj: Any, path: Path) -> dict:
    if isinstance(obj, Mapping) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        # Training checkpoints often wrap the weights: {"epoch": 3, "state_dict": {...}}.
        for key in _STATE_DICT_WRAPPERS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        found = (f"a dict with keys {_short_list(obj)}" if isinstance(obj, Mapping)
                 else f"a {type(obj).__name__}")
        raise ModelError(
            f"Model {path} holds {found}, not a state_dict (a dict of tensor names to tensors). "
            "Save it with torch.save(model.state_dict(), path)."
        )
    return dict(obj)


def _resolve_factory(spec: str) -> tuple[Any, Any]:
    module_name, sep, attr_path = spec.partition(":")
    parts = attr_path.split(".") if attr_path else []
    if (not sep or not parts or not all(p.isidentifier() for p in module_name.split("."))
            or not all(p.isidentifier() for p in parts)):
        raise ConfigError(f"{KEY_FACTORY} = {spec!r} is malformed: expected {FACTORY_FORM}.")
    try:
        module = importlib.import_module(module_name)
    except USER_CODE_ERRORS as exc:
        raise ModelError(
            f"Cannot import module {module_name!r} for {KEY_FACTORY} = {spec!r}: "
            f"{describe_failure(exc)}. Expected {FACTORY_FORM}."
        ) from exc
    obj: Any = module
    for part in parts:
        if not hasattr(obj, part):
            raise ModelError(
                f"Module {module_name!r} has no attribute {attr_path!r} "
                f"({KEY_FACTORY} = {spec!r})."
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelError(f"{KEY_FACTORY} = {spec!r} is a {type(obj).__name__}, not a callable.")
    return obj, module


def _build_from_factory(torch: Any, spec: str) -> tuple[Any, Any]:
    factory, module = _resolve_factory(spec)
    try:
        model = factory()
    except USER_CODE_ERRORS as exc:
        raise ModelError(f"{KEY_FACTORY} = {spec!r} raised {describe_failure(exc)}") from exc
    if not isinstance(model, torch.nn.Module):
        raise ModelError(
            f"{KEY_FACTORY} = {spec!r} returned a {type(model).__name__}; it must return the "
            "torch.nn.Module whose weights the file holds, called with no arguments."
        )
    return model, module


def _count_list(label: str, keys: list[str]) -> str:
    return f"{len(keys)} {label} ({_short_list(keys)})"


def _load_weights(model: Any, state: dict, path: Path, spec: str) -> None:
    """``load_state_dict(strict=True)``, with the mismatch spelled out first."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = [_count_list(label, keys) for label, keys in
                 (("missing key(s)", missing), ("unexpected key(s)", unexpected)) if keys]
        hint = (" The file's keys start with 'module.' (saved from DataParallel): save "
                "model.module.state_dict() instead." if unexpected and
                all(k.startswith("module.") for k in unexpected) else "")
        raise ModelError(
            f"The weights in {path} do not fit the model built by {KEY_FACTORY} = {spec!r}: "
            f"{'; '.join(parts)}.{hint} Check that the factory builds the architecture the "
            "weights were saved from."
        )
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        raise ModelError(
            f"The weights in {path} have other shapes than the model built by {KEY_FACTORY} = "
            f"{spec!r} (file vs model): {_short_list(wrong)}."
        )
    try:
        model.load_state_dict(state, strict=True)
    except USER_CODE_ERRORS as exc:
        raise ModelError(f"Cannot load the weights in {path}: {_cause(exc)}") from exc


def _module_source(module: Any) -> Path | None:
    try:
        source = inspect.getsourcefile(module)
    except TypeError:
        return None
    return Path(source) if source and Path(source).is_file() else None


# --------------------------------------------------------------------------- torch network


class TorchNetwork:
    """A torch model: TorchScript, torch.export program, state_dict + factory, or a pickle.

    Build it with :func:`load_network`. ``forward`` runs in ``torch.inference_mode()`` on
    ``device``; ``embed`` hooks ``embedding_layer`` (its output) or, by default, the last
    ``nn.Linear`` (its input). TorchScript modules accept no hooks, so their ``embed`` is None.
    A torch.export program keeps the train/eval mode it was exported in: export it in eval mode.
    """

    def __init__(self, *, kind: str, path: Path, module: Any, mapping: OutputMapping,
                 device: Any, input_shape=None, embedding_layer: str | None = None,
                 program: Any = None, extra_files=(), settings=None) -> None:
        self.kind = kind
        self.path = path
        self.source = str(path)
        self.module = module
        self.mapping = mapping
        self.device = device
        self.program = program
        self.embedding_layer = embedding_layer
        program_shape = self._program_shape()
        self.input_shape = (input_shape if program_shape is None
                            else _merge_shapes(program_shape, input_shape))
        self._input_dtype = self._find_input_dtype()
        self._extra_files = tuple(extra_files)
        self._settings = {**(settings or {}), "kind": kind}
        self._fingerprint: str | None = None
        self._hooked: Any = None  # (module to run, submodule to hook, "input"/"output")
        if embedding_layer is not None:
            self._hooked = self._embedding_target()

    # -- metadata

    def _program_shape(self) -> tuple[int | None, ...] | None:
        if self.program is None:
            return None
        placeholders = self._user_placeholders()
        if len(placeholders) != 1:
            return None
        shape = placeholders[0].meta["val"].shape
        return tuple(d if isinstance(d, int) else None for d in shape[1:])

    def _user_placeholders(self) -> list:
        names = set(self.program.graph_signature.user_inputs)
        return [n for n in self.program.graph.nodes if n.op == "placeholder" and n.name in names]

    def _find_input_dtype(self) -> Any:
        import torch

        if self.program is not None:
            placeholders = self._user_placeholders()
            if len(placeholders) != 1:
                raise ModelError(
                    f"Model {self.source} takes {len(placeholders)} inputs "
                    f"({_short_list(n.name for n in placeholders)}); the audit passes one "
                    "image batch. Export a module whose forward takes the images only."
                )
            return placeholders[0].meta["val"].dtype
        param = next(iter(self.module.parameters()), None)
        if param is not None and param.dtype.is_floating_point:
            return param.dtype
        return torch.float32

    def fingerprint(self) -> str:
        """sha256 over the model file, the factory's source file, and the output settings."""
        if self._fingerprint is None:
            self._fingerprint = _fingerprint((self.path, *self._extra_files), self._settings)
        return self._fingerprint

    # -- calls

    def _run(self, module: Any, batch: np.ndarray) -> Any:
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        tensor = tensor.to(device=self.device, dtype=self._input_dtype)
        try:
            with torch.inference_mode():
                return module(tensor)
        except USER_CODE_ERRORS as exc:
            raise ModelError(self._failure(exc, batch.shape)) from exc

    def _failure(self, exc: BaseException, shape: tuple) -> str:
        message = f"Model {self.source} failed on a batch of shape {tuple(shape)}: {_cause(exc)}"
        if self.input_shape is not None:
            return f"{message}. The model expects {_format_shape(self.input_shape)}."
        channels = _first_conv_channels(self.module)
        if channels is not None and channels != shape[1]:
            return (f"{message}. Its first convolution takes {channels} channel(s), the images "
                    f"have {shape[1]}.")
        return message

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Return float64 probabilities ``(N, k)`` for a batch ``(N, C, H, W)`` or 3-D volumes.

        Raises
        ------
        ModelError
            The batch does not match the model's input shape, the model fails, or its output
            is not a probability after the mapping.
        """
        batch = _check_batch(batch, self.input_shape, self.source)
        raw = self._run(self.module, batch)
        out = _select_torch_output(raw, self.mapping.output_name, self.source)
        return self.mapping.apply(_to_numpy(out), len(batch), self.source)

    def embed(self, batch: np.ndarray) -> np.ndarray | None:
        """Return features ``(N, d)`` from ``embedding_layer`` or the last ``nn.Linear``'s input.

        None when the model has no such layer or accepts no hooks (TorchScript).
        """
        batch = _check_batch(batch, self.input_shape, self.source)
        if self._hooked is None:
            self._hooked = self._embedding_target() or False
        if self._hooked is False:
            return None
        runner, layer, which = self._hooked
        captured: list = []
        if which == "input":
            handle = layer.register_forward_pre_hook(lambda mod, args: captured.append(args[0]))
        else:
            handle = layer.register_forward_hook(lambda mod, args, out: captured.append(out))
        try:
            self._run(runner, batch)
        finally:
            handle.remove()
        if not captured:
            return None
        # The first call is the one fed by the batch: a layer reused in a loop fires again.
        return _features(captured[0], len(batch), self.source)

    def _embedding_target(self) -> tuple | None:
        if self.kind == "torchscript":
            if self.embedding_layer is not None:
                raise ModelError(
                    f"{KEY_EMBEDDING} = {self.embedding_layer!r}: TorchScript modules accept no "
                    f"hooks, so the audit cannot read a layer of {self.source}. Give the weights "
                    f"and a {KEY_FACTORY}, or a torch.export (.pt2) model."
                )
            return None
        runner, fqn = self.module, self.embedding_layer
        if self.program is not None:
            runner = _unflatten(self.program)
            fqn = fqn if fqn is not None else _last_linear_in_program(self.program)
        if fqn is None:
            linear = _last_linear(self.module)
            return (runner, linear, "input") if linear is not None else None
        layers = dict(runner.named_modules())
        if fqn not in layers:
            names = [n for n in layers if n]
            raise ModelError(
                f"{KEY_EMBEDDING} = {fqn!r} is not a module of {self.source} (modules: "
                f"{_short_list(names, 10)})."
            )
        return runner, layers[fqn], "output" if self.embedding_layer is not None else "input"


def _to_numpy(tensor: Any) -> np.ndarray:
    import torch

    if not isinstance(tensor, torch.Tensor):
        return np.asarray(tensor, dtype=np.float64)
    return tensor.detach().to("cpu", torch.float64).numpy()


def _features(value: Any, n_rows: int, source: str) -> np.ndarray:
    import torch

    if not isinstance(value, torch.Tensor) or value.ndim == 0 or value.shape[0] != n_rows:
        what = (f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor)
                else f"a {type(value).__name__}")
        raise ModelError(
            f"The embedding layer of {source} gave {what} for {n_rows} images; choose a layer "
            f"({KEY_EMBEDDING}) that returns one tensor with a row per image."
        )
    return _to_numpy(value).reshape(n_rows, -1)


def _select_torch_output(out: Any, name: str | None, source: str) -> Any:
    import torch

    if isinstance(out, torch.Tensor):
        if name is not None:
            raise ModelError(
                f"Model {source} returns a single tensor, but {KEY_OUTPUT_NAME} = {name!r} is set; "
                "remove it."
            )
        return out
    if isinstance(out, Mapping):
        keys = [str(k) for k in out]
        if name is None or name not in out:
            what = "" if name is None else f"{KEY_OUTPUT_NAME} = {name!r} is not one of them; "
            raise ModelError(
                f"Model {source} returns a dict of outputs ({_short_list(keys)}); {what}"
                f"set {KEY_OUTPUT_NAME} to the key holding the class scores."
            )
        return out[name]
    if isinstance(out, (tuple, list)):
        if len(out) == 1 and name is None:
            return out[0]
        if name is None or not name.isdigit() or int(name) >= len(out):
            what = "" if name is None else f"{KEY_OUTPUT_NAME} = {name!r} is not an index of it; "
            raise ModelError(
                f"Model {source} returns a {type(out).__name__} of {len(out)} outputs; {what}set "
                f"{KEY_OUTPUT_NAME} to the index ('0' to '{len(out) - 1}') of the class scores."
            )
        return out[int(name)]
    raise ModelError(
        f"Model {source} returned a {type(out).__name__}, not a tensor of class scores."
    )


def _last_linear(module: Any) -> Any:
    import torch

    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    return linears[-1] if linears else None


def _last_linear_in_program(program: Any) -> str | None:
    """The module path of the last ``nn.Linear`` call in an exported graph."""
    fqn = None
    for node in program.graph.nodes:
        stack = node.meta.get("nn_module_stack") or {}
        if stack:
            path, type_name = list(stack.values())[-1]
            if str(type_name).rsplit(".", 1)[-1].strip("'>") == "Linear":
                fqn = path
    return fqn


def _unflatten(program: Any) -> Any:
    import torch

    with warnings.catch_warnings():
        # torch's own unflatten trips a pytree FutureWarning that the user cannot act on.
        warnings.simplefilter("ignore", FutureWarning)
        return torch.export.unflatten(program)


def _first_conv_channels(module: Any) -> int | None:
    for sub in module.modules():
        name = getattr(sub, "original_name", None) or type(sub).__name__
        if name.startswith("Conv") and isinstance(getattr(sub, "in_channels", None), int):
            return sub.in_channels
    return None


# --------------------------------------------------------------------------- onnx network


_ONNX_DTYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
}


def _merge_shapes(known: tuple, configured: tuple | None) -> tuple:
    # The file's metadata wins; the configuration only fills the dimensions it leaves free.
    if configured is None or len(configured) != len(known):
        return known
    return tuple(k if k is not None else c for k, c in zip(known, configured))


def _onnx_providers(ort: Any, device: str) -> list:
    if device == "cpu":
        return ["CPUExecutionProvider"]
    kind, _, index = device.partition(":")
    available = ort.get_available_providers()
    if kind != "cuda" or "CUDAExecutionProvider" not in available:
        raise ConfigError(
            f"device = {device!r} is not available to onnxruntime (providers: "
            f"{', '.join(available)}); use 'cpu'."
        )
    return [("CUDAExecutionProvider", {"device_id": int(index or 0)}), "CPUExecutionProvider"]


class OnnxNetwork:
    """An ONNX model run by onnxruntime (CPU provider, default thread settings).

    Build it with :func:`load_network`. The input shape and dtype come from the model's input
    metadata; a fixed batch dimension (models exported with batch 1) is handled by running
    the batch in chunks of that size. ``embed`` reads the output named ``embedding_layer``.
    """

    kind = "onnx"

    def __init__(self, path: Path, *, mapping: OutputMapping, input_name: str | None = None,
                 embedding_layer: str | None = None, device: str = "cpu", input_shape=None) -> None:
        self.path = path
        self.source = str(path)
        self.mapping = mapping
        self.embedding_layer = embedding_layer
        self.session = _onnx_session(path, device)
        meta = self._pick_input(input_name)
        self.input_name: str = meta.name
        dims = list(meta.shape or [])
        self._batch_size = dims[0] if dims and isinstance(dims[0], int) and dims[0] > 0 else None
        known = tuple(d if isinstance(d, int) and d > 0 else None for d in dims[1:])
        self.input_shape = _merge_shapes(known, input_shape) if dims else input_shape
        self._dtype = self._input_dtype(meta)
        self.output_name = self._pick_output()
        self._fingerprint: str | None = None

    def _pick_input(self, input_name: str | None) -> Any:
        inputs = self.session.get_inputs()
        names = [i.name for i in inputs]
        if input_name is not None:
            for meta in inputs:
                if meta.name == input_name:
                    return meta
            raise ModelError(
                f"{KEY_INPUT_NAME} = {input_name!r} is not an input of {self.source} "
                f"(inputs: {', '.join(names)})."
            )
        if len(inputs) != 1:
            raise ModelError(
                f"Model {self.source} has {len(inputs)} inputs ({', '.join(names)}); set "
                f"{KEY_INPUT_NAME} to the one that takes the images."
            )
        return inputs[0]

    def _input_dtype(self, meta: Any) -> Any:
        if meta.type not in _ONNX_DTYPES:
            raise ModelError(
                f"Input {meta.name!r} of {self.source} is {meta.type}; the audit passes float "
                "images (tensor(float), tensor(double) or tensor(float16))."
            )
        return _ONNX_DTYPES[meta.type]

    def _pick_output(self) -> str:
        names = [o.name for o in self.session.get_outputs()]
        chosen = (KEY_OUTPUT_NAME, self.mapping.output_name), (KEY_EMBEDDING, self.embedding_layer)
        for key, name in chosen:
            if name is not None and name not in names:
                raise ModelError(
                    f"{key} = {name!r} is not an output of {self.source} "
                    f"(outputs: {', '.join(names)})."
                )
        if self.mapping.output_name is not None:
            return self.mapping.output_name
        candidates = [n for n in names if n != self.embedding_layer]
        if len(candidates) != 1:
            raise ModelError(
                f"Model {self.source} has {len(names)} outputs ({', '.join(names)}); set "
                f"{KEY_OUTPUT_NAME} in the model's output mapping to the one with the class scores."
            )
        return candidates[0]

    def fingerprint(self) -> str:
        """sha256 over the model file, its external-data files, and the output settings."""
        if self._fingerprint is None:
            settings = {"kind": self.kind, "mapping": repr(self.mapping), "input": self.input_name,
                        "output": self.output_name}
            files = (self.path, *_onnx_external_files(self.path))
            self._fingerprint = _fingerprint(files, settings)
        return self._fingerprint

    def _run(self, output: str, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=self._dtype)
        size = self._batch_size or len(x) or 1
        chunks = []
        for start in range(0, len(x), size):
            chunk = x[start:start + size]
            n = len(chunk)
            if n < size:  # pad the last chunk of a fixed-batch model, then drop the padding
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], size - n, axis=0)])
            chunks.append(self._run_chunk(output, chunk)[:n])
        return np.concatenate(chunks) if chunks else self._run_chunk(output, x)

    def _run_chunk(self, output: str, chunk: np.ndarray) -> np.ndarray:
        try:
            (result,) = self.session.run([output], {self.input_name: chunk})
        except USER_CODE_ERRORS as exc:
            expected = ("" if self.input_shape is None
                        else f" The model expects {_format_shape(self.input_shape)}.")
            raise ModelError(
                f"Model {self.source} failed on a batch of shape {chunk.shape}: "
                f"{_cause(exc)}.{expected}"
            ) from exc
        return np.asarray(result)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Return float64 probabilities ``(N, k)`` for a batch ``(N, C, H, W)`` or 3-D volumes.

        Raises
        ------
        ModelError
            The batch does not match the model's input metadata, onnxruntime fails, or the
            output is not a probability after the mapping.
        """
        batch = _check_batch(batch, self.input_shape, self.source)
        return self.mapping.apply(self._run(self.output_name, batch), len(batch), self.source)

    def embed(self, batch: np.ndarray) -> np.ndarray | None:
        """Return the output named ``embedding_layer``, flattened to ``(N, d)``; else None."""
        if self.embedding_layer is None:
            return None
        batch = _check_batch(batch, self.input_shape, self.source)
        return self._run(self.embedding_layer, batch).astype(np.float64).reshape(len(batch), -1)


def _onnx_session(path: Path, device: str) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingExtraError("onnxruntime", "onnx", f"Loading the ONNX model {path}") from exc
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT's optimizer notes are not for the user
    try:
        return ort.InferenceSession(str(path), options, providers=_onnx_providers(ort, device))
    except USER_CODE_ERRORS as exc:
        raise ModelError(f"Cannot load ONNX model {path}: {_cause(exc)}") from exc


def _onnx_external_files(path: Path) -> list[Path]:
    try:
        import onnx
    except ImportError:
        return []  # without onnx the external files cannot be listed; the .onnx file still is
    model = onnx.load(str(path), load_external_data=False)
    files = []
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in tensor.external_data}
            location = path.parent / entries.get("location", "")
            if location.is_file() and location not in files:
                files.append(location)
    return files


# --------------------------------------------------------------------------- load_network


def _existing_file(spec: str) -> Path:
    path = Path(spec)
    if not path.exists():
        raise InputError(f"Model file not found: {path}")
    if not path.is_file():
        raise InputError(f"Model path is not a file: {path}")
    suffix = path.suffix.lower()
    if suffix not in NETWORK_SUFFIXES:
        raise ModelError(
            f"Model {path}: {suffix or 'no suffix'} is not a network file; expected one of "
            f"{', '.join(NETWORK_SUFFIXES)}."
        )
    return path


def _load_torch(path: Path, fmt: str, *, factory, mapping, embedding_layer, trust_model,
                device, input_shape) -> TorchNetwork:
    torch = _import_torch(path)
    dev = _torch_device(torch, device)
    common = dict(path=path, mapping=mapping, device=dev, input_shape=input_shape,
                  embedding_layer=embedding_layer,
                  settings={"mapping": repr(mapping), "factory": factory})
    if factory is not None:
        if fmt in ("torchscript", "torch_export"):
            raise ModelError(
                f"Model {path} is a complete {fmt} model, not a state_dict; remove {KEY_FACTORY} "
                f"= {factory!r}."
            )
        model, module = _build_from_factory(torch, factory)
        state = (_read_safetensors(torch, path) if fmt == "safetensors"
                 else _as_state_dict(torch, _torch_load(torch, path, trust_model), path))
        _load_weights(model, state, path, factory)
        source = _module_source(module)
        return TorchNetwork(kind="state_dict", module=model.to(dev).eval(),
                            extra_files=[source] if source else [], **common)
    if fmt == "torchscript":
        return TorchNetwork(kind="torchscript", module=_load_torchscript(torch, path, dev),
                            **common)
    if fmt == "torch_export":
        program = _load_exported(torch, path)
        # An exported module refuses .eval(): it runs in the mode it was exported in.
        return TorchNetwork(kind="torch_export", module=program.module().to(dev), program=program,
                            **common)
    if fmt in ("torch_save", "pickle"):
        loaded = _torch_load(torch, path, trust_model)
        if isinstance(loaded, torch.nn.Module):
            return TorchNetwork(kind="torch_pickle", module=loaded.to(dev).eval(),
                                **common)
        _as_state_dict(torch, loaded, path)  # raises when it is not even a state_dict
        fmt = "state_dict"
    if fmt in ("state_dict", "safetensors"):
        raise ModelError(
            f"Model {path} holds weights only (a state_dict), not the architecture. Set "
            f"{KEY_FACTORY} = {FACTORY_FORM}, a function that builds the untrained model."
        )
    raise ModelError(
        f"Model {path} is not a TorchScript, torch.export (.pt2), torch.save or safetensors "
        "file (its content matches none of them)."
    )


def load_network(spec: str, *, factory: str | None = None, mapping: OutputMapping,
                 input_name: str | None = None, embedding_layer: str | None = None,
                 trust_model: bool = False, device: str = "cpu",
                 input_shape: tuple[int | None, ...] | None = None) -> Network:
    """Load a torch or ONNX model file as a :class:`Network`.

    Parameters
    ----------
    spec : str
        The model file: ``.onnx``, ``.pt``/``.ts`` (TorchScript), ``.pt2`` (torch.export),
        or ``.pt``/``.pth``/``.bin``/``.safetensors`` weights with ``factory``. The content
        decides how it is read; a suffix that contradicts it is reported.
    factory : str, optional
        ``"package.module:function"`` returning the untrained ``nn.Module`` for a state_dict;
        the weights are loaded with ``torch.load(weights_only=True)`` and ``strict=True``.
    mapping : OutputMapping
        Activation and output columns that turn raw outputs into probabilities.
    input_name : str, optional
        The ONNX input that takes the images, needed when the model has several inputs.
    embedding_layer : str, optional
        torch: the module (as in ``named_modules()``) whose output is the embedding; by
        default the input of the last ``nn.Linear``. ONNX: the output holding the embedding.
    trust_model : bool, default False
        Allow unpickling a torch.save file that is not plain weights (it can run code).
    device : str, default "cpu"
        ``"cpu"`` or a CUDA device (``"cuda"``, ``"cuda:1"``).
    input_shape : tuple, optional
        The per-sample input shape from the configuration, used when the file does not say.

    Returns
    -------
    Network
        A :class:`TorchNetwork` or an :class:`OnnxNetwork`.

    Raises
    ------
    InputError
        The file does not exist.
    UntrustedModelError
        A pickled torch object without ``trust_model``.
    MissingExtraError
        torch or onnxruntime is not installed.
    ModelError
        The file cannot be loaded, its content contradicts its suffix, its weights do not
        fit the factory's model, or the ONNX inputs/outputs are ambiguous.
    """
    path = _existing_file(spec)
    if not isinstance(mapping, OutputMapping):
        raise TypeError(f"mapping must be an OutputMapping, not {type(mapping).__name__}")
    if path.suffix.lower() in ONNX_SUFFIXES:
        _refuse_torch_as_onnx(path)
        if factory is not None:
            raise ModelError(
                f"Model {path} is ONNX: {KEY_FACTORY} applies to torch state_dicts only; "
                "remove it."
            )
        return OnnxNetwork(path, mapping=mapping, input_name=input_name,
                           embedding_layer=embedding_layer, device=device, input_shape=input_shape)
    fmt = _sniff(path)
    if fmt == "onnx":
        raise ModelError(
            f"Model {path} looks like an ONNX model (a protobuf ModelProto), not a torch file; "
            "rename it to .onnx."
        )
    return _load_torch(path, fmt, factory=factory, mapping=mapping, embedding_layer=embedding_layer,
                       trust_model=trust_model, device=device, input_shape=input_shape)


# --------------------------------------------------------------------------- batches


def predict_batches(network: Network, batches: Iterable, *, progress: Any = None,
                    total: int | None = None, description: str = "Model inference") -> np.ndarray:
    """Run ``network.forward`` over ``(indices, batch)`` pairs and return rows in index order.

    Parameters
    ----------
    network : Network
        The model to call.
    batches : iterable of (array of int, ndarray)
        What ``ImageSource.batches()`` yields: the images' row indices and their float32 batch.
        Batches may come in any order; together they must cover ``0..total-1`` once each.
    progress : rich.progress.Progress, optional
        Advanced by each batch's size (see :func:`audit.core.progress.track`).
    total : int, optional
        The number of images; by default one more than the largest index seen.
    description : str
        The progress task's label.

    Returns
    -------
    ndarray of float64, shape (total, k)

    Raises
    ------
    InputError
        Indices that do not match their batch, repeat, fall outside ``0..total-1`` or leave
        rows unfilled.
    ModelError
        The network fails, or two batches give different numbers of outputs.
    """
    parts = []
    with track(progress, description, total) as advance:
        for indices, batch in batches:
            idx = _batch_indices(indices, batch, network.source)
            parts.append((idx, network.forward(batch)))
            advance(len(idx))
    return _assemble(parts, total, network.source)


def _batch_indices(indices: Any, batch: Any, source: str) -> np.ndarray:
    idx = np.asarray(indices).reshape(-1)
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise InputError(f"Batch indices for {source} must be integers, not {idx.dtype}.")
    if len(idx) != len(batch):
        raise InputError(
            f"A batch for {source} has {len(batch)} images but {len(idx)} indices."
        )
    return idx.astype(np.intp)


def _assemble(parts: list, total: int | None, source: str) -> np.ndarray:
    if total is None:
        total = max((int(i.max()) + 1 for i, _ in parts if i.size), default=0)
    n = total
    widths = {p.shape[1] for _, p in parts}
    if len(widths) > 1:
        raise ModelError(
            f"Model {source} gave different numbers of outputs across batches: {sorted(widths)}."
        )
    out = np.full((n, widths.pop() if widths else 0), np.nan)
    filled = np.zeros(n, dtype=bool)
    for idx, probs in parts:
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise InputError(f"Batch indices for {source} fall outside 0..{n - 1}.")
        if filled[idx].any() or len(np.unique(idx)) != len(idx):
            raise InputError(f"Batch indices for {source} repeat an image: each must come once.")
        out[idx] = probs
        filled[idx] = True
    if not filled.all():
        missing = np.flatnonzero(~filled)
        raise InputError(
            f"The batches for {source} covered {int(filled.sum())} of {n} images "
            f"(missing rows: {_short_list(missing.tolist())})."
        )
    return out
