"""Statistics for audits: pure functions on arrays.

- :mod:`.confusion`: confusion cells and rates from counts.
- :mod:`.bootstrap`: exact (cluster) bootstrap of counts, percentile
  intervals, bootstrap p-values.
- :mod:`.influence`: influence-function (delta-method) standard errors for
  AUROC and Brier score, cluster-robust; Wald intervals and tests.
- :mod:`.multiplicity`: Holm and Benjamini-Hochberg adjustment.
- :mod:`.operating_point`: threshold selection.
- :mod:`.power`: minimum detectable gap.
"""

from .bootstrap import (
    MIN_DEFINED_FRACTION,
    bootstrap_counts,
    bootstrap_p_value,
    defined_fraction,
    percentile_interval,
)
from .confusion import CELLS, cell_codes, rates_from_counts
from .influence import (
    auroc_influence,
    brier_influence,
    influence_se,
    mover_interval,
    mover_p_value,
    wald_interval,
    wald_p_value,
)
from .multiplicity import adjust_pvalues
from .operating_point import choose_threshold, parse_operating_point
from .power import min_detectable_gap

__all__ = [
    "CELLS",
    "MIN_DEFINED_FRACTION",
    "adjust_pvalues",
    "auroc_influence",
    "bootstrap_counts",
    "bootstrap_p_value",
    "brier_influence",
    "cell_codes",
    "choose_threshold",
    "defined_fraction",
    "influence_se",
    "mover_interval",
    "mover_p_value",
    "min_detectable_gap",
    "parse_operating_point",
    "percentile_interval",
    "rates_from_counts",
    "wald_interval",
    "wald_p_value",
]
