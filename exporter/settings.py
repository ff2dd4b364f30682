"""Flags, environment and YAML config file -> validated settings.

Every option has a flag (`--web.listen-address`), an environment variable
(`CLONEWATCH_WEB_LISTEN_ADDRESS`) and a config file key (`web.listen-address`, or nested
`web: {listen-address: ...}`). Precedence: flag > environment > file > default.
Anything malformed raises ConfigError naming the key; the CLI exits 2 with it.
"""

import argparse
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import yaml


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

    @property
    def env(self) -> str:
        return "CLONEWATCH_" + self.key.upper().replace(".", "_").replace("-", "_")

    @property
    def dest(self) -> str:
        return self.key.replace(".", "_").replace("-", "_")


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


def _to_number(cast: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            number = cast(value)
        except OverflowError:       # int(inf) from a YAML `.inf`
            raise ValueError(f"expected a finite number, got {value!r}") from None
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


CONVERT: Mapping[str, Callable[[Any], Any]] = {
    "str": _to_str, "bool": _to_bool, "float": _to_number(float), "int": _to_number(int), "list": _to_list,
}


class Settings:
    """Resolved options; attribute access by dest name (web_listen_address, ...)."""

    def __init__(self, values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.sources = dict(sources)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


def _flatten(doc: Mapping[str, Any], known: set[str], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if not isinstance(key, str):
            raise ConfigError(f"{prefix}{key}", "keys must be strings")
        full = f"{prefix}{key}"
        if isinstance(value, dict) and full not in known:
            out.update(_flatten(value, known, full + "."))
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


def parse(argv: Sequence[str] | None, options: Sequence[Option], prog: str, description: str,
          environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config.file", dest="config_file", default=environ.get("CLONEWATCH_CONFIG_FILE", ""),
                        help="YAML file with any of the options below (env CLONEWATCH_CONFIG_FILE)")
    for opt in options:
        if opt.kind == "bool":
            parser.add_argument(f"--{opt.key}", dest=opt.dest, default=None, nargs="?", const="true",
                                metavar="BOOL", help=f"{opt.help} (default {opt.default}; env {opt.env})")
            parser.add_argument(f"--no-{opt.key}", dest=opt.dest, action="store_const", const="false",
                                help=argparse.SUPPRESS)
        else:
            parser.add_argument(f"--{opt.key}", dest=opt.dest, default=None,
                                help=f"{opt.help} (default {opt.default!r}; env {opt.env})")
    args = parser.parse_args(argv)
    from_file = load_file(args.config_file, options) if args.config_file else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in options:
        for source, raw in (("flag", getattr(args, opt.dest)), ("env", environ.get(opt.env)),
                            ("file", from_file.get(opt.key, None) if opt.key in from_file else None)):
            if raw is not None:
                break
        else:
            source, raw = "default", opt.default
        try:
            values[opt.dest] = CONVERT[opt.kind](raw) if source != "default" else raw
        except (ValueError, TypeError) as exc:
            where = {"flag": f"--{opt.key}", "env": opt.env, "file": opt.key}[source]
            raise ConfigError(opt.key, f"{where}: {exc}") from None
        sources[opt.dest] = source
    values["config_file"] = args.config_file
    return Settings(values, sources)
