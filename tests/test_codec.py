"""blocks/codec.py: every value our buttons and forms carry reads back exactly, and nothing else reads at all."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blocks import codec
from blocks.codec import ApprovalForm, Origin, RetryPointer, UnreadableValue
from blocks.notifications import RetryTarget
from blocks.text import ACTION_VALUE_LIMIT, PRIVATE_METADATA_LIMIT
from services.errors import DomainError
from services.refs import MAX_ID

HUGE = "9" * 20
MEGABYTE = "1" * 1_000_000

# Strings none of our writers make, whatever they are read as.
HOSTILE = [
    "", " ", "0", "-1", "+1", "1.5", "1e3", "01", " 1", "1 ", "1\n", "\n1", HUGE, str(MAX_ID + 1), MEGABYTE,
    "\u00b2", "\u0661", "\uff11", "T-1", "AP-1", "ap1", "1:home:extra", "1:", ":home", "1:Home", "1:message",
    "1:channel:C0GENERAL:x", "1::C0GENERAL", "\x00", "1\x00", "null", "None", "[1]", "{}",
]
NOT_STRINGS: list[object] = [None, 1, 1.0, True, b"1", ["1"], {"id": 1}]

DECODERS: dict[str, Callable[[object], object]] = {
    "task": codec.decode_task, "task_form": codec.decode_task_form, "campaign": codec.decode_campaign,
    "approval": codec.decode_approval, "approval_form": codec.decode_approval_form, "retry": codec.decode_retry,
}


# ---------------------------------------------------------------- round trips


ROUND_TRIPS: list[tuple[str, Callable[[], str], Callable[[object], object], object]] = [
    ("task", lambda: codec.encode_id(42), codec.decode_task, 42),
    ("task largest", lambda: codec.encode_id(MAX_ID), codec.decode_task, MAX_ID),
    ("task form", lambda: codec.encode_id(7), codec.decode_task_form, 7),
    ("campaign option", lambda: codec.encode_id(3), codec.decode_campaign, 3),
    ("approval button", lambda: codec.encode_id(1), codec.decode_approval, 1),
    ("approval form from home", lambda: codec.encode_approval_form(9, Origin.HOME), codec.decode_approval_form,
     ApprovalForm(9, Origin.HOME)),
    ("approval form from a message", lambda: codec.encode_approval_form(9, Origin.MESSAGE),
     codec.decode_approval_form, ApprovalForm(9, Origin.MESSAGE)),
    ("retry to a channel", lambda: codec.encode_retry(12, recipient_channel="C0GENERAL"), codec.decode_retry,
     RetryPointer(12, recipient_channel="C0GENERAL")),
    ("retry to a member", lambda: codec.encode_retry(12, recipient_id=5), codec.decode_retry,
     RetryPointer(12, recipient_id=5)),
    ("retry longest", lambda: codec.encode_retry(MAX_ID, recipient_channel="C" * 32), codec.decode_retry,
     RetryPointer(MAX_ID, recipient_channel="C" * 32)),
]


@pytest.mark.parametrize(("encode", "decode", "expected"), [case[1:] for case in ROUND_TRIPS],
                         ids=[case[0] for case in ROUND_TRIPS])
def test_what_a_writer_makes_reads_back_exactly(
    encode: Callable[[], str], decode: Callable[[object], object], expected: object
) -> None:
    assert decode(encode()) == expected


# The formats buttons already sent carry: a message from before this module must still work.
WIRE = [
    (codec.decode_task, "42", 42),
    (codec.decode_approval_form, "42", ApprovalForm(42, Origin.MESSAGE)),
    (codec.decode_approval_form, "42:home", ApprovalForm(42, Origin.HOME)),
    (codec.decode_retry, "12:channel:C0GENERAL", RetryPointer(12, recipient_channel="C0GENERAL")),
    (codec.decode_retry, "12:member:5", RetryPointer(12, recipient_id=5)),
]


@pytest.mark.parametrize(("decode", "value", "expected"), WIRE)
def test_the_wire_formats_are_the_ones_sent_before(
    decode: Callable[[object], object], value: str, expected: object
) -> None:
    assert decode(value) == expected


# ---------------------------------------------------------------- hostile values


@pytest.mark.parametrize("name", DECODERS)
@pytest.mark.parametrize("value", [*HOSTILE, *NOT_STRINGS], ids=lambda value: repr(value)[:30])
def test_anything_else_is_refused_with_a_short_domain_error(name: str, value: object) -> None:
    with pytest.raises(UnreadableValue) as refused:
        DECODERS[name](value)
    assert isinstance(refused.value, DomainError)  # what every error path shows as it is, without an error id
    text = str(refused.value)
    assert 0 < len(text) <= 120 and "<" not in text and "&" not in text


RETRY_HOSTILE = [
    f"{HUGE}:channel:C0GENERAL", f"1:member:{HUGE}", "0:member:5", "1:member:0", "1:member:-5", "1:member:05",
    "1:channel:c0lower", "1:channel:", f"1:channel:{'C' * 33}", "1:channel:C0\u0661", "1:group:C0GENERAL",
    "1:member:C0GENERAL", "1:channel:C0 GENERAL", "AP-1:member:5",
]


@pytest.mark.parametrize("value", RETRY_HOSTILE)
def test_a_forged_retry_target_is_refused(value: str) -> None:
    with pytest.raises(UnreadableValue):
        codec.decode_retry(value)
    assert RetryTarget.parse(value) is None


APPROVAL_FORM_HOSTILE = ["home", ":home", "1:home:", "1:home:home", "1:HOME", "0:home", f"{HUGE}:home", "1 :home",
                         "\u00b2:home", "1:homes"]


@pytest.mark.parametrize("value", APPROVAL_FORM_HOSTILE)
def test_a_forged_approval_form_is_refused(value: str) -> None:
    with pytest.raises(UnreadableValue):
        codec.decode_approval_form(value)


@given(st.text(max_size=80))
def test_decoders_are_total(text: str) -> None:
    """Any string at all: a value, or UnreadableValue; never another exception."""
    for decode in DECODERS.values():
        with contextlib.suppress(UnreadableValue):
            decode(text)


@given(st.integers(min_value=1, max_value=MAX_ID), st.sampled_from(list(Origin)))
def test_every_id_round_trips(row_id: int, origin: Origin) -> None:
    assert codec.decode_task(codec.encode_id(row_id)) == row_id
    assert codec.decode_approval_form(codec.encode_approval_form(row_id, origin)) == ApprovalForm(row_id, origin)
    assert codec.decode_retry(codec.encode_retry(row_id, recipient_id=row_id)) == RetryPointer(row_id, recipient_id=row_id)


# ---------------------------------------------------------------- writers refuse what readers would


BAD_WRITES: list[tuple[str, Callable[[], str]]] = [
    ("id zero", lambda: codec.encode_id(0)),
    ("id negative", lambda: codec.encode_id(-1)),
    ("id past the column", lambda: codec.encode_id(MAX_ID + 1)),
    ("id a bool", lambda: codec.encode_id(True)),
    ("id a string", lambda: codec.encode_id("7")),  # type: ignore[arg-type]
    ("approval form id zero", lambda: codec.encode_approval_form(0, Origin.HOME)),
    ("retry to nobody", lambda: codec.encode_retry(1)),
    ("retry to both", lambda: codec.encode_retry(1, recipient_channel="C1", recipient_id=2)),
    ("retry to a lower-case channel", lambda: codec.encode_retry(1, recipient_channel="c0general")),
    ("retry to a huge channel", lambda: codec.encode_retry(1, recipient_channel="C" * 3000)),
    ("retry to member zero", lambda: codec.encode_retry(1, recipient_id=0)),
]


@pytest.mark.parametrize("write", [case[1] for case in BAD_WRITES], ids=[case[0] for case in BAD_WRITES])
def test_writers_refuse_what_readers_would(write: Callable[[], str]) -> None:
    with pytest.raises(ValueError):
        write()


def test_written_values_fit_slacks_bounds() -> None:
    longest_value = codec.encode_retry(MAX_ID, recipient_channel="C" * 32)
    longest_metadata = codec.encode_approval_form(MAX_ID, Origin.HOME)
    assert len(longest_value) <= ACTION_VALUE_LIMIT and len(longest_metadata) <= PRIVATE_METADATA_LIMIT


def test_retry_target_delegates_to_the_codec() -> None:
    target = RetryTarget(12, recipient_channel="C0GONE")
    assert target.value == codec.encode_retry(12, recipient_channel="C0GONE")
    assert RetryTarget.parse(target.value) == target
    assert RetryTarget.parse("1:home:extra") is None
