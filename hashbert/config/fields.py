"""The config machinery: typed, frozen dataclasses that validate themselves, round-trip through JSON and
generate their own command-line flags.

Why one module: every artefact saves the config that made it (``config_to_dict``) and every flag of
the ``hashbert`` command is generated from the same fields (``add_config_arguments``), so a field's
type, default, bounds, choices and help are written once and cannot drift between the library,
the saved artefacts and the command line.

Conventions a config follows:
* subclass ``Config`` and decorate with ``@dataclass(frozen=True)``; put extra checks in ``validate``;
* a field made with ``option(default, help, minimum=..., maximum=...)`` has bounds checked on
  construction; a ``Literal[...]`` annotation gives both the argparse choices and the check;
* a field made with ``required(help)`` has no default: it is a required flag;
* a field whose type is another config is embedded: its flags are added flat (no prefix), and a
  saved dict written before a field moved into an embedded config still loads (``config_from_dict``
  moves keys the outer class does not know into the embedded config that does).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, field
from typing import Any, Literal, TypeVar

T = TypeVar("T")


def option(
    default: Any, help: str, *, minimum: float | None = None, maximum: float | None = None,  # noqa: A002
    repeat: bool = False, flag: str = "",
) -> Any:
    """A field with a default and the help text its flag shows.

    Args:
        default: the default value (a tuple for list-valued fields: fields are frozen).
        help: one sentence for ``--help``.
        minimum, maximum: inclusive bounds checked on construction (numbers only).
        repeat: a ``tuple[str, ...]`` field given by repeating the flag (``--model A --model B``) rather
            than as one comma-separated value.
        flag: the flag's name when it is not the field's (``hash-model`` for ``hash_models``).
    """
    metadata = {"help": help, "minimum": minimum, "maximum": maximum, "repeat": repeat, "flag": flag}
    if isinstance(default, list | dict | set):
        raise TypeError(f"option default must be immutable, got {default!r}")
    return field(default=default, metadata=metadata)


def required(help: str, *, flag: str = "", positional: bool = False) -> Any:  # noqa: A002
    """A keyword-only field without a default: a required flag on the command line.

    With ``positional``, a positional argument instead (``hashbert index info BUNDLE``); a ``tuple[X, ...]``
    field then takes one or more values (``hashbert search --bundle B "turn 1" "turn 2"``).
    """
    return field(kw_only=True, metadata={"help": help, "flag": flag, "positional": positional})


def embedded(factory: Callable[[], Any]) -> Any:
    """An embedded config with the given default (e.g. a command's own defaults for the training loop)."""
    return field(default_factory=factory)


def is_config_type(tp: Any) -> bool:
    """Whether an annotation is a config dataclass (embedded, its fields become flags of their own)."""
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def literal_choices(tp: Any) -> tuple | None:
    """The allowed values of a ``Literal[...]`` annotation (also inside ``X | None``), else None."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(arg for arg in typing.get_args(tp) if arg is not type(None))
    return typing.get_args(tp) if typing.get_origin(tp) is Literal else None


def flag_name(f: dataclasses.Field) -> str:
    """``--max-train-pairs`` for the field ``max_train_pairs`` (or the field's own ``flag``; ``BUNDLE`` for a
    positional ``bundle``)."""
    if f.metadata.get("positional"):
        return f.name.upper()
    return "--" + (f.metadata.get("flag") or f.name.replace("_", "-"))


class Config:
    """Base of every config dataclass: checks types, choices and bounds of its fields on construction."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = _checked_value(type(self).__name__, f, hints[f.name], getattr(self, f.name))
            object.__setattr__(self, f.name, value)  # frozen: tuples from JSON lists, floats from ints
        self.validate()

    def validate(self) -> None:
        """Checks that involve several fields; raise ``ValueError`` naming the field and the value."""

    @classmethod
    def from_flat(cls: type[T], **values: Any) -> T:
        """Build from flag-style keywords, as the command line does: ``CrossEncoderConfig.from_flat(max_length=64)``
        puts ``max_length`` into the embedded config that has it (the others keep their defaults)."""
        return config_from_dict(cls, values)


def _checked_value(owner: str, f: dataclasses.Field, tp: Any, value: Any) -> Any:
    """``value`` if it fits ``tp`` (coerced where lossless), else ``ValueError`` naming field and value."""
    name = f"{f.name} ({flag_name(f)})"
    choices = literal_choices(tp)
    if choices is not None:
        if value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
        return value
    if is_config_type(tp):
        if not isinstance(value, tp):
            raise ValueError(f"{owner}.{f.name} must be a {tp.__name__}, got {type(value).__name__}")
        return value
    value = _coerced(name, tp, value)
    lo, hi = f.metadata.get("minimum"), f.metadata.get("maximum")
    if lo is not None and value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ValueError(f"{name} must be <= {hi}, got {value!r}")
    return value


def _tuple_item(tp: Any) -> Any:
    """The item type of ``tuple[X, ...]``."""
    return typing.get_args(tp)[0]


def _coerced(name: str, tp: Any, value: Any) -> Any:
    if typing.get_origin(tp) is tuple:
        item = _tuple_item(tp)
        if not isinstance(value, tuple | list):
            raise ValueError(f"{name} must be a list, got {value!r}")
        choices = literal_choices(item)
        if choices is not None and any(v not in choices for v in value):
            raise ValueError(f"{name} takes {', '.join(map(str, choices))}; got {value!r}")
        return tuple(v if choices is not None else _coerced(name, item, v) for v in value)
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
    }
    if tp in ok and not ok[tp](value):
        raise ValueError(f"{name} must be a {tp.__name__}, got {value!r}")
    return float(value) if tp is float else value


# ---------------------------------------------------------------------------------------------- dict round trip


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain JSON-able dict of a (nested) config dataclass."""
    return dataclasses.asdict(config)


def config_from_dict(cls: type[T], data: Any) -> T:
    """Build ``cls`` from a dict, recursing into embedded configs.

    Keys ``cls`` does not know move into the embedded config that does (a field that moved into an
    embedded config since the dict was saved).

    Raises:
        ValueError: on a non-mapping, a key no field takes (naming it and the valid ones), or a bad value.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    data = _nest_moved_keys(cls, hints, dict(data))
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown key(s) {unknown}; valid keys are {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = config_from_dict(hints[name], value) if is_config_type(hints[name]) else value
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field is missing
        raise ValueError(f"{cls.__name__}: {err}") from err


def _all_field_names(cls: type) -> set[str]:
    hints = typing.get_type_hints(cls)
    names = set()
    for f in dataclasses.fields(cls):
        names |= _all_field_names(hints[f.name]) if is_config_type(hints[f.name]) else {f.name}
    return names


def _nest_moved_keys(cls: type, hints: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    own = {f.name for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if not is_config_type(tp):
            continue
        moved = {key: data.pop(key) for key in list(data) if key not in own and key in _all_field_names(tp)}
        if moved:
            default = _field_default(f, None)
            base = data.get(f.name) or ({} if default is MISSING else config_to_dict(default))
            data[f.name] = {**base, **moved}
    return data


# ---------------------------------------------------------------------------------------------- CLI flags


def comma_list(item: type) -> Callable[[str], tuple]:
    """argparse ``type`` for ``"128,256"`` -> ``(128, 256)``."""

    def parse(text: str) -> tuple:
        try:
            return tuple(item(part.strip()) for part in text.split(",") if part.strip())
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"expected comma-separated {item.__name__} values, got {text!r}") from err

    parse.__name__ = f"comma-separated {item.__name__} list"
    return parse


def _field_default(f: dataclasses.Field, defaults: Any) -> Any:
    if defaults is not None:
        return getattr(defaults, f.name)
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else repr(value)


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, defaults: Any = None, title: str = "") -> None:
    """Add one flag per field of ``cls``, flat: embedded configs add theirs in a group of their own.

    Args:
        parser: the command's parser.
        cls: a config dataclass (a command's run config, or one it embeds).
        defaults: an instance of ``cls`` whose values become the defaults (else the fields' own).
        title: the argument group's title (default: the first line of ``cls``'s docstring).
    """
    group = parser.add_argument_group(title or (cls.__doc__ or cls.__name__).strip().splitlines()[0].rstrip("."))
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp, default = hints[f.name], _field_default(f, defaults)
        if is_config_type(tp):
            add_config_arguments(parser, tp, None if default is MISSING else default)
        elif f.metadata.get("positional"):
            group.add_argument(f.name, **_positional_kwargs(f, tp))
        else:
            group.add_argument(flag_name(f), dest=f.name, **_argparse_kwargs(f, tp, default))


def _positional_kwargs(f: dataclasses.Field, tp: Any) -> dict[str, Any]:
    kwargs = {"help": f"{f.metadata.get('help', '')} (required)", "metavar": f.name.upper()}
    if typing.get_origin(tp) is tuple:
        return {**kwargs, "nargs": "+", "type": _tuple_item(tp)}
    return {**kwargs, "type": tp}


def _argparse_kwargs(f: dataclasses.Field, tp: Any, default: Any) -> dict[str, Any]:
    helptext = f.metadata.get("help", "")
    if default is MISSING:
        kwargs: dict[str, Any] = {"required": True, "help": f"{helptext} (required)"}
    else:
        kwargs = {"default": default, "help": f"{helptext} (default: {_shown(default)})"}
    if tp is bool:
        return {**kwargs, "action": argparse.BooleanOptionalAction}
    choices = literal_choices(tp)
    if choices is not None:
        return {**kwargs, "choices": choices, "type": type(choices[0])}
    if typing.get_origin(tp) is tuple:
        item = _tuple_item(tp)
        item = str if literal_choices(item) is not None else item
        if f.metadata.get("repeat"):
            return {**kwargs, "action": "append", "default": None, "metavar": item.__name__.upper()}
        return {**kwargs, "type": comma_list(item), "metavar": f"{item.__name__.upper()},..."}
    return {**kwargs, "type": tp, "metavar": {int: "N", float: "X"}.get(tp, f.name.upper())}


def config_from_args(cls: type[T], args: argparse.Namespace, defaults: Any = None) -> T:
    """Inverse of ``add_config_arguments``: read the parsed flags back into ``cls``."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if is_config_type(tp):
            nested_defaults = _field_default(f, defaults)
            kwargs[f.name] = config_from_args(tp, args, None if nested_defaults is MISSING else nested_defaults)
            continue
        value = getattr(args, f.name)
        if value is None and f.metadata.get("repeat"):  # an append flag never given: the field's default
            value = _field_default(f, defaults)
        kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)
