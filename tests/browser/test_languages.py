"""The interface in the volunteer's language, in a real browser: a Spanish browser signs up,
writes a prompt and reviews one in Spanish; Arabic pages mirror (screenshots at 1280 and
375 px beside the others)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session, sessionmaker

from hedgerow.growth import service
from hedgerow.growth.schemas import Submission
from hedgerow.i18n.translation import translations
from hedgerow.models import User
from tests.browser import crowd
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

TASK_URL = re.compile(r".*/tasks/\d+.*")


def es(english: str) -> str:
    """The Spanish catalog's words for `english` (the test fails if there are none)."""
    spanish = translations("es").gettext(english)
    assert spanish != english, f"no Spanish for {english!r}"
    return spanish


def a_spanish_prompt_by_someone_else(maker: sessionmaker[Session]) -> None:
    writer_id, _token = crowd.volunteer(maker, "escritora")
    with maker.begin() as db:
        writer = db.get(User, writer_id)
        assert writer is not None
        writer.language = "es"
        view = service.request_task(db, writer, language="es", kind="write_prompt")
        service.submit_task(
            db,
            writer,
            view.id,
            Submission(text="¿Cómo pasan el invierno los erizos?", category="open_qa"),
        )


def test_a_spanish_volunteer_signs_up_writes_and_reviews_in_spanish(
    live_db: sessionmaker[Session], new_page: Any
) -> None:
    a_spanish_prompt_by_someone_else(live_db)
    page = new_page(locale="es-ES")
    page.goto("/signup")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    # The contribution language follows the page's.
    expect(page.locator("#f-language")).to_have_value("es")
    page.fill("#f-username", "lucia")
    page.fill("#f-password", "una contraseña bastante larga 123")
    page.get_by_role("button", name=es("Sign up"), exact=True).click()
    page.get_by_role("button", name=es("I accept the Terms of Service")).click()

    page.goto("/dashboard")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("footer")).to_contain_text(es("Contributions are released as open data."))
    screenshot(page, "dashboard-es")

    # She writes a prompt.
    page.click("button[data-kind='write_prompt']")
    page.wait_for_url(TASK_URL)
    expect(page.get_by_test_id("submit")).to_be_visible()
    page.select_option("#f-category", "open_qa")
    page.fill("#f-text", "¿Qué comen los erizos en otoño?")
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("notice")).to_contain_text(es("Thank you, that was saved."))

    # And reviews someone else's, with the labels in Spanish.
    page.goto("/dashboard")
    page.click("button[data-kind='review_prompt']")
    page.wait_for_url(TASK_URL)
    panel = page.locator("#task-panel")
    if panel.get_attribute("data-task-kind") != "review_prompt":
        # Submitting swapped the next prompt task in; the notice offers to skip it.
        page.get_by_role("status").get_by_role("button").click()
    expect(panel).to_have_attribute("data-task-kind", "review_prompt")
    expect(panel).to_contain_text("¿Cómo pasan el invierno los erizos?")
    expect(panel).to_contain_text(es("Quality"))
    screenshot(page, "review_prompt-es")
    for radio in page.locator("fieldset.kind-yes_no input[value='0']").all():
        radio.check()
    page.locator("input[name='label.quality'][value='3']").check()
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("notice")).to_contain_text(es("Thank you, that was saved."))
    expect(page.locator("html")).to_have_attribute("lang", "es")


def test_arabic_pages_mirror_at_desktop_and_phone_widths(
    live_db: sessionmaker[Session], new_page: Any
) -> None:
    user_id, token = crowd.volunteer(live_db, "layla")
    page = new_page(token)
    page.goto("/dashboard")
    html = page.locator("html")
    expect(html).to_have_attribute("dir", "ltr")
    # She picks Arabic in the header's switcher (the script submits it on change).
    page.select_option("#language-switcher", "ar")
    expect(html).to_have_attribute("lang", "ar")
    expect(html).to_have_attribute("dir", "rtl")
    screenshot(page, "dashboard-ar")
    # Mirrored: the brand, first in the header, sits at the right edge.
    brand = page.locator(".brand").bounding_box()
    assert brand is not None and brand["x"] > 1280 / 2, brand
    page.set_viewport_size({"width": 375, "height": 900})
    brand = page.locator(".brand").bounding_box()
    assert brand is not None and brand["x"] > 375 / 2, brand
    with live_db() as db:
        user = db.get(User, user_id)
        assert user is not None and user.interface_language == "ar"  # her setting now
