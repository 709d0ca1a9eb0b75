"""What a reader can solve for from the published numbers, and the suppression that stops it.

Primary suppression hides small cells (``Metric.suppressed``). The numbers left in view still
constrain them: a clinic's size is the total minus the other clinics, a cell of an
intersection is its margin minus its neighbours, a rate times its published denominator is
its numerator. This module models a reader who knows every published number exactly and
solves the integer programme those numbers define (:func:`feasible_ranges`), and hides
further, complementary, numbers until no protected count has a unique feasible value
(:func:`secondary_suppression`).

The reader's model
------------------
The attributes are the columns of every group named in the metrics (suppressed ones
included: a hidden group still shows its name, so the reader knows it has at least one row);
an *atom* is one combination of values of all attributes. Each atom holds a non-negative
integer number of rows, split for each outcome (label) into tp, fn, fp, tn; the rows, hence
the atom's n, are the same for every outcome. A grouping of several attributes lists every
cell that exists, so the atoms outside its cells are empty. The published numbers are linear
(in)equalities on the atoms, written on one aggregate variable per (group, outcome, cell):

- counts (``n``, ``positives``; ``min_detectable_gap``, which gives positives back) exactly;
- the ``n`` and ``denominator`` fields of the records, as :func:`audit.core.results.public_record`
  leaves them: ``denominator`` on shown records, ``n`` on shown records of groups whose ``n``
  is shown for every label;
- a rate with its denominator pins its numerator exactly (``N = round(r D)``); a rate known
  otherwise (below) as ``|N - r D| <= 1e-7 D + 1e-9`` with D >= 1; an undefined rate: D = 0;
- a gap links the rates of its group and its reference: a rate known on one side is known on
  the other (for a gap of 0 to the best group, only an inequality).

Joint and marginal models
-------------------------
The *joint* model above has one atom per combination of every attribute: exact, and large
(sites x age bands x sexes x labels x 4 cells), and with several labels its relaxation has
fractional vertices, so that it needs branch and bound. The *marginal* model takes the
attributes that some grouping crosses (an intersection) as one component, with atoms of its
own, and lets the components share only their totals. With one label, or one component, the
two are the same (a table with given margins always exists: transportation). With several
labels and components the marginal model is a relaxation: it misses a reader who links
components through the rows' being the same for every label ("the one row positive for label
b in site s is the woman, who is positive for label a"), an attack on cells of one or two rows.
Both functions take ``joint``; by default (None) the joint model is used when it has at most
``_JOINT_MAX_VARS`` atom variables (where such tiny cells are plausible and the model cheap),
the marginal one otherwise, and always the same for the same metrics, so that
:func:`secondary_suppression` protects against the reader :func:`feasible_ranges` audits.
Where the joint model is used, the marginal one still does the cheap work: proving a count
unique (a relaxation that pins it pins it) and guiding the search.

AUROC, Brier, patients and threshold values are not linear in counts and are ignored, as are
intervals and p-values: inverting an exact interval for its sample size is outside this model,
which is why a suppressed record loses its interval as well as its value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse.csgraph import connected_components

from audit.core.results import ACROSS_SITES, NOT_RUN, REFERENCE_DATA, Metric
from audit.plugins.disaggregation import COUNT_CELLS, DENOMINATOR, DIRECTION, NUMERATOR

__all__ = ["Count", "feasible_ranges", "secondary_suppression"]

# The published tolerance of a rate: results.json keeps full-precision floats, so a rate pins
# its numerator to within float error of r * D; 1e-7 relative is far above that error and far
# below the 1/D spacing between the rates of distinct integer counts.
_REL_TOL = 1e-7
_ABS_TOL = 1e-9
# Multi-label mode publishes FNR and FPR of the derived outcome under these names.
_RATE_ALIASES = {"underdiagnosis_rate": "fnr", "overdiagnosis_rate": "fpr"}
# The reader's programme grows with the product of the attributes' values; past this the
# atoms no longer fit a solve of a few seconds, and the caller must audit groupings apart.
_MAX_ATOMS = 200_000
# Tables kept as witnesses of non-uniqueness (see _Audit._pool_values).
_POOL_SIZE = 256
# Seconds one joint-model MILP may search for a witness before the count counts as unique.
_TIME_LIMIT = 2.0
# Largest joint programme (atom cells over all labels) audited by default; beyond it the
# marginal model is the reader (see the module docstring).
_JOINT_MAX_VARS = 1000
# One set of cells per block of atoms an outcome cannot tell apart (see _Audit._blocks); the
# tests switch it off to check that merging changes no feasible range.
_MERGE_BLOCKS = True

# Kinds of rows of the programme, by what decides whether the reader has them.
_STRUCTURE, _RECORD, _N_FIELD, _RATE, _ZERO_GAP = range(5)

_GroupKey = tuple[tuple[str, str], ...] | None


@dataclass(frozen=True)
class Count:
    """A count that must not be published, nor be derivable from what is.

    Parameters
    ----------
    name : str
        One of ``n``, ``positives``, ``negatives``, ``pred_pos``, ``pred_neg``, ``tp``, ``fn``,
        ``fp``, ``tn``.
    group : tuple of (column, value) pairs or None
        The group, as sorted pairs (a dict is accepted and sorted); None for overall.
    label : str or None
        The outcome the cells are counted for; ``n`` is the same for every label.
    """

    name: str
    group: tuple[tuple[str, str], ...] | None
    label: str | None

    def __post_init__(self) -> None:
        if self.name not in COUNT_CELLS:
            raise ValueError(f"unknown count {self.name!r}; expected one of {sorted(COUNT_CELLS)}")
        group = self.group
        if isinstance(group, dict):
            group = group.items()
        object.__setattr__(self, "group", _group_key(dict(group)) if group else None)


def feasible_ranges(metrics: Sequence[Metric], targets: Iterable[Count], *,
                    joint: bool | None = None) -> dict[Count, tuple[float, float]]:
    """What a reader can solve for from the unsuppressed metrics.

    Parameters
    ----------
    metrics : sequence of Metric
        Every record of the audit, suppressed ones included: their names are public, and
        their ``suppressed`` flags say what the reader does not see.
    targets : iterable of Count
        The counts to bound.
    joint : bool or None
        Solve the joint model (atoms of every attribute at once; exact, and slow for several
        labels and crossed groupings) or the marginal one (see the module docstring); None
        (default): the joint model when it has at most ``_JOINT_MAX_VARS`` variables.

    Returns
    -------
    dict
        For each target, ``(lo, hi)``: the least and the greatest value of the count over all
        non-negative integer tables consistent with the published numbers (``hi`` may be
        ``inf``). The reader recovers a count when ``lo == hi``.

    Raises
    ------
    ValueError
        If the published numbers contradict each other (no table fits them).
    """
    targets = list(dict.fromkeys(targets))
    metrics = [_as_table(m) for m in metrics]
    outside = {_group_key(m.group) for m in metrics if REFERENCE_DATA in m.flags}
    model = [m for m in metrics if not _outside_model(m)]
    reader = _Reader(model, [t for t in targets if t.group not in outside], joint, outside=outside, rates=metrics)
    hidden = reader.flags()
    return {t: (0.0, math.inf) if t.group in outside else reader.range(t, hidden) for t in targets}


def secondary_suppression(metrics: Sequence[Metric], protected: Iterable[Count], *,
                          joint: bool | None = None, published: Sequence[Metric] = ()) -> list[Metric]:
    """Return the metrics (same order) with complementary suppression added.

    Closure first (see :meth:`_Audit.close`). Then, for each protected count the reader still
    recovers (smallest group first), the greedy step hides the cheapest *unit* that breaks the
    reader's current proof: a proof is the LP dual of "the count cannot move", a unit every
    shown record giving one number of it, ranked by the group it hides (the count's own, then
    its grouping's other groups, subtraction from totals, then overlapping margins and
    intersection cells, then the rest), the group's size and how much the unit's closure hides
    (see :meth:`_Audit.proof_units`). When the LP shows no proof a fixed order of candidates
    takes over (:meth:`_Audit.units`), which ends, at worst, with everything hidden. Steps stop
    as soon as the count has two feasible values; a deletion filter then gives back the units
    the last one made unnecessary, so that one unit is hidden where one is enough. Closure
    again at the end. The overall population is never a complement unless one of its own
    counts is protected. Hiding only removes rows from the reader's programme, so a count once
    protected stays protected.

    Parameters
    ----------
    metrics : sequence of Metric
        Every record of the audit, with primary suppression already marked.
    protected : iterable of Count
        The counts primary suppression hides.
    joint : bool or None
        The reader's model, as in :func:`feasible_ranges` (the same default, so that the two
        agree).
    published : sequence of Metric
        Records already published (by the plugins that ran before): the reader has them,
        and they are never hidden here, so that the complements are chosen among ``metrics``.
        Pass the counts they protect in ``protected`` too: the new records must not give
        those back either.

    Returns
    -------
    list of Metric
        The same records, those newly hidden replaced with ``suppressed=True``. After it,
        :func:`feasible_ranges` (of ``published`` and the result together) gives ``lo < hi``
        for every protected count, unless the structure alone (the groups that exist) or the
        published records alone pin it, which no suppression of ``metrics`` can change.
    """
    metrics = list(metrics)
    published = [_as_table(m) for m in published]
    protected = list(dict.fromkeys(protected))
    everything = published + metrics
    # Records of another population (the reference data) are not rows of the audited data.
    inside = [i for i, m in enumerate(everything) if not _outside_model(m)]
    model = [everything[i] for i in inside]
    outside = {_group_key(m.group) for m in everything if REFERENCE_DATA in m.flags}
    protected = [t for t in protected if t.group not in outside]
    reader = _Reader(model, protected, joint, outside=outside, rates=everything)
    # The overall population's numbers are not hidden as a complement (its n and positives are
    # public in data_summary anyway, and its rates are the report's reference), unless one of
    # its own counts is protected.
    reader.marginal.overall_fixed = not any(t.group is None for t in protected)
    first = sum(1 for i in inside if i < len(published))
    reader.marginal.fixed[:first] = True
    hidden = reader.close(reader.flags())
    reader.witnesses(protected, hidden)
    for target in sorted(protected, key=reader.marginal.group_size):
        hidden = _protect(reader, target, hidden)
    hidden = reader.close(hidden)
    newly = {inside[k] for k in np.flatnonzero(hidden)} - set(range(len(published)))
    return [replace(m, suppressed=True) if len(published) + i in newly and not m.suppressed else m
            for i, m in enumerate(metrics)]


def _protect(reader: _Reader, target: Count, hidden: np.ndarray) -> np.ndarray:
    """Hide units until ``target`` has two feasible values; return the new suppression.

    Each step hides the cheapest unit that breaks the reader's current proof (see
    :meth:`_Audit.proof_units`), or, when the LP shows none, the next unit of the fixed order
    (:meth:`_Audit.units`). Then a deletion filter gives back the units the later ones made
    unnecessary.
    """
    audit = reader.marginal
    value = reader.recovered(target, hidden)
    if value is None:
        return hidden
    taken: list[np.ndarray] = []
    state = hidden
    fallback = iter(audit.units(target, hidden))
    while True:
        step = next(iter(audit.proof_units(target, value, state)), None)
        while step is None or (audit.close(state | step) == state).all():
            step = next(fallback, None)
            if step is None:  # everything that could be hidden is: only structure pins it
                return state
        taken.append(step)
        state = audit.close(state | step)
        if not reader.unique(target, value, state):
            break
    # The last unit is needed (the state before it failed); the others may have been made
    # redundant by it. Try to give back the most expensive (latest) first.
    for k in range(len(taken) - 2, -1, -1):
        trial = taken[:k] + taken[k + 1:]
        if not reader.unique(target, value, audit.close(hidden | np.logical_or.reduce(trial))):
            taken = trial
    return audit.close(hidden | np.logical_or.reduce(taken))


def _as_table(m: Metric) -> Metric:
    """A record of a perturbed input (robustness plugin: ``perturbation``, ``severity``) is a
    count of another confusion table of the same rows: the reader models it as another label,
    ``"<label>|<perturbation>@<severity>"``, which shares the rows' n but not their outcomes."""
    if getattr(m, "perturbation", None) is None:
        return m
    return replace(m, label=f"{m.label or ''}|{m.perturbation}@{m.severity}")


def _clean_of(label: str | None) -> tuple[bool, str | None]:
    """Whether ``label`` names a perturbed table (``"<label>|<perturbation>@<severity>"``, see
    :func:`_as_table`), and the label of its clean table (None in a single-label audit)."""
    if isinstance(label, str) and "|" in label:
        base, _, table = label.rpartition("|")
        if "@" in table:
            return True, base or None
    return False, None


def _outside_model(m: Metric) -> bool:
    """Records that are not counts of the audited rows: another population's (the reference
    data's), summaries across sites (whose n counts sites), and records of a computation that
    did not run (which say nothing of any count, unlike an undefined rate)."""
    return REFERENCE_DATA in m.flags or ACROSS_SITES in m.flags or NOT_RUN in m.flags


def _group_key(group: dict[str, str] | None) -> _GroupKey:
    """The hashable, order-free form of a group; the overall group (None or {}) is None."""
    if not group:
        return None
    return tuple(sorted((str(k), str(v)) for k, v in group.items()))


def _gap_parts(metric_id: str) -> tuple[str, str] | None:
    """``(base id, reference)`` of a gap id, None for anything else."""
    if metric_id == "min_detectable_gap":  # a power figure, not a difference of rates
        return None
    if metric_id.endswith("_gap_overall"):
        return metric_id[: -len("_gap_overall")], "overall"
    if metric_id.endswith("_gap"):
        return metric_id[: -len("_gap")], "best"
    return None


def _rate(metric_id: str) -> str | None:
    """The rate a metric id publishes (``fnr`` for ``underdiagnosis_rate``), None if not a rate."""
    rate = _RATE_ALIASES.get(metric_id, metric_id)
    return rate if rate in NUMERATOR else None


def _cells(count: str) -> np.ndarray:
    """Indicator over (tp, fn, fp, tn) of the cells a count adds up."""
    out = np.zeros(4)
    out[list(COUNT_CELLS[count])] = 1.0
    return out


class _Audit:
    """The reader's integer programme for one list of metrics, built once.

    Every row the reader could ever have is built up front with what decides whether they
    have it (a record being shown, a rate being known through a chain of gaps); a
    suppression state then selects rows, so trying a suppression costs no rebuilding.
    """

    def __init__(self, metrics: Sequence[Metric], targets: Sequence[Count], joint: bool = False, *,
                 outside: frozenset | set = frozenset(), rates: Sequence[Metric] = ()) -> None:
        self.metrics = list(metrics)
        self.joint = joint
        # The overall population may not be hidden as a complement (set by the caller).
        self.overall_fixed = False
        # Records already published by earlier plugins: the reader has them, none is hidden.
        self.fixed = np.zeros(len(self.metrics), bool)
        # Groups of another population (the reference data), whose rates are public constants:
        # a gap to one of them gives the group's own rate (see _rate_rows).
        self.outside = set(outside)
        self.outside_rates = {(_group_key(m.group), m.label, _rate(m.id)): m.value for m in rates
                              if _group_key(m.group) in self.outside and _rate(m.id) and m.value is not None
                              and not m.suppressed}
        self._pool: list[tuple[np.ndarray, np.ndarray]] = []
        self._targets = list(targets)
        self._index(targets)
        self._build_atoms()
        self._build_rows()
        self._build_closure()

    # -- structure -------------------------------------------------------------------------

    def _index(self, targets: Sequence[Count]) -> None:
        """Number groups, outcomes and records."""
        self.group_ids: dict[_GroupKey, int] = {None: 0}
        self.outcome_ids: dict[str | None, int] = {}
        keys = [_group_key(m.group) for m in self.metrics]
        refs = [k for k in (_group_key(m.reference_group) for m in self.metrics) if k not in self.outside]
        for key in [*keys, *refs, *(t.group for t in targets)]:
            self.group_ids.setdefault(key, len(self.group_ids))
        for label in [*(m.label for m in self.metrics), *(t.label for t in targets)]:
            self.outcome_ids.setdefault(label, len(self.outcome_ids))
        if not self.outcome_ids:
            self.outcome_ids[None] = 0
        self.groups = list(self.group_ids)
        self.ids = np.array([m.id for m in self.metrics], dtype=object)
        self.rec_group = np.array([self.group_ids[k] for k in keys], dtype=np.int64)
        self.rec_outcome = np.array([self.outcome_ids[m.label] for m in self.metrics], dtype=np.int64)
        self.is_n = self.ids == "n"
        self.is_threshold = self.ids == "threshold"
        # The rows of each group, as n records or n fields show them (the same for every label).
        self.sizes = np.full(len(self.groups), math.inf)
        for m, g in zip(self.metrics, self.rec_group, strict=True):
            size = m.value if m.id == "n" and m.value is not None else m.n
            if size is not None and math.isinf(self.sizes[g]):
                self.sizes[g] = float(size)

    def _build_atoms(self) -> None:
        """Atoms of each component of attributes, empty outside the listed cells.

        Attributes that some grouping crosses (an intersection) form one component, whose
        atoms are their value combinations; the components' atoms then only share totals (see
        the module docstring).
        """
        attrs = sorted({c for key in self.groups if key for c, _ in key})
        parent = {a: a for a in attrs}

        def root(a: str) -> str:
            while parent[a] != a:
                a = parent[a]
            return a

        for key in self.groups:
            for c, _ in (key or ())[1:]:
                parent[root(c)] = root(key[0][0])
        if self.joint:
            for a in attrs:
                parent[root(a)] = root(attrs[0])
        components = sorted({tuple(a for a in attrs if root(a) == root(b)) for b in attrs}) or [()]
        self.member = [np.zeros(0, np.int64) for _ in self.groups]
        self.component_atoms = []
        offset = 0
        for comp in components:
            mine = [g for g, key in enumerate(self.groups) if key and {c for c, _ in key} <= set(comp)]
            signatures = self._component_atoms(comp, [self.groups[g] for g in mine])
            for g, column in zip(mine, signatures.T, strict=True):
                self.member[g] = offset + np.flatnonzero(column)
            self.component_atoms.append(offset + np.arange(len(signatures)))
            offset += len(signatures)
        self.member[0] = self.component_atoms[0]  # overall: all atoms of any one component
        self.n_atoms = offset
        self.atom_component = np.zeros(offset, np.int64)
        for c, atoms in enumerate(self.component_atoms):
            self.atom_component[atoms] = c
        self._blocks()
        # Atom cells, then one aggregate per (group, outcome, cell): published numbers are short
        # rows on aggregates, and each aggregate is defined once from its atoms.
        self.n_atom_vars = len(self.outcome_ids) * self.n_atoms * 4
        self.n_vars = self.n_atom_vars + len(self.groups) * len(self.outcome_ids) * 4

    def _blocks(self) -> None:
        """Per outcome, the atoms merged where none of its numbers tells them apart.

        An outcome's cells only have to add up, atom by atom, to the atom's size (the rows
        are the same for every outcome) and, group by group, to its published numbers. Atoms
        that lie in the same of the outcome's groups (the robustness plugin's perturbed tables
        have no site groups, so every site of one sex and age band) form a block: whatever the
        block's cells, nonnegative integers for its atoms that add up to both always exist (a
        transportation table with equal row and column sums), so one set of cells per block is
        exact, and an audit with many outcomes and many sites no longer grows as their
        product. ``self.kept[o, a]``: atom ``a`` carries outcome ``o``'s cells for its block;
        ``self.rep[o, a]``: the atom that does. The first outcome keeps every atom (it
        carries the sizes).
        """
        n_out = len(self.outcome_ids)
        mine = [set() for _ in range(n_out)]
        refs = [self.group_ids.get(_group_key(m.reference_group)) for m in self.metrics]
        for g, o, r in zip(self.rec_group, self.rec_outcome, refs, strict=True):
            mine[o].add(int(g))
            if r is not None:
                mine[o].add(int(r))
        for t in self._targets:
            mine[self.outcome_ids[t.label]].add(self.group_ids[t.group])
        # A perturbed table and its clean one share each atom's positives (the labels are the
        # same rows' labels): they are merged alike, so that the sharing is one row per block.
        self.base: dict[int, int] = {}
        for label, o in self.outcome_ids.items():
            perturbed, clean = _clean_of(label)
            if perturbed and clean in self.outcome_ids:  # absent: a sample's own clean table
                self.base[o] = self.outcome_ids[clean]
        for b in set(self.base.values()) - {0}:  # the first outcome keeps every atom anyway
            family = [b, *(o for o, bb in self.base.items() if bb == b)]
            union = set().union(*(mine[o] for o in family))
            for o in family:
                mine[o] = set(union)
        self.rep = np.tile(np.arange(self.n_atoms), (n_out, 1))
        self.kept = np.ones((n_out, self.n_atoms), bool)
        for o in range(1, n_out if _MERGE_BLOCKS else 1):
            groups = sorted(mine[o] - {0})
            signature = np.zeros((self.n_atoms, len(groups) + 1), np.int64)
            signature[:, 0] = self.atom_component
            for j, g in enumerate(groups):
                signature[self.member[g], j + 1] = 1
            _, first, inverse = np.unique(signature, axis=0, return_index=True, return_inverse=True)
            self.rep[o] = first[inverse.ravel()]
            self.kept[o] = False
            self.kept[o, first] = True

    @staticmethod
    def _component_atoms(attrs: tuple[str, ...], keys: list) -> np.ndarray:
        """Membership (atoms x groups) of one component's atoms, atoms in the same groups merged."""
        if not keys:  # no attribute at all: the overall population is the one atom
            return np.ones((1, 0), bool)
        values = {a: sorted({v for key in keys for c, v in key if c == a}) for a in attrs}
        shape = [len(values[a]) for a in attrs]
        if math.prod(shape) > _MAX_ATOMS:
            raise ValueError(f"{math.prod(shape)} combinations of {', '.join(attrs)}: too many to audit jointly")
        column = {a: i for i, a in enumerate(attrs)}
        code = {a: {v: j for j, v in enumerate(values[a])} for a in attrs}
        atoms = np.indices(shape).reshape(len(attrs), -1).T if attrs else np.zeros((1, 0), np.int64)

        def members(codes: np.ndarray) -> np.ndarray:
            out = np.ones((len(codes), len(keys)), bool)
            for g, key in enumerate(keys):
                for c, v in key:
                    out[:, g] &= codes[:, column[c]] == code[c][v]
            return out

        listed: dict[tuple[str, ...], list[tuple[int, ...]]] = {}
        for key in keys:
            if len(key) > 1:
                listed.setdefault(tuple(c for c, _ in key), []).append(tuple(code[c][v] for c, v in key))
        for cols, cells in listed.items():
            idx = [column[c] for c in cols]
            dims = [shape[i] for i in idx]
            inside = np.isin(np.ravel_multi_index(atoms[:, idx].T, dims),
                             np.ravel_multi_index(np.array(cells).T, dims))
            # A listing that would leave a named group empty is not a complete listing (metrics
            # filtered by the caller): then it is no evidence that other cells are empty.
            if members(atoms[inside]).any(axis=0).all():
                atoms = atoms[inside]
        # Atoms in exactly the same groups are one to the reader: merge them.
        return np.unique(members(atoms), axis=0).reshape(-1, len(keys))

    def form(self, group: int, outcome: int, coef: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Columns and coefficients of ``sum over the group's atoms of coef . (tp, fn, fp, tn)``."""
        cells = np.flatnonzero(coef)
        base = self.n_atom_vars + (group * len(self.outcome_ids) + outcome) * 4
        return base + cells, coef[cells]

    def _atom_form(self, group: int, outcome: int, coef: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cells = np.flatnonzero(coef)
        members = self.member[group]
        members = members[self.kept[outcome, members]]  # one atom per block (see _blocks)
        base = (outcome * self.n_atoms + members) * 4
        return (base[:, None] + cells[None, :]).ravel(), np.tile(coef[cells], len(base))

    def target(self, count: Count) -> np.ndarray:
        """Dense objective vector of a count."""
        c = np.zeros(self.n_vars)
        idx, coef = self.form(self.group_ids[count.group], self.outcome_ids[count.label], _cells(count.name))
        c[idx] = coef
        return c

    # -- rows ------------------------------------------------------------------------------

    def _build_rows(self) -> None:
        rows = _Rows()
        self._structure_rows(rows)
        self._record_rows(rows)
        self._rate_rows(rows)
        self.matrix = rows.matrix(self.n_vars)
        self.lb, self.ub = np.array(rows.lb), np.array(rows.ub)
        self.src_row = np.array(rows.src_row, dtype=np.int64)
        kind = np.array(rows.src_kind)
        self.src_a, self.src_b = np.array(rows.src_a, dtype=np.int64), np.array(rows.src_b, dtype=np.int64)
        self.src_kinds = {k: np.flatnonzero(kind == k) for k in range(5)}
        self.src_kind = kind
        # Sources of each row, contiguous: row r has src_order[src_start[r]:src_start[r + 1]].
        self.src_order = np.argsort(self.src_row, kind="stable")
        self.src_start = np.searchsorted(self.src_row[self.src_order], np.arange(len(self.lb) + 1))

    def _structure_rows(self, rows: _Rows) -> None:
        """What the reader knows without any number: shared rows, existing groups."""
        for o in range(1, len(self.outcome_ids)):
            for a in range(self.n_atoms):
                if not self.kept[o, a]:  # its block's cells sit on another atom (see _blocks)
                    continue
                block = np.flatnonzero(self.rep[o] == a)
                cols = np.r_[(o * self.n_atoms + a) * 4 + np.arange(4), (block[:, None] * 4 + np.arange(4)).ravel()]
                rows.add(cols, np.r_[np.ones(4), -np.ones(4 * len(block))], 0.0, 0.0, _STRUCTURE)
                b = self.base.get(o)
                if b is not None:  # the same positives as the clean table (see _blocks)
                    pos = list(COUNT_CELLS["positives"])
                    theirs = block if b == 0 else np.array([a])
                    cols = np.r_[(o * self.n_atoms + a) * 4 + np.array(pos),
                                 ((b * self.n_atoms + theirs)[:, None] * 4 + np.array(pos)).ravel()]
                    rows.add(cols, np.r_[np.ones(len(pos)), -np.ones(len(pos) * len(theirs))], 0.0, 0.0, _STRUCTURE)
        for g in range(len(self.groups)):
            for o in range(len(self.outcome_ids)):
                for k in range(4):
                    unit = np.zeros(4)
                    unit[k] = 1.0
                    cols, vals = self._atom_form(g, o, unit)
                    agg, _ = self.form(g, o, unit)
                    rows.add(np.r_[cols, agg], np.r_[vals, -1.0], 0.0, 0.0, _STRUCTURE)
            rows.add(*self.form(g, 0, _cells("n")), 1.0, math.inf, _STRUCTURE)
        # Every component adds up to the same whole.
        for atoms in self.component_atoms[1:]:
            for o in range(len(self.outcome_ids)):
                own = atoms[self.kept[o, atoms]]
                for k in range(4):
                    unit = np.zeros(4)
                    unit[k] = 1.0
                    agg, _ = self.form(0, o, unit)
                    rows.add(np.r_[(o * self.n_atoms + own) * 4 + k, agg],
                             np.r_[np.ones(len(own)), -1.0], 0.0, 0.0, _STRUCTURE)

    def _record_rows(self, rows: _Rows) -> None:
        """Counts, denominators and numerators of each record; the n fields of each group.

        n is written on the first outcome's cells whatever the record's label, so that the
        same n published by several records is one row.
        """
        positives = {}
        for i, m in enumerate(self.metrics):
            if m.id == "positives" and m.value is not None:
                positives[(int(self.rec_group[i]), int(self.rec_outcome[i]))] = m.value
        n_field: dict[int, float] = {}
        self.n_field_source = np.zeros(len(self.metrics), bool)
        for i, m in enumerate(self.metrics):
            g, o = int(self.rec_group[i]), int(self.rec_outcome[i])
            if m.n is not None:
                n_field.setdefault(g, float(m.n))
                self.n_field_source[i] = True
            for count, value in self._counts_shown(m, positives.get((g, o))):
                v = float(round(value))
                rows.add(*self.form(g, 0 if count == "n" else o, _cells(count)), v, v, _RECORD, i)
        for g, v in n_field.items():
            rows.add(*self.form(g, 0, _cells("n")), v, v, _N_FIELD, g)

    @staticmethod
    def _counts_shown(m: Metric, positives: float | None) -> list[tuple[str, float]]:
        """The counts a shown record gives exactly: ``(count name, value)`` pairs."""
        rate = _rate(m.id)
        if m.id in COUNT_CELLS and m.value is not None:
            return [(m.id, m.value)]
        if m.id == "min_detectable_gap":
            # Only under-powered groups get one, undefined exactly when positives is 0.
            value = positives if positives is not None else (0.0 if m.value is None else None)
            return [] if value is None else [("positives", value)]
        if rate is None:
            return []
        if m.value is None:  # undefined: the denominator is 0
            return [(DENOMINATOR[rate], 0.0)]
        if m.denominator is None:
            return []
        # A rate with its denominator pins the numerator exactly: an integer equality is
        # both the reader's whole knowledge and far easier on the solver than a tolerance.
        return [(DENOMINATOR[rate], m.denominator), (NUMERATOR[rate], m.value * m.denominator)]

    def _rate_rows(self, rows: _Rows) -> None:
        """Rates, known from a shown rate record or through a chain of shown gaps.

        A node is (group, outcome, rate); its tolerance rows are needed only when no shown
        record of it gives its numerator and denominator exactly. Gaps of nonzero value (and
        every gap to overall) are equalities between nodes; a gap of 0 to the best group only
        says the group is no worse, an inequality row that needs its other side known.
        """
        self.nodes: dict[tuple[int, int, str], int] = {}

        def node(g: int, o: int, rate: str) -> int:
            return self.nodes.setdefault((g, o, rate), len(self.nodes))

        self.rate_seed, seed_nodes, seed_values, exact = [], [], [], []
        edges, zero_gaps = [], []
        for i, m in enumerate(self.metrics):
            g, o = int(self.rec_group[i]), int(self.rec_outcome[i])
            rate = _rate(m.id)
            if rate is not None and m.value is not None:
                self.rate_seed.append(i)
                seed_nodes.append(node(g, o, rate))
                seed_values.append(m.value)
                exact.append(m.denominator is not None)
            parts = _gap_parts(m.id)
            if parts is None or m.value is None or _rate(parts[0]) is None:
                continue
            base, reference = parts
            rate = _rate(base)
            sign = -DIRECTION[rate]  # gap = sign * (group - reference)
            ref_key = _group_key(m.reference_group)
            if ref_key in self.outside:
                # The other population's rate is public: the gap gives this group's rate.
                known = self.outside_rates.get((ref_key, m.label, rate))
                if known is not None and reference == "best" and m.value <= 0:
                    # max(0, ...): only "no worse than the reference", sign * (rate - r) <= 0.
                    num, den = _cells(NUMERATOR[rate]), _cells(DENOMINATOR[rate])
                    coef = sign * num - (sign * known + _REL_TOL) * den
                    rows.add(*self.form(g, o, coef), -math.inf, _ABS_TOL, _RECORD, i)
                elif known is not None:
                    self.rate_seed.append(i)
                    seed_nodes.append(node(g, o, rate))
                    seed_values.append(known + sign * m.value)
                    exact.append(False)
                continue
            ref = self._reference_id(m, reference)
            if ref is None or ref == g:
                continue
            a, b = node(g, o, rate), node(ref, o, rate)
            if reference == "best" and m.value <= 0:  # max(0, ...): only "no worse than best"
                zero_gaps.append((i, a, b, sign))
            else:
                edges.append((i, a, b, sign * m.value))  # rate(a) = rate(b) + delta
        self.rate_seed = np.array(self.rate_seed, dtype=np.int64)
        self.seed_nodes = np.array(seed_nodes, dtype=np.int64)
        # Seeds whose own record, shown, already gives the rate exactly (see _counts_shown).
        self.seed_exact = np.array(exact, dtype=bool)
        self.edges = np.array([e[:3] for e in edges], dtype=np.int64).reshape(-1, 3)
        # What makes each node known, to be hidden to make it unknown: its own rate records and
        # the gaps that link it to others.
        self.node_records: dict[int, list[int]] = {}
        for i, k in zip(self.rate_seed, seed_nodes, strict=True):
            self.node_records.setdefault(k, []).append(int(i))
        for i, a, b, _ in edges:
            self.node_records.setdefault(a, []).append(i)
            self.node_records.setdefault(b, []).append(i)
        values = self._node_values(seed_nodes, seed_values, edges)
        by_node = {v: k for k, v in self.nodes.items()}
        for k, r in values.items():
            g, o, rate = by_node[k]
            num, den = _cells(NUMERATOR[rate]), _cells(DENOMINATOR[rate])
            rows.add(*self.form(g, o, num - (r + _REL_TOL) * den), -math.inf, _ABS_TOL, _RATE, k)
            rows.add(*self.form(g, o, num - (r - _REL_TOL) * den), -_ABS_TOL, math.inf, _RATE, k)
            rows.add(*self.form(g, o, den), 1.0, math.inf, _RATE, k)
        for i, a, b, sign in zero_gaps:
            (ga, oa, rate), (gb, _, _) = by_node[a], by_node[b]
            num, den = _cells(NUMERATOR[rate]), _cells(DENOMINATOR[rate])
            if b in values:  # sign * (rate_a - r_b) <= 0, times D_a
                coef = sign * num - (sign * values[b] + _REL_TOL) * den
                rows.add(*self.form(ga, oa, coef), -math.inf, _ABS_TOL, _ZERO_GAP, i, b)
            if a in values:  # sign * (r_a - rate_b) <= 0, times D_b
                coef = (sign * values[a] - _REL_TOL) * den - sign * num
                rows.add(*self.form(gb, oa, coef), -math.inf, _ABS_TOL, _ZERO_GAP, i, a)

    def _node_values(self, seeds, seed_values, edges) -> dict[int, float]:
        """True rate of every node that some rate record reaches through gaps (hidden or not)."""
        values = dict(zip(seeds, seed_values, strict=True))
        links: dict[int, list[tuple[int, float]]] = {}
        for _, a, b, delta in edges:
            links.setdefault(a, []).append((b, -delta))
            links.setdefault(b, []).append((a, delta))
        frontier = list(values)
        while frontier:
            k = frontier.pop()
            for other, delta in links.get(k, ()):
                if other not in values:  # rate(other) = rate(k) + delta
                    values[other] = values[k] + delta
                    frontier.append(other)
        return values

    # -- what the reader has under a suppression ----------------------------------------------

    def flags(self) -> np.ndarray:
        """The suppression the metrics carry."""
        return np.array([m.suppressed for m in self.metrics], dtype=bool)

    def known_rates(self, hidden: np.ndarray) -> np.ndarray:
        """Nodes whose rate the reader knows: linked by shown gaps to a shown rate."""
        known = np.zeros(len(self.nodes), bool)
        if not len(self.nodes):
            return known
        shown = ~hidden[self.edges[:, 0]]
        e = self.edges[shown]
        graph = sparse.coo_matrix((np.ones(len(e)), (e[:, 1], e[:, 2])), shape=(len(self.nodes),) * 2)
        _, component = connected_components(graph, directed=False)
        seeds = self.seed_nodes[~hidden[self.rate_seed]]
        return np.isin(component, component[seeds])

    def active(self, hidden: np.ndarray) -> np.ndarray:
        """Rows the reader has when ``hidden`` records are suppressed.

        A row has one or more sources (the same number shown by several records); it is
        active when any of them is.
        """
        act = np.zeros(len(self.lb), bool)
        act[self.src_row[self.sources_on(hidden)]] = True
        return act

    def sources_on(self, hidden: np.ndarray) -> np.ndarray:
        """Which sources of rows the reader has (see :meth:`active`)."""
        shown = ~hidden
        on = np.zeros(len(self.src_row), bool)
        kinds = self.src_kinds
        on[kinds[_STRUCTURE]] = True
        rec = kinds[_RECORD]
        on[rec] = shown[self.src_a[rec]]
        # public_record drops n from every record of a group whose n is hidden for any label.
        groups = len(self.groups)
        blocked = np.bincount(self.rec_group[self.is_n & hidden], minlength=groups) > 0
        sourced = np.bincount(self.rec_group[self.n_field_source & shown], minlength=groups) > 0
        nf = kinds[_N_FIELD]
        on[nf] = (sourced & ~blocked)[self.src_a[nf]]
        known = self.known_rates(hidden)
        exact = np.zeros(len(self.nodes), bool)
        exact[self.seed_nodes[self.seed_exact & shown[self.rate_seed]]] = True
        rr = kinds[_RATE]
        on[rr] = (known & ~exact)[self.src_a[rr]]
        zg = kinds[_ZERO_GAP]
        on[zg] = shown[self.src_a[zg]] & known[self.src_b[zg]]
        return on

    def problem(self, hidden: np.ndarray) -> LinearConstraint:
        """The rows the reader has under ``hidden``, as one constraint."""
        act = self.active(hidden)
        return LinearConstraint(self.matrix[act], self.lb[act], self.ub[act])

    def _solve(self, c: np.ndarray, constraints: list[LinearConstraint], hidden: np.ndarray | None = None,
               bounds: Bounds | None = None, *, integer: bool = True, time_limit: float | None = None) -> _Solution:
        """Minimise ``c`` over the integer tables; the table found joins the witness pool.

        The LP relaxation first: with counts and exact numerators published the programme is
        close to totally unimodular, so the relaxation's vertex is usually integral, and then it
        is the integer optimum at a fraction of the cost. The MILP only when it is not (and
        ``integer``); past ``time_limit`` it counts as finding nothing (status 4), which
        callers read as "no witness", the cautious answer.
        """
        bounds = bounds or Bounds(0, np.inf)
        lp = milp(c, bounds=bounds, constraints=constraints)
        if lp.status == 2:  # no real solution, so no integer one
            return _Solution(2, math.nan, None)
        if lp.status == 3:  # rational data: a feasible integer programme is unbounded too
            return _Solution(3, -math.inf, None)
        if lp.status == 0:
            x = np.round(lp.x)
            value = float(c @ x)
            if value <= math.ceil(lp.fun - 1e-7) + 1e-9 and _fits(x, constraints, bounds):
                return self._keep(_Solution(0, value, x), hidden)
        if not integer:
            return _Solution(4, math.nan, None)
        options = {} if time_limit is None else {"time_limit": time_limit}
        res = milp(c, integrality=np.ones(self.n_vars), bounds=bounds, constraints=constraints, options=options)
        if res.x is not None and res.status in (0, 1):
            x = np.round(res.x)
            if res.status == 0 or _fits(x, constraints, bounds):
                return self._keep(_Solution(0 if res.status == 0 else 4, float(c @ x), x), hidden)
        return _Solution({2: 2, 3: 3}.get(res.status, 4), math.nan, None)

    def _keep(self, solution: _Solution, hidden: np.ndarray | None) -> _Solution:
        if hidden is not None:
            self._pool.append((hidden.copy(), solution.x))
            del self._pool[:-_POOL_SIZE]
        return solution

    def _pool_values(self, c: np.ndarray, hidden: np.ndarray) -> set[float]:
        """Values of ``c`` over pooled tables that fit ``hidden``.

        A table that fits the published numbers under some suppression fits them under any
        larger one (hiding only removes rows), so tables found on the way are free witnesses:
        two of them with different values prove a count not unique without a solve.
        """
        return {float(c @ x) for found, x in self._pool if not (found & ~hidden).any()}

    def witnesses(self, counts: Sequence[Count], hidden: np.ndarray, k: int = 6, *, integer: bool = True) -> None:
        """Pool ``k`` tables that push many counts at once to opposite extremes.

        Objectives are random signed sums of the counts (all +1 and all -1 first). Boxed by a
        bound above every published size so that none is unbounded; a table inside the box is
        a table all the same.
        """
        if not counts:
            return
        forms = np.array([self.target(t) for t in counts])
        finite = self.sizes[np.isfinite(self.sizes)]
        upper = 2 * float(finite.max(initial=0)) + 10
        rng = np.random.default_rng(0)  # deterministic: the same metrics, the same suppression
        signs = [np.ones(len(counts)), -np.ones(len(counts))]
        signs += [rng.choice([-1.0, 1.0], len(counts)) for _ in range(k - 2)]
        problem = [self.problem(hidden)]
        box = Bounds(0, upper)
        for w in signs[:k]:
            self._solve(w @ forms, problem, hidden, box, integer=integer)

    def range(self, count: Count, problem: LinearConstraint) -> tuple[float, float]:
        """Least and greatest feasible value of a count."""
        c = self.target(count)
        low = self._solve(c, [problem])
        if low.status == 2:
            raise ValueError("the published metrics are inconsistent: no table of counts fits them")
        high = self._solve(-c, [problem])
        # The minimum proved the programme feasible: a failed maximum is an unbounded one.
        return low.value, -high.value if high.status == 0 else math.inf

    def programme(self, hidden: np.ndarray) -> _Programme:
        """The rows the reader has under ``hidden``, with what the solvers and proofs need."""
        on = self.sources_on(hidden)
        act = np.zeros(len(self.lb), bool)
        act[self.src_row[on]] = True
        rows = np.flatnonzero(act)
        return _Programme(self.matrix[rows], self.lb[rows], self.ub[rows], rows, on)

    def moves(self, count: Count, value: float, hidden: np.ndarray, *, stop: bool = True) -> list[float]:
        """The directions (+1 up, -1 down) in which ``count`` can leave ``value`` in this model;
        with ``stop``, only the first found."""
        c = self.target(count)
        prog = self.programme(hidden)
        found = []
        for d in (1.0, -1.0) if value >= 1 else (1.0,):  # counts are non-negative: 0 cannot go lower
            if self._moves(c, prog, value, d, hidden):
                found.append(d)
                if stop:
                    break
        return found

    def _minimum(self, c: np.ndarray, prog: _Programme, hidden: np.ndarray) -> float:
        """Integer minimum of ``c`` (non-negative coefficients, so bounded)."""
        sol = self._solve(c, [prog.constraint], hidden)
        if sol.status != 0:
            raise ValueError("the published metrics are inconsistent: no table of counts fits them")
        return sol.value

    def _moves(self, c: np.ndarray, prog: _Programme, value: float, direction: float, hidden: np.ndarray,
               bounds: Bounds | None = None, time_limit: float | None = None) -> bool:
        """Whether the count can leave ``value`` by a step in ``direction`` (+1 up, -1 down).

        A feasibility problem, much cheaper than an optimisation: the LP relaxation first (no
        real table: no integer one either; an integral one: a witness), the MILP only when
        the relaxation's table is fractional, within ``time_limit`` if given.
        """
        step = LinearConstraint(direction * c[None, :], direction * value + 1, np.inf)
        return self._solve(np.zeros(self.n_vars), [prog.constraint, step], hidden, bounds,
                           time_limit=time_limit).status == 0

    def proof_units(self, count: Count, value: float, hidden: np.ndarray) -> list[np.ndarray]:
        """Units that break the reader's proof that ``count`` is ``value``, cheapest first.

        The proof is the LP dual of "maximise the count" (then "minimise") when the relaxation
        already stops at ``value``: the rows with a nonzero multiplier. A number shown by
        several records is a row with several sources, and the row goes only with all of them,
        so a unit is every shown source of one row of the proof. Empty when the relaxation
        gives no proof (integral reasoning the dual cannot show) or only structure does.
        """
        prog = self.programme(hidden)
        c = self.target(count)
        for direction in (1.0, -1.0):
            res = prog.lp(-direction * c)
            if res.status != 0 or -res.fun >= direction * value + 1 - 1e-7:
                continue
            units = [self._row_unit(r, prog.on) for r in prog.support(res)]
            ranked = self._ranked(count, [u for u in units if u is not None], hidden)
            if ranked:
                return ranked
        return []

    # -- closure and candidates ---------------------------------------------------------------

    def _build_closure(self) -> None:
        """Which record hides which: a gap with its rates, min_detectable_gap with positives."""
        lookup: dict[tuple[int, int, str], list[int]] = {}
        for i, m in enumerate(self.metrics):
            lookup.setdefault((int(self.rec_group[i]), int(self.rec_outcome[i]), m.id), []).append(i)
        child, parent = [], []
        for i, m in enumerate(self.metrics):
            g, o = int(self.rec_group[i]), int(self.rec_outcome[i])
            sources = []
            parts = _gap_parts(m.id)
            if parts is not None:
                base, reference = parts
                sources += lookup.get((g, o, base), [])
                ref = self._reference_id(m, reference)
                if ref is not None:
                    sources += lookup.get((ref, o, base), [])
            elif m.id == "min_detectable_gap":
                sources += lookup.get((g, o, "positives"), [])
            child += [i] * len(sources)
            parent += sources
        self.dep_child = np.array(child, dtype=np.int64)
        self.dep_parent = np.array(parent, dtype=np.int64)

    def _reference_id(self, m: Metric, reference: str) -> int | None:
        """The group a gap is measured against: its ``reference_group`` when it names one
        (a gap "to overall" within a site names the site), else the overall population for
        ``*_gap_overall``; None when unknown."""
        if m.reference_group:
            return self.group_ids.get(_group_key(m.reference_group))
        return 0 if reference == "overall" else None

    def close(self, hidden: np.ndarray) -> np.ndarray:
        """Suppression closed under derivation.

        A group whose ``n`` is hidden for one label is hidden for every label (n is shared, and
        any other label's counts add up to it); a gap is hidden with its group's or its
        reference's rate; ``min_detectable_gap`` with positives. The threshold is kept: the
        serializer drops its ``n`` field, and it holds no other count. Records published
        earlier (``fixed``) keep their state: they are out already.
        """
        hidden = hidden.copy()
        keep = self.fixed & ~hidden
        while True:
            before = int(hidden.sum())
            gone = np.bincount(self.rec_group[self.is_n & hidden], minlength=len(self.groups)) > 0
            hidden |= gone[self.rec_group] & ~self.is_threshold
            hidden[self.dep_child[hidden[self.dep_parent]]] = True
            hidden &= ~keep
            if int(hidden.sum()) == before:
                return hidden

    def group_size(self, count: Count) -> float:
        return self.sizes[self.group_ids[count.group]]

    def tier(self, count: Count, h: int) -> int:
        """How directly group ``h`` bears on ``count``'s group: 0 itself, 1 the same grouping
        (subtraction from totals), 2 overlapping (its margins and intersection cells), 3 other."""
        g = self.group_ids[count.group]
        if h == g:
            return 0
        mine, other = set(count.group or ()), set(self.groups[h] or ())
        cols, other_cols = {c for c, _ in mine}, {c for c, _ in other}
        if other_cols == cols:
            return 1
        shared = cols & other_cols
        return 2 if shared and all((c, v) in mine for c, v in other if c in shared) else 3

    def _mask(self, idx) -> np.ndarray:
        out = np.zeros(len(self.metrics), bool)
        out[np.asarray(idx, dtype=np.int64)] = True
        return out

    def _ranked(self, count: Count, units: Iterable[np.ndarray], hidden: np.ndarray) -> list[np.ndarray]:
        """Units by the group they hide (tier, then size), then by what their closure hides."""
        keyed = {}
        for u in units:
            grown = self.close(hidden | u)
            new = grown & ~hidden
            if not new.any():
                continue
            groups = np.unique(self.rec_group[new])
            rank = (min(self.tier(count, h) for h in groups), float(self.sizes[groups].max()), int(new.sum()))
            keyed.setdefault(new.tobytes(), (rank, u))
        return [u for _, u in sorted(keyed.values(), key=lambda ru: ru[0])]

    def _row_unit(self, row: int, on: np.ndarray) -> np.ndarray | None:
        """The records to hide to take a row from the reader; None for structure."""
        idx = self.src_order[self.src_start[row]:self.src_start[row + 1]]
        idx = idx[on[idx]]
        records: list[int] = []
        overall = self.group_ids.get(None, -1) if self.overall_fixed else -1
        for s in idx:
            kind, a = self.src_kind[s], int(self.src_a[s])
            if kind == _STRUCTURE:
                return None
            if kind in (_RECORD, _ZERO_GAP):
                records.append(a)
            elif kind == _N_FIELD:  # the group's n record; without one, every record showing n
                mine = self.rec_group == a
                n_recs = np.flatnonzero(mine & self.is_n)
                records += list(n_recs if len(n_recs) else np.flatnonzero(mine & self.n_field_source))
            elif kind == _RATE:
                records += self.node_records.get(a, [])
        records = [r for r in records if self.rec_group[r] != overall and not self.fixed[r]]  # see overall_fixed
        return self._mask(records) if records else None

    def units(self, count: Count, hidden: np.ndarray) -> list[np.ndarray]:
        """Candidate suppressions for ``count`` in a fixed order, when no proof guides.

        First each shown record of the count's own group (for its label; every label for n),
        by how much its closure hides; then its label block and the whole group. Then the other
        groups: the same grouping (subtraction from totals), then groups overlapping the count's
        (margins and intersection cells), then the rest, each by increasing size: for each its
        label block (hides its cells, keeps its n; useless against n), then the whole group.
        """
        g, o = self.group_ids[count.group], self.outcome_ids[count.label]
        shown = ~hidden
        group_of = self.rec_group
        label_ok = np.ones(len(self.metrics), bool) if count.name == "n" else self.rec_outcome == o
        # The threshold holds no count, and its n field goes with the group's n record.
        has_n = np.bincount(group_of[self.is_n], minlength=len(self.groups)) > 0
        usable = shown & ~(self.is_threshold & has_n[group_of])
        if self.overall_fixed:  # see secondary_suppression
            usable &= group_of != self.group_ids.get(None, -1)
        usable &= ~self.fixed
        own = np.flatnonzero(usable & (group_of == g) & label_ok)
        cost = [int(self.close(hidden | self._mask([i])).sum()) for i in own]
        units = [self._mask([i]) for _, i in sorted(zip(cost, own, strict=True))]
        others = sorted((h for h in range(len(self.groups)) if h != g),
                        key=lambda h: (self.tier(count, h), self.sizes[h], h))
        for h in [g, *others]:
            block = usable & (group_of == h)
            if count.name != "n":
                units.append(block & (self.rec_outcome == o))
            units.append(block)
        return [u for u in units if u.any()]


class _Programme:
    """The rows the reader has under one suppression, in the two forms the solvers take."""

    def __init__(self, A: sparse.csr_matrix, lb: np.ndarray, ub: np.ndarray, rows: np.ndarray, on: np.ndarray):
        self.rows, self.on = rows, on
        self.constraint = LinearConstraint(A, lb, ub)
        eq = lb == ub
        upper, lower = ~eq & np.isfinite(ub), ~eq & np.isfinite(lb)
        # linprog's duals need equalities and one-sided inequalities apart.
        self._split = (np.flatnonzero(eq), np.flatnonzero(upper), np.flatnonzero(lower))
        self._a_ub = sparse.vstack([A[upper], -A[lower]]).tocsr()
        self._b_ub = np.r_[ub[upper], -lb[lower]]
        self._a_eq, self._b_eq = A[eq], lb[eq]

    def lp(self, c: np.ndarray):
        """The LP relaxation's minimum of ``c``, with duals."""
        return linprog(c, A_ub=self._a_ub, b_ub=self._b_ub, A_eq=self._a_eq, b_eq=self._b_eq,
                       bounds=(0, None), method="highs")

    def support(self, res) -> np.ndarray:
        """Rows (indices into the full matrix) with a nonzero multiplier in an LP optimum."""
        eq, upper, lower = self._split
        ineq = np.abs(res.ineqlin.marginals) > 1e-9
        picked = np.r_[eq[np.abs(res.eqlin.marginals) > 1e-9], upper[ineq[:len(upper)]], lower[ineq[len(upper):]]]
        return self.rows[np.unique(picked)]


class _Reader:
    """The reader's programme, solved fast where it can be and exactly where it must be.

    The *marginal* model keeps one set of atoms per component of attributes, the components
    sharing only their totals: small, and exact when there is one label (a table with given
    margins always exists) or one component. With several labels and components, rows being
    the same for every label lets the reader link them across components (the one row that is
    positive for label b in site s is the woman, who is positive for label a), which only the
    *joint* model, atoms of every attribute at once, sees. Then the marginal model, a
    relaxation, still proves a count unique (and guides the search); two values are proved
    with tables of the joint one, whose first, the *anchor*, fits every number (so every
    suppression) and gives each count its true value.
    """

    def __init__(self, metrics: Sequence[Metric], targets: Sequence[Count], joint: bool | None = None, *,
                 outside: set | frozenset = frozenset(), rates: Sequence[Metric] = ()) -> None:
        extra = {"outside": outside, "rates": rates}
        self.marginal = _Audit(metrics, targets, joint=False, **extra)
        components = self.marginal.component_atoms
        exact = len(self.marginal.outcome_ids) == 1 or len(components) == 1
        size = math.prod(len(a) for a in components) * len(self.marginal.outcome_ids) * 4
        if joint is None:  # the joint model where it is affordable (see the module docstring)
            joint = size <= _JOINT_MAX_VARS
        self.joint = _Audit(metrics, targets, joint=True, **extra) if joint and not exact else None
        self._anchor: np.ndarray | None = None

    @property
    def witness_model(self) -> _Audit:
        return self.joint or self.marginal

    def flags(self) -> np.ndarray:
        return self.marginal.flags()

    def close(self, hidden: np.ndarray) -> np.ndarray:
        return self.marginal.close(hidden)

    def anchor(self) -> np.ndarray:
        """A joint table that fits every number, hidden or not: hence every suppression."""
        if self._anchor is None:
            nothing_hidden = np.zeros(len(self.marginal.metrics), bool)
            joint = self.witness_model
            sol = joint._solve(np.zeros(joint.n_vars), [joint.problem(nothing_hidden)], nothing_hidden)
            if sol.status != 0:
                raise ValueError("the published metrics are inconsistent: no table of counts fits them")
            self._anchor = sol.x
        return self._anchor

    def witnesses(self, counts: Sequence[Count], hidden: np.ndarray) -> None:
        """Pool tables that show many counts not unique at once (see :meth:`_Audit.witnesses`)."""
        if self.joint is None:
            self.marginal.witnesses(counts, hidden, k=12)
        else:  # relaxation vertices of the joint model are often fractional: keep the integral
            self.anchor()
            self.joint.witnesses(counts, hidden, k=4, integer=False)

    def recovered(self, count: Count, hidden: np.ndarray) -> float | None:
        """The value of ``count`` if the reader recovers it under ``hidden``, else None."""
        model = self.witness_model
        if self.joint is not None:
            self.anchor()
        c = model.target(count)
        seen = model._pool_values(c, hidden)
        if len(seen) > 1:
            return None
        value = seen.pop() if seen else model._minimum(c, model.programme(hidden), hidden)
        return value if self.unique(count, value, hidden) else None

    def unique(self, count: Count, value: float, hidden: np.ndarray) -> bool:
        """Whether ``count`` (``value`` in the true table) can only be ``value``.

        With the joint model, a step the relaxation allows is searched for in the joint one;
        a MILP past its time limit counts as "unique", the cautious answer, which only ever
        asks for more suppression.
        """
        model = self.witness_model
        if model._pool_values(model.target(count), hidden) - {value}:
            return False
        directions = self.marginal.moves(count, value, hidden, stop=self.joint is None)
        if not directions or self.joint is None:
            return not directions
        c, prog = self.joint.target(count), self.joint.programme(hidden)
        return not any(self.joint._moves(c, prog, value, d, hidden, time_limit=_TIME_LIMIT) for d in directions)

    def range(self, count: Count, hidden: np.ndarray) -> tuple[float, float]:
        """Least and greatest feasible value of a count (exact: no time limit)."""
        lo, hi = self.marginal.range(count, self.marginal.problem(hidden))
        if self.joint is None or lo == hi:  # the relaxation pins it: so does the joint model
            return lo, hi
        return self.joint.range(count, self.joint.problem(hidden))


@dataclass(frozen=True)
class _Solution:
    """A solve: status 0 (optimal), 2 (infeasible) or 3 (unbounded); the value and table."""

    status: int
    value: float
    x: np.ndarray | None


def _fits(x: np.ndarray, constraints: list[LinearConstraint], bounds: Bounds | None = None) -> bool:
    """Whether a rounded table satisfies the rows (1e-8 slack: float error of r * D)."""
    if bounds is not None and ((x < bounds.lb - 1e-8).any() or (x > bounds.ub + 1e-8).any()):
        return False
    for con in constraints:
        v = con.A @ x
        if (v < con.lb - 1e-8).any() or (v > con.ub + 1e-8).any():
            return False
    return True


class _Rows:
    """Distinct rows of a sparse constraint matrix, each with the sources that give it."""

    def __init__(self) -> None:
        self._ids: dict[tuple, int] = {}
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.src_row: list[int] = []
        self.src_kind: list[int] = []
        self.src_a: list[int] = []
        self.src_b: list[int] = []

    def add(self, cols, vals, lb, ub, kind, a=-1, b=-1) -> None:
        """A row ``lb <= vals . x[cols] <= ub``, given by a source of ``kind`` (a, b)."""
        cols, vals = np.asarray(cols, dtype=np.int64), np.asarray(vals, dtype=float)
        order = np.argsort(cols, kind="stable")
        cols, vals = cols[order], vals[order]
        key = (cols.tobytes(), vals.tobytes(), float(lb), float(ub))
        row = self._ids.get(key)
        if row is None:
            row = self._ids[key] = len(self.lb)
            self.cols.append(cols)
            self.vals.append(vals)
            self.lb.append(float(lb))
            self.ub.append(float(ub))
        self.src_row.append(row)
        self.src_kind.append(kind)
        self.src_a.append(a)
        self.src_b.append(b)

    def matrix(self, n_vars: int) -> sparse.csr_matrix:
        if not self.cols:
            return sparse.csr_matrix((0, n_vars))
        rows = np.repeat(np.arange(len(self.cols)), [len(c) for c in self.cols])
        return sparse.csr_matrix((np.concatenate(self.vals), (rows, np.concatenate(self.cols))),
                                 shape=(len(self.cols), n_vars))
