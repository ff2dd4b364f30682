import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from exporter.backends.rbd.backend import RbdOptions
from exporter.cli import load, main
from exporter.config.core import CoreOptions
from exporter.config.settings import ConfigError


def test_defaults():
    s = load([])
    core = s.of(CoreOptions)
    assert core.web_listen_address == ":9753" and core.kubernetes_enabled is True and s.of(RbdOptions).pools == ()


def test_precedence_flag_env_file(tmp_path, monkeypatch):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("web:\n  listen-address: ':1111'\nrbd.pools: [a, b]\nlog.level: debug\n")
    monkeypatch.setenv("CLONEWATCH_LOG_LEVEL", "warning")
    s = load(["--config.file", str(cfg), "--rbd.timeout", "5"])
    assert s.of(CoreOptions).web_listen_address == ":1111" and s.of(RbdOptions).pools == ("a", "b")
    assert s.of(CoreOptions).log_level == "warning" and s.sources["log_level"] == "env"
    assert s.of(RbdOptions).timeout == 5.0 and s.sources["rbd_timeout"] == "flag"
    assert load(["--config.file", str(cfg), "--no-kubernetes.enabled"]).of(CoreOptions).kubernetes_enabled is False


@pytest.mark.parametrize("text,key", [
    ("rbd:\n  pool: x\n", "rbd.pool"),                 # typo: unknown key
    ("rbd.timeout: soon\n", "rbd.timeout"),
    ("rbd.timeout: -1\n", "rbd.timeout"),
    ("kubernetes.enabled: maybe\n", "kubernetes.enabled"),
    ("rbd.pools: {a: 1}\n", "rbd.pools"),
    ("web.listen-address: nowhere\n", "web.listen-address"),
    ("web.listen-address: ':²'\n", "web.listen-address"),       # a digit to str.isdigit, not to int()
    ("log.format: xml\n", "log.format"),
    ("- a list\n", "config.file"),
    ("a: [unclosed\n", "config.file"),
    ("rbd.timeout: .inf\n", "rbd.timeout"),
    ("rbd.concurrency: .inf\n", "rbd.concurrency"),
    ("flashsystem:\n  arrays: [fs1]\n", "flashsystem.arrays"),                  # not NAME=DIR
    ("flashsystem:\n  arrays: [fs1=/nonexistent/fs1]\n", "flashsystem.arrays"),  # no Secret there
    ("flashsystem:\n  arrays: [a=/x, a=/y]\n", "flashsystem.arrays"),
    ("flashsystem.timeout: 0\n", "flashsystem.timeout"),
    ("vmware:\n  vcenters: [vc1=/nonexistent/vc1]\n", "vmware.vcenters"),
    ("vmware.refresh-interval: 0\n", "vmware.refresh-interval"),
    ("ceph:\n  clusters: [east]\n", "ceph.clusters"),                       # not ID=DIR
    ("ceph:\n  clusters: [east=/nonexistent/east]\n", "ceph.clusters"),     # no ceph.conf there
    ("rbd.pools: ['east:pool']\n", "rbd.pools"),                            # a cluster nobody configured
])
def test_bad_config_names_the_key(tmp_path, text, key):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(["--config.file", str(cfg)])
    assert err.value.key == key


def test_array_and_vcenter_directories_load(tmp_path):
    fs = tmp_path / "fs1"
    fs.mkdir()
    (fs / "management_address").write_text("10.0.0.5, 10.0.0.6\n")
    vc = tmp_path / "vc1"
    vc.mkdir()
    (vc / "address").write_text("vcenter.example.com:8443\n")
    (vc / "ca.crt").write_text("pem")
    from exporter.backends.flashsystem.backend import FlashSystemOptions, arrays_from
    from exporter.backends.vmware.backend import VmwareOptions, vcenters_from
    s = load([f"--flashsystem.arrays=fs1={fs}", f"--vmware.vcenters=vc1={vc}", "--vmware.folders=DC0/vm/golden"])
    [array] = arrays_from(s.of(FlashSystemOptions))
    assert array.addresses == ("10.0.0.5", "10.0.0.6") and array.ca_file is None and not array.insecure
    [center] = vcenters_from(s.of(VmwareOptions))
    assert (center.address, center.ca_file, center.folders) == ("vcenter.example.com:8443", vc / "ca.crt",
                                                                ("DC0/vm/golden",))


def test_main_exits_2_naming_the_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("rbd:\n  timeot: 3\n")
    assert main(["--config.file", str(cfg)]) == 2
    assert "rbd.timeot" in capsys.readouterr().err
    assert main(["--config.file", str(tmp_path / "missing.yaml")]) == 2


@pytest.mark.parametrize("argv,env,message", [
    (["--rbd.timeout=abc"], {}, "rbd.timeout: expected a number of seconds, got 'abc'"),
    (["--rbd.concurrency=two"], {}, "rbd.concurrency: expected a whole number, got 'two'"),
    (["--rbd.concurrency=0"], {}, "rbd.concurrency: must be greater than 0, got '0'"),
    (["--flashsystem.concurrency=0"], {}, "flashsystem.concurrency: must be greater than 0"),
    ([], {"CLONEWATCH_RBD_TIMEOUT": "x"}, "rbd.timeout: expected a number of seconds, got 'x' "
                                          "(from CLONEWATCH_RBD_TIMEOUT)"),
])
def test_errors_say_what_was_expected_once(argv, env, message, capsys, monkeypatch):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    key = message.split(":")[0]
    assert err.count(key) == 1 or key in env.get(key, ""), "the key is named once, not repeated"
    assert "could not convert" not in err and "invalid literal" not in err


def test_a_section_given_a_scalar_is_named_as_a_section(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("rbd: 5\n")
    with pytest.raises(ConfigError) as err:
        load(["--config.file", str(cfg)])
    assert err.value.key == "rbd" and "is a section" in str(err.value) and "unknown" not in str(err.value)


def test_an_unknown_flag_is_one_line_and_a_hint(capsys):
    with pytest.raises(SystemExit) as exited:
        load(["--bogus"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["clonewatch-exporter: unrecognized arguments: --bogus",
                   "Try 'clonewatch-exporter --help' for the options."]


def test_help_shows_defaults_as_typed_and_the_no_form(capsys):
    with pytest.raises(SystemExit):
        load(["--help"])
    out = " ".join(capsys.readouterr().out.split())     # argparse wraps lines
    assert "[default 60; env CLONEWATCH_RBD_TIMEOUT]" in out
    assert "[default none; env CLONEWATCH_RBD_POOLS]" in out
    assert "--no-rbd.enabled to turn off" in out
    assert "()" not in out and "60.0" not in out and "default ''" not in out


def test_an_options_group_is_a_dataclass_of_option_fields():
    from dataclasses import dataclass

    from exporter.config.settings import Option, option, options_of, parse

    @dataclass(frozen=True)
    class Zfs:
        pools: tuple[str, ...] = option("zfs.pools", (), "pools")
        timeout: float = option("zfs.timeout", 5.0, "seconds", positive=True, unit="seconds")

    @dataclass(frozen=True)
    class Plain:
        pools: list[str] = ()       # not an option() field

    assert options_of(Zfs) == (Option("zfs.pools", "list", (), "pools"),
                               Option("zfs.timeout", "float", 5.0, "seconds", True, "seconds"))
    with pytest.raises(TypeError, match=r"Plain\.pools"):
        options_of(Plain)
    s = parse(["--zfs.pools=a,b"], [Zfs], "prog", "", environ={"CLONEWATCH_ZFS_TIMEOUT": "2"})
    assert s.of(Zfs) == Zfs(("a", "b"), 2.0)
    assert s.sources == {"zfs_pools": "flag", "zfs_timeout": "env"}
    with pytest.raises(LookupError):
        s.of(CoreOptions)


def option_table(readme: str) -> dict[str, tuple[str | None, str]]:
    """README's table under "### Options": flag -> (its env var, None where the row lists none or
    elides it with "…"; its default as written). A row names several flags, its env and default
    cells then list theirs in the same order, comma-separated; an empty default cell: none set."""
    lines = readme.split("\n### Options\n", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))
    header = [c.strip() for c in table[0].strip("|").split("|")]
    at = {name: header.index(name) for name in ("flag", "env", "default")}
    rows = {}
    for line in table[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        flags = re.findall(r"`--([\w.-]+)`", cells[at["flag"]])
        envs = [e.strip().strip("`") for e in cells[at["env"]].split(",")] if cells[at["env"]] else []
        defaults = [d.strip() for d in cells[at["default"]].split(",")] if cells[at["default"]] else [""] * len(flags)
        assert flags and len(defaults) == len(flags) and len(envs) <= len(flags), line
        for i, flag in enumerate(flags):
            assert flag not in rows, f"--{flag} is in two rows"
            env = envs[i] if i < len(envs) and envs[i] != "…" else None
            rows[flag] = (env, defaults[i])
    return rows


NOTHING_SET = {"", "none", "all", "off", "system CAs"}      # how the table says a default sets nothing


def documents(written: str, default) -> bool:
    """Whether the table's default says the option's default."""
    text = re.sub(r" s$", "", written).strip("`")           # seconds are written "60 s"
    if isinstance(default, bool):
        return text == str(default).lower()
    if isinstance(default, int | float):
        return re.fullmatch(r"[\d.]+", text) is not None and float(text) == default
    if not default:                                          # "", (), None
        return text in NOTHING_SET
    return text == (",".join(default) if isinstance(default, tuple | list) else str(default))


def test_readme_documents_every_option():
    from exporter.cli import options
    table = option_table((Path(__file__).parents[2] / "README.md").read_text())
    missing = [o.key for o in options() if o.key not in table]
    assert not missing, f"README's option table lacks {missing}"
    wrong_env = [(o.key, table[o.key][0]) for o in options() if table[o.key][0] not in (None, o.env)]
    assert not wrong_env, f"README's option table names the wrong env var: {wrong_env}"
    wrong_default = [(o.key, table[o.key][1], o.default) for o in options() if not documents(table[o.key][1], o.default)]
    assert not wrong_default, f"README's option table gives the wrong default: {wrong_default}"


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=False),
                         st.text(max_size=8))
KEYS = ["web.listen-address", "log.level", "log.format", "kubernetes.enabled", "rbd.pools", "rbd.timeout",
        "rbd.concurrency", "kubernetes", "rbd", "web", "unknown"]


@hsettings(max_examples=200)
@given(st.dictionaries(st.sampled_from(KEYS), st.one_of(yaml_scalars, st.lists(yaml_scalars, max_size=3),
                                                        st.dictionaries(st.text(max_size=6), yaml_scalars,
                                                                        max_size=2)), max_size=4))
def test_any_config_file_loads_or_names_a_key(tmp_path_factory, doc):
    import yaml
    cfg = tmp_path_factory.mktemp("cfg") / "c.yaml"
    cfg.write_text(yaml.safe_dump(doc))
    try:
        load(["--config.file", str(cfg)])
    except ConfigError as err:
        assert err.key and str(err).startswith(err.key)
