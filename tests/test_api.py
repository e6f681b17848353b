"""The top-level Python API: every verb is the function, whatever submodules were imported first."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import onnxdream

VERBS = ("check", "expose", "rename", "to_torch", "export", "visualize", "dream")


def _import_everything() -> None:
    for info in pkgutil.walk_packages(onnxdream.__path__, "onnxdream."):
        if info.name != "onnxdream.__main__":
            importlib.import_module(info.name)


def test_verbs_stay_functions_after_every_submodule_is_imported() -> None:
    _import_everything()
    for name in VERBS:
        value = getattr(onnxdream, name)
        assert callable(value), name
        # ``onnxdream.dream`` is also the dream package, made callable; every other verb is a function.
        assert inspect.isfunction(value) or name == "dream", f"onnxdream.{name} is {value!r}"
    assert inspect.isclass(onnxdream.Model) and inspect.isfunction(onnxdream.open_model)


def test_verbs_take_the_model_first_and_dream_the_image() -> None:
    _import_everything()
    for name in ("check", "expose", "rename", "to_torch", "visualize"):
        assert next(iter(inspect.signature(getattr(onnxdream, name)).parameters)) == "model", name
    assert list(inspect.signature(onnxdream.dream.dream).parameters)[:2] == ["image", "model"]
    assert next(iter(inspect.signature(onnxdream.export).parameters)) == "spec"
