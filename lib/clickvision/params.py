"""Validation of a notebook's ``parameters`` cell.

papermill only *warns* on an unknown ``-p`` name, so every notebook calls
:func:`validate_parameters` right after its parameters cell. The declared parameters are
the literals of the cell tagged ``parameters``, written plainly (``seed = 0``) or with a
type annotation (``seed: int = 0  # help``, which ``papermill --help-notebook`` prints as the
parameter's type). The schema is the annotation where there is one (``int``, ``float``,
``str``, ``bool``, ``list``, ``list[int]``, ``Optional[...]``, ``Union[...]``, ``A | B``,
also as a string), else the default value's type, plus optional ``choices``.
"""
from __future__ import annotations

import ast
import copy
import math
from collections.abc import Mapping
from typing import Any

PROFILES = ("smoke", "default", "paper")
#: Allowed values of the ``interactive`` parameter (see :func:`clickvision.widgets.enabled`).
INTERACTIVE = ("auto", True, False)


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


# --- type annotations -------------------------------------------------------------------
_SIMPLE = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "tuple": tuple,
           "dict": dict, "None": type(None), "NoneType": type(None), "Any": object, "object": object}


def annotation_types(annotation: str) -> tuple[type, ...] | None:
    """The types an annotation's source text allows, or None when it is not understood.

    ``"int"`` -> ``(int,)``; ``"list[int]"`` -> ``(list,)`` (items are not checked);
    ``"Optional[str]"`` -> ``(str, NoneType)``; ``"Union[bool, str]"`` and ``"bool | str"`` ->
    ``(bool, str)``. A quoted annotation (``"'bool | str'"``) is read the same way.
    """
    try:
        node = ast.parse(annotation.strip(), mode="eval").body
    except SyntaxError:
        return None
    return _node_types(node)


def _node_types(node: ast.AST) -> tuple[type, ...] | None:
    if isinstance(node, ast.Constant):
        if node.value is None:
            return (type(None),)
        if isinstance(node.value, str):
            return annotation_types(node.value)
        return None
    if isinstance(node, ast.Name):
        return (_SIMPLE[node.id],) if node.id in _SIMPLE else None
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("typing", "t"):
        return _node_types(ast.Name(node.attr))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = _node_types(node.left), _node_types(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Subscript):
        head = node.value.attr if isinstance(node.value, ast.Attribute) else getattr(node.value, "id", None)
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if head in ("Union", "Optional"):
            parts = [_node_types(a) for a in args]
            if any(p is None for p in parts):
                return None
            out = tuple(t for p in parts for t in p)
            return out + ((type(None),) if head == "Optional" else ())
        if head in ("list", "List", "Sequence"):
            return (list, tuple)
        if head in ("tuple", "Tuple"):
            return (tuple, list)
        if head in ("dict", "Dict", "Mapping"):
            return (dict,)
        return None
    return None


def _matches(types: tuple[type, ...], value: Any) -> bool:
    """``value`` is one of ``types``, where a bool is not an int and an int is a float."""
    for t in types:
        if t is object:
            return True
        if t is bool and isinstance(value, bool):
            return True
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if t in (list, tuple) and isinstance(value, (list, tuple)):
            return True
        if t not in (bool, int, float, list, tuple) and isinstance(value, t):
            return True
    return False


def _types_name(types: tuple[type, ...]) -> str:
    return " or ".join("None" if t is type(None) else t.__name__ for t in types)


def validate_parameters(
    values: Mapping[str, Any],
    defaults: Mapping[str, Any],
    choices: Mapping[str, tuple] | None = None,
    injected: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Check notebook parameters and return them as a dict.

    ``defaults``: name -> default literal as written in the parameters cell.
    ``values``: the current values (usually ``globals()``).
    ``choices``: name -> allowed values (``profile`` defaults to :data:`PROFILES`,
    ``interactive`` to :data:`INTERACTIVE`).
    ``injected``: names papermill injected; any not in ``defaults`` is an error.
    ``annotations``: name -> the source text of its type annotation in the parameters cell
    (``"int"``, ``"Union[bool, str]"``); an annotated parameter is checked against it (and its
    default too), the others against their default's type.
    Raises :class:`ParameterError` naming the offending parameter.
    """
    choices = dict(choices or {})
    choices.setdefault("profile", PROFILES)
    choices.setdefault("interactive", INTERACTIVE)
    annotations = dict(annotations or {})
    for name in injected or {}:
        if name not in defaults:
            known = ", ".join(sorted(defaults))
            raise ParameterError(f"unknown parameter {name!r}; this notebook accepts: {known}")
    out: dict[str, Any] = {}
    for name, default in defaults.items():
        if name not in values:
            raise ParameterError(f"parameter {name!r} is not defined")
        value = values[name]
        types = annotation_types(annotations[name]) if name in annotations else None
        if types is not None:
            if not _matches(types, default):
                raise ParameterError(f"parameter {name!r}: its default {default!r} does not match its "
                                     f"annotation {annotations[name]!r}")
            if not _matches(types, value):
                raise ParameterError(f"parameter {name!r} must be {_types_name(types)} (annotation "
                                     f"{annotations[name]!r}, default {default!r}), got {_type_name(value)} {value!r}")
        elif not _compatible(default, value):
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
_STATE: dict[str, Any] = {"defaults": None, "annotations": {}, "injected": set(), "skip": False, "hook": None}


def cell_assignments(source: str) -> dict[str, str | None]:
    """Names a cell assigns at top level, each with the source of its annotation or None.

    ``seed = 0`` and ``seed: int = 0`` both count (an annotation without a value,
    ``seed: int``, assigns nothing and is skipped); a cell that does not parse assigns nothing.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    out: dict[str, str | None] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = None
        elif isinstance(node, ast.AnnAssign) and node.value is not None and isinstance(node.target, ast.Name):
            out[node.target.id] = ast.get_source_segment(source, node.annotation) or ast.unparse(node.annotation)
    return out


def _on_post_run(result) -> None:  # IPython post_run_cell callback
    if _STATE["skip"]:
        _STATE["skip"] = False
        return
    source = getattr(getattr(result, "info", None), "raw_cell", "") or ""
    assigned = cell_assignments(source)
    ns = _STATE["ns"]
    if source.lstrip().startswith("# Parameters"):
        _STATE["injected"].update(assigned)
    elif _STATE["defaults"] is None:
        _STATE["defaults"] = {n: copy.deepcopy(ns[n]) for n in assigned if n in ns}
        _STATE["annotations"] = {n: a for n, a in assigned.items() if a is not None and n in ns}


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
    _STATE.update(defaults=None, annotations={}, injected=set(), skip=True, hook=_on_post_run, ns=ip.user_ns)
    ip.events.register("post_run_cell", _on_post_run)


def check(values: Mapping[str, Any], choices: Mapping[str, tuple] | None = None,
          defaults: Mapping[str, Any] | None = None,
          annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Validate the running notebook's parameters; return ``{name: value}``.

    Defaults and type annotations come from the recorded parameters cell (see :func:`watch`)
    unless given. Unknown names injected by papermill, ill-typed values and values outside
    ``choices`` raise :class:`ParameterError` naming the parameter.
    """
    if annotations is None:
        annotations = _STATE["annotations"] if defaults is None else {}
    if defaults is None:
        defaults = _STATE["defaults"]
        if defaults is None:
            raise ParameterError(
                "no parameters cell was recorded: call clickvision.params.watch() in the cell "
                "before the parameters cell, or pass defaults= explicitly")
    injected = {k: values.get(k) for k in _STATE["injected"]}
    checked = validate_parameters(values, defaults, choices, injected, annotations)
    _STATE["run"] = (checked, is_committed(checked, defaults))
    return checked


def _literal(v: Any) -> Any:
    import json

    return json.loads(json.dumps(v, default=str))


def is_committed(values: Mapping[str, Any] | None, declared: Mapping[str, Any]) -> bool:
    """True when ``values`` are the committed run's: profile ``default`` and every parameter of
    ``declared`` (a parameters cell's defaults) at its default, compared as JSON literals."""
    if not values or values.get("profile") != "default":
        return False
    return all(k in values and _literal(values[k]) == _literal(v) for k, v in declared.items())


def current_run() -> tuple[dict[str, Any], bool] | None:
    """(parameters, committed) of the last :func:`check` in this process, or None before any:
    ``committed`` is True for the committed run's parameters (profile ``default``, every
    parameter at its default), False for a smoke run, a sweep point or any other setting."""
    return _STATE.get("run")
