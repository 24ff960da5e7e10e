"""Event payloads: validated by the transition's schema; an empty payload that only the
model decides is validated once per model (baoflow.engine.payloads.constant_empty_payload)."""

from __future__ import annotations

from baoflow.engine.payloads import constant_empty_payload
from baoflow.workflows.claim import Closing, Verification
from pydantic import BaseModel, model_validator


class WithDefaults(BaseModel):
    note: str = "无"
    count: int = 0


class Checked(BaseModel):
    note: str = "无"

    @model_validator(mode="after")
    def _always(self) -> Checked:
        return self


class Listy(BaseModel):
    items: tuple[str, ...] = ()


def test_an_empty_payload_of_scalar_defaults_is_a_constant() -> None:
    assert constant_empty_payload(WithDefaults) == {"note": "无", "count": 0}
    assert constant_empty_payload(Verification) == {}


def test_models_with_required_fields_or_model_validators_are_always_validated() -> None:
    assert constant_empty_payload(Closing) is None  # outcome is required
    assert constant_empty_payload(Checked) is None  # a model validator may look at context


def test_mutable_defaults_are_not_shared_between_payloads() -> None:
    assert constant_empty_payload(Listy) is None
