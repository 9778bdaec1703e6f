"""Errors a person meets in the console's pages are pages in Chinese (miniprogram_api/errors.py,
templates/console/error.html); the APIs and htmx swaps keep the JSON error format."""

from __future__ import annotations

from miniprogram_api.app import create_app
from testkit import admins
from testkit.builders import Metered

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_another_propertys_room_is_a_chinese_404_page_in_a_browser_and_json_elsewhere(aws):
    w = Metered()
    stranger = admins.make_admin(Metered().property_id)  # owner of another company's property
    client = admins.logged_in(create_app().test_client(), stranger)
    url = f"/p/{w.property_id}/rooms"
    page = client.get(url, headers=HTML)
    text = page.get_data(as_text=True)
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "页面不存在" in text and "物业不存在" in text and "property_not_found" in text
    api = client.get(f"/admin/api/properties/{w.property_id}/rooms", headers=HTML)
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "property_not_found"
    swap = client.get(url, headers={**HTML, "HX-Request": "true"})
    assert swap.status_code == 404 and swap.get_json()["error"]["message"] == "物业不存在"
    missing = client.get("/no/such/page", headers=HTML)
    assert missing.status_code == 404 and "页面不存在" in missing.get_data(as_text=True)
