"""`policy publish` renders the BIPA 15(a) public policy from the policy file in force."""

from __future__ import annotations

import hashlib
import json

from helpers import cli


def test_publish_follows_the_policy_file(tmp_path, settings):
    assert cli(settings.library, "init").exit_code == 0
    policy = settings.library / "policy.yaml"
    policy.write_text(policy.read_text().replace(
        "max_years_since_last_interaction: 3", "max_years_since_last_interaction: 2"))
    assert cli(settings.library, "policy", "apply").exit_code == 0
    out = tmp_path / "public"
    result = cli(settings.library, "policy", "publish", "--out", str(out), "--organisation",
                 "Archive <Co>", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    text = (out / "biometric-policy.md").read_text()
    assert "within 2 years of the individual's last interaction" in text
    assert "**US-IL**" in text
    page = (out / "biometric-policy.html").read_text()
    assert "<h2>Retention schedule</h2>" in page and "Archive &lt;Co&gt;" in page
    assert data["markdown_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    # Only an admin publishes.
    assert cli(settings.library, "users", "add", "sam", "--role", "searcher").exit_code == 0
    refused = cli(settings.library, "policy", "publish", "--out", str(out), user="sam")
    assert refused.exit_code != 0
