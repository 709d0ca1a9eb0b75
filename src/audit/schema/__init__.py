"""JSON Schemas of the files future-audit writes (draft 2020-12).

``results.schema.json`` describes results.json (:meth:`AuditResult.to_json`); the prose
version is docs/results-json.md.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

RESULTS_SCHEMA = "results.schema.json"


def results_schema() -> dict[str, Any]:
    """The JSON Schema of results.json, as a dict (validate with e.g. ``jsonschema``)."""
    text = resources.files(__name__).joinpath(RESULTS_SCHEMA).read_text(encoding="utf-8")
    return json.loads(text)


__all__ = ["RESULTS_SCHEMA", "results_schema"]
