"""The policy file (``policy.yaml`` in the library directory): its model, loading, and decisions.

A key left out of the file takes the value of the default policy (:func:`default_policy_text`),
so an incomplete file never weakens the defaults; unknown keys are errors, so a typo cannot
silently switch a rule off.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from faceledger.errors import ConfigError
from faceledger.records import Jurisdiction

__all__ = [
    "SIGNALS",
    "CUSTOMER_TYPES",
    "Signal",
    "CustomerType",
    "BlockingRule",
    "CustomerRules",
    "RetentionRules",
    "ConsentRules",
    "Policy",
    "default_policy_text",
    "load_policy",
    "region_covers",
    "block_reasons",
    "blocking_changes",
    "search_refusal",
]

#: What can tie a photo or face to a region.
SIGNALS: tuple[str, ...] = ("gps", "uploader", "publisher", "subject")
#: Customer types a user may have (a user with none is the operator's own staff).
CUSTOMER_TYPES: tuple[str, ...] = ("government", "private")

Signal = Literal["gps", "uploader", "publisher", "subject"]
CustomerType = Literal["government", "private"]


def _normalize_region(value: Any) -> Any:
    """Upper-case and strip a region code before it is checked."""
    return value.strip().upper() if isinstance(value, str) else value


def _check_region(value: str) -> str:
    """Accept ISO 3166-1 alpha-2 ("FR") or ISO 3166-2 ("US-IL") shaped codes."""
    country, _, sub = value.partition("-")
    if not (len(country) == 2 and country.isascii() and country.isalpha()):
        raise ValueError(
            f"{value!r} is not a region code; write ISO 3166-1 alpha-2 like 'FR' "
            "or ISO 3166-2 like 'US-IL'"
        )
    if "-" in value and not (1 <= len(sub) <= 3 and sub.isascii() and sub.isalnum()):
        raise ValueError(
            f"{value!r} is not a region code; a subdivision is 1-3 letters or digits "
            "after the country, like 'US-IL'"
        )
    return value


Region = Annotated[str, BeforeValidator(_normalize_region), AfterValidator(_check_region)]


class _Section(BaseModel):
    """Common settings: immutable, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BlockingRule(_Section):
    """Block faces tied to ``region`` by any of ``signals``."""

    region: Region
    signals: tuple[Signal, ...]

    @field_validator("signals")
    @classmethod
    def _signals_listed(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one signal, or delete the rule to stop blocking")
        return tuple(dict.fromkeys(value))  # drop repeats, keep order


class CustomerRules(_Section):
    """Which customers may not search."""

    deny_types: tuple[CustomerType, ...] = ("private",)
    deny_regions: tuple[Region, ...] = ()


class RetentionRules(_Section):
    """The retention schedule: why vectors are kept and when they are destroyed."""

    purpose: str = (
        "Face search over the photo collections the operator holds, for the operator's staff "
        "and its authorized customers."
    )
    destroy_when_purpose_satisfied: StrictBool = True
    max_years_since_last_interaction: StrictInt | None = Field(default=3, ge=1)
    destroy_photos: StrictBool = False

    @field_validator("purpose")
    @classmethod
    def _purpose_given(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("state the purpose for which face vectors are collected")
        return value.strip()


class ConsentRules(_Section):
    """Whether a consent record is needed before a face is searchable."""

    required: StrictBool = False
    collections: tuple[str, ...] = ()


def _default_blocking() -> tuple[BlockingRule, ...]:
    return (BlockingRule(region="US-IL", signals=SIGNALS),)


class Policy(_Section):
    """A whole policy file; ``Policy()`` is the default policy."""

    version: str = "1"
    owner: str = ""
    blocking: tuple[BlockingRule, ...] = Field(default_factory=_default_blocking)
    customers: CustomerRules = CustomerRules()
    retention: RetentionRules = RetentionRules()
    consent: ConsentRules = ConsentRules()

    @field_validator("version", "owner", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        # YAML reads `version: 2` or `version: 1.1` as numbers; they are labels here.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return "" if value is None else value

    @model_validator(mode="after")
    def _one_rule_per_region(self) -> Policy:
        seen: set[str] = set()
        for rule in self.blocking:
            if rule.region in seen:
                raise ValueError(
                    f"blocking: region {rule.region} has more than one rule; "
                    "merge their signals into one rule"
                )
            seen.add(rule.region)
        return self


def default_policy_text() -> str:
    """The default policy file, with comments, as ``init`` writes it."""
    return (resources.files(__package__) / "default_policy.yaml").read_text(encoding="utf-8")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice (YAML would keep the last silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_policy(text: str) -> Policy:
    """Parse and validate a policy file's text; raise ConfigError saying what to fix."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: builds plain data only
    except yaml.YAMLError as exc:
        raise ConfigError(f"policy file is not valid YAML: {exc}") from None
    if data is None:
        raise ConfigError(
            "policy file is empty; start from the default policy that `faceledger init` writes"
        )
    if not isinstance(data, dict):
        raise ConfigError(
            "policy file must be a mapping of keys (version, owner, blocking, customers, "
            f"retention, consent), not a {type(data).__name__}"
        )
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(err) for err in exc.errors()]
        raise ConfigError(
            f"policy file has {len(problems)} problem(s):\n" + "\n".join(f"  {p}" for p in problems)
        ) from None


def _where(loc: tuple[Any, ...]) -> str:
    """('blocking', 0, 'signals', 1) -> 'blocking[0].signals[1]'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "policy"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The section model found at ``loc`` inside a Policy, if any."""
    model: type[BaseModel] | None = Policy
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        candidates = (annotation, *get_args(annotation))
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return model


def _describe(err: Any) -> str:
    """One pydantic error as a line that names the field and what is allowed."""
    loc = tuple(err["loc"])
    where = _where(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        section = _model_at(loc[:-1])
        allowed = ", ".join(section.model_fields) if section else "see the default policy"
        return f"{where}: unknown key; allowed here: {allowed}"
    if kind == "literal_error":
        return f"{where}: {err['input']!r} is not allowed; allowed: {err['ctx']['expected']}"
    if kind == "value_error":
        # Whole-policy checks carry their own location in the message.
        return f"{where}: {err['ctx']['error']}" if loc else str(err["ctx"]["error"])
    if kind == "missing":
        return f"{where}: required"
    return f"{where}: {err['msg']} (got {err['input']!r})"


def region_covers(rule_region: str, region: str) -> bool:
    """Whether a rule's region covers ``region`` ("US" covers "US-IL"; "US-IL" covers itself)."""
    rule_region, region = rule_region.upper(), region.strip().upper()
    return region == rule_region or region.startswith(rule_region + "-")


def blocking_changes(old: Policy, new: Policy) -> list[tuple[str, str]]:
    """The (rule region, signal) pairs blocked under one policy and not the other, sorted.

    A face's block decision can change between the two only if it is tied, by one of these
    signals, to a region one of these rule regions covers.
    """
    def pairs(policy: Policy) -> set[tuple[str, str]]:
        return {(rule.region.upper(), s) for rule in policy.blocking for s in rule.signals}

    return sorted(pairs(old) ^ pairs(new))


def block_reasons(policy: Policy, jurisdictions: Iterable[Jurisdiction]) -> list[Jurisdiction]:
    """The jurisdictions that make the policy block a face; empty means not blocked."""
    reasons: list[Jurisdiction] = []
    for jur in jurisdictions:
        if jur in reasons:
            continue
        if any(
            jur.signal in rule.signals and region_covers(rule.region, jur.region)
            for rule in policy.blocking
        ):
            reasons.append(jur)
    return reasons


def search_refusal(policy: Policy, customer_type: str | None, region: str | None) -> str | None:
    """Why the policy refuses search to this user, or None if it allows it."""
    if customer_type is None:
        return None  # the operator's own staff; customer rules do not apply
    if customer_type not in CUSTOMER_TYPES:
        # Fail closed: a type the policy cannot judge must not slip past deny_types.
        return (
            f"customer type {customer_type!r} is unknown (known: {', '.join(CUSTOMER_TYPES)}); "
            "an admin must set a known customer type before this user can search"
        )
    if customer_type in policy.customers.deny_types:
        return (
            f"customers of type {customer_type!r} may not search under this library's policy "
            "(customers.deny_types)"
        )
    if region:
        for denied in policy.customers.deny_regions:
            if region_covers(denied, region):
                return (
                    f"customers located in {region.strip().upper()} may not search under this "
                    f"library's policy (customers.deny_regions lists {denied})"
                )
    return None
