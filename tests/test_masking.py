"""Identity and phone numbers are masked for everyone but the data subject, and in the
logs (issue #5)."""

from __future__ import annotations

import logging

import pytest
from baoflow.notifications.masking import MaskingFilter, mask_id_number, mask_phone, mask_text


def test_an_identity_number_keeps_its_first_and_last_four() -> None:
    assert mask_id_number("310101199003071234") == "3101**********1234"
    assert mask_id_number("11010119900307451X") == "1101**********451X"


def test_a_mobile_number_keeps_its_first_three_and_last_four() -> None:
    assert mask_phone("13812345678") == "138****5678"


@pytest.mark.parametrize(
    "text, masked",
    [
        (
            "身份证310101199003071234，电话13812345678。",
            "身份证3101**********1234，电话138****5678。",
        ),
        ("旧身份证 310101900307123", "旧身份证 3101*******7123"),
        # Not personal numbers: a landline, a policy number, a longer digit run, an amount.
        ("座机 021-12345678", "座机 021-12345678"),
        ("保单 P-LIFE-001 金额 500000", "保单 P-LIFE-001 金额 500000"),
        ("流水号 12345678901234567890", "流水号 12345678901234567890"),
    ],
)
def test_numbers_are_found_inside_chinese_text(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_the_log_filter_masks_what_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("baoflow.test-masking")
    caplog.handler.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO, logger="baoflow.test-masking"):
        log.info("reporter %s, id %s", "13812345678", "310101199003071234")
    (record,) = caplog.records
    assert record.getMessage() == "reporter 138****5678, id 3101**********1234"
    assert "13812345678" not in caplog.text
