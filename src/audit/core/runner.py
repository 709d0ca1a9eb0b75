"""Run an audit: validate, load, predict once, run each plugin, evaluate gates, record provenance."""

from __future__ import annotations

import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from audit import __version__
from audit.core import provenance as prov
from audit.core.config import AuditConfig
from audit.core.context import AuditContext
from audit.core.gates import evaluate_gate, exit_code, validate_gates
from audit.core.results import AuditResult, PluginResult, Status, public_record, worst_status
from audit.errors import USER_CODE_ERRORS, AuditError, ConfigError, MissingExtraError, describe_failure
from audit.io.tables import Dataset, load_dataset
from audit.plugins.base import AuditPlugin, discover_plugins, make_params


def select_plugins(config: AuditConfig, available: dict[str, type[AuditPlugin]]) -> list[AuditPlugin]:
    """Instantiate the configured plugins with validated parameters (before any data is read)."""
    names = list(config.plugins) if config.plugins else sorted(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ConfigError(
            f"Unknown plugin{'s' if len(unknown) > 1 else ''} {', '.join(repr(n) for n in unknown)}. "
            f"Installed: {', '.join(sorted(available))} (see `future-audit plugins`)."
        )
    for name in config.plugin_params:
        if name not in available:
            raise ConfigError(f"Config section [{name}] names no installed plugin.")
    plugins = [available[n](make_params(available[n], config.plugin_params.get(n, {}))) for n in names]
    validate_gates(config.gates, {p.name: p.metrics for p in plugins})
    return plugins


def load_inputs(config: AuditConfig) -> tuple[Dataset, Dataset | None, Any]:
    """Read and validate the data (and reference data), then load the model adapter.

    With an image model (a torch/ONNX file and ``data.image_column``) the datasets are image
    manifests: the model reads the image column, not feature columns, and every image file is
    checked to exist before the first model call.
    """
    from audit.io.models import is_network_model, load_model

    use_model = config.model.path is not None
    image_model = use_model and config.data.image_column is not None and is_network_model(config.model.path)
    # Features named in a predictions-only audit (or beside an image model) are read too: drift
    # and site identifiability are about the inputs, whether or not the model reads them.
    need_features = (use_model and not image_model) or bool(config.data.features)
    data = load_dataset(config.data.path, config.data, name="data",
                        need_features=need_features, need_scores=not use_model)
    reference = None
    if config.data.reference is not None:
        reference = load_dataset(config.data.reference, config.data, name="reference",
                                 need_features=need_features, need_scores=not use_model)
    options: dict[str, Any] = {}
    if image_model:
        m, imaging = config.model, config.imaging
        options = dict(
            image_column=config.data.image_column, outputs=m.outputs, factory=m.factory,
            input_name=m.input_name, embedding_layer=m.embedding_layer, device=m.device,
            batch_size=m.batch_size, workers=m.workers, preprocessing=imaging.preprocess,
            window=imaging.window, nifti_slice=imaging.nifti_slice, output_names=config.data.label,
        )
    model = load_model(
        config.model.path,
        score_columns=() if use_model else config.data.score,
        trust_model=config.model.trust,
        trusted_types=config.model.trusted_types,
        **options,
    )
    if image_model:
        for ds in (data, reference):
            if ds is not None:
                model.check_images(ds)
    return data, reference, model


def shared_identifiers(data: Dataset, reference: Dataset | None, id_column: str | None) -> int:
    """How many identifiers appear in both the reference and the test data (leakage)."""
    if reference is None or not id_column:
        return 0
    return len(set(data.frame[id_column]) & set(reference.frame[id_column]))


def run_audit(
    config: AuditConfig,
    *,
    available: dict[str, type[AuditPlugin]] | None = None,
    progress: Any = None,
    debug: bool = False,
    cwd: Path | None = None,
) -> AuditResult:
    """Run every selected plugin on the configured data and model.

    Raises
    ------
    AuditError
        For bad configuration, data or model (the CLI exits 4). A plugin that raises any
        other exception becomes an ERROR result instead, unless ``debug`` is set.
    """
    started = prov.now()
    if config.seed is None:
        # Draw a seed and record it, so that the run can be repeated exactly with --seed.
        config = replace(config, seed=int(np.random.SeedSequence().entropy % (2**32)))
    # A --out that cannot be written fails now (exit 4), not after the whole audit has run.
    from audit.report.files import check_output_folder

    check_output_folder(config.report.out)
    pdf_ok = check_pdf_support(config)
    available = discover_plugins() if available is None else available
    plugins = select_plugins(config, available)
    attestations = load_attestation_record(config.report.attestations)
    data, reference, model = load_inputs(config)
    ctx = AuditContext(config=config, data=data, reference=reference, model=model, progress=progress)
    if data.n_dropped:
        ctx.warn(f"{data.n_dropped} rows of {data.path.name} with missing label/score were dropped (--drop-missing).")
    if reference is not None and reference.n_dropped:
        ctx.warn(f"{reference.n_dropped} rows of {reference.path.name} with missing label/score were dropped.")
    if not pdf_ok:
        ctx.warn("WeasyPrint is not installed: the PDF editions were not written (--continue-without-pdf). "
                 "Install it with: pip install 'future-audit[pdf]'")
    shared = shared_identifiers(data, reference, config.data.id)
    if shared:
        ctx.warn(
            f"{shared} identifiers ({config.data.id}) appear in both the reference and the test data: "
            "the operating point was chosen on patients who are also audited (possible leakage)."
        )
    # The model is called once per dataset, here, so bad outputs stop the run before any plugin.
    ctx.predictions("data")
    if reference is not None:
        ctx.predictions("reference")

    results: list[PluginResult] = []
    ctx.publish_totals()
    for plugin in plugins:
        try:
            result = plugin.run(ctx)
        except AuditError:
            raise
        except USER_CODE_ERRORS as exc:  # SystemExit too: a plugin must not end the run
            if debug:
                raise
            summary = describe_failure(exc).splitlines()[0][:300]
            result = PluginResult(
                plugin=plugin.name, principle=plugin.principle, version=plugin.version,
                status=Status.ERROR, summary=f"The plugin failed: {summary}", error=summary,
                warnings=(traceback.format_exception_only(exc)[-1].strip()[:300],),
                checklist=plugin.checklist,
            )
        results.append(result)

    by_name = {r.plugin: r for r in results}
    gates = tuple(evaluate_gate(g, by_name.get(g.plugin), config.gate_policy) for g in config.gates)
    statuses = [g.status for g in gates] or [r.status for r in results]
    provenance = {
        "tool": {"name": "future-audit", "version": __version__},
        "started": started,
        "finished": prov.now(),
        "seed": config.seed,
        "data": _dataset_record(data, config),
        "reference": None if reference is None else _dataset_record(reference, config),
        "model": {"kind": model.kind, "source": _display_source(model, config), "sha256": model.fingerprint()},
        "model_calls": ctx.cache.calls,
        "plugins_installed": {name: cls.version for name, cls in sorted(available.items())},
        "versions": prov.package_versions(),
        "environment": prov.environment(),
        "git": prov.git_state(cwd or Path.cwd()),
    }
    resolved = config.to_dict()
    # What leaves the run is the public record: no suppressed value survives in any output.
    return public_record(AuditResult(
        plugins=tuple(results),
        gates=gates,
        provenance=provenance,
        config=resolved,
        data_summary=_data_summary(config, data, reference),
        attestations=attestations,
        warnings=tuple(ctx.warnings),
        status=worst_status(statuses),
        exit_code=exit_code(gates, tuple(results), config.fail_on, config.allow_empty_gates),
        full_record=config.report.full_record,
    ))


def check_pdf_support(config: AuditConfig) -> bool:
    """Fail before any work when a PDF is asked for and WeasyPrint cannot load.

    Returns False (go on without the PDF) only when the user asked to continue without it.
    """
    if not {"pdf", "technical_pdf"} & set(config.report.formats):
        return True
    try:
        import weasyprint  # noqa: F401  (costs a second; only when a PDF is asked for)
    except (ImportError, OSError):
        if config.report.continue_without_pdf:
            return False
        raise MissingExtraError(
            "weasyprint", "pdf",
            "PDF output (--format pdf) (or pass --continue-without-pdf to write the other formats)",
        ) from None
    return True


def load_attestation_record(path: Path | None) -> dict[str, Any]:
    """The team's written answers as plain JSON data (checklist id → item id → answer record)."""
    if path is None:
        return {}
    from dataclasses import asdict

    from audit.attestations import load_attestations

    return {cid: {item: {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(a).items()}
                  for item, a in items.items()}
            for cid, items in load_attestations(path).items()}


def _data_summary(config: AuditConfig, data: Dataset, reference: Dataset | None) -> dict[str, Any]:
    """Counts only: rows, rows dropped, label prevalence (no row-level data)."""
    def one(ds: Dataset) -> dict[str, Any]:
        return {"rows": ds.n_rows, "rows_read": ds.n_rows_read, "rows_dropped": ds.n_dropped,
                "positives": {lab: int(ds.frame[lab].sum()) for lab in config.data.label}}

    summary = {"data": one(data), "reference": None if reference is None else one(reference),
               "labels": list(config.data.label), "sensitive": list(config.data.sensitive),
               "rows": data.n_rows}
    if config.data.image_column is not None:
        # The checklists' imaging items apply (audit.checklists reads data_summary.modality).
        summary["modality"] = "imaging"
    return summary


def _dataset_record(ds: Dataset, config: AuditConfig) -> dict[str, Any]:
    # No absolute path unless report.record_paths: a report names files, not where they sit
    # on somebody's disk (user names, project folders).
    return {"file": ds.path.name, "path": config.shown_path(ds.path), "sha256": ds.sha256,
            "rows_read": ds.n_rows_read, "rows_used": ds.n_rows, "rows_dropped": ds.n_dropped}


def _display_source(model, config: AuditConfig) -> str:
    source = str(model.source)
    if config.report.record_paths:
        return source
    return Path(source).name if "/" in source else source
