"""A client's timestamp or day, parsed the same way everywhere, and refused unless it can be read back.

PostgreSQL stores times from 4713 BC to 294276 AD, Python's datetime only years 1 to 9999: a time PostgreSQL
accepts may be one Python cannot read back (`0001-01-01T00:00:00+14:00` is in year 0 in UTC), and every page
or API answer showing it then fails. So a client's time is accepted only from EARLIEST to LATEST once converted
to UTC: a day inside Python's range at each end, so that the time can also be shown in any time zone.
A day (a page's `from` / `to`) is accepted from the first to the last day of that range.
"""
from datetime import date, datetime, timedelta, timezone

EARLIEST = datetime(1, 1, 2, tzinfo=timezone.utc)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=timezone.utc)
RANGE = "0001-01-02T00:00:00Z to 9999-12-30T23:59:59.999999Z"
FIRST_DAY = EARLIEST.date()
LAST_DAY = LATEST.date()


class TimestampInvalid(ValueError):
    """Not an ISO 8601 time (or day), or one outside the accepted range; the message, for instance
    "is not an ISO 8601 date-time", reads after the field's name."""


class TimestampOutOfRange(TimestampInvalid):
    """A well-formed time (or day) outside the accepted range."""


def timestamp_check(moment: datetime) -> datetime:
    """`moment`, aware (without a zone it is UTC), if it lies from EARLIEST to LATEST in UTC; else TimestampInvalid."""
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
    try:
        inside = EARLIEST <= moment.astimezone(timezone.utc) <= LATEST
    except OverflowError:  # its UTC time is before year 1 or after year 9999
        inside = False
    if not inside:
        raise TimestampOutOfRange(f"is outside the accepted range ({RANGE} in UTC)")
    return moment


def timestamp_parse(value) -> datetime:
    """A client's ISO 8601 date-time (a string; without a zone it is UTC) as an aware datetime.

    Raises TimestampInvalid if it is not one or lies outside the accepted range (see `timestamp_check`).
    """
    if not isinstance(value, str):
        raise TimestampInvalid("is not an ISO 8601 date-time")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:  # not ISO 8601, or a zone offset of 24 hours or more
        raise TimestampInvalid("is not an ISO 8601 date-time") from None
    return timestamp_check(moment)


def day_parse(value: str) -> date:
    """A client's day (YYYY-MM-DD) from FIRST_DAY to LAST_DAY; else TimestampInvalid."""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise TimestampInvalid("is not a day (YYYY-MM-DD)") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise TimestampOutOfRange(f"is outside the accepted range ({FIRST_DAY} to {LAST_DAY})")
    return day


def day_minus(day: date, days: int) -> date:
    """`days` days before `day`, or FIRST_DAY if that is earlier."""
    return day - timedelta(days=days) if day.toordinal() - days >= FIRST_DAY.toordinal() else FIRST_DAY
