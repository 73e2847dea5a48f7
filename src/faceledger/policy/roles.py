"""Roles and what each may do.

Duties are separated: the admin runs the library but cannot read the vault or locate people;
custodians answer for the vault and for legal discovery; searchers search; auditors check the
record without touching biometric data. The owner that ``init`` creates is an admin.
``public`` is built in, not a role a user can have: the web service's public opt-out page acts
as it, and it may only submit opt-outs (the page answers with a receipt, never with matches).

================================  =====  ========  =========  =======  ======
action                            admin  searcher  custodian  auditor  public
================================  =====  ========  =========  =======  ======
init                              yes
ingest                            yes
search                            yes    yes
show                              yes    yes       yes
stats                             yes    yes       yes        yes
reindex                           yes
sites.import                      yes
sites.list                        yes    yes       yes        yes
policy.apply                      yes
policy.show                       yes    yes       yes        yes
policy.publish                    yes
optout.submit                     yes              yes                 yes
optout.list                       yes              yes        yes
discovery.count                                    yes        yes
discovery.sources                                  yes        yes
discovery.vector_dates                             yes        yes
discovery.locate                                   yes
discovery.people                                   yes
discovery.produce                                  yes
discovery.report                                   yes
discovery.nexus                                    yes
discovery.usage                                    yes        yes
discovery.compliance                               yes        yes
discovery.recount                                  yes
vault.read                                         yes
users.manage                      yes
users.list                        yes                         yes
attest                            yes    yes       yes        yes
hold.manage                       yes              yes
hold.list                         yes              yes        yes
retention.run                     yes              yes
erase                                              yes
consent.record                    yes              yes
consent.list                      yes              yes        yes
audit.verify                      yes              yes        yes
audit.export                                       yes        yes
key.rotate                        yes
================================  =====  ========  =========  =======  ======
"""

from __future__ import annotations

from faceledger.errors import PermissionDenied

__all__ = [
    "ROLES",
    "PUBLIC_ROLE",
    "ALL_ROLES",
    "PERMISSIONS",
    "ACTIONS",
    "authorize",
    "allowed_roles",
    "actions_for",
]

#: Every role a user can have.
ROLES: tuple[str, ...] = ("admin", "searcher", "custodian", "auditor")

#: The built-in role of the public opt-out page (no user has it).
PUBLIC_ROLE = "public"
#: Every role an actor can act with: the users' roles and the built-in one.
ALL_ROLES: tuple[str, ...] = (*ROLES, PUBLIC_ROLE)

_ALL = frozenset(ROLES)
_A, _S, _C, _U, _P = "admin", "searcher", "custodian", "auditor", PUBLIC_ROLE

#: Action name -> the roles allowed to perform it (the table in this module's docstring).
PERMISSIONS: dict[str, frozenset[str]] = {
    "init": frozenset({_A}),
    "ingest": frozenset({_A}),
    # The owner runs a small library alone: admins search the searchable index (never the vault).
    "search": frozenset({_A, _S}),
    # Custodians need `show` to see blocked faces in their photos for legal review.
    "show": frozenset({_A, _S, _C}),
    # Counts shown to non-custodians exclude blocked faces (the library enforces that).
    "stats": _ALL,
    "reindex": frozenset({_A}),
    "sites.import": frozenset({_A}),
    "sites.list": _ALL,
    "policy.apply": frozenset({_A}),
    "policy.show": _ALL,
    "policy.publish": frozenset({_A}),
    # The public opt-out page acts as the built-in `public` role.
    "optout.submit": frozenset({_A, _C, _P}),
    "optout.list": frozenset({_A, _C, _U}),
    # Aggregate discovery answers contain no biometric data, so auditors may check them.
    "discovery.count": frozenset({_C, _U}),
    "discovery.sources": frozenset({_C, _U}),
    "discovery.vector_dates": frozenset({_C, _U}),
    # These reach into the vault or identify people: custodians only.
    "discovery.locate": frozenset({_C}),
    "discovery.people": frozenset({_C}),
    "discovery.produce": frozenset({_C}),
    "discovery.report": frozenset({_C}),
    # Nexus names photos whose faces may be in the vault; usage and compliance are answers
    # from the record (compliance over blocked faces needs a custodian, the library checks).
    "discovery.nexus": frozenset({_C}),
    "discovery.usage": frozenset({_C, _U}),
    "discovery.compliance": frozenset({_C, _U}),
    "discovery.recount": frozenset({_C}),
    "vault.read": frozenset({_C}),
    "users.manage": frozenset({_A}),
    "users.list": frozenset({_A, _U}),
    "attest": _ALL,
    "hold.manage": frozenset({_A, _C}),
    "hold.list": frozenset({_A, _C, _U}),
    "retention.run": frozenset({_A, _C}),
    "erase": frozenset({_C}),
    "consent.record": frozenset({_A, _C}),
    "consent.list": frozenset({_A, _C, _U}),
    # Also `audit head` (witnessing the head) and `key generate --ed25519` (the witness's key).
    "audit.verify": frozenset({_A, _C, _U}),
    "audit.export": frozenset({_C, _U}),
    "key.rotate": frozenset({_A}),
}

#: Every action name, in the order of the table.
ACTIONS: tuple[str, ...] = tuple(PERMISSIONS)


def allowed_roles(action: str) -> tuple[str, ...]:
    """The roles that may perform ``action``, in the order of ALL_ROLES."""
    try:
        allowed = PERMISSIONS[action]
    except KeyError:
        # A programming error, not a user's: every command must use a listed action.
        raise ValueError(f"unknown action {action!r}; actions are: {', '.join(ACTIONS)}") from None
    return tuple(role for role in ALL_ROLES if role in allowed)


def actions_for(role: str) -> tuple[str, ...]:
    """The actions ``role`` may perform, in the order of ACTIONS."""
    return tuple(action for action, roles in PERMISSIONS.items() if role in roles)


def authorize(role: str, action: str) -> None:
    """Raise PermissionDenied unless ``role`` may perform ``action``."""
    allowed = allowed_roles(action)
    if role not in ALL_ROLES:
        raise PermissionDenied(
            f"unknown role {role!r}; roles are {', '.join(ROLES)}: "
            "ask an admin to fix this user with `faceledger users`"
        )
    if role not in allowed:
        raise PermissionDenied(
            f"role {role!r} may not {action!r}; allowed: {', '.join(allowed)}. Act as a user "
            "with one of those roles, or ask an admin for one (`faceledger users`)"
        )
