"""Every public name of genimg_fast, genimg_fast.nn, genimg_fast.models and genimg_fast.ops (their
__all__), and the objectives behind the loss modules, has a docstring of its own that names each
of its parameters: a class its constructor's (and, for a module, forward's) arguments, and each
public method it defines its own."""
from __future__ import annotations

import inspect
import re
import types
from typing import NamedTuple

import pytest
from torch import nn

import genimg_fast
from genimg_fast.ops import objectives

PACKAGES = (genimg_fast, genimg_fast.nn, genimg_fast.models, genimg_fast.ops)
# methods whose contract is torch's own (nn.Module's hooks); forward is checked with its class
TORCH_HOOKS = {"forward", "extra_repr"}


def _defined_here(value) -> bool:
    return (inspect.isclass(value) or inspect.isfunction(value)) and \
        getattr(value, "__module__", "").startswith("genimg_fast")


def _exported(module: types.ModuleType) -> list[tuple[str, object]]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [name for name, value in vars(module).items() if not name.startswith("_") and _defined_here(value)]
    return [(f"{module.__name__}.{name}", getattr(module, name)) for name in names]


def _objectives() -> list[tuple[str, object]]:
    return [(f"{objectives.__name__}.{name}", value) for name, value in vars(objectives).items()
            if not name.startswith("_") and inspect.isfunction(value) and value.__module__ == objectives.__name__]


PUBLIC = [*(item for package in PACKAGES for item in _exported(package)), *_objectives()]


def _function(obj):
    """The Python function behind a torch.library.custom_op (which keeps the docstring there)."""
    if type(obj).__name__ == "CustomOpDef":
        fn = getattr(obj, "_init_fn", None)
        assert fn is not None, "torch's CustomOpDef no longer has _init_fn: update this test"
        return fn
    return obj


def _own_doc(obj) -> str:
    """obj's own docstring: a class's, not one inherited from nn.Module or another base, and not
    the "Name(field, ...)" text a NamedTuple makes up when it has none."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
    if inspect.isclass(obj) and issubclass(obj, tuple) and hasattr(obj, "_fields"):
        if doc == f"{obj.__name__}({', '.join(obj._fields)})":
            doc = None
    return inspect.cleandoc(doc) if doc else ""


def _parameters(fn) -> list[str]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    return [p.name for p in signature.parameters.values()
            if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _unmentioned(doc: str, names: list[str]) -> list[str]:
    return [name for name in names if not re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", doc)]


def _methods(cls) -> list[tuple[str, object]]:
    """Public methods defined by cls and its bases from the same package (not nn.Module's or tuple's)."""
    package = cls.__module__.split(".")[0]
    found = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.split(".")[0] != package:
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in TORCH_HOOKS:
                continue
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if inspect.isfunction(value):
                found[name] = value
    return sorted(found.items())


def problems(name: str, obj) -> list[str]:
    """What is missing from obj's documentation; empty when nothing is."""
    if isinstance(obj, types.ModuleType):
        return [] if (obj.__doc__ or "").strip() else [f"{name}: no module docstring"]
    if not callable(obj):
        return []  # __version__
    fn = _function(obj)
    doc = _own_doc(fn)
    if not doc:
        return [f"{name}: no docstring"]
    found = [f"{name}: docstring does not mention parameter {p!r}" for p in _unmentioned(doc, _parameters(fn))]
    if inspect.isclass(fn):
        init = fn.__dict__.get("__init__")
        doc_with_init = doc + "\n" + (inspect.getdoc(init) or "" if init is not None else "")
        found = [f"{name}: docstring does not mention parameter {p!r}"
                 for p in _unmentioned(doc_with_init, _parameters(fn))]
        if issubclass(fn, nn.Module) and "forward" in fn.__dict__:
            forward_doc = doc + "\n" + (fn.forward.__doc__ or "")
            found += [f"{name}.forward: parameter {p!r} is documented neither by the class nor by forward"
                      for p in _unmentioned(forward_doc, _parameters(fn.forward))]
        for method_name, method in _methods(fn):
            found += problems(f"{name}.{method_name}", method)
    return found


@pytest.mark.parametrize("name,obj", PUBLIC, ids=[name for name, _ in PUBLIC])
def test_public_name_is_documented(name, obj):
    assert not problems(name, obj)


def test_the_walk_covers_the_api():
    names = {name for name, _ in PUBLIC}
    for expected in ("genimg_fast.convert", "genimg_fast.to_reference", "genimg_fast.capture_training_step",
                     "genimg_fast.nn.BatchNormAct2d", "genimg_fast.nn.GANLoss", "genimg_fast.models.define_G",
                     "genimg_fast.models.UnetGenerator", "genimg_fast.ops.norm_act_train", "genimg_fast.ops.LossTerm",
                     "genimg_fast.ops.objectives.vae_loss"):
        assert expected in names
    assert len(names) >= 45


def test_the_check_fails_for_missing_documentation():
    def undocumented(a):
        return a

    def half_documented(alpha, beta=1):
        """Uses alpha only."""
        return alpha, beta

    class Plain(nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()

    class Documented(nn.Module):
        """A module of the given width."""

        def __init__(self, width: int) -> None:
            super().__init__()

        def forward(self, x):
            return x

        def helper(self, n):
            return n

    class Term(NamedTuple):
        input: int
        kind: str

    assert problems("undocumented", undocumented) == ["undocumented: no docstring"]
    assert problems("half", half_documented) == ["half: docstring does not mention parameter 'beta'"]
    assert problems("Plain", Plain) == ["Plain: no docstring"]  # nn.Module's own docstring does not count
    assert problems("Term", Term) == ["Term: no docstring"]  # nor a NamedTuple's made-up one
    assert problems("Documented", Documented) == [
        "Documented.forward: parameter 'x' is documented neither by the class nor by forward",
        "Documented.helper: no docstring"]
    assert problems("module", types.ModuleType("empty")) == ["module: no module docstring"]


def test_help_shows_a_custom_op_s_own_docstring():
    import pydoc

    import genimg_fast.ops as ops

    for name in ("norm_act_train", "_norm_act_train_backward", "_scale_one_stored_grad"):
        op = getattr(ops, name)
        own = _function(op).__doc__
        assert own and op.__doc__ == own
        assert own.splitlines()[0] in pydoc.render_doc(op)
