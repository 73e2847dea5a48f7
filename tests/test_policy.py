"""The policy file, blocking and customer rules, the role matrix, and retention due dates."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
import yaml

from faceledger.errors import ConfigError, PermissionDenied
from faceledger.policy import (
    ACTIONS,
    ALL_ROLES,
    PERMISSIONS,
    ROLES,
    RULE_MAX_AGE,
    RULE_PURPOSE,
    SIGNALS,
    Policy,
    actions_for,
    allowed_roles,
    authorize,
    block_reasons,
    default_policy_text,
    destruction_deadline,
    destruction_due,
    load_policy,
    search_refusal,
)
from faceledger.records import Jurisdiction

DEFAULT = load_policy(default_policy_text())


def policy_with(**sections) -> Policy:
    """The default policy file with some top-level keys replaced."""
    data = yaml.safe_load(default_policy_text())
    data.update(sections)
    return load_policy(yaml.safe_dump(data))


# -- default policy ------------------------------------------------------------------------


def test_default_policy_blocks_illinois_by_every_signal_and_nothing_else():
    assert len(DEFAULT.blocking) == 1
    rule = DEFAULT.blocking[0]
    assert rule.region == "US-IL"
    assert set(rule.signals) == {"gps", "uploader", "publisher", "subject"} == set(SIGNALS)


def test_default_policy_denies_private_customers_only():
    assert DEFAULT.customers.deny_types == ("private",)
    assert DEFAULT.customers.deny_regions == ()


def test_default_retention_and_consent():
    r = DEFAULT.retention
    assert r.destroy_when_purpose_satisfied is True
    assert r.max_years_since_last_interaction == 3
    assert r.destroy_photos is False
    assert "photo collections" in r.purpose
    assert DEFAULT.consent.required is False
    assert DEFAULT.consent.collections == ()


def test_default_text_is_commented_and_equals_the_model_defaults():
    text = default_policy_text()
    assert text.lstrip().startswith("#")
    assert "740 ILCS 14" in text  # says why Illinois is blocked
    assert Policy() == DEFAULT


def test_missing_keys_take_the_default_values():
    policy = load_policy("owner: Privacy Office\n")
    assert policy.owner == "Privacy Office"
    assert policy.blocking == DEFAULT.blocking
    assert policy.customers.deny_types == ("private",)


def test_version_written_as_a_number_is_kept_as_text():
    assert load_policy("version: 2\n").version == "2"
    assert load_policy("version: 2.1\n").version == "2.1"


def test_region_codes_are_normalised_to_upper_case():
    policy = load_policy("blocking:\n  - {region: ' us-tx ', signals: [gps]}\n")
    assert policy.blocking[0].region == "US-TX"


# -- validation ----------------------------------------------------------------------------


def expect_config_error(text: str, *fragments: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_policy(text)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_bad_yaml_is_a_config_error():
    expect_config_error("blocking: [\n", "not valid YAML")


def test_empty_or_non_mapping_file():
    expect_config_error("", "empty")
    expect_config_error("# only a comment\n", "empty")
    expect_config_error("- US-IL\n", "must be a mapping", "blocking")


def test_unknown_signal_names_the_field_and_the_allowed_values():
    expect_config_error(
        "blocking:\n  - {region: US-IL, signals: [gps, gsp]}\n",
        "blocking[0].signals[1]",
        "'gsp'",
        "'gps', 'uploader', 'publisher' or 'subject'",
    )


@pytest.mark.parametrize("region", ["USA", "Illinois", "U-IL", "US-ILLI", "US_IL", "12", "US-"])
def test_bad_region_code(region):
    expect_config_error(
        f"blocking:\n  - {{region: '{region}', signals: [gps]}}\n",
        "blocking[0].region",
        "'US-IL'",
    )


def test_bad_region_in_customer_rules():
    expect_config_error("customers: {deny_regions: [Illinois]}\n", "customers.deny_regions[0]")


def test_unknown_keys_are_forbidden_and_allowed_keys_listed():
    expect_config_error("blokking: []\n", "blokking: unknown key", "blocking", "retention")
    expect_config_error(
        "retention: {max_years: 2}\n",
        "retention.max_years: unknown key",
        "max_years_since_last_interaction",
    )
    expect_config_error(
        "blocking:\n  - {region: US-IL, signals: [gps], note: x}\n",
        "blocking[0].note: unknown key",
        "region, signals",
    )


def test_key_given_twice_is_an_error_not_silently_the_last():
    expect_config_error("blocking: []\nblocking: []\n", "'blocking' appears twice")


def test_unknown_customer_type():
    expect_config_error(
        "customers: {deny_types: [privat]}\n", "customers.deny_types[0]", "'private'"
    )


def test_rule_without_signals_and_duplicate_regions():
    expect_config_error("blocking:\n  - {region: US-IL, signals: []}\n", "at least one signal")
    expect_config_error("blocking:\n  - {region: US-IL}\n", "blocking[0].signals: required")
    expect_config_error(
        "blocking:\n  - {region: US-IL, signals: [gps]}\n  - {region: us-il, signals: [subject]}\n",
        "US-IL has more than one rule",
    )


def test_retention_values_checked():
    expect_config_error(
        "retention: {max_years_since_last_interaction: 0}\n", "max_years_since_last_interaction"
    )
    expect_config_error(
        "retention: {max_years_since_last_interaction: 2.5}\n", "max_years_since_last_interaction"
    )
    expect_config_error("retention: {purpose: '  '}\n", "retention.purpose", "purpose")
    expect_config_error("consent: {required: 'maybe'}\n", "consent.required")


def test_all_problems_are_reported_at_once():
    message = expect_config_error("foo: 1\ncustomers: {deny_types: [x]}\n", "2 problem(s)")
    assert "foo" in message and "customers.deny_types[0]" in message


def test_no_time_limit_is_allowed():
    policy = load_policy("retention: {max_years_since_last_interaction: null}\n")
    assert policy.retention.max_years_since_last_interaction is None


# -- blocking ------------------------------------------------------------------------------


@pytest.mark.parametrize("signal", ["gps", "uploader", "publisher", "subject"])
def test_default_blocks_illinois_by_each_signal(signal):
    jur = Jurisdiction("US-IL", signal)
    assert block_reasons(DEFAULT, [jur]) == [jur]


def test_other_regions_are_not_blocked_by_default():
    jurs = [Jurisdiction("US-MO", "gps"), Jurisdiction("US", "gps"), Jurisdiction("FR", "uploader")]
    assert block_reasons(DEFAULT, jurs) == []
    assert block_reasons(DEFAULT, []) == []


def test_block_reasons_keeps_only_the_triggering_jurisdictions():
    jurs = [
        Jurisdiction("US-IL", "gps"),
        Jurisdiction("US", "gps"),
        Jurisdiction("FR", "uploader"),
        Jurisdiction("US-IL", "publisher"),
        Jurisdiction("US-IL", "gps"),  # repeated: reported once
    ]
    assert block_reasons(DEFAULT, iter(jurs)) == [
        Jurisdiction("US-IL", "gps"),
        Jurisdiction("US-IL", "publisher"),
    ]


def test_removing_the_rule_unblocks():
    unblocked = policy_with(blocking=[])
    assert block_reasons(unblocked, [Jurisdiction("US-IL", s) for s in SIGNALS]) == []


def test_a_rule_blocks_only_its_listed_signals():
    gps_only = policy_with(blocking=[{"region": "US-IL", "signals": ["gps"]}])
    assert block_reasons(gps_only, [Jurisdiction("US-IL", "gps")]) == [Jurisdiction("US-IL", "gps")]
    assert block_reasons(gps_only, [Jurisdiction("US-IL", "uploader")]) == []


def test_a_country_rule_covers_its_subdivisions_but_not_the_reverse():
    policy = policy_with(blocking=[{"region": "US", "signals": ["uploader"]}])
    assert block_reasons(policy, [Jurisdiction("US-TX", "uploader")]) == [
        Jurisdiction("US-TX", "uploader")
    ]
    assert block_reasons(DEFAULT, [Jurisdiction("US", "uploader")]) == []
    # "US-I" must not cover "US-IL" (prefix match only on whole codes).
    partial = policy_with(blocking=[{"region": "US-I", "signals": ["gps"]}])
    assert block_reasons(partial, [Jurisdiction("US-IL", "gps")]) == []


def test_lower_case_jurisdiction_regions_still_match():
    assert block_reasons(DEFAULT, [Jurisdiction("us-il", "gps")]) == [Jurisdiction("us-il", "gps")]


# -- customers -----------------------------------------------------------------------------


def test_private_customers_may_not_search_by_default():
    reason = search_refusal(DEFAULT, "private", "US-NY")
    assert reason is not None and "private" in reason and "customers.deny_types" in reason


def test_government_customers_and_staff_may_search_by_default():
    assert search_refusal(DEFAULT, "government", "US-IL") is None
    assert search_refusal(DEFAULT, None, None) is None


def test_customers_located_in_a_denied_region():
    policy = policy_with(customers={"deny_types": [], "deny_regions": ["US-IL"]})
    reason = search_refusal(policy, "government", "us-il")
    assert reason is not None and "US-IL" in reason and "deny_regions" in reason
    assert search_refusal(policy, "government", "US-WI") is None
    assert search_refusal(policy, "private", "US-WI") is None
    assert search_refusal(policy, "government", None) is None
    assert search_refusal(policy, None, "US-IL") is None  # staff are not customers


def test_unknown_customer_type_is_refused():
    reason = search_refusal(DEFAULT, "corporate", None)
    assert reason is not None and "unknown" in reason


# -- roles ---------------------------------------------------------------------------------


def test_matrix_covers_exactly_the_known_actions_with_known_roles():
    assert set(ROLES) == {"admin", "searcher", "custodian", "auditor"}
    expected = {
        "init", "ingest", "search", "show", "stats", "reindex", "sites.import", "sites.list",
        "policy.apply", "policy.show", "policy.publish", "optout.submit", "optout.list",
        "discovery.count", "discovery.sources", "discovery.vector_dates", "discovery.locate",
        "discovery.people", "discovery.produce", "discovery.report", "discovery.nexus",
        "discovery.usage", "discovery.compliance", "discovery.recount", "vault.read",
        "users.manage", "users.list", "attest", "hold.manage", "hold.list", "retention.run",
        "erase", "consent.record", "consent.list", "audit.verify", "audit.export", "key.rotate",
    }  # fmt: skip
    assert set(ACTIONS) == expected
    for action, roles in PERMISSIONS.items():
        assert roles and roles <= set(ALL_ROLES), action


def test_module_docstring_table_matches_the_matrix():
    from faceledger.policy import roles as module

    rows = {}
    for line in module.__doc__.splitlines():
        parts = line.split()
        if parts and parts[0] in PERMISSIONS:
            rows[parts[0]] = line
    assert set(rows) == set(PERMISSIONS)
    header = next(line for line in module.__doc__.splitlines() if line.startswith("action"))
    for action, line in rows.items():
        documented = {
            role for role in ALL_ROLES if line[header.index(role) :].startswith("yes")
        }
        assert documented == PERMISSIONS[action], action


def test_admin_cannot_read_the_vault_or_locate_people():
    with pytest.raises(PermissionDenied) as info:
        authorize("admin", "vault.read")
    assert "custodian" in str(info.value) and "vault.read" in str(info.value)
    for action in ("discovery.locate", "discovery.people", "discovery.produce", "erase"):
        with pytest.raises(PermissionDenied):
            authorize("admin", action)


def test_admin_runs_the_library():
    for action in ("init", "ingest", "reindex", "users.manage", "policy.apply", "hold.manage"):
        authorize("admin", action)


def test_searcher_only_searches_shows_and_counts():
    assert set(actions_for("searcher")) == {
        "search", "show", "stats", "sites.list", "policy.show", "attest",
    }  # fmt: skip
    with pytest.raises(PermissionDenied, match="searcher"):
        authorize("searcher", "vault.read")


def test_custodian_answers_for_vault_discovery_holds_and_erasure():
    for action in ("vault.read", "hold.manage", "erase"):
        authorize("custodian", action)
    for action in ACTIONS:
        if action.startswith("discovery."):
            authorize("custodian", action)
    with pytest.raises(PermissionDenied):
        authorize("custodian", "users.manage")
    with pytest.raises(PermissionDenied):
        authorize("custodian", "search")


def test_auditor_checks_without_touching_biometric_data():
    allowed = "audit.verify audit.export stats discovery.count discovery.sources"
    allowed += " discovery.vector_dates hold.list users.list"
    for action in allowed.split():
        authorize("auditor", action)
    denied = "search show vault.read discovery.locate discovery.people discovery.produce"
    denied += " erase hold.manage ingest"
    for action in denied.split():
        with pytest.raises(PermissionDenied):
            authorize("auditor", action)


def test_unknown_role_is_denied_and_unknown_action_is_a_bug():
    with pytest.raises(PermissionDenied, match="unknown role"):
        authorize("root", "search")
    with pytest.raises(ValueError, match="unknown action"):
        authorize("admin", "vault.dump")
    assert allowed_roles("hold.manage") == ("admin", "custodian")


# -- retention -----------------------------------------------------------------------------

T0 = datetime(2021, 3, 15, 12, 0, tzinfo=UTC)


def test_due_three_years_after_last_interaction():
    assert destruction_due(DEFAULT, T0, False, T0 + timedelta(days=365 * 2)) is None
    just_before = datetime(2024, 3, 15, 11, 59, 59, tzinfo=UTC)
    assert destruction_due(DEFAULT, T0, False, just_before) is None
    assert destruction_due(DEFAULT, T0, False, datetime(2024, 3, 15, 12, 0, tzinfo=UTC)) == (
        RULE_MAX_AGE
    )
    assert destruction_deadline(DEFAULT, T0) == datetime(2024, 3, 15, 12, 0, tzinfo=UTC)


def test_due_when_purpose_satisfied_whichever_comes_first():
    assert destruction_due(DEFAULT, T0, True, T0 + timedelta(days=1)) == RULE_PURPOSE
    assert destruction_due(DEFAULT, T0, True, T0 + timedelta(days=4000)) == RULE_PURPOSE


def test_purpose_rule_can_be_switched_off():
    policy = policy_with(retention={"purpose": "research", "destroy_when_purpose_satisfied": False})
    assert destruction_due(policy, T0, True, T0 + timedelta(days=1)) is None
    assert destruction_due(policy, T0, True, T0 + timedelta(days=3 * 366)) == RULE_MAX_AGE


def test_no_time_limit_and_a_shorter_limit():
    unlimited = policy_with(retention={"purpose": "x", "max_years_since_last_interaction": None})
    assert destruction_due(unlimited, T0, False, T0 + timedelta(days=36500)) is None
    assert destruction_deadline(unlimited, T0) is None
    one_year = policy_with(retention={"purpose": "x", "max_years_since_last_interaction": 1})
    assert destruction_due(one_year, T0, False, datetime(2022, 3, 15, 12, tzinfo=UTC)) == (
        RULE_MAX_AGE
    )


def test_leap_day_deadline_falls_on_28_february():
    leap = datetime(2024, 2, 29, 9, 0, tzinfo=UTC)
    assert destruction_deadline(DEFAULT, leap) == datetime(2027, 2, 28, 9, 0, tzinfo=UTC)


def test_naive_times_are_utc_and_offsets_are_respected():
    naive = datetime(2021, 3, 15, 12, 0)
    assert destruction_deadline(DEFAULT, naive) == datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
    chicago_winter = timezone(timedelta(hours=-6))
    # 2024-03-15 06:00 in UTC-6 is 12:00 UTC: exactly due.
    now = datetime(2024, 3, 15, 6, 0, tzinfo=chicago_winter)
    assert destruction_due(DEFAULT, naive, False, now) == RULE_MAX_AGE
    assert destruction_due(DEFAULT, naive, False, now - timedelta(seconds=1)) is None
