"""`policy publish`: write the public policy files and record that they were published."""

from __future__ import annotations

import hashlib
from pathlib import Path

from faceledger import audit
from faceledger.app.library import Actor, Library
from faceledger.clock import utcnow
from faceledger.files import atomic_write
from faceledger.policy.publication import public_policy_html, public_policy_markdown

__all__ = ["publish_policy"]


def publish_policy(lib: Library, actor: Actor, out_dir: Path, organisation: str) -> dict:
    """Write biometric-policy.md and .html from the policy in force; audited with their hashes."""
    lib.authorize(actor, "policy.publish")
    today = utcnow().date()
    files = {
        "markdown": (out_dir / "biometric-policy.md",
                     public_policy_markdown(lib.policy, organisation, today)),
        "html": (out_dir / "biometric-policy.html",
                 public_policy_html(lib.policy, organisation, today)),
    }  # fmt: skip
    result = {}
    for kind, (path, text) in files.items():
        atomic_write(path, text.encode("utf-8"))
        result[kind] = str(path)
        result[f"{kind}_sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    with lib.writing() as conn:
        result["policy_version"] = lib.policy_version()
        audit.append(conn, actor.name, "policy.publish", details=result)
    return result
