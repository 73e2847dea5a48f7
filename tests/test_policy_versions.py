"""The policy in force is the last one applied; a bad file never replaces it."""

from __future__ import annotations

import json

from helpers import cli
from sqlalchemy import select

from faceledger.app.library import Library
from faceledger.catalog import schema as t


def test_bad_policy_file_is_refused_and_versions_are_recorded(settings):
    assert cli(settings.library, "init").exit_code == 0
    policy = settings.library / "policy.yaml"
    good = policy.read_text()
    policy.write_text(good.replace("signals: [gps, uploader, publisher, subject]",
                                   "signals: [gps, telepathy]"))  # fmt: skip
    result = cli(settings.library, "policy", "apply")
    assert result.exit_code == 4  # a configuration error
    assert "telepathy" in result.stderr and "allowed" in result.stderr
    shown = json.loads(cli(settings.library, "policy", "show", "--json").stdout)
    assert shown["blocking"][0]["signals"] == ["gps", "uploader", "publisher", "subject"]
    assert shown["file_has_unapplied_edits"]

    policy.write_text(good.replace("deny_regions: []", "deny_regions: [US-IL]"))
    applied = json.loads(cli(settings.library, "policy", "apply", "--json").stdout)
    assert applied["policy_version"] == 2
    lib = Library.open(settings)
    with lib.catalog.engine.connect() as conn:
        rows = conn.execute(select(t.policy_versions)).mappings().all()
    assert [r["applied_by"] for r in rows] == ["owner", "owner"]
    assert "deny_regions: [US-IL]" in rows[1]["body"]
    assert lib.policy.customers.deny_regions == ("US-IL",)
