"""The federation's cache of remote answers: bounded in entries and in bytes (least recently used
dropped first), answers kept for their time only, none kept when it is off."""

from cure.ccsi.federation import Answer, AnswerCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def answer(size: int) -> Answer:
    return Answer(products=(), more=False, matched=None, size=size)


def test_entries_past_the_bound_drop_the_least_recently_used() -> None:
    cache = AnswerCache(ttl=60, max_entries=2, max_bytes=10_000, clock=Clock())
    cache.put("a", answer(10))
    cache.put("b", answer(10))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", answer(10))

    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None
    assert len(cache) == 2 and cache.bytes == 20


def test_bytes_past_the_bound_drop_entries_and_an_oversized_answer_is_not_kept() -> None:
    cache = AnswerCache(ttl=60, max_entries=100, max_bytes=1000, clock=Clock())
    cache.put("a", answer(400))
    cache.put("b", answer(400))
    cache.put("c", answer(400))  # 1200 > 1000: a goes
    cache.put("huge", answer(1001))

    assert [k for k in ("a", "b", "c", "huge") if cache.get(k) is not None] == ["b", "c"]
    assert cache.bytes == 800


def test_an_answer_is_kept_for_its_time_only_and_none_when_the_cache_is_off() -> None:
    clock = Clock()
    cache = AnswerCache(ttl=60, max_entries=10, max_bytes=10_000, clock=clock)
    off = AnswerCache(ttl=0, max_entries=10, max_bytes=10_000, clock=clock)
    cache.put("a", answer(10))
    off.put("a", answer(10))
    clock.now += 59

    assert cache.get("a") is not None and off.get("a") is None
    clock.now += 2
    assert cache.get("a") is None and len(cache) == 0 and cache.bytes == 0
