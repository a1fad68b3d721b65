"""`bsync resolve` finds the conflict from what the user has at hand (issue 11 §13): the key
as `bsync status` prints it (whole, never cut at 80 columns), the bare Notion page id with or
without dashes, or the page's URL.  Unknown or ambiguous ids exit 2 listing the open ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bsync.ops.conflicts import match_key, page_id_of
from bsync.errors import UsageError
from bsync.sandbox.seed import booking_properties
from bsync.core.store import Store
from bsync import registry

LINK_PAIR = registry.link_pair("gcal")

PAGE = "1a2b3c4d-5e6f-4071-8293-a4b5c6d7e8f9"
BARE = PAGE.replace("-", "")
OTHER = "notion:1a2b3c4d-0000-4000-8000-000000000000"
KEYS = [f"notion:{PAGE}", OTHER]


@pytest.mark.parametrize("given", [
    f"notion:{PAGE}", PAGE, BARE, BARE.upper(), f"  {PAGE} ",
    f"https://www.notion.so/paws/Rex-Grooming-{BARE}",
    f"https://www.notion.so/paws/Rex-Grooming-{BARE}?pvs=4",
    f"https://www.notion.so/{BARE}",
    f"https://www.notion.so/paws/0123456789abcdef0123456789abcdef?v=fedcba9876543210fedcba9876543210&p={BARE}&pm=s",
    "1a2b3c4d5e6f",  # a unique prefix of 8+ characters
])
def test_every_way_of_naming_the_page_finds_its_key(given):
    assert match_key(given, KEYS, KEYS) == f"notion:{PAGE}"


@pytest.mark.parametrize("given, message", [
    ("1a2b3c4d", "matches several conflicts"),  # both keys start with it
    ("notion:ffffffff-5e6f-4071-8293-a4b5c6d7e8f9", "is not an open conflict"),
    ("1a2b3c", "is not an open conflict"),  # too short to be taken as a prefix
    ("https://www.notion.so/paws/Some-page", "is not an open conflict"),
])
def test_unknown_or_ambiguous_ids_list_the_open_conflicts(given, message):
    with pytest.raises(UsageError) as info:
        match_key(given, KEYS, KEYS)
    assert message in str(info.value) and f"open conflicts: notion:{PAGE}, {OTHER}" in str(info.value)
    assert "page id" in info.value.hint


def test_page_id_of_a_key_an_id_and_a_url_is_the_same():
    assert page_id_of(f"notion:{PAGE}") == page_id_of(PAGE) == page_id_of(f"https://notion.so/x-{BARE}") == BARE


def test_status_prints_the_key_whole_and_resolve_takes_the_bare_page_id(bsync, sandbox):
    waw = ZoneInfo("Europe/Warsaw")
    start = datetime.now(waw).replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=3)
    page = sandbox.notion.create_page(booking_properties("Rex", start=start, end=start + timedelta(hours=1),
                                                         time_zone="Europe/Warsaw"))["id"]
    assert bsync("sync").exit_code == 0
    key = f"notion:{page}"
    with Store.open(bsync.state_path) as store:  # a conflict as a manual-policy sync leaves it
        store.set_conflict(LINK_PAIR, key, {"fields": {"title": ["from notion", "from calendar"]}})

    status = bsync("status")  # the runner's console is 80 columns wide, like a default terminal
    assert key in status.stdout, status.stdout

    unknown = bsync("resolve", "0" * 32, "--take", "gcal")
    assert unknown.exit_code == 2 and f"open conflicts: {key}" in unknown.stderr

    result = bsync("resolve", page.replace("-", ""), "--take", "gcal")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"{key}: gcal wins")
    with Store.open(bsync.state_path) as store:
        assert store.links_get(LINK_PAIR, key).resolution == "gcal"
    again = bsync("resolve", f"https://www.notion.so/paws/Rex-{page.replace('-', '')}", "--take", "notion")
    assert again.exit_code == 0, again.stderr  # settled again, the other way, until the next sync
    with Store.open(bsync.state_path) as store:
        assert store.links_get(LINK_PAIR, key).resolution == "notion"


def test_take_must_name_a_side_before_anything_is_opened(bsync):
    result = bsync("resolve", PAGE, "--take", "calendar")
    assert result.exit_code == 2 and "--take 'calendar': must be one of 'notion' or 'gcal' or 'caldav'" in result.stderr
    assert not bsync.state_path.exists()
