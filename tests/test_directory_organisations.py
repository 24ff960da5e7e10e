"""An organisation as a recipient (the insurer asked to survey): the case data names which
one, the directory has each one's addresses; a case's notice reaches that organisation
and no other, masked, and a case that names none, or one without a contact, is a dead
letter that says so. A misspelt or incomplete configuration is refused at load."""

from __future__ import annotations

from typing import Any

import pytest
from baoflow.notifications.directory import Directory
from baoflow.notifications.message import NotificationConfigError

CHANNELS = {"email", "inbox"}

CONFIG: dict[str, Any] = {
    "organisations": {
        "insurer": {
            "key": "underwriter.name",
            "contacts": {
                "平安财险": {"name": "平安财险上海分公司查勘岗", "email": "survey@pa.example.com"},
                "人保财险": {"inbox": "ins-picc"},
            },
        }
    },
    "parties": {"reporter": {"name": "reporter.name", "inbox": "reporter.phone"}},
}


def directory(config: dict[str, Any] = CONFIG) -> Directory:
    return Directory.from_config(config, CHANNELS)


def test_the_notice_goes_to_the_insurer_the_case_names_and_to_no_other() -> None:
    addresses, why = directory().resolve("insurer", "SH", {"underwriter": {"name": "平安财险"}})
    assert why is None
    assert [(a.channel, a.to, a.name) for a in addresses] == [
        ("email", "survey@pa.example.com", "平安财险上海分公司查勘岗")
    ]
    assert not addresses[0].data_subject  # what an insurer is sent is masked


def test_a_contact_without_a_name_is_addressed_by_the_organisations_name() -> None:
    addresses, _ = directory().resolve("insurer", None, {"underwriter": {"name": "人保财险"}})
    assert [(a.channel, a.to, a.name) for a in addresses] == [("inbox", "ins-picc", "人保财险")]


def test_a_case_that_names_no_insurer_is_a_dead_letter_saying_where_it_looked() -> None:
    addresses, why = directory().resolve("insurer", "SH", {"reporter": {"name": "王磊"}})
    assert addresses == []
    assert why == "the case does not name its insurer (looked at underwriter.name)"


def test_an_insurer_with_no_contact_is_a_dead_letter_saying_what_to_add() -> None:
    addresses, why = directory().resolve("insurer", "SH", {"underwriter": {"name": "中国人寿"}})
    assert addresses == []
    assert why is not None
    assert "no contact for the insurer '中国人寿'" in why
    assert "known: 平安财险, 人保财险" in why
    assert '[organisations.insurer.contacts."中国人寿"]' in why


def test_parties_and_roles_resolve_as_before_beside_organisations() -> None:
    addresses, why = directory().resolve(
        "reporter", "SH", {"reporter": {"name": "王磊", "phone": "138"}}
    )
    assert why is None and [a.to for a in addresses] == ["138"]
    _, why = directory().resolve("supervisor", "SH", {})
    assert why == "nobody in the directory has the role 'supervisor'"


def test_every_problem_of_an_organisation_is_listed_at_once() -> None:
    bad = {
        "organisations": {
            "insurer": {
                "path": "underwriter.name",  # misspelt: key
                "contacts": {
                    "平安财险": {"fax": "021-1234"},  # no such channel
                    "人保财险": {"name": "人保"},  # no address at all
                },
            },
            "broker": {"key": "broker.name"},  # no contacts
        }
    }
    with pytest.raises(NotificationConfigError) as err:
        directory(bad)
    problems = err.value.problems
    assert "organisations.insurer.path: unknown key; use key, contacts" in problems
    assert any(p.startswith("organisations.insurer.key: is required") for p in problems)
    assert any(
        p.startswith("organisations.insurer.contacts.平安财险.fax: no channel") for p in problems
    )
    assert any(
        p.startswith("organisations.insurer.contacts.人保财险: has no address") for p in problems
    )
    assert any(p.startswith("organisations.broker.contacts: list at least one") for p in problems)


def test_a_name_cannot_be_both_a_party_and_an_organisation() -> None:
    clash = {
        "parties": {"insurer": {"name": "handover.insurer", "inbox": "handover.inbox"}},
        "organisations": CONFIG["organisations"],
    }
    with pytest.raises(NotificationConfigError) as err:
        directory(clash)
    assert any("'insurer' is a party too" in p for p in err.value.problems)
