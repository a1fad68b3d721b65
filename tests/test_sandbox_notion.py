"""The Notion sandbox, driven by the real notion-client over loopback HTTP (and raw httpx)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Iterator

import httpx
import pytest
from conftest import FakeClock
from notion_client import APIResponseError, Client
from notion_client.errors import UnknownHTTPResponseError

from bsync.sandbox.base import SandboxApiError
from bsync.sandbox.notion import NotionSandbox

TOKEN = "sandbox-token"
UTC = timezone.utc


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 23, 10, 40, 10, tzinfo=UTC))


@pytest.fixture(scope="module")
def server() -> Iterator[NotionSandbox]:
    with NotionSandbox() as running:  # one server for the module: stopping one takes ~0.5 s
        yield running


@pytest.fixture
def srv(server: NotionSandbox, clock: FakeClock) -> NotionSandbox:
    server.clock = clock
    server.reset()  # pages, request log, faults
    return server


@pytest.fixture
def notion(srv: NotionSandbox) -> Client:
    return Client(auth=TOKEN, base_url=srv.url, retry=False)


@pytest.fixture
def legacy(srv: NotionSandbox) -> Client:
    return Client(auth=TOKEN, base_url=srv.url, retry=False, notion_version="2022-06-28")


def title(value: str) -> dict[str, Any]:
    return {"title": [{"type": "text", "text": {"content": value}}]}


def text(value: str) -> dict[str, Any]:
    return {"rich_text": [{"type": "text", "text": {"content": value}}]}


def api_error(call: Any, *args: Any, **kwargs: Any) -> APIResponseError:
    with pytest.raises(APIResponseError) as info:
        call(*args, **kwargs)
    return info.value


def query_all(notion: Client, ds_id: str, **body: Any) -> tuple[list[dict], int]:
    results, cursor, calls = [], None, 0
    while True:
        kwargs = dict(body, page_size=body.get("page_size", 100))
        if cursor:
            kwargs["start_cursor"] = cursor
        resp = notion.data_sources.query(ds_id, **kwargs)
        calls += 1
        results.extend(resp["results"])
        if not resp["has_more"]:
            assert resp["next_cursor"] is None
            return results, calls
        cursor = resp["next_cursor"]


# -- discovery and versions -------------------------------------------------------------------
def test_database_retrieve_lists_data_sources_and_data_source_has_schema(srv, notion):
    db = notion.databases.retrieve(srv.database_id)
    assert db["object"] == "database" and db["id"] == srv.database_id
    assert "properties" not in db
    assert db["data_sources"] == [{"id": srv.data_source_id, "name": "Bookings"}]
    assert srv.data_source_id != srv.database_id

    ds = notion.data_sources.retrieve(db["data_sources"][0]["id"].replace("-", ""))
    assert ds["object"] == "data_source"
    assert ds["parent"] == {"type": "database_id", "database_id": srv.database_id}
    types = {name: p["type"] for name, p in ds["properties"].items()}
    assert types == {
        "Name": "title", "When": "date", "Status": "status", "Customer": "rich_text",
        "Email": "email", "Phone": "phone_number", "Service": "select", "Staff": "select",
        "Notes": "rich_text", "Location": "rich_text", "Timezone": "rich_text",
        "Calendar Event ID": "rich_text", "Source": "select", "External ID": "rich_text",
        "Client ID": "rich_text", "Pet ID": "rich_text", "Notifications": "select"}
    assert ds["properties"]["Name"]["id"] == "title"
    status = ds["properties"]["Status"]["status"]
    assert [o["name"] for o in status["options"]] == [
        "Pending", "Confirmed", "In progress", "Completed", "Cancelled", "No-show"]
    assert sum(len(g["option_ids"]) for g in status["groups"]) == 6
    assert [o["name"] for o in ds["properties"]["Source"]["select"]["options"]] == [
        "notion", "gcal", "calcom", "sesami"]


def test_unknown_ids_are_object_not_found(srv, notion):
    err = api_error(notion.databases.retrieve, srv.data_source_id)
    assert (err.status, err.code) == (404, "object_not_found")
    assert str(err).startswith(f"Could not find database with ID: {srv.data_source_id}.")
    err = api_error(notion.data_sources.retrieve, srv.database_id)
    assert err.code == "object_not_found" and "Could not find data_source" in str(err)
    missing = "0" * 32
    err = api_error(notion.pages.retrieve, missing)
    assert err.status == 404
    assert str(err) == ("Could not find page with ID: 00000000-0000-0000-0000-000000000000. Make "
                        "sure the relevant pages and databases are shared with your integration.")


def test_old_query_path_is_invalid_url_under_2025_09_03(srv, notion):
    err = api_error(notion.request, path=f"databases/{srv.database_id}/query", method="POST", body={})
    assert (err.status, err.code, str(err)) == (400, "invalid_request_url", "Invalid request URL.")


def test_legacy_version_uses_databases_and_rejects_data_sources(srv, legacy):
    srv.create_page({"Name": title("Rex")})
    db = legacy.databases.retrieve(srv.database_id)
    assert "data_sources" not in db and db["properties"]["When"]["type"] == "date"
    resp = legacy.request(path=f"databases/{srv.database_id}/query", method="POST", body={})
    assert resp["type"] == "page" and resp["page"] == {}
    assert resp["results"][0]["parent"] == {"type": "database_id", "database_id": srv.database_id}
    for call in (lambda: legacy.data_sources.retrieve(srv.data_source_id),
                 lambda: legacy.data_sources.query(srv.data_source_id)):
        err = api_error(call)
        assert (err.status, err.code) == (400, "invalid_request_url")
    page = legacy.pages.create(parent={"database_id": srv.database_id}, properties={"Name": title("Mia")})
    assert page["parent"]["type"] == "database_id"
    err = api_error(legacy.pages.create, parent={"data_source_id": srv.data_source_id}, properties={})
    assert err.code == "validation_error"


def test_2026_03_11_drops_archived(srv):
    client = Client(auth=TOKEN, base_url=srv.url, retry=False, notion_version="2026-03-11")
    page = client.pages.create(parent={"data_source_id": srv.data_source_id}, properties={})
    assert "archived" not in page and page["in_trash"] is False
    assert client.pages.update(page["id"], in_trash=True)["in_trash"] is True
    assert api_error(client.pages.update, page["id"], archived=False).code == "validation_error"


# -- pages and dates --------------------------------------------------------------------------
def test_create_with_time_zone_folds_offset_and_returns_null_zone(srv, notion):
    page = notion.pages.create(
        parent={"data_source_id": srv.data_source_id},
        properties={"Name": title("Rex – full groom"),
                    "When": {"date": {"start": "2026-03-29T10:00:00", "end": "2026-03-29T11:30:00",
                                      "time_zone": "Europe/Paris"}},
                    "Status": {"status": {"name": "Confirmed"}},
                    "Customer": text("Jan"), "Email": {"email": "jan@example.com"}})
    assert page["object"] == "page"
    assert page["parent"] == {"type": "data_source_id", "data_source_id": srv.data_source_id,
                              "database_id": srv.database_id}
    assert page["created_time"] == page["last_edited_time"] == "2026-11-23T10:40:00.000Z"
    props = page["properties"]
    assert props["When"] == {"id": props["When"]["id"], "type": "date", "date": {
        "start": "2026-03-29T10:00:00.000+02:00", "end": "2026-03-29T11:30:00.000+02:00",
        "time_zone": None}}
    assert props["Status"]["status"]["name"] == "Confirmed"
    assert props["Name"]["title"][0] == {
        "type": "text", "text": {"content": "Rex – full groom", "link": None},
        "annotations": {"bold": False, "italic": False, "strikethrough": False, "underline": False,
                        "code": False, "color": "default"},
        "plain_text": "Rex – full groom", "href": None}
    # every schema property is present; empty ones in Notion's empty shape
    assert props["Phone"]["phone_number"] is None and props["Service"]["select"] is None
    assert props["Notes"]["rich_text"] == [] and props["Email"]["email"] == "jan@example.com"
    assert page["url"].startswith("https://www.notion.so/Rex-full-groom-")
    assert page["in_trash"] is False and page["archived"] is False and page["public_url"] is None
    again = notion.pages.retrieve(page["id"].replace("-", ""))
    assert again["properties"] == props


def test_date_forms_round_trip(srv, notion):
    def when(date: dict) -> dict:
        page = notion.pages.create(parent={"database_id": srv.database_id},
                                   properties={"When": {"date": date}})
        return page["properties"]["When"]["date"]

    assert when({"start": "2026-11-24"}) == {"start": "2026-11-24", "end": None, "time_zone": None}
    assert when({"start": "2026-11-24", "end": "2026-11-26"})["end"] == "2026-11-26"
    assert when({"start": "2026-11-24T09:00:00Z"})["start"] == "2026-11-24T09:00:00.000+00:00"
    assert when({"start": "2026-11-24T09:00:00"})["start"] == "2026-11-24T09:00:00.000+00:00"
    assert when({"start": "2026-11-24T09:00:00-05:00"})["start"] == "2026-11-24T09:00:00.000-05:00"
    # winter time in the same zone
    assert when({"start": "2026-11-24T09:00", "time_zone": "Europe/Paris"})["start"] == \
        "2026-11-24T09:00:00.000+01:00"


def test_update_is_partial_and_bumps_last_edited(srv, notion, clock):
    page = srv.create_page({"Name": title("Rex"), "Customer": text("Jan")})
    clock.advance(minutes=3, seconds=5)
    updated = notion.pages.update(page["id"], properties={"Calendar Event ID": text("abc123")})
    assert updated["properties"]["Customer"]["rich_text"][0]["plain_text"] == "Jan"
    assert updated["properties"]["Calendar Event ID"]["rich_text"][0]["plain_text"] == "abc123"
    assert updated["last_edited_time"] == "2026-11-23T10:43:00.000Z"
    assert updated["created_time"] == "2026-11-23T10:40:00.000Z"
    cleared = notion.pages.update(page["id"], properties={"Customer": {"rich_text": []},
                                                         "When": {"date": None}})
    assert cleared["properties"]["Customer"]["rich_text"] == []
    assert cleared["properties"]["When"]["date"] is None


def test_trash_and_restore(srv, notion):
    keep = srv.create_page({"Name": title("keep")})
    gone = srv.create_page({"Name": title("gone")})
    trashed = notion.pages.update(gone["id"], in_trash=True)
    assert trashed["in_trash"] is True and trashed["archived"] is True
    ids = [p["id"] for p in notion.data_sources.query(srv.data_source_id)["results"]]
    assert ids == [keep["id"]]
    assert notion.pages.retrieve(gone["id"])["in_trash"] is True
    err = api_error(notion.pages.update, gone["id"], properties={"Notes": text("x")})
    assert err.code == "validation_error"
    assert str(err) == ("Can't edit block that is archived. You must unarchive the block before "
                        "editing.")
    restored = notion.pages.update(gone["id"], archived=False, properties={"Notes": text("back")})
    assert restored["in_trash"] is False
    assert restored["properties"]["Notes"]["rich_text"][0]["plain_text"] == "back"
    assert srv.page_count() == 2


# -- validation -------------------------------------------------------------------------------
@pytest.mark.parametrize("properties, message", [
    ({"Colour": {"rich_text": []}}, "Colour is not a property that exists."),
    ({"Notes": {"select": {"name": "x"}}}, "Notes is expected to be rich_text."),
    ({"Colour": text("x"), "Email": text("x")},
     "Colour is not a property that exists. Email is expected to be email."),
    ({"Status": {"status": {"name": "Done"}}}, 'Zt%3Cl is an invalid status option "Done".'),
    ({"Notes": text("x" * 2001)}, "body failed validation: body.properties.Notes.rich_text[0]"
                                  ".text.content.length should be ≤ `2000`, instead was `2001`."),
    ({"Email": {"email": "a" * 195 + "@b.com"}},
     "body failed validation: body.properties.Email.email.length should be ≤ `200`, instead was `201`."),
    ({"Phone": {"phone_number": "1" * 201}}, "body failed validation: body.properties.Phone"
                                             ".phone_number.length should be ≤ `200`, instead was `201`."),
    ({"When": {"date": {"end": "2026-01-01"}}},
     "body failed validation: body.properties.When.date.start should be defined, instead was `undefined`."),
    ({"When": {"date": {"start": "tomorrow"}}},
     "body failed validation: body.properties.When.date.start should be a valid ISO 8601 date "
     "string, instead was `\"tomorrow\"`."),
    ({"Notes": {"rich_text": "plain"}},
     'body failed validation: body.properties.Notes.rich_text should be an array, instead was `"plain"`.'),
])
def test_property_validation_errors(srv, notion, properties, message):
    err = api_error(notion.pages.create, parent={"data_source_id": srv.data_source_id},
                    properties=properties)
    assert (err.status, err.code, str(err)) == (400, "validation_error", message)
    with pytest.raises(SandboxApiError) as info:  # the in-process helper validates the same way
        srv.create_page(properties)
    assert info.value.message == message
    assert srv.page_count(include_trashed=True) == 0


def test_time_zone_with_offset_or_without_time_is_rejected(srv, notion):
    for date in ({"start": "2026-03-29T10:00:00+02:00", "time_zone": "Europe/Paris"},
                 {"start": "2026-03-29", "time_zone": "Europe/Paris"},
                 {"start": "2026-03-29T10:00:00", "time_zone": "Mars/Olympus"}):
        err = api_error(notion.pages.create, parent={"data_source_id": srv.data_source_id},
                        properties={"When": {"date": date}})
        assert err.code == "validation_error" and "When.date" in str(err)


def test_new_select_option_is_created_but_status_is_not(srv, notion):
    page = srv.create_page({"Service": {"select": {"name": "Teeth cleaning"}}, "Status": {
        "status": {"name": "Pending"}}})
    assert page["properties"]["Service"]["select"]["name"] == "Teeth cleaning"
    options = notion.data_sources.retrieve(srv.data_source_id)["properties"]["Service"]["select"]["options"]
    assert options[-1]["name"] == "Teeth cleaning"
    assert options[-1]["id"] == page["properties"]["Service"]["select"]["id"]
    # the same name again reuses the option; an unknown option id is an error
    again = srv.create_page({"Service": {"select": {"name": "Teeth cleaning"}}})
    assert again["properties"]["Service"]["select"]["id"] == options[-1]["id"]
    err = api_error(notion.pages.create, parent={"data_source_id": srv.data_source_id},
                    properties={"Staff": {"select": {"id": "nope"}}})
    assert str(err) == '%5BstF is an invalid select option "nope".'


def test_write_by_property_id_and_bad_parent(srv, notion):
    page = notion.pages.create(parent={"type": "data_source_id", "data_source_id": srv.data_source_id},
                               properties={"cE%3Ai": text("evt1"), "title": title("By id")})
    assert page["properties"]["Calendar Event ID"]["rich_text"][0]["plain_text"] == "evt1"
    assert page["properties"]["Name"]["title"][0]["plain_text"] == "By id"
    err = api_error(notion.pages.create, parent={"data_source_id": srv.database_id}, properties={})
    assert (err.status, err.code) == (404, "object_not_found")
    err = api_error(notion.pages.create, properties={})
    assert err.code == "validation_error" and "body.parent" in str(err)


# -- queries ----------------------------------------------------------------------------------
def test_query_paginates_250_pages_without_duplicates(srv, notion):
    created = [srv.create_page({"Name": title(f"booking {i}")})["id"] for i in range(250)]
    srv.clear_requests()
    results, calls = query_all(notion, srv.data_source_id)
    assert calls == 3 == srv.count("POST", "/query")
    ids = [p["id"] for p in results]
    assert len(ids) == len(set(ids)) == 250
    assert ids == created  # default order: creation order
    first = notion.data_sources.query(srv.data_source_id, page_size=100)
    assert first["type"] == "page_or_data_source" and first["page_or_data_source"] == {}
    assert first["next_cursor"] == created[100] and first["has_more"] is True


def test_query_body_validation(srv, notion):
    for size, message in (
            (101, "body failed validation: body.page_size should be ≤ `100`, instead was `101`."),
            (0, "body failed validation: body.page_size should be ≥ `1`, instead was `0`.")):
        err = api_error(notion.data_sources.query, srv.data_source_id, page_size=size)
        assert (err.code, str(err)) == ("validation_error", message)
    err = api_error(notion.data_sources.query, srv.data_source_id, start_cursor="not-mine")
    assert (err.code, str(err)) == ("validation_error", "The start_cursor provided is invalid: not-mine")
    err = api_error(notion.data_sources.query, srv.data_source_id,
                    filter={"property": "Colour", "rich_text": {"equals": "x"}})
    assert str(err) == "Could not find property with name or id: Colour."
    err = api_error(notion.data_sources.query, srv.data_source_id,
                    filter={"property": "Service", "status": {"equals": "Bath"}})
    assert str(err).endswith("database property select does not match filter status")
    err = api_error(notion.data_sources.query, srv.data_source_id,
                    sorts=[{"property": "Colour", "direction": "ascending"}])
    assert err.code == "validation_error"


def test_filter_rich_text_equals_and_compound(srv, notion):
    a = srv.create_page({"Name": title("A"), "Calendar Event ID": text("evt-a"),
                         "Status": {"status": {"name": "Confirmed"}},
                         "Service": {"select": {"name": "Bath"}}})
    b = srv.create_page({"Name": title("B"), "Calendar Event ID": text("evt-b"),
                         "Status": {"status": {"name": "Cancelled"}}, "Email": {"email": "b@example.com"}})
    c = srv.create_page({"Name": title("C"), "Service": {"select": {"name": "Bath"}}})

    def ids(flt: dict) -> list[str]:
        return [p["id"] for p in notion.data_sources.query(srv.data_source_id, filter=flt)["results"]]

    assert ids({"property": "Calendar Event ID", "rich_text": {"equals": "evt-b"}}) == [b["id"]]
    assert ids({"property": "Calendar Event ID", "rich_text": {"is_empty": True}}) == [c["id"]]
    assert ids({"property": "Name", "title": {"contains": "a"}}) == [a["id"]]
    assert ids({"property": "Status", "status": {"does_not_equal": "Cancelled"}}) == [a["id"], c["id"]]
    assert ids({"property": "Email", "email": {"equals": "b@example.com"}}) == [b["id"]]
    bath_and_confirmed_or_unset = {"and": [
        {"property": "Service", "select": {"equals": "Bath"}},
        {"or": [{"property": "Status", "status": {"equals": "Confirmed"}},
                {"property": "Status", "status": {"is_empty": True}}]}]}
    assert ids(bath_and_confirmed_or_unset) == [a["id"], c["id"]]
    assert ids({"property": "Service", "select": {"is_not_empty": True}}) == [a["id"], c["id"]]


def test_date_filters_and_sorts(srv, notion):
    def make(name: str, start: str | None) -> str:
        props: dict[str, Any] = {"Name": title(name)}
        if start:
            props["When"] = {"date": {"start": start}}
        return srv.create_page(props)["id"]

    late = make("late", "2026-12-02T15:00:00+01:00")
    early = make("early", "2026-12-01T09:00:00Z")
    allday = make("allday", "2026-12-01")
    none = make("none", None)

    def ids(**body: Any) -> list[str]:
        return [p["id"] for p in notion.data_sources.query(srv.data_source_id, **body)["results"]]

    assert ids(filter={"property": "When", "date": {"on_or_after": "2026-12-02"}}) == [late]
    assert ids(filter={"property": "When", "date": {"equals": "2026-12-01"}}) == [early, allday]
    assert ids(filter={"property": "When", "date": {"before": "2026-12-01T09:00:00Z"}}) == [allday]
    assert ids(filter={"property": "When", "date": {"is_empty": True}}) == [none]
    assert ids(sorts=[{"property": "When", "direction": "ascending"}]) == [allday, early, late, none]
    assert ids(sorts=[{"property": "When", "direction": "descending"}]) == [late, early, allday, none]
    assert ids(sorts=[{"property": "Name", "direction": "ascending"}]) == [allday, early, late, none]
    # sorted pagination: no page is skipped or repeated
    seen, _ = query_all(notion, srv.data_source_id, page_size=1,
                        sorts=[{"property": "When", "direction": "descending"}])
    assert [p["id"] for p in seen] == [late, early, allday, none]


def test_last_edited_time_filter_sees_minute_rounding(srv, notion, clock):
    old = srv.create_page({"Name": title("old")})  # 10:40:10 -> 10:40
    clock.advance(seconds=80)  # 10:41:30
    new = srv.create_page({"Name": title("new")})
    assert new["last_edited_time"] == "2026-11-23T10:41:00.000Z"

    def ids(after: str) -> list[str]:
        flt = {"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": after}}
        return [p["id"] for p in notion.data_sources.query(srv.data_source_id, filter=flt)["results"]]

    assert ids("2026-11-23T10:41:00Z") == [new["id"]]
    assert ids("2026-11-23T10:41:15Z") == []  # edited at 10:41:30, but Notion says 10:41:00
    assert ids("2026-11-23T10:40:00.000Z") == [old["id"], new["id"]]
    clock.advance(minutes=5)
    notion.pages.update(old["id"], properties={"Notes": text("edited")})
    assert ids("2026-11-23T10:46:00Z") == [old["id"]]
    created = {"timestamp": "created_time", "created_time": {"before": "2026-11-23T10:41:00Z"}}
    assert [p["id"] for p in notion.data_sources.query(srv.data_source_id, filter=created)["results"]] \
        == [old["id"]]
    by_edit = notion.data_sources.query(srv.data_source_id, sorts=[
        {"timestamp": "last_edited_time", "direction": "descending"}])["results"]
    assert [p["id"] for p in by_edit] == [old["id"], new["id"]]


def test_filter_properties_limits_returned_properties(srv, notion):
    page = srv.create_page({"Name": title("Rex"), "Calendar Event ID": text("e1")})
    resp = notion.data_sources.query(srv.data_source_id, filter_properties=["title", "cE%3Ai"])
    assert set(resp["results"][0]["properties"]) == {"Name", "Calendar Event ID"}
    assert set(notion.pages.retrieve(page["id"], filter_properties=["title"])["properties"]) == {"Name"}


# -- auth, wire errors, faults, recording -----------------------------------------------------
def test_bad_token_is_unauthorized(srv):
    client = Client(auth="wrong", base_url=srv.url, retry=False)
    err = api_error(client.databases.retrieve, srv.database_id)
    assert (err.status, err.code, str(err)) == (401, "unauthorized", "API token is invalid.")


def test_wire_format_of_errors(srv):
    with httpx.Client(base_url=srv.url) as http:
        r = http.get(f"/v1/databases/{srv.database_id}", headers={"Authorization": f"Bearer {TOKEN}"})
        body = r.json()
        assert r.status_code == 400 and body["code"] == "missing_version"
        assert body["object"] == "error" and body["status"] == 400 and len(body["request_id"]) == 36
        headers = {"Authorization": f"Bearer {TOKEN}", "Notion-Version": "2025-09-03"}
        r = http.get("/v1/nothing/here", headers=headers)
        assert (r.status_code, r.json()["code"], r.json()["message"]) == (
            400, "invalid_request_url", "Invalid request URL.")
        r = http.delete(f"/v1/pages/{'1' * 32}", headers=headers)
        assert r.json()["code"] == "invalid_request_url"
        r = http.post("/v1/pages", headers={**headers, "Content-Type": "application/json"},
                      content=b"{not json")
        assert r.json()["code"] == "invalid_json"
        r = http.get("/v1/pages/not-an-id", headers=headers)
        assert r.json()["code"] == "validation_error" and "path.page_id" in r.json()["message"]
        r = http.post(f"/v1/data_sources/{srv.data_source_id}/query", headers=headers)
        assert r.status_code == 200 and r.json()["results"] == [] and r.json()["has_more"] is False


def test_fault_injection_and_request_log(srv, notion):
    srv.create_page({"Name": title("Rex")})
    with httpx.Client(base_url=srv.url) as http:
        assert http.post("/_sandbox/faults", json={"fail_after_n": 2}).json() == {"ok": True}
        notion.databases.retrieve(srv.database_id)
        notion.data_sources.query(srv.data_source_id, page_size=5)
        err = api_error(notion.data_sources.retrieve, srv.data_source_id)
        assert (err.status, err.code) == (500, "internal_server_error")

        http.post("/_sandbox/faults", json={"fail_rate": 1.0, "fail_statuses": [429]})
        err = api_error(notion.data_sources.query, srv.data_source_id)
        assert (err.status, err.code) == (429, "rate_limited")
        assert err.headers["retry-after"] == "1"

        http.post("/_sandbox/faults", json={"fail_rate": 1.0, "fail_statuses": [502]})
        with pytest.raises(UnknownHTTPResponseError) as info:
            notion.data_sources.query(srv.data_source_id)
        assert info.value.status == 502 and "Bad Gateway" in info.value.body

        http.post("/_sandbox/faults", json={})
        assert notion.data_sources.query(srv.data_source_id)["results"]

        log = http.get("/_sandbox/requests").json()["requests"]
        assert [(r["method"], r["status"]) for r in log] == [
            ("GET", 200), ("POST", 200), ("GET", 500), ("POST", 429), ("POST", 502), ("POST", 200)]
        assert log[1]["path"] == f"/v1/data_sources/{srv.data_source_id}/query"
        assert log[1]["json"] == {"page_size": 5}
        assert srv.count("POST", "/query") == 4 and srv.count("GET") == 2

        http.post("/_sandbox/reset")
        assert srv.page_count() == 0 and srv.requests == []
        assert notion.data_sources.query(srv.data_source_id)["results"] == []


def test_helpers_match_http(srv, notion):
    page = srv.create_page({"Name": title("Rex")})
    assert srv.get_page(page["id"]) == page
    assert srv.pages[page["id"]].title == "Rex"
    srv.update_page(page["id"], {"Status": {"status": {"name": "Completed"}}})
    assert srv.pages[page["id"]].value("Status") == "Completed"
    srv.update_page(page["id"], in_trash=True)
    assert srv.page_count() == 0 and srv.page_count(include_trashed=True) == 1
    assert notion.pages.retrieve(page["id"])["properties"]["Status"]["status"]["name"] == "Completed"
    assert srv.requests and all(r.path.startswith("/v1/pages/") for r in srv.requests)


def test_ten_thousand_pages_read_quickly(srv, notion):
    for i in range(10_000):
        srv.create_page({"Name": title(f"b{i}"), "When": {"date": {"start": "2026-12-01T09:00:00Z"}}})
    started = time.perf_counter()
    results, calls = query_all(notion, srv.data_source_id)
    elapsed = time.perf_counter() - started
    assert calls == 100 and len({p["id"] for p in results}) == 10_000
    assert elapsed < 6.0, f"full read took {elapsed:.2f}s"
