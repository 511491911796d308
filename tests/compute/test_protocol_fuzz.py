"""Fuzzing the volunteer protocol: hostile messages through the real ASGI router.

Every message gets either a server message valid against docs/protocol.schema.json with a
documented error code (never ``server_error``), or a close with a documented close code; no
unhandled exception, no ERROR log; a refused message changes nothing in the database. The
generators are in tests/compute/protocol_fuzz_strategies.py; bench/fuzz_protocol.py runs
them at volume.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.models import CreditEntry, Host, Replica
from compute.protocol import Code, ProtocolError, parse
from compute.states import Outcome
from socialgrid.asgi import application
from tests.compute import protocol_fuzz_strategies as fuzz

pytestmark = pytest.mark.django_db(transaction=True)

MAX_BYTES = 4096
FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
def world(settings, user_factory):
    # Small limits, so that oversized frames and outputs are cheap to send; no rate limit, so
    # that messages reach the parser; a low violation limit, so that 4008 is reached too.
    settings.PROTOCOL = {
        **settings.PROTOCOL,
        "MAX_MESSAGE_BYTES": MAX_BYTES,
        "MESSAGES_PER_SECOND": 1e6,
        "MAX_VIOLATIONS": 8,
    }
    settings.COMPUTE = {**settings.COMPUTE, "MAX_OUTPUT_BYTES": 1024}
    world = fuzz.setup_world(owner=user_factory())
    before = _victim(world)
    yield world
    assert _victim(world) == before, "another host's replica changed"


def _victim(world: fuzz.World) -> tuple:
    return tuple(
        Replica.objects.filter(id=world.victim_replica).values_list(
            "server_state", "outcome", "host_id", "lease_token", "deadline", "output"
        )
    )


def drive(world: fuzz.World, caplog: pytest.LogCaptureFixture, *sequences) -> fuzz.Tally:
    """Run sequences, one connection each; fail on anything undefined."""
    fuzz.top_up_work(world.project_id)
    caplog.clear()
    oracle = _oracle()
    tally = fuzz.Tally()

    async def run() -> None:
        for sequence in sequences:
            await fuzz.run_sequence(
                application, sequence, world, oracle, tally, max_bytes=MAX_BYTES
            )

    asyncio.run(run())
    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    assert not tally.failures, tally.failures[:5]
    assert not errors, errors[:5]
    assert tally.exceptions == 0
    return tally


_oracles: list[fuzz.Oracle] = []


def _oracle() -> fuzz.Oracle:
    if not _oracles:
        _oracles.append(fuzz.Oracle())
    return _oracles[0]


@FUZZ
@given(sequence=fuzz.sequences(fuzz.value_ops()))
def test_arbitrary_json_values_are_refused_cleanly(world, caplog, sequence):
    drive(world, caplog, sequence)


@FUZZ
@given(sequence=fuzz.sequences(fuzz.frame_ops()))
def test_non_json_binary_and_oversized_frames_are_refused_cleanly(world, caplog, sequence):
    drive(world, caplog, sequence)


@FUZZ
@given(sequence=fuzz.sequences(fuzz.message_ops()))
def test_messages_with_hostile_fields_get_only_defined_answers(world, caplog, sequence):
    drive(world, caplog, sequence)


@FUZZ
@given(sequence=fuzz.sequences(max_after=20))
def test_mixed_sequences_on_one_connection_get_only_defined_answers(world, caplog, sequence):
    drive(world, caplog, sequence)


@settings(FUZZ, max_examples=15)
@given(messages=st.lists(fuzz.message_ops(), min_size=1, max_size=10))
def test_hostile_messages_before_hello_are_refused(world, caplog, messages):
    tally = drive(world, caplog, fuzz.Sequence(before=messages, hello=False, after=[]))
    assert not tally.replies.keys() & {("welcome", ""), ("assign", ""), ("ack", "")}


def test_the_fuzzer_reaches_the_deep_paths(world, caplog):
    """The judge itself: a hand-written sequence gets leases, acks and the refusals the
    generated traffic relies on."""
    own_result = {
        "type": "result",
        "replica": fuzz.Ref("replica", "own"),
        "lease": fuzz.Ref("lease", "own"),
        "output": {"y": 1},
        "cpu_time": 1.5,
    }
    steal = {**own_result, "replica": fuzz.Ref("replica", "victim")}
    wrong_lease = {**own_result, "lease": "0" * 32}
    ops = [
        fuzz.Op("json", {"type": "request", "n": 2}),
        fuzz.Op("json", steal),
        fuzz.Op("json", wrong_lease),
        fuzz.Op("json", own_result),
        fuzz.Op("json", {**own_result, "replica": fuzz.Ref("replica", "done")}),
        fuzz.Op("text", "{not json"),
        fuzz.Op("binary", b"\x00"),
        fuzz.Op("oversized", "é"),
    ]
    tally = drive(
        world,
        caplog,
        fuzz.Sequence(before=[fuzz.Op("json", {"type": "heartbeat"})], hello=True, after=ops),
    )
    assert tally.replies == {
        ("error", "hello_first"): 1,
        ("welcome", ""): 1,
        ("assign", ""): 1,
        ("error", "not_yours"): 1,
        ("error", "bad_lease"): 1,
        ("ack", ""): 1,
        ("error", "not_in_progress"): 1,
        ("error", "bad_json"): 2,
        ("error", "too_large"): 1,
    }
    assert not CreditEntry.objects.exists()


def _own(kind: str, **fields) -> fuzz.Op:
    """A message about the replica the connection was just given, with its lease."""
    ref = {"replica": fuzz.Ref("replica", "own"), "lease": fuzz.Ref("lease", "own")}
    return fuzz.Op("json", {"type": kind, **ref, **fields})


def _after_a_lease(*ops: fuzz.Op) -> fuzz.Sequence:
    return fuzz.Sequence(
        before=[],
        hello=True,
        after=[fuzz.Op("json", {"type": "request", "n": 1}), *ops, fuzz.Op("json", _HEARTBEAT)],
    )


_HEARTBEAT = {"type": "heartbeat"}
_LEASED = {("welcome", ""): 1, ("assign", ""): 1, ("heartbeat", ""): 1}


@pytest.mark.parametrize(
    ("output", "code"),
    [
        (float("nan"), "bad_json"),
        ({"y": float("inf")}, "bad_json"),
        ([1, float("-inf")], "bad_json"),
    ],
)
def test_a_result_whose_output_holds_nan_or_infinity_is_refused(world, caplog, output, code):
    # Python's json module writes and reads NaN and Infinity; JSON has neither and the
    # database refuses to store them, so the parser refuses them.
    tally = drive(world, caplog, _after_a_lease(_own("result", output=output, cpu_time=1)))
    assert tally.replies == {**_LEASED, ("error", code): 1}
    assert not Replica.objects.filter(outcome=Outcome.SUCCESS).exists()


@pytest.mark.parametrize("output", [{"y": "a\x00b"}, {"k\x00": 1}, ["\ud800"]])
def test_a_result_whose_output_cannot_be_stored_is_refused(world, caplog, output):
    # PostgreSQL's jsonb refuses NUL in text, and no database takes a lone surrogate.
    tally = drive(world, caplog, _after_a_lease(_own("result", output=output, cpu_time=1)))
    assert tally.replies == {**_LEASED, ("error", "bad_message"): 1}
    assert not Replica.objects.filter(outcome=Outcome.SUCCESS).exists()


def test_a_number_too_large_for_a_float_is_refused(world, caplog):
    frame = (
        f'{{"type":"result","replica":{world.victim_replica},"lease":"{world.victim_lease}",'
        '"output":{"y":1e999},"cpu_time":1}'
    )
    tally = drive(
        world, caplog, fuzz.Sequence(before=[], hello=True, after=[fuzz.Op("text", frame)])
    )
    assert tally.replies == {("welcome", ""): 1, ("error", "bad_message"): 1}


@pytest.mark.parametrize("reason", ["\ud800", "bad \udfff\ud800 pair", "a\u0000b"])
def test_an_error_report_whose_reason_cannot_be_stored_is_refused(world, caplog, reason):
    # A lone surrogate (sent escaped) cannot be encoded for the database, and PostgreSQL
    # refuses NUL in text: the parser refuses both before anything is written.
    tally = drive(world, caplog, _after_a_lease(_own("error", reason=reason)))
    assert tally.replies == {**_LEASED, ("error", "bad_message"): 1}
    assert not Replica.objects.filter(outcome=Outcome.CLIENT_ERROR).exists()


@pytest.mark.parametrize("user_agent", ["\ud800", "agent\u0000"])
def test_a_hello_whose_user_agent_cannot_be_stored_is_refused(world, caplog, user_agent):
    # The host is written while the hello is handled, outside the consumer's guard for
    # failures: the parser must refuse what the database cannot store.
    hello = {**fuzz.valid_hello(), "capabilities": {"cores": 1, "user_agent": user_agent}}
    hosts_before = Host.objects.count()
    tally = drive(
        world, caplog, fuzz.Sequence(before=[fuzz.Op("json", hello)], hello=True, after=[])
    )
    assert tally.replies == {("error", "bad_message"): 1, ("welcome", ""): 1}
    assert Host.objects.count() == hosts_before + 1  # only the valid hello's host


@pytest.mark.parametrize("fraction", [5e-324, 1e-300, 1e-9])
def test_a_tiny_progress_fraction_is_acknowledged(world, caplog, fraction):
    tally = drive(world, caplog, _after_a_lease(_own("progress", fraction=fraction)))
    assert tally.replies == {**_LEASED, ("ack", ""): 1}


@pytest.mark.parametrize("field", ["host", "project"])
def test_a_trailing_newline_does_not_pass_for_a_well_formed_identifier(field):
    # `$` matches before a final newline; identifiers must match whole.
    hello = {
        "type": "hello",
        "v": 1,
        "project": "squares",
        "host": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "capabilities": {"cores": 1},
    }
    hello[field] += "\n"
    with pytest.raises(ProtocolError) as refused:
        parse(json.dumps(hello))
    assert refused.value.code == Code.BAD_MESSAGE
