from bsync.core.ratelimit import Pacer


class FakeTime:
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_calls_are_spaced_by_the_interval():
    t = FakeTime()
    pacer = Pacer(4, clock=t.clock, sleep=t.sleep)
    waits = [pacer.wait() for _ in range(5)]
    assert waits == [0.0, 0.25, 0.25, 0.25, 0.25]


def test_idle_time_is_not_banked_as_a_burst():
    t = FakeTime()
    pacer = Pacer(2, clock=t.clock, sleep=t.sleep)
    pacer.wait()
    t.now += 10
    assert pacer.wait() == 0.0
    assert pacer.wait() == 0.5


def test_zero_rate_never_waits():
    t = FakeTime()
    pacer = Pacer(0, clock=t.clock, sleep=t.sleep)
    assert [pacer.wait() for _ in range(3)] == [0.0, 0.0, 0.0] and t.slept == []
