"""restore_check on any database: the inventory it writes is the one it checks, and a difference is named."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from alerts.models import Silence
from console.audit import audit_record
from tests.security.builders import build_world


def test_restore_check_passes_on_the_same_database_and_names_what_changed(customer_a, engineer, tmp_path, capsys):
    build_world(customer_a, engineer)
    manifest = tmp_path / "m.json"
    call_command("restore_check", write=str(manifest))
    call_command("restore_check", against=str(manifest))
    assert "restore complete" in capsys.readouterr().out
    written = json.loads(manifest.read_text())
    assert written["tables"]["tickets.ticket"]["rows"] == 1 and written["audit"]["events"] > 0

    Silence.objects.all().delete()
    audit_record(action="test.extra", object_type="test", object_id="1")
    with pytest.raises(CommandError) as refused:
        call_command("restore_check", against=str(manifest))
    assert "alerts.silence: 0 rows, expected 1" in str(refused.value)
    assert "audit chain broken" in str(refused.value)


def test_restore_check_refuses_an_unreadable_manifest(db, tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text("{not json")
    with pytest.raises(CommandError, match="cannot read the manifest"):
        call_command("restore_check", against=str(bad))
