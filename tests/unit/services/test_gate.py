import asyncio
import threading

import pytest

from services.gate import Gate, GateFull, GateTimeout


def test_capacity_is_a_hard_bound_and_release_frees_a_slot():
    g = Gate("ask", 2, 1.0)
    g.try_acquire()
    g.try_acquire()
    with pytest.raises(GateFull, match="queue is full") as e:
        g.try_acquire()
    assert 1 <= e.value.retry_after <= 60
    g.release(0.1)
    g.try_acquire()
    assert g.active == 2
    with pytest.raises(ValueError):
        Gate("x", 0, 1.0)


def test_release_without_acquire_is_an_error():
    with pytest.raises(RuntimeError, match="without try_acquire"):
        Gate("ask", 1, 1.0).release()


def test_timeout_answers_at_once_but_keeps_the_slot_until_the_thread_ends():
    g = Gate("ask", 1, 0.05)
    go = threading.Event()

    async def main():
        with pytest.raises(GateTimeout, match="timeout"):
            await g.run(go.wait, 10)
        assert g.active == 1
        with pytest.raises(GateFull):
            await g.run(lambda: 1)
        go.set()
        for _ in range(100):
            if not g.active:
                break
            await asyncio.sleep(0.01)
        assert g.active == 0
        assert await g.run(lambda x: x + 1, 1) == 2

    asyncio.run(main())


def test_an_error_in_the_job_releases_the_slot():
    g = Gate("ask", 1, 1.0)

    def boom():
        raise KeyError("x")

    async def main():
        with pytest.raises(KeyError):
            await g.run(boom)
        assert g.active == 0

    asyncio.run(main())
