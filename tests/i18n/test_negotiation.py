"""Which interface language a request gets: setting, cookie, Accept-Language, default."""

from __future__ import annotations

import pytest

from hedgerow.i18n.negotiation import accepted_languages, negotiate, user_setting


def test_accept_language_ranges_come_most_preferred_first() -> None:
    header = "fr;q=0.5, es-MX, de;q=0.9, *;q=0.1"
    assert accepted_languages(header) == ["es-mx", "de", "fr"]


@pytest.mark.parametrize(
    "header",
    [
        "",
        None,
        ";;;,,,",
        "q=1",
        "es;q=abc",
        "es;q=2",
        "es;q=0",
        "<script>",
        "x" * 10_000,
        "\x00es",
    ],
)
def test_a_malformed_or_unknown_accept_language_falls_back_to_the_default(
    header: str | None,
) -> None:
    assert negotiate(accept_language=header, default="fr") == "fr"


def test_setting_beats_cookie_beats_header_beats_default() -> None:
    assert negotiate(user_setting="de", cookie="es", accept_language="fr", default="ar") == "de"
    assert negotiate(cookie="es", accept_language="fr", default="ar") == "es"
    assert negotiate(accept_language="fr", default="ar") == "fr"
    assert negotiate(default="ar") == "ar"


def test_unknown_values_at_each_level_are_passed_over() -> None:
    assert negotiate(user_setting="xx", cookie="zz", accept_language="it, es", default="de") == "es"
    # A default the interface does not ship (a contribution language such as Italian).
    assert negotiate(default="it") == "en"


def test_a_regional_tag_finds_its_language() -> None:
    assert negotiate(accept_language="zh-Hans-CN,zh;q=0.9") == "zh"
    assert negotiate(accept_language="ar-EG") == "ar"


def test_a_users_setting_defaults_to_their_contribution_language_when_shipped() -> None:
    assert user_setting("de", "es") == "de"
    assert user_setting(None, "es") == "es"
    assert user_setting(None, "it") is None  # Italian is contributed in, not shipped
