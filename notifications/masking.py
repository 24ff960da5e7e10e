"""Masking identity and phone numbers in everything sent to anyone but the data
subject, and in logs (DESIGN.md §3.7, issue #5).

    >>> mask_text("身份证 310101199003071234，电话 13812345678")
    '身份证 3101**********1234，电话 138****5678'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# Resident identity numbers: 17 digits and a check digit (0-9 or X); and the old 15-digit
# ones. Mainland mobile numbers: 11 digits starting 1[3-9]. Lookarounds, not \\b: a CJK
# character next to a digit is no word boundary.
_ID18 = re.compile(r"(?<![0-9A-Za-z])(\d{4})\d{10}(\d{3}[\dXx])(?![0-9A-Za-z])")
_ID15 = re.compile(r"(?<![0-9A-Za-z])(\d{4})\d{7}(\d{4})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9A-Za-z])(1[3-9]\d)\d{4}(\d{4})(?![0-9A-Za-z])")


#: Roles that see identity and phone numbers unmasked when they read a case (the
#: handling chain of a case; agents at the desk and auditors see them masked, as notices
#: do): `baoflow cases show --role` and the dashboard's case page both ask here.
PERSONAL_DATA_ROLES = frozenset({"handler", "supervisor", "branch_manager", "headquarters"})


def sees_personal_data(roles: Iterable[str]) -> bool:
    """Whether a viewer with ``roles`` sees identity and phone numbers unmasked."""
    return not PERSONAL_DATA_ROLES.isdisjoint(roles)


def mask_id_number(value: str) -> str:
    """``310101199003071234`` → ``3101**********1234``."""
    return _ID18.sub(lambda m: m.group(1) + "*" * 10 + m.group(2), value)


def mask_phone(value: str) -> str:
    """``13812345678`` → ``138****5678``."""
    return _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(2), value)


def mask_text(text: str) -> str:
    """Every identity number and mobile number in ``text``, masked."""
    text = _ID18.sub(lambda m: m.group(1) + "*" * 10 + m.group(2), text)
    text = _ID15.sub(lambda m: m.group(1) + "*" * 7 + m.group(2), text)
    return _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(2), text)


class MaskingFilter(logging.Filter):
    """A logging filter that masks identity and phone numbers in each record's message
    (install it on a handler: ``handler.addFilter(MaskingFilter())``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def install_log_masking(logger: logging.Logger | None = None) -> None:
    """Mask every handler of ``logger`` (the root logger by default) and its future
    records: the filter goes on the logger's handlers, where records from child loggers
    pass too."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
