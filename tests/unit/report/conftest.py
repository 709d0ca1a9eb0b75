"""Fixtures for the renderer tests; the factories are in factories.py."""

from __future__ import annotations

import pytest

from audit.core.results import AuditResult

from .factories import make_result


@pytest.fixture
def result() -> AuditResult:
    return make_result()
