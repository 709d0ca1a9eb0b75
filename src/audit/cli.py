"""The ``future-audit`` command: a thin typer app (parse → run_audit → exit code).

Heavy libraries (pandas, scikit-learn, matplotlib, torch, weasyprint) are imported inside
the commands so that ``future-audit --help`` answers at once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from audit import __version__

app = typer.Typer(
    name="future-audit",
    help="Audit a trained medical AI model against the FUTURE-AI principles "
    "(fairness: subgroup underdiagnosis with intervals, tests and CI gates).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

USAGE_ERROR = 4
INTERNAL_ERROR = 3


def _version(value: bool) -> None:
    if value:
        typer.echo(f"future-audit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """future-audit: evidence for FUTURE-AI, CLAIM 2024 and TRIPOD+AI from your model and data."""


def _fail(exc: BaseException, debug: bool) -> None:
    """One clear line on stderr and exit 4 (the traceback only with --debug)."""
    if debug:
        raise exc
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(getattr(exc, "exit_code", USAGE_ERROR))


_SIGNALLED: list[int] = []  # termination signals received during this process's run


def _sigterm_as_interrupt():
    """Make SIGTERM take the Ctrl-C path until the returned function is called.

    CI cancellation and ``docker stop`` send SIGTERM, whose default ends the process with 143
    and no cleanup; as KeyboardInterrupt the run says "interrupted", exits 2 and removes its
    staging folder on the way out.
    """
    import signal

    def interrupt(signum, frame):
        # Remembered as well as raised: compiled code (numpy, ctypes) can turn the exception
        # into another one (a ValueError), which must still end as "interrupted", not exit 3.
        _SIGNALLED.append(signum)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except (ValueError, OSError, AttributeError):  # not the main thread, or no SIGTERM here
        return lambda: None
    # None: the previous handler was not set from Python; the default is the closest one.
    return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


@app.command()
def run(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="audit.toml or pyproject.toml with \\[tool.future-audit].")] = None,
    data: Annotated[str | None, typer.Option(help="Test data (CSV or Parquet).")] = None,
    reference: Annotated[str | None, typer.Option(help="Reference (validation) data; the operating point is chosen on it.")] = None,
    label: Annotated[list[str] | None, typer.Option(help="Label column (0/1); repeat for a multi-label model.")] = None,
    score: Annotated[list[str] | None, typer.Option(help="Score column(s) holding the model's probabilities.")] = None,
    id: Annotated[str | None, typer.Option("--id", help="Patient identifier: clusters the bootstrap; never shown.")] = None,
    sensitive: Annotated[list[str] | None, typer.Option(help="Sensitive attribute column; repeatable.")] = None,
    site: Annotated[str | None, typer.Option(help="Site column.")] = None,
    time: Annotated[str | None, typer.Option(help="Time column.")] = None,
    feature: Annotated[list[str] | None, typer.Option(help="Model input column; repeatable.")] = None,
    image_column: Annotated[str | None, typer.Option(metavar="COL", help="Column of image paths (relative to the data file's folder): the input of a torch/ONNX image model.")] = None,
    model: Annotated[str | None, typer.Option(help="Model: file.skops, file.joblib/.pkl (needs --trust-model), package.module:function, or a torch/ONNX image model (.pt, .pt2, .onnx; needs --image-column).")] = None,
    trust_model: Annotated[bool, typer.Option("--trust-model", help="Allow loading pickle/joblib files and pickled torch modules (they can run code).")] = False,
    threshold: Annotated[str | None, typer.Option(metavar="FLOAT", help="Fixed operating point in [0, 1].")] = None,
    operating_point: Annotated[str | None, typer.Option(help="youden | max-f1 | sensitivity:X | specificity:X, chosen on the reference data.")] = None,
    intersection: Annotated[list[str] | None, typer.Option(help="Attributes analysed jointly, comma-separated (e.g. sex,age_band); repeatable.")] = None,
    no_finding_label: Annotated[str | None, typer.Option(help="Multi-label mode: the label column meaning 'no finding' (default: derived as no positive finding).")] = None,
    bootstrap: Annotated[str | None, typer.Option(metavar="INTEGER", help="Deprecated and ignored: fairness intervals are exact (Clopper-Pearson, MOVER).", hidden=True)] = None,
    seed: Annotated[str | None, typer.Option(metavar="INTEGER", help="Random seed (default: one is drawn and recorded in provenance, so the run can be repeated).")] = None,
    correction: Annotated[str | None, typer.Option(help="Multiplicity correction: holm | bh.")] = None,
    gate: Annotated[list[str] | None, typer.Option(help="Gate, e.g. 'fairness.fnr_gap<=0.05', or 'fairness.fnr_gap<=baseline+0.02' against the history's baseline run (needs --history); repeatable.")] = None,
    gate_policy: Annotated[str | None, typer.Option(help="interval (default) | point.")] = None,
    fail_on: Annotated[str | None, typer.Option(help="Statuses that exit 1: fail (default), inconclusive, warn (comma-separated).")] = None,
    allow_empty_gates: Annotated[bool, typer.Option("--allow-empty-gates", help="Exit 0 although a gate had no value to judge (by default such a gate exits 1).")] = False,
    plugin: Annotated[list[str] | None, typer.Option(help="Run only this plugin; repeatable.")] = None,
    history: Annotated[str | None, typer.Option(metavar="FILE", help="Audit history (SQLite): record this run there; baseline gates ('fairness.fnr_gap<=baseline+0.02') read its last accepted run.")] = None,
    accept: Annotated[bool, typer.Option("--accept", help="Record this run as accepted: the baseline of later runs (needs --history).")] = False,
    out: Annotated[str | None, typer.Option(help="Output folder.")] = None,
    format: Annotated[str | None, typer.Option("--format", help="Comma-separated: html (board edition), technical (full report), json, junit, md, pdf (board), technical_pdf, model_card.")] = None,
    min_cell: Annotated[str | None, typer.Option(metavar="INTEGER", help="Suppress cells with fewer cases (default 10).")] = None,
    attestations: Annotated[str | None, typer.Option(help="YAML file answering checklist items no tool can measure.")] = None,
    drop_missing: Annotated[bool, typer.Option("--drop-missing", help="Drop rows with a missing label/score (the report says how many).")] = False,
    continue_without_pdf: Annotated[bool, typer.Option("--continue-without-pdf", help="If WeasyPrint is missing, write the other formats instead of failing.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary table.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks; re-raise plugin errors.")] = False,
) -> None:
    """Run the audit and write the reports; exit 0 (gates hold), 1 (a gate failed), 4 (bad input)."""
    from audit.errors import AuditError, ConfigError

    restore_sigterm = _sigterm_as_interrupt()
    try:
        cfg = _resolve_config(
            config,
            flags={
                "data": data, "reference": reference, "label": label, "score": score, "id": id,
                "sensitive": sensitive, "site": site, "time": time, "features": feature, "image_column": image_column, "model": model,
                "trust_model": trust_model, "gates": gate, "gate_policy": gate_policy, "fail_on": fail_on,
                "plugins": plugin, "out": out, "formats": format, "min_cell": min_cell,
                "attestations": attestations, "drop_missing": drop_missing or None, "seed": seed,
                "continue_without_pdf": continue_without_pdf or None,
                "allow_empty_gates": allow_empty_gates or None, "history": history,
            },
            fairness={"threshold": threshold, "operating_point": operating_point, "intersections": intersection,
                      "bootstrap": bootstrap, "correction": correction,
                      "no_finding_label": no_finding_label},
        )
        if cfg.history is not None:
            cfg = _prepare_history(cfg)
        elif accept:
            raise ConfigError("--accept marks the run accepted in the audit history: pass --history FILE "
                              "(or set run.history) as well.")
        code = _execute(cfg, quiet=quiet, debug=debug, accept=accept)
    except AuditError as exc:
        if _SIGNALLED:
            typer.echo("interrupted", err=True)
            raise typer.Exit(2) from None
        _fail(exc, debug)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(2) from None
    except SystemExit as exc:
        # Model and plugin calls turn SystemExit into errors; anything that still gets here
        # must not become the exit code (sys.exit(0) would pass a CI gate with nothing written).
        if debug:
            raise
        typer.echo(f"internal error: the run called sys.exit({exc.code!r}) before the reports were "
                   "written (re-run with --debug for the traceback)", err=True)
        raise typer.Exit(INTERNAL_ERROR) from None
    finally:
        restore_sigterm()
    raise typer.Exit(code)


def _resolve_config(config_path, *, flags, fairness):
    from audit.core.config import build_config, find_config, parse_threshold_value, read_config_file
    from audit.errors import ConfigError
    from audit.plugins.base import discover_plugins

    cwd = Path.cwd()
    path = config_path if config_path is not None else find_config(cwd)
    raw = read_config_file(path) if path is not None else {}
    plugin_params = {}
    fair = {}
    if fairness["threshold"] is not None:
        fair["threshold"] = parse_threshold_value(fairness["threshold"], "--threshold")
    if fairness["operating_point"] is not None:
        fair["operating_point"] = fairness["operating_point"]
    if fairness["intersections"]:
        fair["intersections"] = [[c.strip() for c in s.split(",") if c.strip()] for s in fairness["intersections"]]
    # --seed is the run's seed (provenance), not a fairness parameter.
    if fairness["bootstrap"] is not None:
        fair["bootstrap"] = _int_flag(fairness["bootstrap"], "--bootstrap")
    for key in ("correction", "no_finding_label"):
        if fairness[key] is not None:
            fair[key] = fairness[key]
    if fair:
        plugin_params["fairness"] = fair
    flags = dict(flags)
    if flags.get("seed") is not None:
        flags["seed"] = _int_flag(flags["seed"], "--seed")
    if flags.get("min_cell") is not None:
        flags["min_cell"] = _int_flag(flags["min_cell"], "--min-cell")
    flags["plugin_params"] = plugin_params
    if path is None and flags.get("data") is None:
        raise ConfigError("No audit.toml here and no --data: pass --config FILE or --data FILE --label COLUMN ...")
    return build_config(
        raw, base_dir=(path.parent if path else cwd).resolve(), flag_dir=cwd, flags=flags,
        plugin_names=tuple(discover_plugins()), source=None if path is None else str(path),
    )


def _int_flag(value: str, name: str) -> int:
    from audit.errors import ConfigError

    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}: '{value}' is not an integer.") from None


def _prepare_history(cfg):
    """Before any work: the history must be usable, and baseline gates get their baseline."""
    from dataclasses import replace

    from audit.history import check_history, resolve_baselines

    check_history(cfg.history)
    return replace(cfg, gates=resolve_baselines(cfg.history, cfg.gates))


def _record_run(result, path: Path, out: Path, accept: bool) -> str:
    """Append the public record (what results.json holds without report.full_record)."""
    import json
    from dataclasses import replace

    from audit.core.results import public_record
    from audit.history import HistoryError, append_run

    public = public_record(replace(result, full_record=False)) if result.full_record else result
    try:
        return append_run(path, json.loads(public.to_json()), accepted=True if accept else None)
    except HistoryError as exc:
        raise HistoryError(f"{exc} The reports were written to {str(out)!r}, but this run is not in the "
                           "history.") from None


def _execute(cfg, *, quiet: bool, debug: bool, accept: bool = False) -> int:
    from rich.console import Console

    from audit.core.progress import make_progress
    from audit.core.runner import run_audit
    from audit.report import write_reports

    console = Console(stderr=True, quiet=quiet)
    progress = None if quiet else make_progress(console)
    if progress is not None:
        with progress:
            result = run_audit(cfg, progress=progress, debug=debug)
    else:
        result = run_audit(cfg, debug=debug)
    paths = write_reports(result, cfg.report.out, cfg.report.formats)
    run_id = None if cfg.history is None else _record_run(result, cfg.history, cfg.report.out, accept)
    if not quiet:
        recorded = None if run_id is None else f"recorded run {run_id[:8]} in {cfg.history}" + (
            " (accepted)" if accept else "")
        _print_summary(console, result, paths, recorded)
    return result.exit_code


def _print_summary(console, result, paths, recorded: str | None = None) -> None:
    from rich.markup import escape
    from rich.table import Table

    from audit.report.text import for_plain_text

    # The same text rules as summary.md (no control or bidi characters, long names cut), and
    # no rich markup: a group called "[red]" must print as itself.
    result = for_plain_text(result)
    table = Table(title="future-audit", show_lines=False)
    table.add_column("what")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for p in result.plugins:
        table.add_row(escape(f"plugin {p.plugin}"), str(p.status), escape(p.summary))
    for g in result.gates:
        table.add_row(escape(f"gate {g.expression}"), str(g.status), escape(g.message))
    console.print(table)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(w)}")
    for fmt, path in paths.items():
        console.print(escape(f"{fmt}: {path}"))
    if recorded is not None:
        console.print(escape(recorded))
    console.print(f"exit code {result.exit_code}")


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="results.json written by `future-audit run`.")],
    format: Annotated[str, typer.Option("--format", help="Comma-separated: html, technical, md, junit, json, pdf, technical_pdf, model_card.")] = "html",
    out: Annotated[Path | None, typer.Option(help="Output folder (default: the folder of results.json).")] = None,
    debug: Annotated[bool, typer.Option("--debug")] = False,
) -> None:
    """Re-render reports from results.json alone."""
    from audit.errors import AuditError, ConfigError

    try:
        from audit.core.config import FORMATS
        from audit.report import load_result, write_reports

        formats = [f.strip() for f in format.split(",") if f.strip()]
        for f in formats:
            if f not in FORMATS:
                raise ConfigError(f"--format: unknown format '{f}'. Valid: {', '.join(FORMATS)}.")
        result = load_result(results)
        paths = write_reports(result, out or results.parent, formats)
    except AuditError as exc:
        _fail(exc, debug)
    for fmt, path in paths.items():
        typer.echo(f"{fmt}: {path}")


@app.command()
def plugins(debug: Annotated[bool, typer.Option("--debug")] = False) -> None:
    """List installed plugins: name, principle, version."""
    from audit.errors import AuditError
    from audit.plugins.base import discover_plugins

    try:
        found = discover_plugins()
    except AuditError as exc:
        _fail(exc, debug)
    for name, cls in found.items():
        typer.echo(f"{name}\t{cls.principle}\t{cls.version}")


@app.command()
def init(
    data: Annotated[Path, typer.Option(help="A data file to guess column roles from.")],
    out: Annotated[Path, typer.Option(help="Where to write the config.")] = Path("audit.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    debug: Annotated[bool, typer.Option("--debug")] = False,
) -> None:
    """Write a commented audit.toml with column roles guessed from the data."""
    from audit.errors import AuditError, InputError
    from audit.init import guess_roles, render_config

    try:
        if out.exists() and not force:
            raise InputError(f"{out} already exists; pass --force to overwrite it.")
        template = out.with_name("attestations.yaml")
        text = render_config(data, guess_roles(data), out, attestations=template.name)
        from audit.attestations import attestation_template
        from audit.report.files import write_atomic

        write_atomic(out, text)
        wrote_template = not template.exists()
        if wrote_template:  # never overwrite the team's written answers
            write_atomic(template, attestation_template())
    except AuditError as exc:
        _fail(exc, debug)
    typer.echo(f"wrote {out}: check the guessed roles before running `future-audit run --config {out}`")
    if wrote_template:
        typer.echo(f"wrote {template}: answer the checklist items no tool can measure")


@app.command()
def checklist(
    name: Annotated[str, typer.Argument(help="claim | tripod-ai | future-ai")],
    results: Annotated[Path | None, typer.Argument(help="results.json of an audit (optional).")] = None,
    attestations: Annotated[Path | None, typer.Option(help="YAML file with the team's written answers.")] = None,
    debug: Annotated[bool, typer.Option("--debug")] = False,
) -> None:
    """Print a checklist with each item measured, attested, partly measured, not applicable or open."""
    from rich.console import Console

    from audit.attestations import attestations_from_record, load_attestations
    from audit.checklists import coverage_line, format_checklist_table, item_states, load_checklist
    from audit.errors import AuditError

    try:
        chk = load_checklist(name)
        result = None
        answers = {}
        if results is not None:
            from audit.report import load_result

            result = load_result(results)
            answers = attestations_from_record(result.attestations)
        if attestations is not None:
            answers = load_attestations(attestations)
        states = item_states(chk, result, answers)
    except AuditError as exc:
        _fail(exc, debug)
    console = Console()
    console.print(format_checklist_table(chk, states))
    console.print(coverage_line(chk, states), soft_wrap=True)  # one line, as scripts read it


@app.command()
def history(
    history: Annotated[Path, typer.Option("--history", metavar="FILE", help="The audit history written by `run --history`.")],
    metric: Annotated[str | None, typer.Option(metavar="PLUGIN.ID", help="Show this metric's values over the runs.")] = None,
    group: Annotated[list[str] | None, typer.Option(metavar="COLUMN=VALUE", help="With --metric: the record's group; repeat for an intersection (default: overall).")] = None,
    label: Annotated[str | None, typer.Option(help="With --metric: the record's label (multi-label audits).")] = None,
    reference: Annotated[str | None, typer.Option(help="With --metric: best | overall | development, for a gap with several references.")] = None,
    out: Annotated[Path | None, typer.Option(metavar="FILE", help="With --metric: draw the trend to FILE.html, .svg or .png.")] = None,
    accept: Annotated[str | None, typer.Option(metavar="RUN_ID", help="Mark this run accepted (an id or its first characters): the baseline of later runs.")] = None,
    debug: Annotated[bool, typer.Option("--debug")] = False,
) -> None:
    """List the recorded runs, show one metric over them (--metric), or accept a run (--accept)."""
    from rich.console import Console

    from audit import history as hist
    from audit.errors import AuditError, ConfigError

    console = Console()
    if not console.is_terminal:  # a pipe or a CI log: whole rows rather than folded cells
        console = Console(width=200)
    try:
        if metric is None and (group or label or reference or out):
            raise ConfigError("--group, --label, --reference and --out select a metric's record: pass --metric PLUGIN.ID.")
        if accept is not None:
            if metric is not None:
                raise ConfigError("--accept marks a run; pass it without --metric.")
            run_id = _run_id(hist.list_runs(history), accept, history)
            hist.mark_accepted(history, run_id, True)
            base = next((r.id for r in hist.list_runs(history) if r.baseline), None)
            typer.echo(f"run {run_id[:8]} accepted: " + ("it is the baseline of later runs" if base == run_id else
                       f"the baseline stays run {str(base)[:8]}, accepted later"))
            return
        if metric is None:
            runs = hist.list_runs(history)
            if not runs:
                raise hist.HistoryError(f"No runs recorded in {str(history)!r}.")
            console.print(_runs_table(runs))
            return
        series = hist.metric_series(history, metric, label=label, group=_group(group), reference=reference)
        if not series:
            raise _no_series(hist, history, metric, _group(group), label)
        # Drawn before anything is printed, so a bad --out is the one line of output.
        trend = None if out is None else hist.render_trend(series, out)
        console.print(_series_table(series))
        if trend is not None:
            typer.echo(f"trend: {trend}")
    except AuditError as exc:
        _fail(exc, debug)


def _run_id(runs, prefix: str, path: Path) -> str:
    """The full id of the one run whose id starts with ``prefix`` (the table shows 8 characters)."""
    from audit.history import HistoryError

    found = [r.id for r in runs if r.id.startswith(prefix)] if prefix else []
    if len(found) != 1:
        what = "No run" if not found else f"{len(found)} runs have an id that starts with"
        raise HistoryError(f"{what} {prefix!r} in {str(path)!r}; `future-audit history --history {path}` lists "
                           "the run ids.")
    return found[0]


def _group(pairs: list[str] | None) -> dict[str, str] | None:
    from audit.errors import ConfigError

    if not pairs:
        return None
    out = {}
    for pair in pairs:
        column, sep, value = pair.partition("=")
        if not sep or not column.strip():
            raise ConfigError(f"--group {pair!r}: expected COLUMN=VALUE, e.g. --group sex=F.")
        out[column.strip()] = value.strip()
    return out


def _no_series(hist, path: Path, metric: str, group, label):
    """Why a metric has no values: which records the latest run holds, or which metric ids."""
    from audit.errors import UnknownMetricError

    runs = hist.list_runs(path)
    if not runs:
        return hist.HistoryError(f"No runs recorded in {str(path)!r}.")
    plugin, _, name = metric.partition(".")
    records = hist.metric_records(path, runs[-1].id)
    same = [m for m in records if m["plugin"] == plugin and m["id"] == name]
    if not same:
        ids = sorted({f"{m['plugin']}.{m['id']}" for m in records})
        shown = ", ".join(ids[:12]) + (f", ... ({len(ids)} in all)" if len(ids) > 12 else "")
        return UnknownMetricError(f"Metric {metric!r} is not in the latest run of {str(path)!r}. "
                                  f"Metric ids there: {shown or 'none'}.")
    where = sorted({_where(m["group"], m["label"], m["reference"]) for m in same})
    shown = "; ".join(where[:8]) + (f"; ... ({len(where)} in all)" if len(where) > 8 else "")
    return hist.HistoryError(f"No run of {str(path)!r} has {metric} for {_where(group, label, None)}. "
                             f"Its records in the latest run: {shown} (select one with --group, --label, --reference).")


def _where(group, label, reference) -> str:
    text = ", ".join(f"{k}={v}" for k, v in group.items()) if group else "overall"
    return text + (f" [label {label}]" if label else "") + (f" vs {reference}" if reference else "")


def _short_time(time: str | None) -> str:
    return "" if not time else time[:19].replace("T", " ")


def _runs_table(runs):
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="audit history")
    for column in ("run", "finished", "status", "exit", "commit", "model", "data", "metrics", "accepted", "baseline"):
        table.add_column(column, overflow="fold", no_wrap=column in ("run", "finished", "exit", "metrics"))
    for r in runs:
        accepted = {True: "yes", False: "no", None: ""}[r.accepted]
        table.add_row(escape(r.id[:8]), escape(_short_time(r.time)), escape(r.status), str(r.exit_code),
                      escape((r.commit or "")[:8]), escape(r.model_hash or ""), escape(r.data_hash or ""),
                      str(r.n_metrics), accepted, "baseline" if r.baseline else "")
    return table


def _series_table(series):
    from rich.markup import escape
    from rich.table import Table

    p = series[0]
    table = Table(title=escape(f"{p.plugin}.{p.metric_id} ({_where(p.group, p.label, p.reference)})"))
    for column in ("run", "finished", "commit", "value", "interval", "n", "accepted"):
        table.add_column(column, overflow="fold", no_wrap=column in ("run", "finished", "value"))
    for s in series:
        value = f"{s.value:.6g}" if s.value is not None else ("suppressed" if s.suppressed else "undefined")
        interval = "" if s.ci_low is None or s.ci_high is None else f"[{s.ci_low:.6g}, {s.ci_high:.6g}]"
        table.add_row(escape(s.run_id[:8]), escape(_short_time(s.time)), escape((s.commit or "")[:8]), value,
                      interval, "" if s.n is None else str(s.n), {True: "yes", False: "no", None: ""}[s.accepted])
    return table


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="results.json of the earlier run (A).")],
    b: Annotated[Path, typer.Argument(help="results.json of the later run (B).")],
    metric: Annotated[str | None, typer.Option(metavar="PLUGIN.ID", help="Compare only this metric; exit 1 when it got worse beyond its interval.")] = None,
    debug: Annotated[bool, typer.Option("--debug")] = False,
) -> None:
    """Print what changed from A to B (markdown); with --metric, exit 1 when that metric got worse."""
    from audit.compare import compare_results, format_comparison, read_results
    from audit.errors import AuditError

    names = (str(a), str(b))
    try:
        comparison = compare_results(read_results(a), read_results(b), metric=metric, names=names)
        worse = metric is not None and comparison.worse(metric)
    except AuditError as exc:
        _fail(exc, debug)
    typer.echo(format_comparison(comparison, names=names), nl=False)
    if worse:
        typer.echo(f"{metric} got worse beyond its interval", err=True)
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: usage errors exit 4 (pytest's convention), not click's 2."""
    try:
        # Without standalone mode click returns the exit code of typer.Exit instead of exiting.
        rv = app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # click usage errors (unknown option, missing value) carry show()
        if _SIGNALLED:  # SIGTERM's KeyboardInterrupt, turned into another error by C code
            typer.echo("interrupted", err=True)
            return 2
        if callable(getattr(exc, "show", None)) and getattr(exc, "exit_code", None) == 2:
            exc.show()
            return USAGE_ERROR
        if hasattr(exc, "exit_code") and callable(getattr(exc, "show", None)):
            exc.show()
            return int(exc.exit_code)
        if "--debug" in (argv if argv is not None else sys.argv):
            raise
        typer.echo(f"internal error: {type(exc).__name__}: {exc} (re-run with --debug for the traceback)", err=True)
        return INTERNAL_ERROR
    except BaseException as exc:  # an odd BaseException from user code: never a silent pass
        if isinstance(exc, KeyboardInterrupt | SystemExit) or "--debug" in (argv if argv is not None else sys.argv):
            raise
        typer.echo(f"internal error: {type(exc).__name__}: {exc} (re-run with --debug for the traceback)", err=True)
        return INTERNAL_ERROR
    return rv if isinstance(rv, int) else 0


def entry() -> None:
    sys.exit(main())
