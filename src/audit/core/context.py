"""The audit context handed to every plugin, and the prediction cache.

The model is called once per dataset; every plugin reads the cached predictions, keyed by
the model's and the data's fingerprints (Evidently's snapshot cache).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audit.core.config import AuditConfig
from audit.errors import InputError, ModelError
from audit.io.tables import Dataset


class PredictionCache:
    """Model outputs keyed by (model fingerprint, data fingerprint)."""

    def __init__(self) -> None:
        self._store: dict[tuple[str, ...], np.ndarray] = {}
        self.calls = 0  # how many times the model was actually called (tests check it is once)

    def get(self, model, dataset: Dataset, features: list[str], progress: Any = None) -> np.ndarray:
        """The model's scores on ``dataset``, computed on the first request only.

        An adapter with ``needs_dataset = True`` (image models: relative image paths start at
        the manifest's folder) is called as ``model.predict_dataset(dataset, progress=...)``;
        the others get the feature columns (the whole frame for precomputed predictions).
        """
        needs_dataset = getattr(model, "needs_dataset", False)
        key: tuple[str, ...] = (model.fingerprint(), dataset.fingerprint)
        if needs_dataset:
            # Two identical manifests in two folders name different images.
            key += (str(Path(dataset.path).resolve().parent),)
        if key not in self._store:
            self.calls += 1
            if needs_dataset:
                result = model.predict_dataset(dataset, progress=progress)
            else:
                frame = dataset.frame if model.kind == "predictions" else dataset.frame[features]
                result = model.predict(frame)
            scores = np.asarray(result, dtype=float)
            if scores.ndim == 1:
                scores = scores[:, None]
            if scores.shape[0] != dataset.n_rows:
                raise ModelError(
                    f"The model ({model.source}) returned {scores.shape[0]} predictions for "
                    f"{dataset.n_rows} rows of {dataset.path}."
                )
            _check_probabilities(scores, f"predictions of {model.source} on {dataset.path}")
            scores.setflags(write=False)
            self._store[key] = scores
        return self._store[key]


def _check_probabilities(scores: np.ndarray, source: str) -> None:
    n_nan = int(np.isnan(scores).sum())
    if n_nan:
        raise InputError(f"The {source} contain {n_nan} NaN values; expected probabilities in [0, 1].")
    bad = (scores < 0) | (scores > 1)
    if bad.any():
        raise InputError(
            f"The {source} have {int(bad.sum())} values outside [0, 1] (min {scores.min():g}, "
            f"max {scores.max():g}); expected probabilities (apply a sigmoid to logits)."
        )


@dataclass
class AuditContext:
    """What a plugin may use: configuration, datasets, model predictions, seed, progress.

    Plugins take this one argument so the context can grow without breaking them.
    """

    config: AuditConfig
    data: Dataset
    model: Any
    reference: Dataset | None = None
    cache: PredictionCache = field(default_factory=PredictionCache)
    progress: Callable[..., Any] | None = None
    warnings: list[str] = field(default_factory=list)
    # What the plugins that ran before have published, and the counts their suppression
    # protects: one reader sees every plugin's numbers (see suppress).
    published: list[Any] = field(default_factory=list)
    protected: list[Any] = field(default_factory=list)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.config.data.label

    @property
    def sensitive(self) -> tuple[str, ...]:
        return self.config.data.sensitive

    @property
    def id_column(self) -> str | None:
        return self.config.data.id

    @property
    def random_state(self) -> int | None:
        return self.config.seed

    @property
    def min_cell(self) -> int:
        return self.config.report.min_cell

    def predictions(self, dataset: str = "data") -> np.ndarray:
        """Cached model scores of shape (n_rows, n_labels) for ``"data"`` or ``"reference"``."""
        ds = self.data if dataset == "data" else self.reference
        if ds is None:
            raise ValueError(f"No {dataset} dataset in this audit.")
        scores = self.cache.get(self.model, ds, list(self.config.data.features), progress=self.progress)
        if scores.shape[1] != len(self.labels):
            raise ModelError(
                f"The model ({self.model.source}) returns {scores.shape[1]} outputs per row but "
                f"{len(self.labels)} label column(s) are configured ({', '.join(self.labels)}); "
                "give one score per label."
            )
        return scores

    def publish_totals(self) -> None:
        """Record what the data summary makes public: the audited rows and, per label, the
        positive rows (a reader subtracts every published group from these)."""
        from audit.core.results import Metric

        n = int(self.data.n_rows)
        self.published.append(Metric("n", n, n=n))
        multi = len(self.labels) > 1
        for lab in self.labels:
            self.published.append(Metric("positives", int(self.data.frame[lab].sum()), n=n,
                                         label=lab if multi else None))

    def suppress(self, metrics: list, protected: list) -> list:
        """Complementary suppression of a plugin's records against everything published so far.

        Parameters
        ----------
        metrics : list of Metric
            The plugin's records that carry counts or rates, primary suppression marked.
        protected : list of Count
            The counts its primary suppression hides.

        Returns
        -------
        list of Metric
            The records with complements hidden (:func:`audit.privacy.secondary_suppression`,
            with ``published`` the records of the plugins that ran before, and their protected
            counts protected again). The result joins what is published, so call this once
            for each batch of records a plugin writes.
        """
        from audit.privacy import secondary_suppression

        everything = [*self.protected, *protected]
        out = secondary_suppression(metrics, everything, published=self.published)
        self.published.extend(out)
        self.protected.extend(protected)
        return out

    def warn(self, message: str) -> None:
        """Record a warning that the report states (e.g. identifier leakage)."""
        if message not in self.warnings:
            self.warnings.append(message)
