"""Audit configuration: audit.toml, ``[tool.future-audit]`` in pyproject.toml, or flags.

Flags override files. Everything is validated here, before any data is read or any model
is called; each error names the key and says what it expected.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.errors import ConfigError

# html / pdf: the board edition (report.html, report.pdf); technical / technical_pdf: the full
# report (technical-report.html, technical-report.pdf); see audit.report.report_set.FILE_NAMES.
FORMATS = ("html", "json", "junit", "md", "pdf", "model_card", "technical", "technical_pdf")
DEFAULT_FORMATS = ("html", "technical", "json", "junit", "md")
GATE_POLICIES = ("interval", "point")
FAIL_ON = ("fail", "inconclusive", "warn")
OPERATORS = ("<=", ">=", "<", ">")

_SECTIONS = {"data", "model", "imaging", "report", "gates", "run"}
_DATA_KEYS = {
    "path", "reference", "label", "id", "sensitive", "site", "time", "features", "score",
    "bins", "drop_missing", "max_groups", "na_values", "delimiter", "image_column",
}
# The keys after trusted_types configure torch/ONNX image models (audit.io.networks).
_NETWORK_KEYS = {"factory", "input_name", "embedding_layer", "batch_size", "workers", "device", "outputs"}
_MODEL_KEYS = {"path", "trusted_types"} | _NETWORK_KEYS
_IMAGING_KEYS = {"window", "nifti_slice", "preprocess"}
_CALLABLE_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_DEVICE_RE = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")
_REPORT_KEYS = {"out", "formats", "min_cell", "attestations", "continue_without_pdf", "full_record",
                "keep_small_numerators", "display_names", "record_paths"}
_DISPLAY_NAME_KEYS = ("labels", "columns", "values")
_RUN_KEYS = {"plugins", "gate_policy", "fail_on", "seed", "allow_empty_gates", "history"}
_GATE_RE = re.compile(r"^\s*([A-Za-z_][\w-]*)\.([A-Za-z_]\w*)\s*(<=|>=|<|>)\s*(.+?)\s*$")
# The right-hand side of a baseline gate: ``baseline``, ``baseline+0.02``, ``baseline - 0.01``.
_BASELINE_RE = re.compile(r"^baseline(?:\s*([+-])\s*(.+?))?\s*$")


@dataclass(frozen=True)
class BinSpec:
    """Bin the numeric ``column`` into categorical ``name`` by ``edges`` ([lo, hi) intervals)."""

    column: str
    name: str
    edges: tuple[float, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class DataConfig:
    path: Path | None = None
    reference: Path | None = None
    label: tuple[str, ...] = ()
    id: str | None = None
    sensitive: tuple[str, ...] = ()
    site: str | None = None
    time: str | None = None
    features: tuple[str, ...] = ()
    score: tuple[str, ...] = ()
    bins: tuple[BinSpec, ...] = ()
    drop_missing: bool = False
    # A sensitive attribute (or intersection) with more groups than this is refused.
    max_groups: int = 100
    # Extra missing markers for the categorical columns (sensitive, site, id); only empty
    # cells are missing there by default, so "None" or "NA" stay categories.
    na_values: tuple[str, ...] = ()
    # CSV field separator; None: ',' (tab for .tsv files).
    delimiter: str | None = None
    # Manifest column of image paths (relative to the manifest's folder, or absolute): the
    # input of a torch/ONNX image model, which then needs no feature columns.
    image_column: str | None = None


@dataclass(frozen=True)
class ModelConfig:
    path: str | None = None
    trusted_types: tuple[str, ...] = ()
    trust: bool = False
    # torch/ONNX image models only (see audit.io.networks.load_network):
    factory: str | None = None  # "package.module:function" building the state_dict's nn.Module
    input_name: str | None = None  # the ONNX input taking the images
    embedding_layer: str | None = None
    batch_size: int = 32
    workers: int = 0  # DataLoader worker processes reading the images
    device: str = "cpu"
    # [model.outputs] as an audit.io.networks.OutputMapping; None: activation "none" (the
    # model outputs probabilities), every output column in order.
    outputs: Any = None


@dataclass(frozen=True)
class ImagingConfig:
    """``[imaging]``: how image files are read and preprocessed for an image model."""

    window: tuple[float, float] | str | None = None  # "header" or (center, width)
    nifti_slice: tuple[Any, Any] | None = None  # (plane or axis, index or "middle")
    # [imaging.preprocess] as an audit.imaging.Preprocessing; None: no preprocessing.
    preprocess: Any = None


@dataclass(frozen=True)
class ReportConfig:
    out: Path = Path("reports/audit")
    formats: tuple[str, ...] = DEFAULT_FORMATS
    min_cell: int = 10
    attestations: Path | None = None
    continue_without_pdf: bool = False
    # A private record: results.json keeps suppressed values (marked full_record).
    full_record: bool = False
    # Show rates whose numerator is below min_cell (their denominator still must reach it).
    keep_small_numerators: bool = False
    # How the reports name things: {"labels": {label column: phrase, e.g. "tested positive for
    # covid"}, "columns": {column: name}, "values": {column: {value: name}}}; each table
    # present (empty when not configured). Renderers read it from results.json's config.
    display_names: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: {} for k in _DISPLAY_NAME_KEYS})
    # Keep absolute paths in results.json (provenance and config); by default a path is
    # shown relative to the config file's folder when inside it, else as its file name.
    record_paths: bool = False


@dataclass(frozen=True)
class BaselineRecord:
    """One metric record of the baseline run, as a baseline gate matches it.

    ``group`` is the record's group as sorted (column, value) pairs (None: overall);
    ``value`` is None when the baseline has no published value, ``reason`` then says why.
    """

    label: str | None
    group: tuple[tuple[str, str], ...] | None
    reference: str | None
    value: float | None
    reason: str | None = None
    # Per-feature (drift) and per-perturbation (robustness) records are told apart by these.
    feature: str | None = None
    perturbation: str | None = None
    severity: int | None = None


@dataclass(frozen=True)
class Baseline:
    """The baseline a gate such as ``fairness.fnr_gap<=baseline+0.02`` is judged against.

    ``history`` is the history file's name (as the gate message shows it); ``run_id`` the
    baseline run, None when the history has no run that counts as accepted; ``records`` the
    baseline's records of the gate's metric.
    """

    history: str
    run_id: str | None
    records: tuple[BaselineRecord, ...] = ()


@dataclass(frozen=True)
class GateSpec:
    """A threshold on a metric id, e.g. ``fairness.fnr_gap <= 0.05``.

    With ``baseline`` set the threshold is relative: ``threshold`` is the offset added to the
    value of the same record in the baseline run (``fairness.fnr_gap<=baseline+0.02``), and
    ``baseline_run`` holds that run's records once the history has been read
    (:func:`audit.history.resolve_baselines`).
    """

    plugin: str
    metric: str
    operator: str
    threshold: float
    baseline: bool = False
    baseline_run: Baseline | None = None

    @property
    def metric_id(self) -> str:
        return f"{self.plugin}.{self.metric}"

    @property
    def expression(self) -> str:
        if not self.baseline:
            return f"{self.metric_id}{self.operator}{self.threshold:g}"
        offset = "" if self.threshold == 0 else f"{self.threshold:+g}"
        return f"{self.metric_id}{self.operator}baseline{offset}"


@dataclass(frozen=True)
class AuditConfig:
    """The resolved configuration of one audit run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    imaging: ImagingConfig = field(default_factory=ImagingConfig)
    gates: tuple[GateSpec, ...] = ()
    plugins: tuple[str, ...] | None = None
    plugin_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    gate_policy: str = "interval"
    fail_on: tuple[str, ...] = ("fail",)
    seed: int | None = None
    source: str | None = None
    # A gate with nothing to judge exits 1 unless this is set (run.allow_empty_gates).
    allow_empty_gates: bool = False
    # The folder that relative paths of the config were read against (the config file's
    # folder, or the working directory without one): recorded paths are shown relative to it.
    base_dir: Path | None = None
    # The audit history (run.history, --history): the run is recorded there and baseline
    # gates read their thresholds from its last accepted run.
    history: Path | None = None

    def shown_path(self, path: str | Path | None) -> str | None:
        """A path as results.json records it: absolute only with ``report.record_paths``;
        otherwise relative to :attr:`base_dir` when inside it, else the file name alone."""
        if path is None:
            return None
        if self.report.record_paths:
            return str(path)
        path = Path(path)
        if self.base_dir is not None and path.is_absolute():
            try:
                return path.relative_to(Path(self.base_dir).resolve()).as_posix()
            except ValueError:
                pass
        return path.name if path.is_absolute() else path.as_posix()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (recorded as ``config`` in every result).

        Paths follow :meth:`shown_path`. The seed is not here: it is recorded once, as
        ``provenance.seed``, and a plugin's ``seed`` equal to it (``--seed`` sets both) is
        left out of ``plugin_params`` for the same reason.
        """
        model_path = self.model.path
        if model_path is not None and _looks_like_path(model_path):
            model_path = self.shown_path(model_path)
        return {
            "source": None if self.source is None else (
                self.source if self.report.record_paths else Path(self.source).name),
            "data": {
                "path": self.shown_path(self.data.path), "reference": self.shown_path(self.data.reference),
                "label": list(self.data.label), "id": self.data.id,
                "sensitive": list(self.data.sensitive), "site": self.data.site,
                "time": self.data.time, "features": list(self.data.features),
                "score": list(self.data.score), "drop_missing": self.data.drop_missing,
                "max_groups": self.data.max_groups, "na_values": list(self.data.na_values),
                "delimiter": self.data.delimiter, "image_column": self.data.image_column,
                "bins": [
                    {"column": b.column, "name": b.name, "edges": list(b.edges), "labels": list(b.labels)}
                    for b in self.data.bins
                ],
            },
            "model": {"path": model_path, "trusted_types": list(self.model.trusted_types),
                      "trust_model": self.model.trust, "factory": self.model.factory,
                      "input_name": self.model.input_name, "embedding_layer": self.model.embedding_layer,
                      "batch_size": self.model.batch_size, "workers": self.model.workers,
                      "device": self.model.device, "outputs": _outputs_record(self.model.outputs)},
            "imaging": _imaging_record(self.imaging),
            "report": {"out": self.shown_path(self.report.out), "formats": list(self.report.formats),
                       "min_cell": self.report.min_cell, "attestations": self.shown_path(self.report.attestations),
                       "continue_without_pdf": self.report.continue_without_pdf,
                       "full_record": self.report.full_record,
                       "keep_small_numerators": self.report.keep_small_numerators,
                       "record_paths": self.report.record_paths,
                       "display_names": {k: {c: (dict(v) if isinstance(v, dict) else v) for c, v in t.items()}
                                         for k, t in self.report.display_names.items()}},
            "gates": [g.expression for g in self.gates],
            "plugins": None if self.plugins is None else list(self.plugins),
            "plugin_params": {k: {key: v for key, v in params.items()
                                  if not (key == "seed" and self.seed is not None and v == self.seed)}
                              for k, params in self.plugin_params.items()},
            "gate_policy": self.gate_policy,
            "fail_on": [s.upper() for s in self.fail_on],
            "allow_empty_gates": self.allow_empty_gates,
        }


# --------------------------------------------------------------------------- reading files
def find_config(cwd: Path) -> Path | None:
    """audit.toml in ``cwd``, else a pyproject.toml there with a [tool.future-audit] table."""
    candidate = cwd / "audit.toml"
    if candidate.is_file():
        return candidate
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError:
            return None
        if "future-audit" in data.get("tool", {}):
            return pyproject
    return None


def read_config_file(path: Path) -> dict[str, Any]:
    """Raw settings from audit.toml or pyproject.toml's [tool.future-audit]."""
    if not path.is_file():
        raise ConfigError(f"Config file not found: {path}. Pass an existing file to --config.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}. Fix the syntax at that line.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a UTF-8 text file; expected a TOML config.") from None
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("future-audit")
        if data is None:
            raise ConfigError(f"{path} has no [tool.future-audit] table.")
    return data


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` wins; nested tables merge key by key; None in override means 'not given'."""
    out = dict(base)
    for key, value in override.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------- validation
def build_config(
    raw: dict[str, Any],
    *,
    base_dir: Path,
    flag_dir: Path | None = None,
    flags: dict[str, Any] | None = None,
    plugin_names: tuple[str, ...] = (),
    source: str | None = None,
) -> AuditConfig:
    """Validate raw settings (from a file, relative to ``base_dir``) merged with flags.

    Paths given in flags are relative to ``flag_dir`` (the working directory).
    """
    flags = flags or {}
    flag_dir = flag_dir or Path.cwd()
    known = _SECTIONS | set(plugin_names)
    for key in raw:
        if key not in known:
            raise ConfigError(
                f"Unknown config section or key '{key}'. Valid: {', '.join(sorted(known))}."
            )
    data_raw = _table(raw, "data")
    model_raw = _table(raw, "model")
    imaging_raw = _table(raw, "imaging")
    report_raw = _table(raw, "report")
    run_raw = _table(raw, "run")
    _check_keys(data_raw, _DATA_KEYS, "data")
    _check_keys(model_raw, _MODEL_KEYS, "model")
    _check_keys(imaging_raw, _IMAGING_KEYS, "imaging")
    _check_keys(report_raw, _REPORT_KEYS, "report")
    _check_keys(run_raw, _RUN_KEYS, "run")

    def path_of(section: dict, key: str, where: str, flag_key: str) -> Path | None:
        if flags.get(flag_key) is not None:
            return (flag_dir / flags[flag_key]).resolve()
        if section.get(key) is None:
            return None
        return (base_dir / _str(section[key], where)).resolve()

    data = DataConfig(
        path=path_of(data_raw, "path", "data.path", "data"),
        reference=path_of(data_raw, "reference", "data.reference", "reference"),
        label=_strs(_pick(flags, "label", data_raw, "label"), "data.label"),
        id=_opt_str(_pick(flags, "id", data_raw, "id"), "data.id"),
        sensitive=_strs(_pick(flags, "sensitive", data_raw, "sensitive"), "data.sensitive"),
        site=_opt_str(_pick(flags, "site", data_raw, "site"), "data.site"),
        time=_opt_str(_pick(flags, "time", data_raw, "time"), "data.time"),
        features=_strs(_pick(flags, "features", data_raw, "features"), "data.features"),
        score=_strs(_pick(flags, "score", data_raw, "score"), "data.score"),
        bins=_bins(data_raw.get("bins", {})),
        drop_missing=_bool(_pick(flags, "drop_missing", data_raw, "drop_missing", False), "data.drop_missing"),
        max_groups=_int(data_raw.get("max_groups", 100), "data.max_groups", minimum=2),
        na_values=_strs(data_raw.get("na_values", []), "data.na_values"),
        delimiter=_delimiter(data_raw.get("delimiter")),
        image_column=_opt_str(_pick(flags, "image_column", data_raw, "image_column"), "data.image_column"),
    )
    if data.path is None:
        raise ConfigError("No data: set data.path in the config or pass --data FILE.")
    if not data.label:
        raise ConfigError("No label column: set data.label in the config or pass --label COLUMN.")
    _check_overlaps(data)

    model_path = flags.get("model")
    if model_path is not None:
        model_path = str((flag_dir / model_path).resolve()) if _looks_like_path(model_path) else model_path
    elif model_raw.get("path") is not None:
        mp = _str(model_raw["path"], "model.path")
        model_path = str((base_dir / mp).resolve()) if _looks_like_path(mp) else mp
    if model_path is None and not data.score:
        raise ConfigError(
            "No model and no score column: set model.path (or --model) or data.score (or --score)."
        )
    model = _model_config(model_raw, model_path, trust=bool(flags.get("trust_model", False)))
    imaging = _imaging_config(imaging_raw)

    formats = _pick(flags, "formats", report_raw, "formats", list(DEFAULT_FORMATS))
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",") if f.strip()]
    formats = _strs(formats, "report.formats")
    for f in formats:
        if f not in FORMATS:
            raise ConfigError(f"report.formats: unknown format '{f}'. Valid: {', '.join(FORMATS)}.")
    out = path_of(report_raw, "out", "report.out", "out") or (flag_dir / "reports/audit").resolve()
    min_cell = _int(_pick(flags, "min_cell", report_raw, "min_cell", 10), "report.min_cell", minimum=1)
    report = ReportConfig(
        out=out,
        formats=formats,
        min_cell=min_cell,
        attestations=path_of(report_raw, "attestations", "report.attestations", "attestations"),
        continue_without_pdf=_bool(
            _pick(flags, "continue_without_pdf", report_raw, "continue_without_pdf", False),
            "report.continue_without_pdf",
        ),
        full_record=_bool(report_raw.get("full_record", False), "report.full_record"),
        keep_small_numerators=_bool(report_raw.get("keep_small_numerators", False),
                                    "report.keep_small_numerators"),
        display_names=_display_names(report_raw.get("display_names", {})),
        record_paths=_bool(report_raw.get("record_paths", False), "report.record_paths"),
    )

    gates = [parse_gate_table(g, i) for i, g in enumerate(_gate_list(raw.get("gates", [])))]
    gates += [parse_gate(expr) for expr in flags.get("gates") or ()]
    history = path_of(run_raw, "history", "run.history", "history")
    relative = next((g for g in gates if g.baseline), None)
    if relative is not None and history is None:
        raise ConfigError(
            f"Gate '{relative.expression}' compares with a baseline, which is read from an audit history: "
            "pass --history FILE or set run.history, or give the gate a number."
        )

    plugins = _pick(flags, "plugins", run_raw, "plugins")
    plugins = None if plugins is None or plugins == [] else _strs(plugins, "run.plugins")
    gate_policy = _str(_pick(flags, "gate_policy", run_raw, "gate_policy", "interval"), "run.gate_policy")
    if gate_policy not in GATE_POLICIES:
        raise ConfigError(f"run.gate_policy: '{gate_policy}' is not one of {', '.join(GATE_POLICIES)}.")
    fail_on = _pick(flags, "fail_on", run_raw, "fail_on", ["fail"])
    if isinstance(fail_on, str):
        fail_on = [s.strip() for s in fail_on.split(",") if s.strip()]
    fail_on = tuple(s.lower() for s in _strs(fail_on, "run.fail_on"))
    for s in fail_on:
        if s not in FAIL_ON:
            raise ConfigError(f"run.fail_on: '{s}' is not one of {', '.join(FAIL_ON)}.")
    seed = _pick(flags, "seed", run_raw, "seed")
    seed = None if seed is None else _int(seed, "run.seed", minimum=0)
    allow_empty = _bool(_pick(flags, "allow_empty_gates", run_raw, "allow_empty_gates", False),
                        "run.allow_empty_gates")

    plugin_params = {name: dict(_table(raw, name)) for name in plugin_names if name in raw}
    for name, params in (flags.get("plugin_params") or {}).items():
        plugin_params[name] = deep_merge(plugin_params.get(name, {}), params)

    return AuditConfig(
        data=data, model=model, imaging=imaging, report=report, gates=tuple(gates), plugins=plugins,
        plugin_params=plugin_params, gate_policy=gate_policy, fail_on=fail_on, seed=seed,
        source=source, allow_empty_gates=allow_empty, base_dir=Path(base_dir).resolve(), history=history,
    )


def _model_config(model_raw: dict, model_path: str | None, *, trust: bool) -> ModelConfig:
    """``[model]``: the network keys are validated here and refused for other kinds of model."""
    # Imported here: core imports nothing of ours at module level (see the house style), and
    # the output mapping's rules live with the networks that apply them.
    from audit.io.networks import NETWORK_SUFFIXES, OutputMapping

    given = sorted(k for k in _NETWORK_KEYS if model_raw.get(k) is not None)
    is_network = model_path is not None and Path(model_path).suffix.lower() in NETWORK_SUFFIXES
    if given and not is_network:
        what = "no model" if model_path is None else f"model {Path(model_path).name!r}"
        raise ConfigError(
            f"{', '.join('model.' + k for k in given)} apply to torch/ONNX image models "
            f"({', '.join(NETWORK_SUFFIXES)}), but the config has {what}. Remove them, or set "
            "model.path to the network file."
        )
    factory = _opt_str(model_raw.get("factory"), "model.factory")
    if factory is not None and not _CALLABLE_RE.match(factory):
        raise ConfigError(
            f"model.factory: {factory!r} is not 'package.module:function' (a function, importable "
            "from sys.path, that builds the untrained torch.nn.Module of the state_dict)."
        )
    device = _str(model_raw.get("device", "cpu"), "model.device")
    if not _DEVICE_RE.match(device):
        raise ConfigError(f"model.device: {device!r} is not 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    outputs = model_raw.get("outputs")
    return ModelConfig(
        path=model_path,
        trusted_types=_strs(model_raw.get("trusted_types", []), "model.trusted_types"),
        trust=trust,
        factory=factory,
        input_name=_opt_str(model_raw.get("input_name"), "model.input_name"),
        embedding_layer=_opt_str(model_raw.get("embedding_layer"), "model.embedding_layer"),
        batch_size=_int(model_raw.get("batch_size", 32), "model.batch_size", minimum=1),
        workers=_int(model_raw.get("workers", 0), "model.workers", minimum=0),
        device=device,
        outputs=None if outputs is None else OutputMapping.from_config(outputs, "[model.outputs]"),
    )


def _imaging_config(imaging_raw: dict) -> ImagingConfig:
    """``[imaging]`` and ``[imaging.preprocess]``, validated by the imaging package's own checks."""
    from audit.imaging.preprocess import Preprocessing
    from audit.imaging.readers import check_nifti_slice, check_window

    preprocess = imaging_raw.get("preprocess", {})
    if not isinstance(preprocess, dict):
        raise ConfigError(
            f"imaging.preprocess must be a table ([imaging.preprocess]), got {type(preprocess).__name__}."
        )
    return ImagingConfig(
        window=check_window(imaging_raw.get("window"), where="imaging.window"),
        nifti_slice=check_nifti_slice(imaging_raw.get("nifti_slice"), where="imaging.nifti_slice"),
        preprocess=Preprocessing.from_config(preprocess, where="[imaging.preprocess]"),
    )


def _outputs_record(mapping: Any) -> dict[str, Any] | None:
    if mapping is None:
        return None
    return {"activation": mapping.activation,
            "outputs": None if mapping.outputs is None else list(mapping.outputs),
            "output_name": mapping.output_name}


def _imaging_record(imaging: ImagingConfig) -> dict[str, Any]:
    pre = imaging.preprocess
    preprocess = None if pre is None else {
        "resize": None if pre.resize is None else list(pre.resize), "normalize": pre.normalize,
        "range": None if pre.range is None else list(pre.range), "channels": pre.channels,
        "dtype": pre.dtype, "monai": pre.describe_transform() or None,
        "description": pre.describe(),
    }
    window = imaging.window
    return {"window": list(window) if isinstance(window, tuple) else window,
            "nifti_slice": None if imaging.nifti_slice is None else list(imaging.nifti_slice),
            "preprocess": preprocess}


def parse_gate(expression: str) -> GateSpec:
    """Parse ``plugin.metric<=0.05`` (operators <=, <, >=, >), or a baseline gate:
    ``plugin.metric<=baseline+0.02``, ``>=baseline-0.01``, ``<=baseline``."""
    m = _GATE_RE.match(expression or "")
    if not m:
        raise ConfigError(
            f"Gate '{expression}' is not of the form PLUGIN.METRIC OP NUMBER or PLUGIN.METRIC OP baseline[+-NUMBER] "
            f"(e.g. 'fairness.fnr_gap<=0.05', 'fairness.fnr_gap<=baseline+0.02'; operators {' '.join(OPERATORS)})."
        )
    plugin, metric, op, rhs = m.groups()
    offset = _baseline_offset(rhs, f"gate '{expression}'")
    if offset is not None:
        return GateSpec(plugin, metric, op, offset, baseline=True)
    return GateSpec(plugin, metric, op, _threshold(rhs, f"gate '{expression}'"))


def _baseline_offset(text: Any, where: str) -> float | None:
    """The offset of ``baseline``, ``baseline+X`` or ``baseline-X``; None for anything else."""
    if not isinstance(text, str):
        return None
    m = _BASELINE_RE.match(text.strip())
    if not m:
        if text.strip().lower().startswith("baseline"):
            raise ConfigError(f"{where}: '{text}' is not 'baseline', 'baseline+NUMBER' or 'baseline-NUMBER' "
                              "(e.g. baseline+0.02).")
        return None
    sign, number = m.groups()
    if sign is None:
        return 0.0
    if number[:1] in "+-":
        raise ConfigError(f"{where}: '{text}' has two signs; write e.g. baseline+0.02 or baseline-0.01.")
    x = _threshold(number, where)
    return x if sign == "+" else -x


def parse_gate_table(table: Any, index: int) -> GateSpec:
    where = f"gates[{index}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table with metric, op and threshold.")
    _check_keys(table, {"metric", "op", "threshold"}, where)
    for key in ("metric", "op", "threshold"):
        if key not in table:
            raise ConfigError(f"{where}: missing key '{key}' (expected metric, op and threshold).")
    metric = _str(table["metric"], f"{where}.metric")
    if "." not in metric:
        raise ConfigError(f"{where}.metric: '{metric}' must be PLUGIN.METRIC, e.g. 'fairness.fnr_gap'.")
    op = _str(table["op"], f"{where}.op")
    if op not in OPERATORS:
        raise ConfigError(f"{where}.op: '{op}' is not one of {' '.join(OPERATORS)}.")
    plugin, name = metric.split(".", 1)
    offset = _baseline_offset(table["threshold"], f"{where}.threshold")
    if offset is not None:
        return GateSpec(plugin, name, op, offset, baseline=True)
    return GateSpec(plugin, name, op, _threshold(table["threshold"], f"{where}.threshold"))


def parse_threshold_value(value: Any, where: str) -> float:
    """A threshold/probability cut-off in [0, 1] (used for --threshold)."""
    x = _threshold(value, where)
    if not 0.0 <= x <= 1.0:
        raise ConfigError(f"{where}: {x:g} is outside [0, 1]; a score threshold is a probability.")
    return x


def _threshold(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number, got {value!r}.")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: '{value}' is not a number; expected e.g. 0.05.") from None
    if not math.isfinite(x):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}.")
    return x


def _display_names(raw: Any) -> dict[str, dict[str, Any]]:
    """``[report.display_names]``: tables labels and columns (name → text) and values
    (column → {value → text}); every text a non-empty string."""
    where = "report.display_names"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table with optional tables labels, columns and values, "
                          f"got {raw!r}.")
    _check_keys(raw, set(_DISPLAY_NAME_KEYS), where)
    out: dict[str, dict[str, Any]] = {}
    for key in _DISPLAY_NAME_KEYS:
        table = raw.get(key, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{where}.{key}: expected a table, e.g. [{where}.{key}], got {table!r}.")
        if key == "values":
            out[key] = {}
            for column, names in table.items():
                if not isinstance(names, dict):
                    raise ConfigError(f"{where}.values.{column}: expected a table value → name, e.g. "
                                      f'{column} = {{ female = "women" }}, got {names!r}.')
                out[key][column] = {str(v): _str(t, f"{where}.values.{column}.{v}") for v, t in names.items()}
        else:
            out[key] = {name: _str(text, f"{where}.{key}.{name}") for name, text in table.items()}
    return out


def _bins(raw: Any) -> tuple[BinSpec, ...]:
    if not isinstance(raw, dict):
        raise ConfigError("data.bins: expected a table of [data.bins.COLUMN] tables with edges.")
    specs = []
    for column, spec in raw.items():
        where = f"data.bins.{column}"
        if isinstance(spec, list):
            spec = {"edges": spec}
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected a table with 'edges' (and optional 'name', 'labels').")
        _check_keys(spec, {"edges", "name", "labels"}, where)
        edges = spec.get("edges")
        if not isinstance(edges, list) or len(edges) < 2:
            raise ConfigError(f"{where}.edges: expected a list of at least two increasing numbers.")
        edges = tuple(_threshold(e, f"{where}.edges") for e in edges)
        if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
            raise ConfigError(f"{where}.edges: {list(edges)} must be strictly increasing.")
        labels = spec.get("labels")
        if labels is None:
            labels = tuple(f"{a:g}-{b:g}" for a, b in zip(edges, edges[1:], strict=False))
        else:
            labels = _strs(labels, f"{where}.labels")
            if len(labels) != len(edges) - 1:
                raise ConfigError(
                    f"{where}.labels: {len(labels)} labels for {len(edges) - 1} bins; give one label per bin."
                )
        if len(set(labels)) != len(labels):
            raise ConfigError(f"{where}.labels: {list(labels)} repeats a label; give each bin its own label.")
        if _MISSING_LABEL in labels:
            raise ConfigError(f"{where}.labels: '{_MISSING_LABEL}' is the label of missing values; "
                              "choose another label for that bin.")
        name = _str(spec.get("name", f"{column}_band"), f"{where}.name")
        specs.append(BinSpec(column=column, name=name, edges=edges, labels=tuple(labels)))
    seen: dict[str, str] = {}
    for b in specs:
        if b.name in seen:
            raise ConfigError(
                f"data.bins.{seen[b.name]} and data.bins.{b.column} are both named '{b.name}'; "
                "give each bin its own name (data.bins.COLUMN.name)."
            )
        seen[b.name] = b.column
    sources = {b.column for b in specs}
    for b in specs:
        if b.name != b.column and b.name in sources:
            raise ConfigError(
                f"data.bins.{b.column}.name '{b.name}' is the column binned by data.bins.{b.name}; "
                "give the bin another name."
            )
    return tuple(specs)


# The group label of missing values (audit.io.tables.MISSING_GROUP; core imports nothing of io).
_MISSING_LABEL = "(missing)"


def _check_overlaps(data: DataConfig) -> None:
    lists = {"data.label": data.label, "data.score": data.score, "data.sensitive": data.sensitive,
             "data.features": data.features}
    for key, cols in lists.items():
        twice = sorted({c for c in cols if cols.count(c) > 1})
        if twice:
            raise ConfigError(
                f"{key} lists {', '.join(repr(c) for c in twice)} more than once; list each column once."
            )
    if data.id and data.id in data.features:
        raise ConfigError(
            f"data.features includes the identifier column '{data.id}'; identifiers must not be model inputs."
        )
    if data.id:
        # An identifier in any other role would put every patient's id into the reports or the model.
        roles = {"data.sensitive": data.sensitive, "data.label": data.label, "data.score": data.score,
                 "data.site": (data.site,), "data.time": (data.time,)}
        for key, cols in roles.items():
            if data.id in cols:
                raise ConfigError(
                    f"data.id '{data.id}' is also {key}; the patient identifier can have no other role "
                    f"(as {key} it would name patients in the reports). Set {key} to another column."
                )
    if data.image_column:
        roles = {"data.label": data.label, "data.score": data.score, "data.sensitive": data.sensitive,
                 "data.features": data.features, "data.site": (data.site,), "data.time": (data.time,),
                 "data.id": (data.id,)}
        for key, cols in roles.items():
            if data.image_column in cols:
                raise ConfigError(
                    f"data.image_column '{data.image_column}' is also {key}; the column of image paths "
                    f"can have no other role. Set {key} to another column."
                )
    both = set(data.label) & set(data.score)
    if both:
        raise ConfigError(f"Columns {sorted(both)} are both label and score; they must differ.")
    for key, cols in (("data.label", data.label), ("data.score", data.score)):
        clash = [c for c in data.sensitive if c in cols]
        if clash:
            raise ConfigError(
                f"Column '{clash[0]}' is both data.sensitive and {key}; a group attribute must not be "
                "the outcome or the prediction. Remove it from one of them."
            )
    for b in data.bins:
        roles = {"data.label": data.label, "data.score": data.score, "data.features": data.features,
                 "data.site": (data.site,), "data.time": (data.time,), "data.id": (data.id,)}
        for key, cols in roles.items():
            if b.name == b.column and b.column in cols:
                raise ConfigError(
                    f"data.bins.{b.column}.name '{b.name}' replaces the column '{b.column}', which is also "
                    f"{key}; name the bin differently (e.g. '{b.column}_band')."
                )


def _delimiter(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 1 or value in "\r\n\"":
        raise ConfigError(
            f"data.delimiter: expected one character such as ',', ';', '|' or \"\\t\" (tab), got {value!r}."
        )
    return value


def _gate_list(value: Any) -> list:
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise ConfigError("gates: expected [[gates]] tables with metric, op and threshold.")
    return value


def _table(raw: dict, key: str) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"'{key}' must be a table ([{key}]), got {type(value).__name__}.")
    return value


def _check_keys(section: dict, valid: set[str], where: str) -> None:
    for key in section:
        if key not in valid:
            raise ConfigError(f"Unknown key '{where}.{key}'. Valid keys: {', '.join(sorted(valid))}.")


def _pick(flags: dict, flag_key: str, section: dict, key: str, default: Any = None) -> Any:
    if flags.get(flag_key) not in (None, [], ()):
        return flags[flag_key]
    return section.get(key, default)


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string, got {value!r}.")
    return value


def _opt_str(value: Any, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _strs(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a string or a list of strings, got {value!r}.")
    return tuple(value)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}.")
    return value


def _int(value: Any, where: str, minimum: int | None = None) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected an integer, got {value!r}.")
    try:
        x = int(value)
        if isinstance(value, float) and x != value:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected an integer, got {value!r}.") from None
    if minimum is not None and x < minimum:
        raise ConfigError(f"{where}: expected an integer >= {minimum}, got {x}.")
    return x


def _looks_like_path(spec: str) -> bool:
    """A model spec is a file path unless it is a ``package.module:function`` callable."""
    return not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", spec)

