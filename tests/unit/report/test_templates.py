from __future__ import annotations

from pathlib import Path

import pytest

import audit
from audit.errors import AuditError
from audit.report import templates
from audit.report.templates import templates_dir

REPO_TEMPLATES = Path(__file__).resolve().parents[3] / "reports" / "templates"


def test_falls_back_to_the_repository(monkeypatch, tmp_path):
    monkeypatch.setattr(audit, "__file__", str(tmp_path / "audit" / "__init__.py"))
    assert templates_dir() == REPO_TEMPLATES
    assert (templates_dir() / "report.html.j2").is_file()


def test_prefers_the_installed_package(monkeypatch, tmp_path):
    installed = tmp_path / "audit" / "templates"
    installed.mkdir(parents=True)
    monkeypatch.setattr(audit, "__file__", str(tmp_path / "audit" / "__init__.py"))
    assert templates_dir() == installed


def test_missing_everywhere_names_both_places(monkeypatch, tmp_path):
    monkeypatch.setattr(audit, "__file__", str(tmp_path / "audit" / "__init__.py"))
    monkeypatch.setattr(templates, "__file__", str(tmp_path / "x" / "y" / "z" / "templates.py"))
    with pytest.raises(AuditError, match="Report templates not found in .*audit/templates nor in"):
        templates_dir()


def test_css_has_no_jinja_syntax():
    # report.css is included as a template: "{#", "{{" or "{%" in it would be parsed.
    css = (REPO_TEMPLATES / "report.css").read_text(encoding="utf-8")
    assert not any(token in css for token in ("{#", "{{", "{%"))
