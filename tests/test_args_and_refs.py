"""Parsing what people type: words, quotes, dates, people, channels and refs."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.slack.args import (
    PersonRef,
    parse_channel,
    parse_date,
    parse_person,
    split_words,
    unescape_slack,
)
from services.errors import InvalidInput
from services.refs import RefKind, format_ref, parse_ref


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ('new "Spring launch" product_launch 2027-03-01', ["new", "Spring launch", "product_launch", "2027-03-01"]),
        ("new \u201cSpring launch\u201d webinar 2027-03-01", ["new", "Spring launch", "webinar", "2027-03-01"]),
        ("new \u201eHerbst\u201c event 2027-03-01", ["new", "Herbst", "event", "2027-03-01"]),
        ("new Dave's launch promo 2027-03-01", ["new", "Dave's", "launch", "promo", "2027-03-01"]),
        ("new Dave\u2019s promo 2027-03-01", ["new", "Dave's", "promo", "2027-03-01"]),
        ('new "Tom &amp; Jerry" promo 2027-03-01', ["new", "Tom & Jerry", "promo", "2027-03-01"]),
        ("   list   ", ["list"]),
        ("", []),
    ],
)
def test_split_words(typed: str, words: list[str]) -> None:
    assert split_words(typed) == words


def test_unclosed_quote_is_explained() -> None:
    with pytest.raises(InvalidInput, match="quote is not closed"):
        split_words('new "Spring launch product_launch 2027-03-01')


def test_slack_entities_are_decoded_once() -> None:
    assert unescape_slack("&lt;!channel&gt; &amp;amp;") == "<!channel> &amp;"


QUOTES = '"\u201c\u201d\u201e\u00ab\u00bb'


@given(st.text(max_size=200))
def test_split_words_gives_words_or_explains_the_quote(text: str) -> None:
    try:
        words = split_words(text)
    except InvalidInput:
        assert any(quote in text for quote in QUOTES)  # only an unclosed quote is refused
        return
    if not any(quote in text for quote in QUOTES):
        assert words == text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("\x00", "").split()


@pytest.mark.parametrize("word", ["2027-02-30", "20270301", "2027/03/01", "tomorrow", "2027-3-1", ""])
def test_bad_dates_are_refused(word: str) -> None:
    with pytest.raises(InvalidInput, match="YYYY-MM-DD"):
        parse_date(word)


def test_good_date() -> None:
    assert parse_date("2028-02-29") == date(2028, 2, 29)


@pytest.mark.parametrize("typed", ["CM-12", "cm-12", "cm12", "12", " CM-12 ", "`CM-12`"])
def test_campaign_refs(typed: str) -> None:
    assert parse_ref(typed, RefKind.CAMPAIGN) == 12


@pytest.mark.parametrize("typed", ["T-12", "AP-3", "CM-0", "CM-", "CM-1x", "x" * 500])
def test_wrong_refs_are_refused(typed: str) -> None:
    with pytest.raises(InvalidInput, match="CM-12") as raised:
        parse_ref(typed, RefKind.CAMPAIGN)
    assert len(str(raised.value)) < 200  # a long paste is cut in the message


def test_ref_round_trip() -> None:
    for kind in RefKind:
        assert parse_ref(format_ref(kind, 42), kind) == 42


@pytest.mark.parametrize(
    ("typed", "person"),
    [
        ("<@U0BOB|bob>", PersonRef(slack_user_id="U0BOB")),
        ("<@W0BOB>", PersonRef(slack_user_id="W0BOB")),
        ("@U0BOB", PersonRef(slack_user_id="U0BOB", name="U0BOB")),  # an id, unless someone has that name
        ("@julia", PersonRef(name="julia")),
        ("@Julia Weber", PersonRef(name="Julia Weber")),
        ("@u0bob", PersonRef(name="u0bob")),
    ],
)
def test_people_as_typed(typed: str, person: PersonRef) -> None:
    assert parse_person(typed) == person


@pytest.mark.parametrize("typed", ["bob", "@", "@ ", "<@U0BOB", "<#C0LAUNCH>", ""])
def test_what_is_not_a_person_is_explained(typed: str) -> None:
    with pytest.raises(InvalidInput, match="Mention the person with @"):
        parse_person(typed)


@pytest.mark.parametrize("typed", ["<#C0LAUNCH|launch>", "<#C0LAUNCH>", "#C0LAUNCH", "C0LAUNCH12"])
def test_channels_as_typed(typed: str) -> None:
    assert parse_channel(typed) == typed.strip("<#>").split("|")[0]


@pytest.mark.parametrize(("typed", "explains"), [("#launch", "I don't know the channel #launch"),
                                                 ("launch", "Name the channel with #"), ("<@U0BOB>", "Name the channel")])
def test_what_is_not_a_channel_is_explained(typed: str, explains: str) -> None:
    with pytest.raises(InvalidInput, match=explains):
        parse_channel(typed)
