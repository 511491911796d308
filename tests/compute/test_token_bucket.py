"""The sockets' message-rate bucket counts time on its clock, never the machine's."""

from __future__ import annotations

from compute.ratelimit import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_refills_only_as_its_clock_moves():
    clock = Clock()
    bucket = TokenBucket(2.0, 4.0, clock=clock)
    assert [bucket.take() for _ in range(5)] == [True, True, True, True, False]
    clock.now += 0.5  # one token at 2 per second
    assert [bucket.take() for _ in range(2)] == [True, False]
    clock.now += 60.0  # never more than the burst
    assert [bucket.take() for _ in range(5)] == [True, True, True, True, False]


def test_buckets_made_without_a_clock_take_the_classs(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(TokenBucket, "clock", staticmethod(clock))
    bucket = TokenBucket(1.0, 1.0)
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now += 1.0
    assert bucket.take()
