"""The room monitor (房间监控) against the emulator: the read model over a property made
through the services (readings, a cut, keep-supply), its reads (one query per building,
none per room), and the page, its htmx partial and its JSON through a logged-in Flask
test client. Expected states are worked by hand from how each room was set up."""

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bench.console import DynamoRequests, login
from core.protocol.messages import MeterReading
from core.services import monitor
from core.services.control import Control
from core.services.ingest import Ingest
from miniprogram_api.app import create_app
from testkit.builders import Estate, uid


def read(metered, meter_id, relay, seq=1):
    r = MeterReading(meter_id=meter_id, seq=seq, read_at=datetime.now(UTC), total=Decimal(100 + seq),
                     relay_state=relay)
    assert Ingest().reading(metered.site.site_id, r) != "refused"


def tiles_of(view):
    return {t.room.room_id: t for bv in view.buildings for fv in bv.floors for t in fv.tiles}


@pytest.fixture
def place(metered):
    """Rooms R001.. in building B1 (Metered's), one room in a second building, one vacant."""
    w, d = metered, metered.d
    rooms = {}
    for key, opening in (("normal", 10_000), ("low", 3_000), ("arrears", -500), ("cut", -2_000),
                         ("offline", 9_000), ("protected", 9_000)):
        a = w.account(opening=opening)
        rooms[key] = (f"R{w.rooms:03d}", a, w.meter(a))
    for key in ("normal", "low", "arrears", "cut", "protected"):
        read(w, rooms[key][2], "closed")  # online, relay read back closed; "offline" is never heard from
    Control().configure_account(w.property_id, rooms["protected"][1], "test", keep_supply=True)
    Control().evaluate(rooms["cut"][1], "test:cut")  # below the line, no protection: cut, TRIP in flight
    d.add_room(w.property_id, "B1", "F1", "R900", "空房", "20")
    d.add_building(w.property_id, "B2", "2 号楼")
    d.add_floor(w.property_id, "B2", "F3", "3 层", 3)
    d.add_room(w.property_id, "B2", "F3", "B301", "301", "40")
    wang = uid("t")
    d.register_tenant(w.property_id, wang, "王小五", "13912345678")
    d.open_account(w.property_id, uid("a"), "B2", "B301", wang, "301", opening_balance=1_500)
    return w, rooms


def test_the_read_model_shows_each_room_as_it_was_set_up(place):
    w, rooms = place
    view = monitor.room_monitor(w.property_id)
    tiles = tiles_of(view)
    by_room = {t.room.room_id: t.state for t in tiles.values()}
    assert by_room == {"R001": "normal", "R002": "low", "R003": "arrears", "R004": "cut", "R005": "offline",
                       "R006": "protected", "R900": "vacant", "B301": "low"}
    assert [(b.building.building_id, [f.floor.floor_id for f in b.floors]) for b in view.buildings] == \
        [("B1", ["F1"]), ("B2", ["F3"])]
    normal, low, cut = tiles["R001"], tiles["R002"], tiles["R004"]
    assert (normal.balance, normal.relay, normal.online, normal.in_flight, normal.tenant_name, normal.phone) == \
        (10_000, "closed", True, False, "测试租户", "13800000000")
    assert (low.alarm_level, tiles["B301"].alarm_level, tiles["B301"].tenant_name) == (1, 2, "王小五")
    assert (cut.relay, cut.in_flight, cut.balance) == ("closed", True, -2_000)  # ordered, not yet read back
    assert tiles["R005"].online is False and tiles["B301"].online is None  # never heard from / no meter
    assert view.total == 8 and view.shown == 8
    assert view.states == {"cut": 1, "arrears": 1, "offline": 1, "low": 2, "protected": 1, "normal": 1, "vacant": 1}
    assert view.chips == {"arrears": 2, "cut": 1, "offline": 1, "low": 2, "vacant": 1}  # the cut room is in arrears

    # the meter reads back open: the relay shows it; the command is still outstanding until its result
    read(w, rooms["cut"][2], "open", seq=2)
    assert (tiles_of(monitor.room_monitor(w.property_id))["R004"].relay) == "open"


def test_filters_and_search(place):
    w, _ = place

    def rooms(filters=(), q=""):
        f, query = monitor.parse_request(list(filters), q)
        return sorted(tiles_of(monitor.room_monitor(w.property_id, f, query)))

    assert rooms(["arrears"]) == ["R003", "R004"]
    assert rooms(["cut"]) == ["R004"]
    assert rooms(["offline"]) == ["R005"]
    assert rooms(["low"]) == ["B301", "R002"]
    assert rooms(["vacant"]) == ["R900"]
    assert rooms(["cut,vacant"]) == ["R004", "R900"]  # chips combine (either)
    assert rooms(q="王小") == ["B301"]
    assert rooms(q="13912345678") == ["B301"]
    assert rooms(q="r00") == ["R001", "R002", "R003", "R004", "R005", "R006"]
    assert rooms(["low"], q="王") == ["B301"]
    assert rooms(["offline"], q="王") == []


def test_reads_are_one_query_per_building_whatever_the_rooms(aws):
    """The monitor's requests: the property's directory, tenants, balances and meters, and
    one query per building: the same for 2 x 2 x 3 and 2 x 3 x 8 rooms."""
    counter = DynamoRequests()
    counts = []
    for floors, per_floor in ((2, 3), (3, 8)):
        e = Estate(2, floors, per_floor)
        view, _, _, reqs = counter.measure(lambda e=e: monitor.room_monitor(e.property_id))
        counts.append(reqs)
        assert {t.room.room_id: t.state for t in tiles_of(view).values()} == \
            {r["room_id"]: r["state"] for r in e.rooms}
    assert counts[0] == counts[1] == {"Query": 4 + 2}


def test_an_unknown_property_is_a_404(aws):
    from core.domain.errors import NotFound

    with pytest.raises(NotFound):
        monitor.room_monitor(uid("p"))


# --- the page, its partial and its JSON --------------------------------------------------------


@pytest.fixture
def estate(aws):
    return Estate(2, 2, 5)  # 20 rooms: two of each pattern state


@pytest.fixture
def client(estate):
    return login(create_app(), estate)


def states_in(html):
    return dict(re.findall(r'data-room="([^"]+)" data-state="([^"]+)"', html))


def test_the_page_shows_every_tile_grouped_by_building_and_floor(client, estate):
    r = client.get(f"/p/{estate.property_id}/rooms")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert states_in(html) == {x["room_id"]: x["state"] for x in estate.rooms}
    assert "房间监控" in html and "A 栋" in html and "B 栋" in html and "1 层" in html
    assert re.findall(r'data-building="([^"]+)"', html) == ["A", "B"]
    # a tile: room, tenant, balance in yuan, relay, online, the state's colour class
    normal = next(x for x in estate.rooms if x["setup"] == {"balance": 12345})
    tile = re.search(rf'<a class="tile state-normal"[^>]*data-room="{normal["room_id"]}".*?</a>', html, re.S).group(0)
    assert normal["name"] in tile and normal["tenant"] in tile and "¥123.45" in tile
    assert "合闸" in tile and "在线" in tile and "inflight" not in tile
    cut = re.search(r'<a class="tile state-cut".*?</a>', html, re.S).group(0)
    assert "分闸" in cut and "¥-30.00" in cut
    assert re.search(r'<a class="tile state-low state-low-2".*?¥10.00', html, re.S)
    assert re.search(r'<a class="tile state-offline".*?离线', html, re.S)
    assert 'class="inflight"' in html and "空置" in html
    # refreshed by htmx every 5 s with the filters, without a full reload
    assert 'hx-trigger="every 5s"' in html and f'hx-get="/p/{estate.property_id}/rooms/tiles"' in html
    assert 'hx-include="#monitor-filters"' in html


def test_filters_search_and_the_partial(client, estate):
    base = f"/p/{estate.property_id}/rooms"
    arrears = states_in(client.get(base, query_string={"filter": "arrears"}).get_data(as_text=True))
    assert sorted(arrears.values()) == ["arrears", "arrears", "cut", "cut"]  # cut rooms are in arrears too
    one = next(x for x in estate.rooms if x["state"] == "protected")
    assert states_in(client.get(base, query_string={"q": one["tenant"]}).get_data(as_text=True)) == \
        {one["room_id"]: "protected"}
    assert states_in(client.get(base, query_string={"q": one["phone"]}).get_data(as_text=True)) == \
        {one["room_id"]: "protected"}
    assert list(states_in(client.get(base, query_string={"q": one["room_id"]}).get_data(as_text=True))) == \
        [one["room_id"]]
    part = client.get(f"{base}/tiles", query_string={"filter": ["vacant", "offline"]}, headers={"HX-Request": "true"})
    html = part.get_data(as_text=True)
    assert part.status_code == 200 and "<html" not in html
    assert sorted(states_in(html).values()) == ["offline", "offline", "vacant", "vacant"]
    assert 'id="chip-n-vacant" hx-swap-oob="true">2<' in html  # the chip counts refresh too
    page = client.get(base, query_string={"filter": "vacant"}).get_data(as_text=True)
    assert re.search(r'value="vacant" checked', page)  # the page keeps the chosen chips


def test_the_json_endpoint_returns_what_the_page_shows(client, estate):
    url = f"/admin/api/properties/{estate.property_id}/rooms"
    body = client.get(url).get_json()
    rooms = {r["room_id"]: r for b in body["buildings"] for f in b["floors"] for r in f["rooms"]}
    assert {k: v["state"] for k, v in rooms.items()} == \
        states_in(client.get(f"/p/{estate.property_id}/rooms").get_data(as_text=True))
    normal = next(x for x in estate.rooms if x["setup"] == {"balance": 12345})
    got = rooms[normal["room_id"]]
    assert (got["balance_fen"], got["balance"], got["relay"], got["online"], got["tenant_name"], got["phone"]) == \
        (12345, "123.45", "closed", True, normal["tenant"], normal["phone"])
    in_flight = [r for r in rooms.values() if r["relay_in_flight"]]
    assert len(in_flight) == 2 and all(r["state"] == "normal" for r in in_flight)
    assert body["total"] == 20 and body["chips"] == {"arrears": 4, "cut": 2, "offline": 2, "low": 4, "vacant": 2}
    cut = client.get(url, query_string={"filter": "cut"}).get_json()
    assert cut["shown"] == 2 and cut["filters"] == ["cut"]


def test_bad_filters_and_searches_are_a_clear_400(client, estate):
    url = f"/admin/api/properties/{estate.property_id}/rooms"
    r = client.get(url, query_string={"filter": "everything"})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "filter_invalid"
    assert r.get_json()["error"]["message"] == "未知的筛选条件"
    r = client.get(f"/p/{estate.property_id}/rooms/tiles", query_string={"q": "x" * 51})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "query_too_long"


def test_another_property_is_not_found_and_a_visitor_must_log_in(client, estate, aws):
    other = Estate(1, 1, 1)
    for url in (f"/p/{other.property_id}/rooms", f"/admin/api/properties/{other.property_id}/rooms"):
        r = client.get(url)
        assert r.status_code == 404 and other.rooms[0]["tenant"] not in r.get_data(as_text=True)
    anonymous = create_app().test_client()
    assert anonymous.get(f"/admin/api/properties/{estate.property_id}/rooms").status_code == 401
    assert anonymous.get(f"/p/{estate.property_id}/rooms").status_code == 302


def test_the_first_page_goes_to_the_monitor_of_the_admins_property(client, estate):
    r = client.get("/")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/p/{estate.property_id}/rooms")
