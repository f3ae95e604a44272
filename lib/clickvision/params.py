"""Validation of a notebook's ``parameters`` cell.

papermill only *warns* on an unknown ``-p`` name, so every notebook calls
:func:`validate_parameters` right after its parameters cell. The declared parameters are
the literals of the cell tagged ``parameters``; the schema is taken from their default
values (type) plus optional ``choices``.
"""
from __future__ import annotations

import ast
import copy
import math
from collections.abc import Mapping
from typing import Any

PROFILES = ("smoke", "default", "paper")


class ParameterError(ValueError):
    """A notebook parameter is unknown or has a bad value."""


def _type_name(value: Any) -> str:
    return type(value).__name__


def _compatible(default: Any, value: Any) -> bool:
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def validate_parameters(
    values: Mapping[str, Any],
    defaults: Mapping[str, Any],
    choices: Mapping[str, tuple] | None = None,
    injected: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Check notebook parameters and return them as a dict.

    ``defaults``: name -> default literal as written in the parameters cell.
    ``values``: the current values (usually ``globals()``).
    ``choices``: name -> allowed values (``profile`` defaults to :data:`PROFILES`).
    ``injected``: names papermill injected; any not in ``defaults`` is an error.
    Raises :class:`ParameterError` naming the offending parameter.
    """
    choices = dict(choices or {})
    choices.setdefault("profile", PROFILES)
    for name in injected or {}:
        if name not in defaults:
            known = ", ".join(sorted(defaults))
            raise ParameterError(f"unknown parameter {name!r}; this notebook accepts: {known}")
    out: dict[str, Any] = {}
    for name, default in defaults.items():
        if name not in values:
            raise ParameterError(f"parameter {name!r} is not defined")
        value = values[name]
        if not _compatible(default, value):
            raise ParameterError(
                f"parameter {name!r} must be {_type_name(default)} (default {default!r}), "
                f"got {_type_name(value)} {value!r}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ParameterError(f"parameter {name!r} must be finite, got {value!r}")
        if name in choices and value not in choices[name]:
            raise ParameterError(f"parameter {name!r} must be one of {choices[name]!r}, got {value!r}")
        out[name] = value
    return out


# --- notebook integration -------------------------------------------------------------
# ``watch()`` (called in the cell before the parameters cell) registers an IPython hook that
# records the names assigned by the next cell (the parameters cell: the defaults) and by
# papermill's injected cell (its source starts with "# Parameters"). ``check()`` then
# validates the live values against them.
_STATE: dict[str, Any] = {"defaults": None, "injected": set(), "skip": False, "hook": None}


def _assigned_names(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names: list[str] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        for t in targets:
            if isinstance(t, ast.Name):
                names.append(t.id)
    return names


def _on_post_run(result) -> None:  # IPython post_run_cell callback
    if _STATE["skip"]:
        _STATE["skip"] = False
        return
    source = getattr(getattr(result, "info", None), "raw_cell", "") or ""
    names = _assigned_names(source)
    ns = _STATE["ns"]
    if source.lstrip().startswith("# Parameters"):
        _STATE["injected"].update(names)
    elif _STATE["defaults"] is None:
        _STATE["defaults"] = {n: copy.deepcopy(ns[n]) for n in names if n in ns}


def watch() -> None:
    """Start recording the parameters cell (call at the end of the cell before it)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return
    ip = get_ipython()
    if ip is None:
        return
    if _STATE["hook"] is not None:
        try:
            ip.events.unregister("post_run_cell", _STATE["hook"])
        except ValueError:
            pass
    _STATE.update(defaults=None, injected=set(), skip=True, hook=_on_post_run, ns=ip.user_ns)
    ip.events.register("post_run_cell", _on_post_run)


def check(values: Mapping[str, Any], choices: Mapping[str, tuple] | None = None,
          defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Validate the running notebook's parameters; return ``{name: value}``.

    Defaults come from the recorded parameters cell (see :func:`watch`) unless given.
    Unknown names injected by papermill, ill-typed values and values outside ``choices``
    raise :class:`ParameterError` naming the parameter.
    """
    if defaults is None:
        defaults = _STATE["defaults"]
        if defaults is None:
            raise ParameterError(
                "no parameters cell was recorded: call clickvision.params.watch() in the cell "
                "before the parameters cell, or pass defaults= explicitly")
    injected = {k: values.get(k) for k in _STATE["injected"]}
    return validate_parameters(values, defaults, choices, injected)
