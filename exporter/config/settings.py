"""Flags, environment and YAML config file -> validated settings.

Options are declared once, as the fields of a frozen dataclass (a group: the core options, or
one backend's), each field made by `option()` with its key, default and help; the field's type
says how a value is read. Every option has a flag (`--web.listen-address`), an environment variable
(`CLONEWATCH_WEB_LISTEN_ADDRESS`) and a config file key (`web.listen-address`, or nested
`web: {listen-address: ...}`), all derived from the key. Precedence: flag > environment > file > default.
Anything malformed raises ConfigError naming the key; the CLI exits 2 with it.
"""

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, get_type_hints

import yaml

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
G = TypeVar("G", bound="DataclassInstance")


class ConfigError(Exception):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


@dataclass(frozen=True)
class Option:
    key: str
    kind: str          # str | bool | float | int | list
    default: Any
    help: str
    positive: bool = False      # a number that must be > 0 (intervals, timeouts, concurrency)
    unit: str = ""              # what a number counts, e.g. "seconds": said in help and errors

    @property
    def env(self) -> str:
        return "CLONEWATCH_" + self.key.upper().replace(".", "_").replace("-", "_")

    @property
    def dest(self) -> str:
        return self.key.replace(".", "_").replace("-", "_")


_OPTION = "clonewatch.option"      # where option() keeps a field's key, help, positive and unit
_KINDS: dict[object, str] = {str: "str", bool: "bool", float: "float", int: "int", tuple[str, ...]: "list"}


def option(key: str, default: T, help: str, *, positive: bool = False, unit: str = "") -> T:
    """A field of an options group: `timeout: float = option("rbd.timeout", 60.0, "seconds ...")`."""
    return field(default=default, metadata={_OPTION: (key, help, positive, unit)})


def options_of(group: "type[DataclassInstance]") -> tuple[Option, ...]:
    """A group's options in the order its fields are declared; the kind comes from each field's type."""
    hints = get_type_hints(group)
    out = []
    for f in fields(group):
        if _OPTION not in f.metadata or hints[f.name] not in _KINDS:
            raise TypeError(f"{group.__name__}.{f.name}: declare options as option() fields of type "
                            "str, bool, float, int or tuple[str, ...]")
        key, about, positive, unit = f.metadata[_OPTION]
        out.append(Option(key, _KINDS[hints[f.name]], f.default, about, positive, unit))
    return tuple(out)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _to_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split(",") if p.strip())
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(v for v in value if v)
    raise ValueError(f"expected a list of strings or a comma-separated string, got {value!r}")


def _to_number(cast: Callable[[Any], Any], what: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"expected {what}, got {value!r}")
        try:
            number = cast(value.strip() if isinstance(value, str) else value)
        except OverflowError:       # int(inf) from a YAML `.inf`
            raise ValueError(f"expected a finite number, got {value!r}") from None
        except ValueError:          # not Python's wording ("invalid literal for int()...")
            raise ValueError(f"expected {what}, got {value!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(f"expected a finite number, got {value!r}")
        if number < 0:
            raise ValueError(f"must not be negative, got {value!r}")
        return number
    return convert


def _to_str(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError(f"expected a string, got {value!r}")
    return "" if value is None else str(value)


def converter(opt: Option) -> Callable[[Any], Any]:
    """The function that turns a flag, environment or file value into the option's type."""
    if opt.kind == "float":
        return _to_number(float, f"a number of {opt.unit}" if opt.unit else "a number")
    if opt.kind == "int":
        return _to_number(int, f"a whole number of {opt.unit}" if opt.unit else "a whole number")
    return {"str": _to_str, "bool": _to_bool, "list": _to_list}[opt.kind]


def show_default(opt: Option) -> str:
    """The default as a user would type it: 60 not 60.0, a,b not ('a', 'b'), none for empty."""
    value = opt.default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (tuple, list)):
        return ",".join(value) or "none"
    return str(value) if value not in ("", None) else "none"


class Settings:
    """Resolved options: each group as an instance of its dataclass (`settings.of(RbdOptions)`), and
    by dest name (rbd_timeout, ...) where each value came from (flag, env, file or default)."""

    def __init__(self, groups: "Sequence[DataclassInstance]", sources: Mapping[str, str], config_file: str = "") -> None:
        self._groups = {type(g): g for g in groups}
        self.sources = dict(sources)
        self.config_file = config_file

    def of(self, group: type[G]) -> G:
        found = self._groups.get(group)
        if not isinstance(found, group):
            raise LookupError(f"{group.__name__} is not among the parsed options")
        return found

    def as_dict(self) -> dict[str, Any]:
        """Every value by dest name, and the config file: what the start-up log line shows."""
        values = {opt.dest: getattr(g, f.name) for g in self._groups.values()
                  for f, opt in zip(fields(g), options_of(type(g)), strict=True)}
        return {**values, "config_file": self.config_file}


def _flatten(doc: Mapping[str, Any], known: set[str], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if not isinstance(key, str):
            raise ConfigError(f"{prefix}{key}", "keys must be strings")
        full = f"{prefix}{key}"
        if isinstance(value, dict) and full not in known:
            out.update(_flatten(value, known, full + "."))
        elif full not in known and any(k.startswith(full + ".") for k in known):
            example = min(k for k in known if k.startswith(full + "."))
            raise ConfigError(full, f"is a section: expected a mapping of its options (such as "
                                    f"{example.removeprefix(full + '.')}), got {value!r}")
        else:
            out[full] = value
    return out


def load_file(path: str, options: Sequence[Option]) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError("config.file", f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError("config.file", f"{path} is not valid YAML: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError("config.file", f"{path} must hold a mapping of options")
    known = {o.key for o in options}
    flat = _flatten(doc, known)
    for key in flat:
        if key not in known:
            raise ConfigError(key, f"unknown option in {path}")
    return flat


def parse_listen_address(value: str) -> tuple[str | None, int]:
    """[host]:port as Prometheus exporters take it; host None = every address."""
    host, sep, port = value.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ConfigError("web.listen-address", f"expected [host]:port, got {value!r}")
    host = host.strip("[]")
    return (host or None), int(port)


class HintingParser(argparse.ArgumentParser):
    """argparse, but a mistake prints one line and a hint instead of the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\nTry '{self.prog} --help' for the options.\n")


def _metavar(opt: Option) -> str:
    if opt.kind in ("float", "int"):
        return opt.unit.upper() if opt.unit else ("N" if opt.kind == "int" else "NUMBER")
    return {"list": "LIST", "str": "VALUE"}.get(opt.kind, "VALUE")


def _parser(options: Sequence[Option], prog: str, description: str, environ: Mapping[str, str]) -> HintingParser:
    parser = HintingParser(prog=prog, description=description,
                     epilog="Every option is also an environment variable (shown) and a key of the "
                            "--config.file YAML; precedence: flag, environment, file, default.")
    parser.add_argument("--config.file", dest="config_file", default=environ.get("CLONEWATCH_CONFIG_FILE", ""),
                        metavar="FILE", help="YAML file with any of the options below [env CLONEWATCH_CONFIG_FILE]")
    for opt in options:
        about = f"{opt.help} [default {show_default(opt)}; env {opt.env}]"
        if opt.kind == "bool":
            parser.add_argument(f"--{opt.key}", dest=opt.dest, default=None, nargs="?", const="true",
                                metavar="BOOL", help=f"{about}; --no-{opt.key} to turn off")
            parser.add_argument(f"--no-{opt.key}", dest=opt.dest, action="store_const", const="false",
                                help=argparse.SUPPRESS)
        else:
            parser.add_argument(f"--{opt.key}", dest=opt.dest, default=None, metavar=_metavar(opt), help=about)
    return parser


def _resolve(opt: Option, flag: Any, environ: Mapping[str, str], from_file: Mapping[str, Any],
             config_file: str) -> tuple[Any, str]:
    """(value, source) of one option: the first of flag, environment and file that gives one, else its default."""
    for source, raw in (("flag", flag), ("env", environ.get(opt.env)),  # noqa: B007 (used after break)
                        ("file", from_file.get(opt.key, None) if opt.key in from_file else None)):
        if raw is not None:
            break
    else:
        source, raw = "default", opt.default
    where = {"flag": "", "env": f" (from {opt.env})", "file": f" (in {config_file})", "default": ""}[source]
    try:
        value = converter(opt)(raw) if source != "default" else raw
    except (ValueError, TypeError) as exc:
        raise ConfigError(opt.key, f"{exc}{where}") from None
    if opt.positive and isinstance(value, (int, float)) and value <= 0:
        raise ConfigError(opt.key, f"must be greater than 0, got {raw!r}{where}")
    return value, source


def parse(argv: Sequence[str] | None, groups: "Sequence[type[DataclassInstance]]", prog: str, description: str,
          environ: Mapping[str, str] | None = None) -> Settings:
    """Each group's options from flags, environment and file, in the groups' order (also --help's)."""
    environ = os.environ if environ is None else environ
    declared = [(group, options_of(group)) for group in groups]
    everything = [opt for _, options in declared for opt in options]
    args = _parser(everything, prog, description, environ).parse_args(argv)
    from_file = load_file(args.config_file, everything) if args.config_file else {}
    instances, sources = [], {}
    for group, options in declared:
        values = {}
        for f, opt in zip(fields(group), options, strict=True):
            values[f.name], sources[opt.dest] = _resolve(opt, getattr(args, opt.dest), environ, from_file,
                                                         args.config_file)
        instances.append(group(**values))
    return Settings(instances, sources, args.config_file)
