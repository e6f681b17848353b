"""NameAuthority: the one generator of unique names (export, rename's plan, structure names)."""

from __future__ import annotations

from onnxdream.fresh_names import NameAuthority


def test_bare_name_when_free_then_first_free_suffix() -> None:
    authority = NameAuthority(taken={"conv_1"})
    assert [authority.claim("conv") for _ in range(3)] == ["conv", "conv_2", "conv_3"]


def test_suffixes_avoid_reserved_names_but_reserved_can_be_claimed_bare() -> None:
    authority = NameAuthority(reserved={"relu_1"})
    assert authority.claim("relu") == "relu"
    assert authority.claim("relu") == "relu_2"
    assert authority.claim("relu_1") == "relu_1"


def test_counter_names_start_at_zero_without_a_bare_name() -> None:
    authority = NameAuthority(taken={"Conv_0", "Conv"})
    names = [authority.claim("Conv", bare=False, start=0) for _ in range(2)]
    assert names == ["Conv_1", "Conv_2"]
    assert authority.claim("Relu", bare=False, start=0) == "Relu_0"


def test_names_given_are_taken() -> None:
    authority = NameAuthority()
    first = authority.claim("x")
    assert first in authority.taken
    assert authority.claim("x") != first
