"""Stable HTML ids, so the checklist table, the verdict and other documents can link a finding."""

from __future__ import annotations


def slug(text: str) -> str:
    """A valid, readable HTML id fragment: ASCII letters, digits, ``_ . -``; anything else ``-``."""
    out = "".join(c if (c.isascii() and c.isalnum()) or c in "_.-" else "-" for c in str(text))
    return out or "-"


def plugin_anchor(plugin: str) -> str:
    """``plugin-<name>``: the plugin's section under Findings."""
    return "plugin-" + slug(plugin)


def finding_anchor(plugin: str, finding_id: str) -> str:
    """``finding-<plugin>-<finding id>``: one finding's row under Findings."""
    return f"finding-{slug(plugin)}-{slug(finding_id)}"
