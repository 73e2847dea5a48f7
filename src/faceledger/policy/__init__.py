"""Policy: jurisdictions of a GPS position, blocking and customer rules, roles, retention.

Pure: it reads its own data and policy text, and touches no database.
"""

from faceledger.policy.geo import jurisdictions_for_gps, resolve_point
from faceledger.policy.retention import (
    RULE_MAX_AGE,
    RULE_PURPOSE,
    destruction_deadline,
    destruction_due,
)
from faceledger.policy.roles import (
    ACTIONS,
    ALL_ROLES,
    PERMISSIONS,
    PUBLIC_ROLE,
    ROLES,
    actions_for,
    allowed_roles,
    authorize,
)
from faceledger.policy.rules import (
    CUSTOMER_TYPES,
    SIGNALS,
    BlockingRule,
    ConsentRules,
    CustomerRules,
    Policy,
    RetentionRules,
    block_reasons,
    blocking_changes,
    default_policy_text,
    load_policy,
    region_covers,
    search_refusal,
)

__all__ = [
    # geo
    "resolve_point",
    "jurisdictions_for_gps",
    # rules
    "SIGNALS",
    "CUSTOMER_TYPES",
    "Policy",
    "BlockingRule",
    "CustomerRules",
    "RetentionRules",
    "ConsentRules",
    "default_policy_text",
    "load_policy",
    "region_covers",
    "block_reasons",
    "blocking_changes",
    "search_refusal",
    # roles
    "ROLES",
    "PUBLIC_ROLE",
    "ALL_ROLES",
    "ACTIONS",
    "PERMISSIONS",
    "authorize",
    "allowed_roles",
    "actions_for",
    # retention
    "RULE_PURPOSE",
    "RULE_MAX_AGE",
    "destruction_due",
    "destruction_deadline",
]
