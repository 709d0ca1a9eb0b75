"""The exception tree of future-audit.

Every error a user can cause is an ``AuditError``; the CLI turns it into one line and
exit code 4 (``--debug`` shows the traceback). Anything else is a bug (exit 3)::

    AuditError
    ├── ConfigError            a key in audit.toml / pyproject / flags is wrong
    │   ├── UnknownMetricError a gate names a metric id that no plugin produces
    │   └── PluginLoadError    an entry point does not load or breaks the plugin contract
    ├── InputError(ValueError) a data file, column or value is not what the audit needs
    ├── ModelError             the model cannot be loaded or called
    │   └── UntrustedModelError pickle/joblib without --trust-model, or untrusted skops types
    ├── MissingExtraError(ImportError) an optional dependency is not installed
    └── ChecklistError         a checklist or attestation file is missing or invalid
"""

from __future__ import annotations


class AuditError(Exception):
    """Base class of every error caused by input, configuration or environment."""

    exit_code = 4


class ConfigError(AuditError):
    """A configuration key has a value the audit cannot use."""


class UnknownMetricError(ConfigError):
    """A gate refers to a metric id that no selected plugin produces."""


class PluginLoadError(ConfigError):
    """A plugin could not be loaded or does not satisfy the plugin contract."""


class InputError(AuditError, ValueError):
    """A data file, column or value is not usable."""


class ModelError(AuditError):
    """The model cannot be loaded or called."""


class UntrustedModelError(ModelError):
    """Loading the model would run code the user has not trusted."""


class MissingExtraError(AuditError, ImportError):
    """An optional dependency (an extra) is needed but not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{purpose} needs the optional package '{package}', which is not installed. "
            f"Install it with: pip install 'future-audit[{extra}]'"
        )


class ChecklistError(AuditError):
    """A checklist or attestation file is missing or invalid."""


# What user code (a model, its module, a plugin) may raise. SystemExit is in: a module that
# calls sys.exit(main()) or parses its arguments at import would otherwise end the audit with
# that code (exit 0 and no reports). KeyboardInterrupt is not: it is the user stopping the run.
USER_CODE_ERRORS = (Exception, SystemExit, GeneratorExit)


def describe_failure(exc: BaseException) -> str:
    """``Type: message`` of an exception raised by user code, with a hint for SystemExit."""
    if isinstance(exc, SystemExit):
        return (f"SystemExit({exc.code!r}) (it called sys.exit() or parsed command-line "
                "arguments; model and plugin code must not exit the process)")
    return f"{type(exc).__name__}: {exc}"
