"""The plugin contract (pytest/pluggy style: explicit entry points, one context argument).

A plugin is a small class::

    class MyPlugin(AuditPlugin):
        name = "my_plugin"                 # snake_case, unique
        principle = "Robustness"           # a FUTURE-AI principle
        version = "1.0"
        metrics = ("my_metric",)           # every metric id run() can produce (gates check these)
        checklist = ("FUTURE-AI:Robustness 3",)

        @dataclass(frozen=True)
        class Params:                      # defaults for every parameter
            strength: float = 1.0

        def run(self, ctx: AuditContext) -> PluginResult: ...

and is registered in pyproject.toml::

    [project.entry-points."audit.plugins"]
    my_plugin = "my_package.module:MyPlugin"

A plugin whose inputs are missing returns :func:`skipped` with the reason. A plugin that
raises becomes an ERROR result; the other plugins still run.
"""

from __future__ import annotations

import abc
import dataclasses
import re
import typing
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar

from audit.core.results import PluginResult, Status
from audit.errors import USER_CODE_ERRORS, ConfigError, PluginLoadError, describe_failure

ENTRY_POINT_GROUP = "audit.plugins"
PRINCIPLES = ("Fairness", "Universality", "Traceability", "Usability", "Robustness", "Explainability", "General")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class AuditPlugin(abc.ABC):
    """Base class of plugins. Subclasses set the class attributes and implement ``run``."""

    name: ClassVar[str] = ""
    principle: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    metrics: ClassVar[tuple[str, ...]] = ()
    checklist: ClassVar[tuple[str, ...]] = ()

    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    @abc.abstractmethod
    def run(self, ctx) -> PluginResult:
        """Measure what the plugin measures on ``ctx`` and return an immutable result."""

    def skipped(self, reason: str) -> PluginResult:
        """The result of a plugin whose inputs are missing."""
        return PluginResult(
            plugin=self.name, principle=self.principle, version=self.version,
            status=Status.SKIPPED, summary=f"Not assessed: {reason}", checklist=self.checklist,
        )


def verify_plugin(cls: Any, source: str = "") -> None:
    """Check a plugin class against the contract; the error names the plugin (pluggy's _verify_hook)."""
    where = f"Plugin {getattr(cls, 'name', None) or cls!r}{f' ({source})' if source else ''}"
    if not isinstance(cls, type):
        raise PluginLoadError(f"{where}: the entry point must name a class, got {type(cls).__name__}.")
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise PluginLoadError(f"{where}: 'name' must be a snake_case string, got {name!r}.")
    if getattr(cls, "principle", None) not in PRINCIPLES:
        raise PluginLoadError(
            f"{where}: 'principle' must be one of {', '.join(PRINCIPLES)}, got {getattr(cls, 'principle', None)!r}."
        )
    if not isinstance(getattr(cls, "version", None), str):
        raise PluginLoadError(f"{where}: 'version' must be a string.")
    metrics = getattr(cls, "metrics", None)
    if not isinstance(metrics, tuple) or not metrics or not all(
        isinstance(m, str) and _NAME_RE.match(m) for m in metrics
    ):
        raise PluginLoadError(f"{where}: 'metrics' must be a non-empty tuple of snake_case metric ids.")
    params = getattr(cls, "Params", None)
    if not (dataclasses.is_dataclass(params) and params.__dataclass_params__.frozen):
        raise PluginLoadError(f"{where}: 'Params' must be a frozen dataclass.")
    try:
        params()
    except TypeError:
        raise PluginLoadError(f"{where}: every field of 'Params' needs a default.") from None
    run = getattr(cls, "run", None)
    if run is None or getattr(run, "__isabstractmethod__", False) or not callable(run):
        raise PluginLoadError(f"{where}: it must implement run(ctx) -> PluginResult.")


def discover_plugins() -> dict[str, type[AuditPlugin]]:
    """Load and verify every plugin registered under the ``audit.plugins`` entry-point group."""
    found: dict[str, type[AuditPlugin]] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            cls = ep.load()
        except USER_CODE_ERRORS as exc:  # a broken third-party plugin must not end the run
            raise PluginLoadError(
                f"Plugin entry point '{ep.name}' ({ep.value}) failed to load: {describe_failure(exc)}"
            ) from exc
        verify_plugin(cls, ep.value)
        if cls.name in found:
            raise PluginLoadError(f"Two plugins are named '{cls.name}' ({ep.value} and another).")
        found[cls.name] = cls
    return found


def make_params(cls: type[AuditPlugin], raw: dict[str, Any]) -> Any:
    """Build the plugin's Params from config values, checking names and types."""
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    hints = typing.get_type_hints(cls.Params)
    values = {}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(
                f"Unknown key '{cls.name}.{key}'. Valid keys: {', '.join(sorted(fields))}."
            )
        values[key] = _coerce(value, hints.get(key, Any), f"{cls.name}.{key}")
    try:
        params = cls.Params(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[{cls.name}]: {exc}") from None
    validate = getattr(params, "validate", None)
    if callable(validate):
        validate()
    return params


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check a config value against a Params type hint (bool, int, float, str, tuples, optionals)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: unexpected value {value!r}.")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}.")
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, where) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}.")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}.")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}.")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}.")
        return value
    return value
