"""Learning-rate schedules vs Keras 3's formulas."""

import math

import pytest

from pyminidl.optimizers import schedules


def test_exponential_decay():
    s = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert s(0) == pytest.approx(0.1)
    assert s(5) == pytest.approx(0.1 * 0.5**0.5)
    assert s(20) == pytest.approx(0.025)
    st = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert st(19) == pytest.approx(0.05)


def test_piecewise_constant():
    s = schedules.PiecewiseConstantDecay([100, 200], [1.0, 0.5, 0.1])
    assert [s(0), s(100), s(101), s(200), s(201)] == [1.0, 1.0, 0.5, 0.5, 0.1]
    with pytest.raises(ValueError, match="1 less than the length of values"):
        schedules.PiecewiseConstantDecay([1, 2], [1.0, 0.5])


def test_cosine_decay_and_warmup():
    s = schedules.CosineDecay(0.1, decay_steps=100, alpha=0.1)
    assert s(0) == pytest.approx(0.1)
    assert s(50) == pytest.approx(0.1 * (0.9 * 0.5 + 0.1))
    assert s(1000) == pytest.approx(0.01)
    w = schedules.CosineDecay(0.0, decay_steps=10, warmup_target=1.0, warmup_steps=5)
    assert w(2) == pytest.approx(0.4)
    assert w(5) == pytest.approx(1.0)
    assert w(10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert w(100) == pytest.approx(0.0)


def test_config_round_trip():
    for s in (schedules.ExponentialDecay(0.1, 10, 0.9, staircase=True), schedules.PiecewiseConstantDecay([3], [1, 2]),
              schedules.CosineDecay(0.1, 10, alpha=0.2, warmup_target=0.5, warmup_steps=3),
              schedules.InverseTimeDecay(0.1, 10, 0.5)):
        again = schedules.deserialize(schedules.serialize(s))
        assert again.get_config() == s.get_config()
        assert again(7) == s(7)
