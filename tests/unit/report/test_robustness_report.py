"""The Robustness section: AUROC against severity per family, sensitivity per group under the
costliest perturbation, the worst cases with their paired intervals, every perturbation and group
name escaped, and suppressed values never drawn."""

from __future__ import annotations

import base64

from audit.core.results import Finding, Metric, PluginResult, Status
from audit.report import render_html, render_markdown
from audit.report.robustness import is_robustness, robustness_view
from audit.report.templates import environment

from .factories import make_fairness, make_result

EVIL = "<script>alert(1)</script>"
SECRET = 0.4321  # the value of a suppressed record: never drawn, never shown


def _auc(value, severity=None, perturbation=None, **kw):
    ci = None if value is None else (value - 0.04, min(1.0, value + 0.03))
    return Metric("auroc", value, n=400, ci=ci, perturbation=perturbation, severity=severity, **kw)


def plugin() -> PluginResult:
    metrics = [Metric("threshold", 0.5, n=400), Metric("n", 400, n=400), Metric("positives", 120, n=400),
               _auc(0.90)]
    noise = {1: 0.89, 2: 0.88, 3: 0.85, 4: 0.80, 5: 0.74}
    for s, v in noise.items():
        metrics.append(_auc(v, s, "gaussian_noise"))
        sfx = "" if s <= 3 else "_stress"
        metrics += [Metric("auroc_drop" + sfx, 0.90 - v, n=400, ci=(0.90 - v - 0.02, 0.90 - v + 0.03),
                           perturbation="gaussian_noise", severity=s),
                    Metric("sensitivity_drop" + sfx, (0.90 - v) * 2, n=400, ci=(0.0, (0.90 - v) * 2 + 0.05),
                           perturbation="gaussian_noise", severity=s),
                    Metric("flip_rate" + sfx, 0.01 * s, n=400, ci=(0.0, 0.02 * s), perturbation="gaussian_noise",
                           severity=s)]
    for s, v in {1: 0.90, 2: 0.895, 3: 0.89}.items():
        metrics += [_auc(v, s, EVIL),
                    Metric("auroc_drop", 0.90 - v, n=400, ci=(-0.01, 0.90 - v + 0.01), perturbation=EVIL, severity=s),
                    Metric("sensitivity_drop", None, suppressed=True, perturbation=EVIL, severity=s),
                    Metric("flip_rate", None, suppressed=True, perturbation=EVIL, severity=s)]
    metrics += [_auc(0.88, 1, "mri_gibbs"), _auc(None, 2, "mri_gibbs", suppressed=True)]
    # Per group: F and a hostile name drawn, a small group suppressed.
    for group, base in (({"sex": "F"}, 0.80), ({"sex": EVIL}, 0.70), ({"sex": "(small group 1)"}, SECRET)):
        hidden = "small" in group["sex"]
        metrics.append(Metric("sensitivity", None if hidden else base, n=150, group=group, suppressed=hidden))
        for s in range(1, 6):
            metrics.append(Metric("sensitivity", None if hidden else base - 0.04 * s, n=150, group=group,
                                  perturbation="gaussian_noise", severity=s, suppressed=hidden,
                                  flags=("under_powered",) if group["sex"] == EVIL else ()))
    metrics += [Metric("auroc_drop_worst", 0.05, n=400, ci=(0.02, 0.09), perturbation="gaussian_noise", severity=3),
                Metric("sensitivity_drop_worst", 0.1, n=400, ci=(0.03, 0.18), perturbation="gaussian_noise",
                       severity=3)]
    settings = {
        "perturbations": [
            {"name": "gaussian_noise", "family": "generic", "words": "Gaussian noise"},
            {"name": EVIL, "family": "generic", "words": EVIL},
            {"name": "mri_gibbs", "family": "mri", "words": "MRI Gibbs ringing"},
        ],
        "severities": [1, 2, 3, 4, 5], "max_severity_gate": 3,
        "rows": {"audited": 400, "of": 400, "sample": "all rows"},
        "failed": {"missing@1": "the model cannot take missing values: ValueError: Input X contains NaN"},
    }
    return PluginResult(
        plugin="robustness", principle="Robustness", version="0.1.0", status=Status.WARN,
        summary="Under Gaussian noise at severity 3, AUROC falls by 0.050.", metrics=tuple(metrics),
        findings=(Finding("auroc_drop", "AUROC under perturbation", Status.WARN,
                          f"Under {EVIL} at severity 3, AUROC falls by 0.05.", metric="auroc_drop"),),
        settings=settings, checklist=("FUTURE-AI:Robustness 3",))


def _svg(fig) -> str:
    return base64.b64decode(fig.uris[0].split(",", 1)[1]).decode()


def test_view_orders_worst_cases_and_formats_paired_intervals():
    p = plugin()
    assert is_robustness(p)
    v = robustness_view(p)
    assert [w.perturbation for w in v.worst] == ["Gaussian noise", EVIL]
    noise = v.worst[0]
    assert noise.severity == "3"  # the worst severity up to the gate, not 5
    assert noise.auroc_drop == "0.050 (0.030 to 0.080)"
    assert noise.sensitivity_drop == "10.0 points (0.0 to 15.0)"
    assert noise.flip_rate == "3.0%"
    assert v.worst[1].sensitivity_drop == "suppressed" and v.worst[1].flip_rate == "suppressed"
    assert any("severities 4, 5 are stress tests" in s for s in v.sentences)
    assert any(s.startswith("1 perturbation-severity run could not be assessed: the model cannot take missing")
               for s in v.sentences)


def test_severity_figures_one_per_family_with_numbers_in_the_alt_text():
    v = robustness_view(plugin())
    generic, mri = v.severity_figures
    assert generic.alt.startswith("AUROC against severity, generic image perturbations: clean 0.90; "
                                  "Gaussian noise 0.89, 0.88, 0.85, 0.80, 0.74 at severities 1, 2, 3, 4, 5")
    assert f"{EVIL} 0.90, 0.90, 0.89" in generic.alt
    assert "the clean AUROC dashed" in generic.caption and "dotted line separates the gated" in generic.caption
    assert mri.alt.endswith("MRI Gibbs ringing 0.88 at severities 1.")
    assert mri.suppressed == ()  # one of its points is hidden, the line is drawn without it
    svg = _svg(generic)
    assert "<script>" not in svg and "&lt;script&gt;" in svg  # matplotlib escapes text in the SVG


def test_group_figure_draws_published_groups_and_names_the_hidden_one():
    v = robustness_view(plugin())
    fig = v.group_figure
    assert fig is not None and fig.title == "Sensitivity per group under Gaussian noise"
    assert fig.alt.startswith("Sensitivity per group under Gaussian noise: sex=F 80.0% (clean), 76.0% (severity 1)")
    assert fig.suppressed == ("sex=(small group 1)",)
    assert "dashed lines are under-powered groups" in fig.caption
    svg = _svg(fig)
    assert "43.2" not in fig.alt and "43.2" not in svg  # the suppressed group's value is nowhere


def test_macro_renders_escaped_and_the_plugin_renders_in_every_edition():
    v = robustness_view(plugin())
    template = environment().from_string(
        '{% import "_robustness.html.j2" as rob %}{{ rob.robustness(v, for_pdf, 10) }}')
    for for_pdf in (False, True):
        html = template.render(v=v, for_pdf=for_pdf)
        assert "Worst cases" in html and "AUROC against severity" in html
        assert EVIL not in html and "&lt;script&gt;" in html
        assert "0.050 (0.030 to 0.080)" in html and "Not drawn, hidden because a count is below 10" in html
        assert "43.2" not in html
    result = make_result(plugins=(make_fairness(), plugin()))
    for edition in ("technical", "board"):
        page = render_html(result, edition=edition)
        assert EVIL not in page and "Robustness" in page
    assert EVIL not in render_markdown(result)


def test_empty_and_multi_label_results_do_not_break_the_view():
    empty = PluginResult(plugin="robustness", principle="Robustness", version="0", status=Status.SKIPPED,
                         summary="Not assessed: a predictions-only audit")
    v = robustness_view(empty)
    assert v.severity_figures == () and v.group_figure is None and v.worst == ()
    multi = PluginResult(
        plugin="robustness", principle="Robustness", version="0", status=Status.PASS, summary="",
        metrics=(Metric("threshold", 0.5, label="a"), Metric("threshold", 0.4, label="b"),
                 _auc(0.9, label="a"), _auc(0.8, 1, "contrast", label="a"),
                 Metric("auroc_drop", 0.1, ci=(0.05, 0.15), perturbation="contrast", severity=1, label="a"),
                 _auc(0.7, label="b"), _auc(0.69, 1, "contrast", label="b")),
        settings={"perturbations": [{"name": "contrast", "family": "generic", "words": "lower contrast"}],
                  "max_severity_gate": 3, "severities": [1]})
    mv = robustness_view(multi)
    assert mv.multi_label and [f.alt.split(":")[0] for f in mv.severity_figures] == [
        "AUROC against severity, generic image perturbations (a)",
        "AUROC against severity, generic image perturbations (b)"]
    assert [(w.label, w.perturbation) for w in mv.worst] == [("a", "lower contrast")]
