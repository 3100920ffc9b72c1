"""Dates, numbers and relative times in the current request's locale (Babel)."""

from __future__ import annotations

from datetime import UTC, datetime

from babel.dates import format_datetime as babel_format_datetime
from babel.dates import format_timedelta
from babel.numbers import format_decimal

from hedgerow.i18n.translation import current_locale

# Babel's locale names: Chinese as shipped is Simplified Chinese.
_BABEL_LOCALE = {"zh": "zh_Hans_CN"}


def babel_locale() -> str:
    code = current_locale()
    return _BABEL_LOCALE.get(code, code)


def format_number(value: float | int) -> str:
    return format_decimal(value, locale=babel_locale())


def format_datetime(value: datetime | None, format: str = "medium") -> str:
    if value is None:
        return ""
    return babel_format_datetime(value, format=format, tzinfo=UTC, locale=babel_locale())


def format_relative(value: datetime | None, now: datetime | None = None) -> str:
    """'3 minutes ago', 'in 2 hours', in the current locale."""
    if value is None:
        return ""
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    delta = moment - (now or datetime.now(UTC))
    return format_timedelta(delta, add_direction=True, locale=babel_locale())
