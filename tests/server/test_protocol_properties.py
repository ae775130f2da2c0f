"""Property tests: whatever a client sends, the frame parsers answer with a documented error code.

Arbitrary text, bytes and JSON (deeply nested, huge numbers, wrong types) go to the three
parsers of client frames; each must return a frame or raise ProtocolError with the code of
its frame kind (PROTOCOL.md v2, "Connection ends and resume"), never anything else.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import ProtocolError
from monitor.server.protocol import StartFrame, parse_control, parse_decision, parse_start

START_CODES = {
    "expected_start",
    "bad_start",
    "unsupported_sample_rate",
    "unsupported_encoding",
    "unsupported_channels",
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)

start_like = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["start", "stop", 1, None]),
        "room_id": json_values,
        "sample_rate": st.one_of(st.integers(), json_values),
        "encoding": st.one_of(st.just("pcm_s16le"), json_values),
    },
    optional={"channels": json_values, "seq": json_values, "context": json_values, "session_id": json_values},
)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def parse_start_outcome(message: str | bytes) -> str:
    try:
        frame = parse_start(message)
    except ProtocolError as exc:
        assert exc.fatal
        assert exc.code in START_CODES, exc.code
        return exc.code
    assert isinstance(frame, StartFrame)
    return "ok"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_parse_start_any_text_or_bytes(message: str | bytes) -> None:
    parse_start_outcome(message)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, start_like))
def test_parse_start_any_json(value: Any) -> None:
    parse_start_outcome(json.dumps(value))


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_values, st.text(max_size=100), st.binary(max_size=50)))
def test_parse_control_and_decision_any_input(value: Any) -> None:
    text = value if isinstance(value, str | bytes) else json.dumps(value)
    if isinstance(text, str):
        try:
            parse_control(text)
        except ProtocolError as exc:
            assert not exc.fatal and exc.code == "unexpected_text"
    try:
        parse_decision(text)
    except ProtocolError as exc:
        assert not exc.fatal and exc.code == "bad_decision"


def test_deeply_nested_start_is_bad_start() -> None:
    """5,000 nested brackets used to raise RecursionError (an `internal` close)."""
    frame = '{"type":"start","room_id":"r","sample_rate":16000,"encoding":"pcm_s16le","context":' + nested(5000) + "}"
    assert parse_start_outcome(frame) == "bad_start"
    assert parse_start_outcome(nested(5000)) == "bad_start"


def test_five_thousand_digit_seq_is_bad_start() -> None:
    """Python refuses to parse ints over 4,300 digits with ValueError; it is a client error."""
    frame = '{"type":"start","room_id":"r","sample_rate":16000,"encoding":"pcm_s16le","seq":' + "9" * 5000 + "}"
    try:
        parse_start(frame)
    except ProtocolError as exc:
        assert exc.code == "bad_start" and "unusable JSON value" in str(exc)
    else:
        raise AssertionError("a 5,000-digit seq was accepted")


def test_nested_decision_is_a_recoverable_bad_decision() -> None:
    try:
        parse_decision(nested(5000))
    except ProtocolError as exc:
        assert exc.code == "bad_decision" and not exc.fatal and "nested too deeply" in str(exc)
    else:
        raise AssertionError("nested decision accepted")
