"""Governance commands: users, attestations, legal holds, retention, erasure, consent, audit
log and its witnessed heads, encryption and signing keys. Each is thin: parse, one governance
call, print (or --json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from faceledger.app.governance import (
    attestations,
    auditing,
    consent,
    destruction,
    holds,
    keys,
    retention,
    users,
)
from faceledger.cli.common import (
    JsonOpt,
    cli_errors,
    emit,
    fail,
    open_library,
    out,
    print_mapping,
    print_table,
)
from faceledger.errors import BadOptionError
from faceledger.ids import checked_id
from faceledger.policy import ROLES
from faceledger.records import AuditFilter

__all__ = ["register"]

users_app = typer.Typer(help="Users, their roles and API keys (admins manage them).",
                        no_args_is_help=True)  # fmt: skip
hold_app = typer.Typer(
    help="Legal holds: nothing they cover is destroyed or erased; releasing "
    "one carries out the destruction it deferred.",
    no_args_is_help=True,
)
retention_app = typer.Typer(help="The retention schedule of the policy file.", no_args_is_help=True)
consent_app = typer.Typer(help="Written releases (consent) of the people photographed.",
                          no_args_is_help=True)  # fmt: skip
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
key_app = typer.Typer(help="The key that encrypts face vectors and index files at rest, and "
                           "Ed25519 keys that sign audit heads.", no_args_is_help=True)  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add the governance commands to ``app`` (once; a second call changes nothing)."""
    if getattr(app, "_faceledger_governance", False):
        return
    app._faceledger_governance = True  # type: ignore[attr-defined]
    app.add_typer(users_app, name="users")
    app.command("attest")(attest)
    app.command("revoke-attestation")(revoke_attestation)
    app.add_typer(hold_app, name="hold")
    app.add_typer(retention_app, name="retention")
    app.command("erase")(erase)
    app.add_typer(consent_app, name="consent")
    app.add_typer(audit_app, name="audit")
    app.add_typer(key_app, name="key")


# -- users ------------------------------------------------------------------------------------
@users_app.command("add")
@cli_errors
def users_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The new user's name (what --as takes).")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    customer_type: Annotated[str | None, typer.Option(
        help="government or private, for a customer; leave out for the operator's staff.")] = None,
    region: Annotated[str | None, typer.Option(
        help="Where a customer is, e.g. US-IL (the policy may refuse some regions).")] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Add a user with a role. Roles: admin runs the library, searcher searches, custodian
    answers for the vault and discovery, auditor checks the record."""
    lib, actor = open_library(ctx)
    emit(users.add_user(lib, actor, name, role, customer_type, region), as_json, print_mapping)


@users_app.command("list")
@cli_errors
def users_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every user: role, customer type, region, disabled, active API keys, attestation."""
    lib, actor = open_library(ctx)
    emit(users.list_users(lib, actor), as_json, lambda rows: print_table(
        rows, ["name", "role", "customer_type", "region", "disabled", "api_keys", "attested"],
        "users"))  # fmt: skip


@users_app.command("disable")
@cli_errors
def users_disable(ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name.")],
                  as_json: JsonOpt = False) -> None:  # fmt: skip
    """Disable a user and revoke their API keys (the user stays in the audit record)."""
    lib, actor = open_library(ctx)
    emit(users.disable_user(lib, actor, name), as_json, print_mapping)


@users_app.command("password")
@cli_errors
def users_password(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    password: Annotated[str, typer.Option(
        prompt=True, hide_input=True, confirmation_prompt=True,
        help="The new password (asked for when not given; at least 12 characters).")],
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Set a user's password for the web console (stored as an argon2 hash, like keys); ends
    their open console sessions. Admins set anyone's; a user may set their own."""
    from faceledger.app.sessions import set_password

    lib, actor = open_library(ctx)
    emit(set_password(lib, actor, name, password), as_json, print_mapping)


@users_app.command("key")
@cli_errors
def users_key(ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name.")],
              as_json: JsonOpt = False) -> None:  # fmt: skip
    """Issue a new API key for a user, revoking their older ones. The key is shown once:
    faceledger stores only its argon2 hash."""
    lib, actor = open_library(ctx)
    emit(users.new_api_key(lib, actor, name), as_json, print_mapping)


# -- attestations -----------------------------------------------------------------------------
@cli_errors
def attest(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user signing: yourself (acting as yourself, "
                                             "with your own API key).")],
    statement_file: Annotated[Path, typer.Option(
        help="Text of the signed statement; its text and SHA-256 are kept.")],
    valid_days: Annotated[int, typer.Option(min=1, help="Days the attestation stays current.")]
    = attestations.DEFAULT_VALID_DAYS,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Record a signed statement about how the user may use their access. A custodian needs a
    current one to read the vault (blocked faces)."""
    lib, actor = open_library(ctx)
    emit(attestations.attest(lib, actor, name, statement_file, valid_days), as_json,
         print_mapping)  # fmt: skip


@cli_errors
def revoke_attestation(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user whose attestation ends now.")],
    reason: Annotated[str, typer.Option(help="Why it is revoked (kept in the audit log).")],
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """End a user's current attestations now (admins); a custodian then has no vault access
    until they sign a new one."""
    lib, actor = open_library(ctx)
    emit(attestations.revoke_attestations(lib, actor, name, reason), as_json, print_mapping)


# -- holds ------------------------------------------------------------------------------------
@hold_app.command("create")
@cli_errors
def hold_create(
    ctx: typer.Context,
    matter: Annotated[str, typer.Option(help='The matter, e.g. "1:21-cv-00135".')],
    scope: Annotated[str, typer.Option(help=f"What is held: {holds.SCOPE_HELP}.")],
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Place a legal hold. Held photos and faces are not destroyed by retention or erasure;
    such requests are recorded and carried out when the last hold on them is released."""
    lib, actor = open_library(ctx)
    emit(holds.create_hold(lib, actor, matter, scope), as_json, print_mapping)


@hold_app.command("list")
@cli_errors
def hold_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every legal hold, active and released, with how many photos each covers now."""
    lib, actor = open_library(ctx)
    emit(holds.list_holds(lib, actor), as_json, lambda rows: print_table(
        rows, ["hold", "matter", "scope", "value", "active", "photos_held", "created_by",
               "created_at", "released_at"], "legal holds"))  # fmt: skip


@hold_app.command("release")
@cli_errors
def hold_release(ctx: typer.Context, hold_id: Annotated[int, typer.Argument(help="Hold id.")],
                 as_json: JsonOpt = False) -> None:  # fmt: skip
    """Release a hold, then carry out the deferred destruction no other hold blocks."""
    lib, actor = open_library(ctx)
    emit(holds.release_hold(lib, actor, checked_id("legal hold", hold_id)), as_json,
         print_mapping)  # fmt: skip


# -- retention and erasure --------------------------------------------------------------------
@retention_app.command("run")
@cli_errors
def retention_run(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what is due.")] = False,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Destroy the face vectors the policy's schedule makes due (3 years after the last
    interaction by default), except what a legal hold covers. Each destruction leaves a
    certificate in the audit log."""
    lib, actor = open_library(ctx)
    emit(retention.run_retention(lib, actor, dry_run=dry_run), as_json, print_mapping)


@retention_app.command("satisfied")
@cli_errors
def retention_satisfied(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option("--reason", help="Why the purpose is satisfied.")],
    face: Annotated[list[int] | None, typer.Option("--face", help="A face id; repeatable.")] = None,
    photos: Annotated[Path | None, typer.Option(
        "--photos", help="File of photo ids, one a line.")] = None,
    subject: Annotated[str | None, typer.Option(
        "--subject", help="Every photo collected under this consent subject.")] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Record that the purpose of some face vectors is satisfied (BIPA: destroy them then).

    `faceledger retention run` destroys them next, unless a legal hold covers them.
    """
    from faceledger.photo_lists import read_photo_ids

    lib, actor = open_library(ctx)
    faces = [checked_id("face", f) for f in face or []]
    emit(retention.mark_purpose_satisfied(
        lib, actor, reason, faces, read_photo_ids(photos) if photos else [], subject),
        as_json, print_mapping)  # fmt: skip


@cli_errors
def erase(
    ctx: typer.Context,
    face: Annotated[int | None, typer.Option(help="Erase this face.")] = None,
    photo: Annotated[int | None, typer.Option(help="Erase this photo, its file and faces.")]
    = None,
    optout: Annotated[int | None, typer.Option(help="Erase every face matched to this opt-out.")]
    = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Destroy a face, a photo or an opt-out's faces everywhere: catalog, vector blobs, both
    indexes, files. Held items are deferred until their hold is released."""
    face, photo, optout = (
        None if value is None else checked_id(kind, value)
        for kind, value in (("face", face), ("photo", photo), ("opt-out", optout))
    )
    lib, actor = open_library(ctx)
    emit(destruction.erase(lib, actor, face=face, photo=photo, optout=optout), as_json,
         print_mapping)  # fmt: skip


# -- consent ----------------------------------------------------------------------------------
@consent_app.command("record")
@cli_errors
def consent_record(
    ctx: typer.Context,
    subject: Annotated[str, typer.Option(help="Who consented: your reference for the person.")],
    purpose: Annotated[str, typer.Option(help="The purpose consented to.")],
    term: Annotated[str, typer.Option(help="How long the data may be kept and used.")],
    release_file: Annotated[Path, typer.Option(
        help="The signed written release; its text and SHA-256 are kept.")],
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Record a written release (BIPA 15(b)): subject, purpose, term and the release text."""
    lib, actor = open_library(ctx)
    emit(consent.record_consent(lib, actor, subject, purpose, term, release_file), as_json,
         print_mapping)  # fmt: skip


@consent_app.command("list")
@cli_errors
def consent_list(
    ctx: typer.Context,
    subject: Annotated[str | None, typer.Option(help="Only this subject's records.")] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Consent records: subject, purpose, term, hash of the release, who recorded it."""
    lib, actor = open_library(ctx)
    emit(consent.list_consents(lib, actor, subject), as_json, lambda rows: print_table(
        rows, ["consent", "subject", "purpose", "term", "recorded_by", "recorded_at"],
        "consent records"))  # fmt: skip


# -- audit log --------------------------------------------------------------------------------
@audit_app.command("head")
@cli_errors
def audit_head(
    ctx: typer.Context,
    out_file: Annotated[Path | None, typer.Option("--out", help=(
        "Append the head as one JSON line to this heads file (outside the library; created "
        "if missing)."))] = None,
    sign_key: Annotated[Path | None, typer.Option(help=(
        "Sign the head with this Ed25519 private key "
        "(see `faceledger key generate --ed25519`)."))] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Witness the audit log's head: append an audit.head entry and print it (id, hash, time).
    Keep the heads where the library's writers cannot reach; `audit verify --anchor` then
    catches a cut tail or a rewritten chain."""
    lib, actor = open_library(ctx)
    emit(auditing.witness_head(lib, actor, out_file, sign_key), as_json, _print_head)


def _print_head(head: dict) -> None:
    out.print(f"audit head: entry {head['id']} sha256 {head['hash']} at {head['at']}",
              highlight=False)  # fmt: skip
    if head.get("key_id"):
        out.print(f"signed with key {head['key_id']}", highlight=False)
    if head.get("out"):
        out.print(f"appended to {head['out']}", highlight=False)


def _print_verify(r: dict) -> None:
    if r["ok"]:
        out.print(f"audit log intact: {r['checked']} entries, last {r['last_id']} "
                  f"{r['last_hash']}", highlight=False)  # fmt: skip
        if r.get("anchor"):
            a = r["anchor"]
            out.print(f"matches {a['heads']} witnessed heads in {a['file']} up to entry "
                      f"{a['newest_id']} (signatures {a['signatures']})",
                      highlight=False)  # fmt: skip
    elif r["first_bad_id"] is None:
        out.print(f"[bold red]audit log fails its witnessed heads:[/] {r['reason']}",
                  highlight=False)  # fmt: skip
    else:
        out.print(f"[bold red]audit log broken at entry {r['first_bad_id']}:[/] {r['reason']}",
                  highlight=False)  # fmt: skip


@audit_app.command("verify")
@cli_errors
def audit_verify(
    ctx: typer.Context,
    anchor: Annotated[Path | None, typer.Option(help=(
        "A heads file written by `audit head --out`: also fail when the log no longer reaches "
        "or no longer matches a head witnessed there."))] = None,
    verify_key: Annotated[Path | None, typer.Option(help=(
        "Ed25519 public key (the .pub file): every head in --anchor must carry a valid "
        "signature by it."))] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Check the hash chain; exits 1 and names the first entry that was edited, deleted,
    inserted or moved, or the witnessed head (--anchor) that the log no longer matches."""
    lib, actor = open_library(ctx)
    result = auditing.verify_log(lib, actor, anchor, verify_key)
    emit(result, as_json, _print_verify)
    if not result["ok"]:
        raise typer.Exit(1)


@audit_app.command("export")
@cli_errors
def audit_export(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(
        help="Only entries at or after this time (ISO 8601, e.g. 2024-01-31 or "
             "2024-01-31T12:00:00+00:00; no zone means UTC).")] = None,
    until: Annotated[str | None, typer.Option(
        help="Only entries at or before this time (ISO 8601, like --since; a date alone "
             "includes that whole day).")] = None,
    actor: Annotated[str | None, typer.Option(
        "--actor", help="Only entries by this user (e.g. public, for the opt-out page).")] = None,
    action: Annotated[str | None, typer.Option(
        "--action", help="Only entries of this action, e.g. search or session.sign_in.")] = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Export audit entries with their hashes (JSON with --json). The export is itself logged."""
    times = {}
    for flag, value in (("--since", since), ("--until", until)):
        try:
            times[flag] = auditing.parse_bound(value, end=flag == "--until")
        except ValueError:
            raise fail(BadOptionError(f"{flag} {value!r} is not an ISO 8601 time"),
                       as_json) from None  # fmt: skip
    lib, me = open_library(ctx)
    where = AuditFilter(times["--since"], times["--until"], actor, action)
    entries = list(auditing.export_log(lib, me, where))
    emit(entries, as_json, lambda rows: print_table(
        rows, ["id", "at", "actor", "action", "object_ids"], "audit entries"))  # fmt: skip


# -- keys -------------------------------------------------------------------------------------
@key_app.command("generate")
@cli_errors
def key_generate(
    ctx: typer.Context,
    key_file: Annotated[Path, typer.Option(help="Where to write the key (outside the library; "
                                                "never overwritten).")],
    ed25519: Annotated[bool, typer.Option("--ed25519", help=(
        "Write an Ed25519 key pair for signing audit heads instead: the private key at "
        "--key-file (0600) and the public key at KEY_FILE.pub."))] = False,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Write a new random encryption key to a file (mode 0600). Use it with
    `faceledger key rotate --new-key-file`, then set FACELEDGER_KEY_FILE to it. With
    --ed25519: a signing key pair for `audit head --sign-key` and `audit verify --verify-key`."""
    lib, actor = open_library(ctx)
    make = keys.generate_signing_key if ed25519 else keys.generate
    emit(make(lib, actor, key_file), as_json, print_mapping)


@key_app.command("rotate")
@cli_errors
def key_rotate(
    ctx: typer.Context,
    new_key_file: Annotated[Path, typer.Option(
        help="Key file to re-encrypt with (created if missing; must be outside the library).")],
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Re-encrypt every face vector and both index files with a new key (this also encrypts a
    library that had none). The current key must be loaded (FACELEDGER_KEY_FILE)."""
    lib, actor = open_library(ctx)
    emit(keys.rotate(lib, actor, new_key_file), as_json, print_mapping)
