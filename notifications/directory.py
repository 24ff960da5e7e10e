"""Who a notice's recipient is: roles and org units to people, parties of a case to the
addresses in its data (issue #5).

A notice names its recipient as a role (``handler``, ``supervisor``, ``headquarters``)
or a party of the case (``reporter``). Roles resolve to the people who hold them in the
case's org unit — or, when nobody there does, to those who hold them with no org unit
(headquarters, a national desk). Parties resolve through dotted paths into the case
data. Each person or party has an address per channel (``email``, ``sms``, ``inbox``,
or any configured channel). Configured as data::

    [[people]]
    id = "s01"
    name = "陈刚"
    roles = ["supervisor"]
    org_unit = "SH"
    email = "chen.gang@example.com"
    inbox = "s01"

    [parties.reporter]
    name = "reporter.name"
    sms = "reporter.phone"
    relationship = "reporter.relationship"   # 本人 / self: the data subject

An **organisation** is a third kind of recipient: one of several outside bodies (the
insurers an agency works with), chosen per case by the name the case data gives at
``key``, each with its own contact addresses here — so a notice about a case goes to
that case's insurer and to no other::

    [organisations.insurer]
    key = "underwriter.name"                 # which insurer: a dotted path into the case
    [organisations.insurer.contacts."平安人寿"]
    name = "平安人寿上海分公司理赔查勘岗"      # optional: how the contact is addressed
    email = "survey@pingan.example.com"
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .message import Address, NotificationConfigError

#: What a party's relationship says when the party is the insured themself: the data
#: subject, who alone is sent identity and phone numbers unmasked.
SELF = frozenset({"本人", "self"})

_PERSON_KEYS = {"id", "name", "roles", "org_unit", "locale"}
_PARTY_KEYS = {"name", "relationship", "locale"}
_ORGANISATION_KEYS = {"key", "contacts"}
_CONTACT_KEYS = {"name", "locale"}


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    roles: tuple[str, ...]
    org_unit: str | None
    addresses: Mapping[str, str]  # channel name -> address on that channel
    locale: str = "zh-CN"


@dataclass(frozen=True)
class Party:
    """A party of a case (the reporter, the applicant): where its name, its addresses
    and its relationship to the insured are in the case data (dotted paths)."""

    name: str
    addresses: Mapping[str, str]  # channel name -> dotted path into the case data
    relationship: str | None = None
    locale: str = "zh-CN"


@dataclass(frozen=True)
class Contact:
    """How to reach one organisation (an insurer's claims survey desk)."""

    name: str
    addresses: Mapping[str, str]  # channel name -> address on that channel
    locale: str = "zh-CN"


@dataclass(frozen=True)
class Organisation:
    """A recipient that is one of several organisations: the case data names which
    (``key``, a dotted path), ``contacts`` says how to reach each by that name."""

    key: str
    contacts: Mapping[str, Contact]


@dataclass(frozen=True)
class Directory:
    people: Sequence[Person] = ()
    parties: Mapping[str, Party] = field(default_factory=dict)
    organisations: Mapping[str, Organisation] = field(default_factory=dict)

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], channels: Collection[str]) -> Directory:
        """From ``[[people]]`` and ``[parties.NAME]`` tables; every address must be on a
        configured channel. Raises NotificationConfigError listing every problem."""
        problems: list[str] = []
        people: list[Person] = []
        for i, p in enumerate(raw.get("people", [])):
            where = f"people[{i}]"
            if not isinstance(p, Mapping):
                problems.append(f"{where}: must be a table")
                continue
            pid, name, roles = p.get("id"), p.get("name", p.get("id")), p.get("roles", [])
            if not isinstance(pid, str) or not pid:
                problems.append(f"{where}.id: is required (a user id)")
            if (
                not isinstance(roles, list)
                or not roles
                or not all(isinstance(r, str) for r in roles)
            ):
                problems.append(f"{where}.roles: must be a non-empty list of role names")
                roles = []
            addresses = {k: v for k, v in p.items() if k not in _PERSON_KEYS}
            for ch, to in addresses.items():
                if ch not in channels:
                    problems.append(
                        f"{where}.{ch}: no channel named {ch!r} is configured; "
                        f"configured: {', '.join(sorted(channels)) or '(none)'}"
                    )
                elif not isinstance(to, str) or not to:
                    problems.append(f"{where}.{ch}: must be the address on that channel")
            if not addresses:
                problems.append(f"{where}: has no address on any channel; add e.g. email or inbox")
            people.append(
                Person(
                    id=str(pid),
                    name=str(name),
                    roles=tuple(roles),
                    org_unit=p.get("org_unit"),
                    addresses={k: str(v) for k, v in addresses.items()},
                    locale=str(p.get("locale", "zh-CN")),
                )
            )
        parties: dict[str, Party] = {}
        for pname, spec in (raw.get("parties") or {}).items():
            where = f"parties.{pname}"
            if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
                problems.append(f"{where}: needs name = 'path.to.name' and an address path")
                continue
            addresses = {k: v for k, v in spec.items() if k not in _PARTY_KEYS}
            for ch in addresses:
                if ch not in channels:
                    problems.append(
                        f"{where}.{ch}: no channel named {ch!r} is configured; "
                        f"configured: {', '.join(sorted(channels)) or '(none)'}"
                    )
            parties[pname] = Party(
                name=spec["name"],
                addresses={k: str(v) for k, v in addresses.items()},
                relationship=spec.get("relationship"),
                locale=str(spec.get("locale", "zh-CN")),
            )
        organisations = _organisations(raw.get("organisations") or {}, channels, problems)
        for name in sorted(set(organisations) & set(parties)):
            problems.append(
                f"organisations.{name}: {name!r} is a party too; a recipient is one or the other"
            )
        if problems:
            raise NotificationConfigError("the notification directory", problems)
        return cls(people, parties, organisations)

    def resolve(
        self, recipient: str, org_unit: str | None, case_data: Mapping[str, Any] | None
    ) -> tuple[list[Address], str | None]:
        """The addresses of ``recipient``, or none and why (the dead letter's cause)."""
        party = self.parties.get(recipient)
        if party is not None:
            return self._party(recipient, party, case_data or {})
        organisation = self.organisations.get(recipient)
        if organisation is not None:
            return self._organisation(recipient, organisation, case_data or {})
        holders = [p for p in self.people if recipient in p.roles]
        if not holders:
            return [], f"nobody in the directory has the role {recipient!r}"
        here = [p for p in holders if p.org_unit == org_unit and org_unit is not None]
        chosen = here or [p for p in holders if p.org_unit is None]
        if not chosen:
            units = sorted({str(p.org_unit) for p in holders})
            return [], (
                f"no {recipient!r} in org unit {org_unit!r} (there are in {', '.join(units)}), "
                "and none without an org unit; add one to the directory"
            )
        return [
            Address(channel, to, person.name, person.locale, data_subject=False)
            for person in chosen
            for channel, to in person.addresses.items()
        ], None

    def _party(
        self, recipient: str, party: Party, data: Mapping[str, Any]
    ) -> tuple[list[Address], str | None]:
        name = _path(data, party.name) or recipient
        subject = party.relationship is not None and _path(data, party.relationship) in SELF
        found = [
            Address(channel, str(to), str(name), party.locale, data_subject=subject)
            for channel, path in party.addresses.items()
            if (to := _path(data, path))
        ]
        if not found:
            paths = ", ".join(party.addresses.values()) or "(none configured)"
            return [], f"the case has no address for its {recipient} (looked at {paths})"
        return found, None

    def _organisation(
        self, recipient: str, org: Organisation, data: Mapping[str, Any]
    ) -> tuple[list[Address], str | None]:
        which = _path(data, org.key)
        if not which:
            return [], f"the case does not name its {recipient} (looked at {org.key})"
        contact = org.contacts.get(str(which))
        if contact is None:
            known = ", ".join(org.contacts) or "(none)"
            return [], (
                f"no contact for the {recipient} {which!r} in the directory (known: {known}); "
                f'add [organisations.{recipient}.contacts."{which}"]'
            )
        # An organisation is never the data subject: what it is sent is masked.
        return [
            Address(channel, to, contact.name, contact.locale, data_subject=False)
            for channel, to in contact.addresses.items()
        ], None


def _organisations(
    raw: Any, channels: Collection[str], problems: list[str]
) -> dict[str, Organisation]:
    """``[organisations.NAME]`` tables, their problems appended to ``problems``."""
    found: dict[str, Organisation] = {}
    if not isinstance(raw, Mapping):
        problems.append("organisations: must be a table of [organisations.NAME] tables")
        return found
    for oname, spec in raw.items():
        where = f"organisations.{oname}"
        if not isinstance(spec, Mapping):
            problems.append(f"{where}: must be a table with key and contacts")
            continue
        for extra in sorted(set(spec) - _ORGANISATION_KEYS):
            problems.append(f"{where}.{extra}: unknown key; use key, contacts")
        key = spec.get("key")
        if not isinstance(key, str) or not key:
            problems.append(
                f"{where}.key: is required: the dotted path to the organisation's name in "
                "the case data, e.g. 'underwriter.name'"
            )
        contacts: dict[str, Contact] = {}
        for cname, c in (spec.get("contacts") or {}).items():
            at = f"{where}.contacts.{cname}"
            if not isinstance(c, Mapping):
                problems.append(f"{at}: must be a table of addresses")
                continue
            addresses = {k: v for k, v in c.items() if k not in _CONTACT_KEYS}
            for ch, to in addresses.items():
                if ch not in channels:
                    problems.append(
                        f"{at}.{ch}: no channel named {ch!r} is configured; "
                        f"configured: {', '.join(sorted(channels)) or '(none)'}"
                    )
                elif not isinstance(to, str) or not to:
                    problems.append(f"{at}.{ch}: must be the address on that channel")
            if not addresses:
                problems.append(f"{at}: has no address on any channel; add e.g. email or inbox")
            contacts[str(cname)] = Contact(
                name=str(c.get("name", cname)),
                addresses={k: str(v) for k, v in addresses.items()},
                locale=str(c.get("locale", "zh-CN")),
            )
        if not contacts:
            problems.append(f"{where}.contacts: list at least one organisation and its address")
        found[str(oname)] = Organisation(str(key or ""), contacts)
    return found


def _path(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node
