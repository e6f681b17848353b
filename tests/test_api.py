"""The top-level Python API: every verb is the function, whatever submodules were imported first."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import onnxdream


def test_verbs_stay_callable_after_every_submodule_is_imported() -> None:
    for info in pkgutil.walk_packages(onnxdream.__path__, "onnxdream."):
        if info.name != "onnxdream.__main__":
            importlib.import_module(info.name)
    for name in onnxdream.__all__:
        value = getattr(onnxdream, name)
        assert (callable(value) and not inspect.ismodule(value)) or inspect.isclass(value), name


def test_every_verb_takes_a_model_spec_first() -> None:
    for name in ("check", "expose", "rename", "to_torch", "dream", "visualize"):
        params = list(inspect.signature(getattr(onnxdream, name)).parameters)
        assert params[0] in ("model", "image"), (name, params)
