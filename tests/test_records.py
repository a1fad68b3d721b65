"""Per-record checks at the edge, without HTTP: suspicious times, property mapping types,
texts cut to Notion's limit."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bsync.core.model import suspicious_time
from bsync.ledger.notion import TEXT_LIMIT, fit_text, property_type_problem

UTC = timezone.utc
T = datetime(2026, 12, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize("start, end, all_day, why", [
    (T, T, False, "zero length"),
    (T, T + timedelta(hours=24, minutes=1), False, "lasts 24 h 1 min, more than 24 hours"),
    (T, T + timedelta(days=3650), False, "lasts 3650 days, more than 24 hours"),
    (T, T + timedelta(days=32), True, "lasts 32 days, more than 31 days"),
    (datetime(1900, 1, 1, tzinfo=UTC), datetime(1900, 1, 1, 1, tzinfo=UTC), False, "starts in year 1900"),
    (datetime(9999, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, 1, tzinfo=UTC), False, "starts in year 9999"),
    (datetime(1969, 12, 31, 23, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC), False, "starts in year 1969"),
])
def test_suspicious_times_name_the_reason(start, end, all_day, why):
    reason = suspicious_time(start, end, all_day)
    assert reason is not None and reason.startswith("suspicious time") and why in reason


@pytest.mark.parametrize("start, end, all_day", [
    (T, T + timedelta(minutes=1), False),
    (T, T + timedelta(hours=24), False),  # a 24-hour shift is the longest timed booking
    (T, T + timedelta(days=31), True),
    (datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 1, 1, 1, tzinfo=UTC), False),
    (datetime(2099, 12, 31, 22, tzinfo=UTC), datetime(2099, 12, 31, 23, tzinfo=UTC), False),
])
def test_plausible_times_pass(start, end, all_day):
    assert suspicious_time(start, end, all_day) is None


SCHEMA = {"Name": {"type": "title"}, "When": {"type": "date"}, "Status": {"type": "status"},
          "Stage": {"type": "select"}, "Customer": {"type": "rich_text"}, "Email": {"type": "email"},
          "Done": {"type": "checkbox"}, "Created": {"type": "created_time"}}


@pytest.mark.parametrize("field, prop", [
    ("title", "Name"), ("start", "When"), ("end", "When"), ("status", "Status"), ("status", "Stage"),
    ("email", "Email"), ("email", "Customer"), ("customer_name", "Customer"), ("service", "Stage"),
    ("notifications", "Done"), ("notifications", "Stage"), ("external_id", "Customer"),
])
def test_acceptable_property_types(field, prop):
    assert property_type_problem(field, prop, SCHEMA) is None


@pytest.mark.parametrize("field, prop, message", [
    ("start", "Whenn", '[notion.properties] start = "Whenn": no such property in the database '
                       '(properties: Created, Customer, Done, Email, Name, Stage, Status, When)'),
    ("start", "Name", '[notion.properties] start = "Name" is a title property; it must be a date'),
    ("title", "Customer", '[notion.properties] title = "Customer" is a text property; it must be a title'),
    ("status", "Customer", '[notion.properties] status = "Customer" is a text property; '
                           'it must be a select or a status'),
    ("email", "Done", '[notion.properties] email = "Done" is a checkbox property; it must be a text or an email'),
    ("staff", "Created", '[notion.properties] staff = "Created" is a created_time property; it must be a text or '),
])
def test_missing_or_mistyped_property_is_named_with_its_type(field, prop, message):
    assert message in property_type_problem(field, prop, SCHEMA)


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_fit_text_keeps_short_texts_and_cuts_long_ones_with_a_marker():
    assert fit_text(None) is None and fit_text("Rex – bath") == "Rex – bath"
    exact = "x" * TEXT_LIMIT
    assert fit_text(exact) == exact
    cut = fit_text("y" * (TEXT_LIMIT + 1))
    assert utf16(cut) == TEXT_LIMIT and cut == "y" * (TEXT_LIMIT - 1) + "…"


def test_fit_text_counts_utf16_units_and_never_splits_a_surrogate_pair():
    emoji = "🐕" * 1500  # 3,000 UTF-16 units, though only 1,500 characters
    cut = fit_text(emoji)
    assert utf16(cut) <= TEXT_LIMIT and cut.endswith("…") and set(cut[:-1]) == {"🐕"}
    assert len(cut) == 999 + 1  # 999 dogs (1,998 units) + the mark; half a dog would be invalid
