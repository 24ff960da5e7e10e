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
class Directory:
    people: Sequence[Person] = ()
    parties: Mapping[str, Party] = field(default_factory=dict)

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
        if problems:
            raise NotificationConfigError("the notification directory", problems)
        return cls(people, parties)

    def resolve(
        self, recipient: str, org_unit: str | None, case_data: Mapping[str, Any] | None
    ) -> tuple[list[Address], str | None]:
        """The addresses of ``recipient``, or none and why (the dead letter's cause)."""
        party = self.parties.get(recipient)
        if party is not None:
            return self._party(recipient, party, case_data or {})
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


def _path(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node
