"""The public written policy BIPA 740 ILCS 14/15(a) requires, rendered from the policy file."""

from __future__ import annotations

import html
from datetime import date

import markdown

from faceledger.policy.rules import Policy

__all__ = ["public_policy_markdown", "public_policy_html"]


def _signals(signals: tuple[str, ...]) -> str:
    words = {
        "gps": "the photo's GPS position",
        "uploader": "the region its uploader gave",
        "publisher": "the region of the website's publisher",
        "subject": "an opt-out filed by a resident",
    }
    return "; ".join(words[s] for s in signals)


def public_policy_markdown(policy: Policy, organisation: str, effective: date) -> str:
    """The retention schedule and destruction guidelines as Markdown, for publication."""
    r = policy.retention
    when = []
    if r.destroy_when_purpose_satisfied:
        when.append("when the purpose for which it was collected has been satisfied")
    if r.max_years_since_last_interaction:
        when.append(
            f"within {r.max_years_since_last_interaction} years of the individual's last "
            "interaction with us"
        )
    schedule = " or ".join(when) or "as set out by the policy owner"
    lines = [
        f"# Biometric data retention and destruction policy — {organisation}",
        "",
        f"Effective {effective.isoformat()}. Policy version {policy.version}"
        + (f", owned by {policy.owner}." if policy.owner else "."),
        "",
        "## What we collect and why",
        "",
        "We compute face geometry (a face template: a list of 128 numbers) from photographs in "
        "collections we hold, to provide this service:",
        "",
        f"> {r.purpose}",
        "",
        "We do not infer race, gender, age or emotion, and we do not sell, lease or trade face "
        "templates.",
        "",
        "## Retention schedule",
        "",
        f"We permanently destroy a face template {schedule}, whichever occurs first.",
        "Photographs are destroyed with their face templates."
        if r.destroy_photos
        else "Photographs themselves are kept under our general records policy.",
        "",
        "Destruction removes the template from our database, from every search index and from "
        "stored files, and is recorded with a destruction certificate in a tamper-evident audit "
        "log. Data subject to a court order or legal hold is kept until the hold is released, "
        "then destroyed on this schedule.",
        "",
        "## Where we block search",
        "",
    ]
    if policy.blocking:
        for rule in policy.blocking:
            lines.append(
                f"- **{rule.region}**: faces tied to it by {_signals(rule.signals)} are removed "
                "from search and kept only for legal obligations."
            )
    else:
        lines.append("- No region is blocked.")
    lines += ["", "## Consent", ""]
    consent = policy.consent
    if consent.required:
        lines.append("We make no face searchable without a written release from its subject.")
    elif consent.collections:
        lines.append(
            "We make no face searchable without a written release from its subject in these "
            f"collections: {', '.join(consent.collections)}."
        )
    else:
        lines.append("Written releases are recorded where a subject provides one.")
    lines += [
        "",
        "## Opting out",
        "",
        "Anyone may ask us to block their face. We match the request against stored faces "
        "using a photo held in memory only; we keep the request and the matched face ids, never "
        "the photo or a template computed from it.",
        "",
    ]
    return "\n".join(lines)


def public_policy_html(policy: Policy, organisation: str, effective: date) -> str:
    """The same policy as a standalone HTML page."""
    body = markdown.markdown(public_policy_markdown(policy, organisation, effective))
    title = html.escape(f"Biometric data policy — {organisation}")
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;"
        "padding:0 1rem;line-height:1.5}blockquote{border-left:4px solid #ccc;margin-left:0;"
        "padding-left:1rem;color:#333}</style></head>\n<body>\n"
        f"{body}\n</body></html>\n"
    )
