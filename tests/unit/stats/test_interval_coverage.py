"""Simulation checks: do the 95% intervals cover the truth about 95% of the time?

Each test draws many data sets from a population whose true metric is known,
builds the interval on each, and checks the coverage. With n_sims = 1000 and a
true coverage of 95%, the Monte Carlo standard error is 0.7 percentage points,
so the accepted band 93-97% is about +-2.9 SE wide: a correct method fails it
with probability < 0.5% (and the seeds are fixed, so the result is stable).
The clustered scenarios also compute the interval that ignores clustering, and
assert it under-covers, so they demonstrably test the cluster handling.

Coverage in runs of 5000 simulations (for reference): FNR row bootstrap
0.944; FNR cluster bootstrap 0.951 (row bootstrap on the same clustered data
0.871); AUROC logit-Wald 0.948; clustered 0.949 (rows as clusters 0.742);
Brier Wald 0.949; clustered 0.944 (rows as clusters 0.706).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from audit.stats import (
    auroc_influence,
    bootstrap_counts,
    bootstrap_p_value,
    brier_influence,
    cell_codes,
    influence_se,
    percentile_interval,
    rates_from_counts,
    wald_interval,
)

pytestmark = pytest.mark.slow

N_SIMS = 1000
N_BOOT = 1000
BAND = (0.93, 0.97)
N_PATIENTS = 500  # ~1500 rows; ~150 patients with the finding


def _patients(rng: np.random.Generator, n_patients: int) -> np.ndarray:
    """Patient index of each row; 1-5 rows per patient (mean 3)."""
    return np.repeat(np.arange(n_patients), rng.integers(1, 6, n_patients))


def _expected_expit(a: float, sigma: float) -> float:
    """E[expit(a + sigma * Z)], Z standard normal (Gauss-Hermite quadrature)."""
    x, w = np.polynomial.hermite_e.hermegauss(80)
    return float(np.sum(w * special.expit(a + sigma * x)) / np.sqrt(2 * np.pi))


def _fnr_interval(codes, clusters, rng):
    counts = bootstrap_counts(codes, 4, clusters=clusters, n_boot=N_BOOT, random_state=rng)
    return percentile_interval(rates_from_counts(counts)["fnr"])


def test_fnr_percentile_interval_covers_without_clusters():
    rng = np.random.default_rng(20240601)
    true_fnr = 0.2
    hits = 0
    for _ in range(N_SIMS):
        y = rng.random(400) < 0.3
        pred = np.where(y, rng.random(400) >= true_fnr, rng.random(400) < 0.1)
        low, high = _fnr_interval(cell_codes(y, pred), None, rng)
        hits += low <= true_fnr <= high
    coverage = hits / N_SIMS
    print(f"FNR row bootstrap coverage: {coverage:.3f}")
    assert BAND[0] <= coverage <= BAND[1]


def test_fnr_cluster_bootstrap_covers_with_patient_effects():
    # Disease status is per patient; each patient's miss probability carries a
    # random effect shared by all of that patient's images, so rows of one
    # patient are strongly correlated and the row bootstrap is too narrow.
    rng = np.random.default_rng(20240602)
    a, sigma = -1.9, 1.5
    true_fnr = _expected_expit(a, sigma)  # rows per patient are independent of the effect
    hits = hits_naive = 0
    for _ in range(N_SIMS):
        patient = _patients(rng, N_PATIENTS)
        sick = (rng.random(N_PATIENTS) < 0.3)[patient]
        miss_prob = special.expit(a + sigma * rng.standard_normal(N_PATIENTS))[patient]
        pred = np.where(sick, rng.random(patient.size) >= miss_prob, rng.random(patient.size) < 0.1)
        codes = cell_codes(sick, pred)
        low, high = _fnr_interval(codes, patient, rng)
        hits += low <= true_fnr <= high
        low, high = _fnr_interval(codes, None, rng)
        hits_naive += low <= true_fnr <= high
    coverage, naive = hits / N_SIMS, hits_naive / N_SIMS
    print(f"FNR cluster bootstrap coverage: {coverage:.3f} (row bootstrap: {naive:.3f})")
    assert BAND[0] <= coverage <= BAND[1]
    assert naive < 0.90


def _auroc_covers(y, score, clusters, truth):
    auc, psi = auroc_influence(y, score)
    low, high = wald_interval(auc, influence_se(psi, clusters), transform="logit")
    return low <= truth <= high


def test_auroc_logit_wald_interval_covers_without_clusters():
    rng = np.random.default_rng(20240603)
    shift = 1.5
    truth = stats.norm.cdf(shift / np.sqrt(2))  # P(N(shift,1) > N(0,1))
    hits = 0
    for _ in range(N_SIMS):
        y = rng.random(400) < 0.3
        score = shift * y + rng.standard_normal(400)
        hits += _auroc_covers(y, score, None, truth)
    coverage = hits / N_SIMS
    print(f"AUROC logit-Wald coverage: {coverage:.3f}")
    assert BAND[0] <= coverage <= BAND[1]


def test_auroc_logit_wald_interval_covers_with_patient_effects():
    rng = np.random.default_rng(20240604)
    shift, sd_patient, sd_image = 1.5, 1.0, 0.5
    # Labels are per patient, so every positive-negative pair spans two
    # patients and the difference of their scores has variance 2 (1 + 0.25).
    truth = stats.norm.cdf(shift / np.sqrt(2 * (sd_patient**2 + sd_image**2)))
    hits = hits_naive = 0
    for _ in range(N_SIMS):
        patient = _patients(rng, N_PATIENTS)
        y = (rng.random(N_PATIENTS) < 0.3)[patient]
        score = (
            shift * y
            + sd_patient * rng.standard_normal(N_PATIENTS)[patient]
            + sd_image * rng.standard_normal(patient.size)
        )
        hits += _auroc_covers(y, score, patient, truth)
        hits_naive += _auroc_covers(y, score, None, truth)
    coverage, naive = hits / N_SIMS, hits_naive / N_SIMS
    print(f"AUROC cluster logit-Wald coverage: {coverage:.3f} (rows as clusters: {naive:.3f})")
    assert BAND[0] <= coverage <= BAND[1]
    assert naive < 0.90


# Risk r ~ U(0.2, 0.8), y ~ Bernoulli(r), prediction p = r + U(-0.1, 0.1):
# E[(p - y)^2] = E[r(1 - r)] + Var(noise) = 0.22 + 0.2**2 / 12.
BRIER_TRUTH = 0.22 + 0.2**2 / 12


def _brier_covers(y, p, clusters):
    brier, psi = brier_influence(y, p)
    low, high = wald_interval(brier, influence_se(psi, clusters))
    return low <= BRIER_TRUTH <= high


def test_brier_wald_interval_covers_without_clusters():
    rng = np.random.default_rng(20240605)
    hits = 0
    for _ in range(N_SIMS):
        risk = rng.uniform(0.2, 0.8, 400)
        y = rng.random(400) < risk
        hits += _brier_covers(y, risk + rng.uniform(-0.1, 0.1, 400), None)
    coverage = hits / N_SIMS
    print(f"Brier Wald coverage: {coverage:.3f}")
    assert BAND[0] <= coverage <= BAND[1]


def test_brier_wald_interval_covers_with_patient_effects():
    # Risk and outcome are per patient; each image adds its own noise.
    rng = np.random.default_rng(20240606)
    hits = hits_naive = 0
    for _ in range(N_SIMS):
        patient = _patients(rng, N_PATIENTS)
        risk = rng.uniform(0.2, 0.8, N_PATIENTS)
        y = (rng.random(N_PATIENTS) < risk)[patient]
        p = risk[patient] + rng.uniform(-0.1, 0.1, patient.size)
        hits += _brier_covers(y, p, patient)
        hits_naive += _brier_covers(y, p, None)
    coverage, naive = hits / N_SIMS, hits_naive / N_SIMS
    print(f"Brier cluster Wald coverage: {coverage:.3f} (rows as clusters: {naive:.3f})")
    assert BAND[0] <= coverage <= BAND[1]
    assert naive < 0.90


def test_bootstrap_p_value_is_roughly_uniform_under_the_null():
    # Two groups with the same FNR: a 5% test should reject about 5% of the
    # time. With 1000 simulations the SE of the rate is 0.7 points, so 2-8%
    # is a +-4.3 SE band (5.1% in an unseeded run of 4000 simulations).
    rng = np.random.default_rng(20240607)
    n_sims, n = 1000, 600
    rejections = 0
    for _ in range(n_sims):
        group = rng.integers(0, 2, n)
        y = rng.random(n) < 0.3
        pred = np.where(y, rng.random(n) >= 0.2, rng.random(n) < 0.1)
        counts = bootstrap_counts(group * 4 + cell_codes(y, pred), 8, n_boot=500, random_state=rng)
        fnr = rates_from_counts(counts.reshape(-1, 2, 4))["fnr"]
        rejections += bootstrap_p_value(fnr[:, 1] - fnr[:, 0]) < 0.05
    rate = rejections / n_sims
    print(f"Null rejection rate at 0.05: {rate:.3f}")
    assert 0.02 <= rate <= 0.08
