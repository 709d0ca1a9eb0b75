"""The disclosure audit and complementary suppression, on small tables built by hand.

A table is a list of atoms: ``(attributes, {label: (tp, fn, fp, tn)})``, with the same n for
every label of an atom. ``publish`` turns it into the metric records the fairness plugin
writes (counts, rates with their denominators, gaps with their references), every record
shown unless ``hide`` says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from audit.core.results import Metric
from audit.plugins.disaggregation import COUNT_CELLS, DENOMINATOR, DIRECTION, NUMERATOR
from audit.privacy import Count, feasible_ranges, secondary_suppression

RATES = ("prevalence", "sensitivity", "specificity", "fnr", "fpr", "ppv", "npv")


# -- factory ---------------------------------------------------------------------------------


def counts(cells) -> dict[str, int]:
    return {name: int(sum(cells[c] for c in idx)) for name, idx in COUNT_CELLS.items()}


def cells_of(table, group, label):
    """(tp, fn, fp, tn) of a group (None: overall) for a label."""
    total = np.zeros(4, int)
    for attrs, by_label in table:
        if all(attrs.get(c) == v for c, v in (group or {}).items()):
            total += np.array(by_label[label])
    return total


def groups_of(table, cols):
    seen = []
    for attrs, _ in table:
        g = {c: attrs[c] for c in cols}
        if g not in seen:
            seen.append(g)
    return seen


def rate(table, group, label, metric):
    c = counts(cells_of(table, group, label))
    den = c[DENOMINATOR[metric]]
    return c[NUMERATOR[metric]] / den if den else None


def publish(table, groupings, ids=("n",), labels=(None,), hide=lambda mid, group, label: False,
            gaps=(), overall=True):
    """Metric records of a table. ``gaps``: rates whose ``_gap`` and ``_gap_overall`` are written."""
    out = []
    units = ([None] if overall else []) + [g for cols in groupings for g in groups_of(table, cols)]
    for label in labels:
        for group in units:
            c = counts(cells_of(table, group, label))
            for mid in ids:
                h = hide(mid, group, label)
                if mid in ("n", "positives"):
                    out.append(Metric(mid, c[mid], n=c["n"], group=group, label=label, suppressed=h))
                elif mid in RATES:
                    out.append(Metric(mid, rate(table, group, label, mid), n=c["n"], group=group, label=label,
                                      denominator=c[DENOMINATOR[mid]], suppressed=h))
                elif mid == "min_detectable_gap":
                    out.append(Metric(mid, 0.3 if c["positives"] else None, n=c["n"], group=group, label=label,
                                      suppressed=h))
                elif mid == "auroc":
                    out.append(Metric(mid, 0.8, n=c["n"], group=group, label=label, suppressed=h))
        for cols in groupings:
            groups = groups_of(table, cols)
            for base in gaps:
                sign = -DIRECTION[base]
                values = {i: rate(table, g, label, base) for i, g in enumerate(groups)}
                defined = [i for i, v in values.items() if v is not None]
                best = groups[min(defined, key=lambda i: sign * values[i])] if defined else None
                whole = rate(table, None, label, base)
                for i, g in enumerate(groups):
                    v = values[i]
                    over = None if v is None or whole is None else sign * (v - whole)
                    out.append(Metric(f"{base}_gap_overall", over, n=counts(cells_of(table, g, label))["n"],
                                      group=g, label=label, reference="overall",
                                      suppressed=hide(f"{base}_gap_overall", g, label)))
                    to_best = None if v is None or best is None else max(0.0, sign * (v - values[groups.index(best)]))
                    out.append(Metric(f"{base}_gap", to_best, n=counts(cells_of(table, g, label))["n"], group=g,
                                      label=label, reference="best", reference_group=best,
                                      suppressed=hide(f"{base}_gap", g, label)))
    return out


def key(group):
    return None if group is None else tuple(sorted(group.items()))


def at(name, group=None, label=None):
    return Count(name, key(group), label)


def newly_hidden(before, after):
    return [(a.id, a.group, a.label) for b, a in zip(before, after, strict=True) if a.suppressed and not b.suppressed]


def assert_protected(metrics, protected):
    for t, (lo, hi) in feasible_ranges(metrics, protected).items():
        assert lo < hi, f"{t} recovered as {lo}"


def one_label(tp, fn, fp, tn):
    return {None: (tp, fn, fp, tn)}


CLINICS = [({"clinic": "A"}, one_label(100, 20, 41, 350)), ({"clinic": "B"}, one_label(90, 30, 42, 350)),
           ({"clinic": "C"}, one_label(10, 5, 5, 20)), ({"clinic": "D"}, one_label(2, 1, 1, 3))]


# -- the Count type ------------------------------------------------------------------------------


def test_count_normalises_group_and_checks_its_name():
    assert Count("n", {"b": "2", "a": "1"}, None).group == (("a", "1"), ("b", "2"))
    assert Count("n", (), None).group is None
    with pytest.raises(ValueError, match="unknown count"):
        Count("rows", None, None)


# -- subtraction from totals ---------------------------------------------------------------------


def test_subtraction_from_the_total_recovers_a_hidden_clinic_and_one_complement_stops_it():
    metrics = publish(CLINICS, [("clinic",)], hide=lambda mid, g, lab: g == {"clinic": "D"})
    assert [m.n for m in metrics if m.id == "n"] == [1070, 511, 512, 40, 7]
    target = at("n", {"clinic": "D"})
    assert feasible_ranges(metrics, [target])[target] == (7.0, 7.0)

    protected = secondary_suppression(metrics, [target])
    lo, hi = feasible_ranges(protected, [target])[target]
    assert lo < 7 < hi
    assert newly_hidden(metrics, protected) == [("n", {"clinic": "C"}, None)]  # the 40, not the 511


def test_subtraction_needs_every_other_group_shown():
    metrics = publish(CLINICS, [("clinic",)], hide=lambda mid, g, lab: g in ({"clinic": "D"}, {"clinic": "C"}))
    targets = [at("n", {"clinic": "D"}), at("n", {"clinic": "C"})]
    assert feasible_ranges(metrics, targets) == {targets[0]: (1.0, 46.0), targets[1]: (1.0, 46.0)}
    assert newly_hidden(metrics, secondary_suppression(metrics, targets)) == []


def test_nothing_published_is_unbounded():
    metrics = publish(CLINICS, [("clinic",)], hide=lambda mid, g, lab: True)
    lo, hi = feasible_ranges(metrics, [at("n", {"clinic": "D"})])[at("n", {"clinic": "D"})]
    assert lo == 1 and math.isinf(hi)  # a named group has a row


def test_inconsistent_metrics_are_an_error():
    metrics = publish(CLINICS, [("clinic",)]) + [Metric("n", 3, n=3, group={"clinic": "D"})]
    with pytest.raises(ValueError, match="inconsistent"):
        feasible_ranges(metrics, [at("n")])


# -- intersections ---------------------------------------------------------------------------------


SEX_CLINIC = [({"sex": s, "clinic": c}, one_label(*cells)) for s, c, cells in [
    ("F", "A", (50, 10, 20, 170)), ("M", "A", (50, 10, 21, 180)), ("F", "B", (45, 15, 21, 170)),
    ("M", "B", (45, 15, 21, 180)), ("F", "D", (1, 1, 1, 2)), ("M", "D", (1, 0, 0, 1))]]


def test_intersection_cells_give_a_hidden_margin_back():
    hide_d = lambda mid, g, lab: g == {"clinic": "D"}  # noqa: E731 - the margin only, cells shown
    metrics = publish(SEX_CLINIC, [("sex",), ("clinic",), ("sex", "clinic")], hide=hide_d)
    target = at("n", {"clinic": "D"})
    assert feasible_ranges(metrics, [target])[target] == (7.0, 7.0)  # 5 + 2

    protected = secondary_suppression(metrics, [target])
    assert_protected(protected, [target])
    hidden = {key(g) for _, g, _ in newly_hidden(metrics, protected)}
    assert hidden & {key({"sex": "F", "clinic": "D"}), key({"sex": "M", "clinic": "D"})}


def test_a_hidden_intersection_cell_is_its_margin_minus_its_neighbours():
    cell = {"sex": "M", "clinic": "D"}
    metrics = publish(SEX_CLINIC, [("sex",), ("clinic",), ("sex", "clinic")],
                      hide=lambda mid, g, lab: g == cell)
    target = at("n", cell)
    assert feasible_ranges(metrics, [target])[target] == (2.0, 2.0)
    protected = secondary_suppression(metrics, [target])
    assert_protected(protected, [target])
    # A 2x2 rectangle with its margins: more than one complement, none of the big margins.
    hidden = [g for _, g, _ in newly_hidden(metrics, protected)]
    assert {"sex": "M"} not in hidden and {"sex": "F"} not in hidden and None not in hidden


def test_an_unlisted_intersection_cell_is_known_to_be_empty():
    table = [({"sex": "F", "clinic": "A"}, one_label(5, 5, 5, 5)), ({"sex": "M", "clinic": "B"}, one_label(3, 3, 3, 3))]
    metrics = publish(table, [("sex",), ("clinic",), ("sex", "clinic")],
                      hide=lambda mid, g, lab: g is not None and len(g) == 2)
    # The margins alone give the cells back, because (F, B) and (M, A) are not listed.
    target = at("n", {"sex": "F", "clinic": "A"})
    assert feasible_ranges(metrics, [target])[target] == (20.0, 20.0)


# -- rates times denominators ----------------------------------------------------------------------


def test_sensitivity_and_positives_give_a_hidden_fn_back():
    ids = ("n", "positives", "sensitivity", "fnr")
    metrics = publish(CLINICS, [("clinic",)], ids=ids,
                      hide=lambda mid, g, lab: g == {"clinic": "D"} and mid == "fnr")
    target = at("fn", {"clinic": "D"})
    assert feasible_ranges(metrics, [target])[target] == (1.0, 1.0)

    protected = secondary_suppression(metrics, [target])
    assert_protected(protected, [target])
    # Hiding what leaks is enough: the clinic's size stays in view.
    assert not next(m for m in protected if m.id == "n" and m.group == {"clinic": "D"}).suppressed


def test_ppv_with_its_denominator_gives_tp_back():
    ids = ("n", "positives", "sensitivity", "fnr", "ppv")
    metrics = publish(CLINICS, [("clinic",)], ids=ids,
                      hide=lambda mid, g, lab: g == {"clinic": "D"} and mid in ("fnr", "sensitivity"))
    target = at("fn", {"clinic": "D"})
    # tp = ppv * pred_pos, fn = positives - tp.
    assert feasible_ranges(metrics, [target])[target] == (1.0, 1.0)
    protected = secondary_suppression(metrics, [target])
    assert_protected(protected, [target])
    hidden = newly_hidden(metrics, protected)
    assert ("n", {"clinic": "D"}, None) not in hidden
    assert {mid for mid, _, _ in hidden} & {"ppv", "positives"}


def test_prevalence_times_n_is_positives_for_the_overall_population():
    ids = ("n", "positives", "prevalence", "sensitivity")
    metrics = publish(CLINICS, [], ids=ids, hide=lambda mid, g, lab: mid == "positives")
    target = at("positives")
    assert feasible_ranges(metrics, [target])[target] == (258.0, 258.0)
    protected = secondary_suppression(metrics, [target])
    assert_protected(protected, [target])
    assert not protected[0].suppressed  # n is not what leaks
    assert {mid for mid, _, _ in newly_hidden(metrics, protected)} == {"prevalence", "sensitivity"}


def test_the_overall_population_is_not_a_complement():
    # Protecting a clinic's count never hides the overall population's numbers.
    metrics = publish(CLINICS, [("clinic",)], hide=lambda mid, g, lab: g == {"clinic": "D"})
    protected = secondary_suppression(metrics, [at("n", {"clinic": "D"})])
    assert_protected(protected, [at("n", {"clinic": "D"})])
    assert not any(m.suppressed for m in protected if m.group is None)


def test_an_undefined_rate_tells_that_its_denominator_is_zero():
    table = [({"clinic": "A"}, one_label(0, 0, 4, 30)), ({"clinic": "B"}, one_label(10, 5, 5, 20))]
    metrics = publish(table, [("clinic",)], ids=("n", "positives", "sensitivity"),
                      hide=lambda mid, g, lab: mid == "positives" and g == {"clinic": "A"})
    assert metrics[-4].value is None  # sensitivity of A
    assert feasible_ranges(metrics, [at("positives", {"clinic": "A"})])[at("positives", {"clinic": "A"})] == (0, 0)


# -- labels --------------------------------------------------------------------------------------


TWO_LABELS = [({"clinic": "A"}, {"a": (100, 20, 41, 350), "b": (50, 50, 11, 400)}),
              ({"clinic": "B"}, {"a": (90, 30, 42, 350), "b": (60, 60, 92, 300)}),
              ({"clinic": "C"}, {"a": (10, 5, 5, 20), "b": (3, 7, 10, 20)}),
              ({"clinic": "D"}, {"a": (2, 1, 1, 3), "b": (1, 1, 1, 4)})]


def test_two_labels_share_n():
    ids = ("n", "positives", "specificity", "auroc")
    metrics = publish(TWO_LABELS, [("clinic",)], ids=ids, labels=("a", "b"),
                      hide=lambda mid, g, lab: g == {"clinic": "D"} and lab == "a")
    target = at("n", {"clinic": "D"}, "a")
    # Label b shows D's n; positives + the specificity's denominator would give it back too.
    assert feasible_ranges(metrics, [target])[target] == (7.0, 7.0)

    protected = secondary_suppression(metrics, [target])
    assert all(m.suppressed for m in protected if m.group == {"clinic": "D"})  # every label, auroc too
    assert_protected(protected, [target, at("n", {"clinic": "D"}, "b")])


def test_n_shown_for_one_label_is_the_n_of_every_label():
    metrics = publish(TWO_LABELS, [("clinic",)], ids=("n", "positives"), labels=("a", "b"),
                      hide=lambda mid, g, lab: g == {"clinic": "D"} and (lab == "a" or mid == "positives"))
    # n is public through label b; a's positives then follow from its complement, nothing else.
    rng = feasible_ranges(metrics, [at("positives", {"clinic": "D"}, "a"), at("tp", {"clinic": "D"}, "a")])
    assert rng[at("positives", {"clinic": "D"}, "a")] == (3.0, 3.0)
    assert rng[at("tp", {"clinic": "D"}, "a")] == (0.0, 3.0)


# -- a grouping of one group ---------------------------------------------------------------------


def test_a_grouping_with_one_group_is_the_overall_population():
    table = [({"site": "A"}, one_label(3, 1, 2, 1))]
    metrics = publish(table, [("site",)], ids=("n", "positives"), hide=lambda mid, g, lab: g is not None)
    target = at("n", {"site": "A"})
    assert feasible_ranges(metrics, [target])[target] == (7.0, 7.0)
    # The whole population is that small too, so its own n is protected (as the plugin does),
    # which lets its records be hidden.
    protected = secondary_suppression(metrics, [target, at("n")])
    assert_protected(protected, [target])
    assert all(m.suppressed for m in protected)  # nothing about the only group can be shown


# -- gaps ----------------------------------------------------------------------------------------


def test_a_gap_to_overall_gives_the_group_rate_back_and_is_hidden_with_it():
    ids = ("n", "positives", "fnr")
    hide = lambda mid, g, lab: g == {"clinic": "D"} and mid == "fnr"  # noqa: E731
    metrics = publish(CLINICS, [("clinic",)], ids=ids, gaps=("fnr",), hide=hide)
    target = at("fn", {"clinic": "D"})
    # fnr_D = fnr_overall + gap_overall; fn = fnr_D * positives.
    assert feasible_ranges(metrics, [target])[target] == (1.0, 1.0)
    protected = secondary_suppression(metrics, [target])
    gaps = [m for m in protected if m.group == {"clinic": "D"} and m.id.startswith("fnr_gap")]
    assert len(gaps) == 2 and all(m.suppressed for m in gaps)
    assert_protected(protected, [target])


def test_a_gap_gives_the_reference_rate_back():
    ids = ("n", "positives", "fnr")
    a = {"clinic": "A"}  # the best: fnr 20/120
    hide = lambda mid, g, lab: (g == a and mid == "fnr") or (g is None and mid == "fnr")  # noqa: E731
    metrics = [m for m in publish(CLINICS, [("clinic",)], ids=ids, gaps=("fnr",), hide=hide)
               if m.id != "fnr_gap_overall"]
    assert {key(m.reference_group) for m in metrics if m.id == "fnr_gap"} == {key(a)}
    # fnr_A = fnr_B - gap_B (B's rate and gap are shown), fn_A = fnr_A * positives_A.
    target = at("fn", a)
    assert feasible_ranges(metrics, [target])[target] == (20.0, 20.0)
    protected = secondary_suppression(metrics, [target])
    assert all(m.suppressed for m in protected if m.id == "fnr_gap")  # every gap to a hidden best
    assert_protected(protected, [target])


def test_a_zero_gap_to_the_best_is_only_an_inequality():
    table = [({"clinic": "A"}, one_label(10, 10, 5, 5)), ({"clinic": "B"}, one_label(12, 8, 5, 5))]
    metrics = publish(table, [("clinic",)], ids=("n", "positives", "fnr"), gaps=("fnr",),
                      hide=lambda mid, g, lab: mid == "fnr" and g == {"clinic": "B"})
    metrics = [m for m in metrics if m.id != "fnr_gap_overall" and not (m.id == "fnr" and m.group is None)]
    # B is the best (fnr 0.4): its gap is 0 against itself, A's is 0.1 against B.
    target = at("fn", {"clinic": "B"})
    assert feasible_ranges(metrics, [target])[target] == (8.0, 8.0)


# -- min_detectable_gap --------------------------------------------------------------------------


def test_min_detectable_gap_is_hidden_with_positives():
    ids = ("n", "positives", "min_detectable_gap")
    metrics = publish(CLINICS, [("clinic",)], ids=ids,
                      hide=lambda mid, g, lab: g == {"clinic": "D"} and mid == "positives")
    target = at("positives", {"clinic": "D"})
    assert feasible_ranges(metrics, [target])[target] == (3.0, 3.0)
    protected = secondary_suppression(metrics, [target])
    assert next(m for m in protected if m.id == "min_detectable_gap" and m.group == {"clinic": "D"}).suppressed
    assert_protected(protected, [target])


# -- property: whatever the table, nothing protected survives -------------------------------------


def fairness_like(table, groupings, labels, min_cell):
    """Records with the fairness plugin's primary suppression, and the counts it protects."""
    protected = []

    def hide(mid, group, label):
        c = counts(cells_of(table, group, label))
        small = c["n"] < min_cell
        if mid in ("n", "auroc"):
            return small
        if mid in ("positives", "min_detectable_gap"):
            return small or min(c["positives"], c["negatives"]) < min_cell
        if mid in RATES:
            return small or c[DENOMINATOR[mid]] < min_cell or c[NUMERATOR[mid]] < min_cell
        return small

    ids = ("n", "positives", *RATES, "min_detectable_gap", "auroc")
    metrics = publish(table, groupings, ids=ids, labels=labels, hide=hide, gaps=("fnr", "fpr"))
    for m in metrics:
        if not m.suppressed or m.id.endswith("_gap") or m.id.endswith("_gap_overall") or m.id == "auroc":
            continue
        c = counts(cells_of(table, m.group, m.label))
        where = key(m.group)
        if m.id == "n":
            protected += [Count("n", where, m.label), Count("positives", where, m.label)]
        elif m.id == "positives":
            protected.append(Count("positives", where, m.label))
        elif m.id in RATES:
            for count in (DENOMINATOR[m.id], NUMERATOR[m.id]):
                if c[count] < min_cell:
                    protected.append(Count(count, where, m.label))
    return metrics, list(dict.fromkeys(protected))


def random_table(rng):
    labels = ("a", "b") if rng.random() < 0.4 else (None,)
    sites = [f"s{i}" for i in range(rng.integers(2, 4))]
    table = []
    for sex in ("F", "M"):
        for site in sites:
            n = int(rng.integers(1, 40))
            cells = {lab: tuple(int(x) for x in rng.multinomial(n, rng.dirichlet(np.ones(4)))) for lab in labels}
            table.append(({"sex": sex, "site": site}, cells))
    groupings = [("sex",), ("site",)] + ([("sex", "site")] if rng.random() < 0.7 else [])
    return table, groupings, labels


@pytest.mark.parametrize("seed", range(30))
def test_every_protected_count_has_two_feasible_values_after_protection(seed):
    rng = np.random.default_rng(seed)
    table, groupings, labels = random_table(rng)
    metrics, protected = fairness_like(table, groupings, labels, min_cell=5)
    protected_metrics = secondary_suppression(metrics, protected)
    assert_protected(protected_metrics, protected)
    # Suppression only ever grows, and the true table stays one the reader must consider.
    pairs = zip(metrics, protected_metrics, strict=True)
    assert all(after.suppressed or not before.suppressed for before, after in pairs)
    for t, (lo, hi) in feasible_ranges(protected_metrics, protected).items():
        true = counts(cells_of(table, dict(t.group or ()), t.label if t.label in labels else labels[0]))[t.name]
        assert lo <= true <= hi


# -- rows are the same for every label: linking components ----------------------------------------


LINKED = [({"site": "s1", "sex": "F"}, {"a": (1, 0, 0, 0), "b": (1, 0, 0, 0)}),
          ({"site": "s2", "sex": "M"}, {"a": (0, 0, 0, 1), "b": (0, 0, 0, 1)})]


def test_the_joint_reader_links_sites_and_sexes_through_the_labels():
    # Label b shows s1's one positive; the one b-positive row is the woman; she is a-positive.
    def hide(mid, group, label):
        return label == "a" and group is not None and "site" in group and mid == "positives"

    metrics = publish(LINKED, [("site",), ("sex",)], ids=("n", "positives"), labels=("a", "b"), hide=hide)
    target = at("positives", {"site": "s1"}, "a")
    assert feasible_ranges(metrics, [target], joint=True)[target] == (1.0, 1.0)
    assert feasible_ranges(metrics, [target], joint=False)[target] == (0.0, 1.0)  # the relaxation misses it
    assert feasible_ranges(metrics, [target])[target] == (1.0, 1.0)  # a table this small: joint by default

    protected = secondary_suppression(metrics, [target])
    assert_protected(protected, [target])
    lo, hi = feasible_ranges(protected, [target], joint=True)[target]
    assert lo < hi


@pytest.mark.slow
def test_fifty_clinics_two_labels_are_protected():
    rng = np.random.default_rng(1)
    sizes = np.maximum(1, rng.lognormal(4.5, 1.2, 50).astype(int))
    sizes[:3] = [3, 6, 8]
    table = []
    for k, size in enumerate(sizes):
        for sex in ("F", "M"):
            n = int(rng.binomial(size, 0.5)) or 1
            cells = {lab: tuple(int(x) for x in rng.multinomial(n, rng.dirichlet([2, 1, 1, 6]))) for lab in "ab"}
            table.append(({"clinic": f"c{k:02d}", "sex": sex}, cells))
    metrics, protected = fairness_like(table, [("sex",), ("clinic",)], ("a", "b"), min_cell=10)
    protected_metrics = secondary_suppression(metrics, protected)
    assert_protected(protected_metrics, protected)


# -- several plugins: what one published, the next one cannot give back ---------------------------


def test_a_later_plugin_hides_what_an_earlier_one_chose_as_its_complement():
    # Clinic D (7 patients) is primary-suppressed by both plugins. The first plugin hid clinic C's
    # n as D's complement; a second plugin publishing clinic counts on its own would hide its
    # complement wherever its own search lands. With the first plugin's records published, C's
    # n in the second plugin must be hidden too: C shown there and D = total - A - B - C.
    first = publish(CLINICS, [("clinic",)], ids=("n",),
                    hide=lambda mid, g, lab: g is not None and g["clinic"] in ("C", "D"))
    second = publish(CLINICS, [("clinic",)], ids=("n",), hide=lambda mid, g, lab: g == {"clinic": "D"})
    protected = [at("n", {"clinic": "D"})]
    alone = secondary_suppression(second, protected)
    together = secondary_suppression(second, protected, published=first)
    assert ("n", {"clinic": "C"}, None) in newly_hidden(second, together)
    assert_protected(first + together, protected)
    # What the first plugin published is not touched (only the second plugin's records return).
    assert len(together) == len(second)
    # Alone the second plugin may choose another complement; together with the first that leaks.
    if ("n", {"clinic": "C"}, None) not in newly_hidden(second, alone):
        with pytest.raises(AssertionError, match="recovered"):
            assert_protected(first + alone, protected)


def test_the_reference_data_pseudo_site_is_another_population():
    # Sites A and B of the audited data, and the reference data as the development "site":
    # its rows are not rows of the audited data, so the audited total is A + B alone (a
    # reader who took the pseudo-site as a third site would find no table at all).
    table = CLINICS[:2]
    records = publish(table, [("clinic",)], ids=("n", "positives", "fnr"))
    ref = {"clinic": "(reference data)"}
    records += [Metric("n", 500, n=500, group=ref, flags=("reference_data",)),
                Metric("positives", 100, n=500, group=ref, flags=("reference_data",)),
                Metric("fnr", 0.10, n=500, group=ref, denominator=100, flags=("reference_data",))]
    fnr_b = rate(table, {"clinic": "B"}, None, "fnr")
    # B's FNR is hidden, but its gap to the development pseudo-site is shown: the pseudo-site's
    # FNR is public, so the gap gives B's FNR (and, with B's positives, B's missed cases) back.
    records = [replace(m, suppressed=True) if m.id == "fnr" and m.group == {"clinic": "B"} else m for m in records]
    records.append(Metric("fnr_gap", fnr_b - 0.10, n=420, group={"clinic": "B"}, reference="development",
                          reference_group=ref))
    missed = at("fn", {"clinic": "B"})
    assert feasible_ranges(records, [missed])[missed] == (30, 30)
    out = secondary_suppression(records, [missed])
    assert ("fnr_gap", {"clinic": "B"}, None) in newly_hidden(records, out)
    assert_protected(out, [missed])


# -- outcomes that tell fewer groups apart (the robustness plugin's perturbed tables) ----------


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("joint", [False, True])
def test_merging_the_atoms_an_outcome_cannot_tell_apart_changes_no_range(seed, joint, monkeypatch):
    # Label a is published by sex, site and their cells; label b (a perturbed table of the
    # same rows) only by sex. b's cells over the sites of one sex are then one block: the
    # reader's ranges must be exactly those of the programme with every atom's cells.
    import audit.privacy as privacy

    rng = np.random.default_rng(100 + seed)
    sites = [f"s{i}" for i in range(rng.integers(2, 5))]
    table = []
    for sex in ("F", "M"):
        for site in sites:
            n = int(rng.integers(1, 30))
            table.append(({"sex": sex, "site": site},
                          {lab: tuple(int(x) for x in rng.multinomial(n, rng.dirichlet(np.ones(4))))
                           for lab in ("a", "b")}))
    a, _ = fairness_like(table, [("sex",), ("site",), ("sex", "site")], ("a",), min_cell=5)
    b, _ = fairness_like(table, [("sex",)], ("b",), min_cell=5)
    metrics = a + b
    targets = [Count(name, key(g), lab) for lab, cols in (("a", ("sex", "site")), ("b", ("sex",)))
               for g in groups_of(table, cols) for name in ("n", "positives", "tp", "fp")]
    targets += [Count("positives", None, "b")]
    merged = feasible_ranges(metrics, targets, joint=joint)
    monkeypatch.setattr(privacy, "_MERGE_BLOCKS", False)
    full = feasible_ranges(metrics, targets, joint=joint)
    assert merged == full
    # and the merged programme is smaller
    monkeypatch.setattr(privacy, "_MERGE_BLOCKS", True)
    small = privacy._Audit(metrics, targets, joint=joint)
    monkeypatch.setattr(privacy, "_MERGE_BLOCKS", False)
    big = privacy._Audit(metrics, targets, joint=joint)
    assert small.matrix.nnz < big.matrix.nnz


@pytest.mark.parametrize("joint", [False, True])
def test_a_perturbed_table_shares_the_clean_tables_positives(joint):
    # The robustness plugin's perturbed tables classify the same rows with the same labels: a
    # woman's hidden count of positives is the denominator of her perturbed sensitivity. The
    # reader knows it (a perturbed table is not another label with positives of its own).
    table = [({"sex": "F"}, {None: (5, 2, 30, 40), "|noise@1": (3, 4, 33, 37)}),
             ({"sex": "M"}, {None: (20, 6, 25, 50), "|noise@1": (18, 8, 24, 51)})]
    clean = publish(table, [("sex",)], ids=("n", "positives"),
                    hide=lambda mid, group, label: mid == "positives" and group is not None)
    perturbed = [Metric("sensitivity", 3 / 7, n=77, group={"sex": "F"}, denominator=7, perturbation="noise",
                        severity=1)]
    target = Count("positives", (("sex", "F"),), None)
    assert feasible_ranges(clean, [target], joint=joint)[target] != (7, 7)  # hidden on its own
    assert feasible_ranges(clean + perturbed, [target], joint=joint)[target] == (7, 7)
