"""Backends register themselves: a module with a SPEC is offered by the CLI and built by the app."""

import textwrap

import pytest

import exporter.backends as package
from exporter.backends import registry
from exporter.cli import load, options


def test_every_backend_module_registers_once():
    names = [s.name for s in registry.specs()]
    assert names == ["rbd", "qcow2", "vpc", "flashsystem", "vmware"]
    keys = [o.key for o in options()]
    assert len(keys) == len(set(keys)), "no option is declared twice"


def test_defaults_build_what_needs_no_configuration():
    assert [b.name for b in registry.build(load([]))] == ["rbd", "vpc"]
    assert [b.name for b in registry.build(load(["--no-kubernetes.enabled", "--no-rbd.enabled"]))] == []


@pytest.fixture
def extra_backend(tmp_path, monkeypatch):
    """A backend in a module of its own, found the way the shipped ones are."""
    (tmp_path / "zfs_example.py").write_text(textwrap.dedent('''
        from dataclasses import dataclass

        from exporter.backends.base import BackendSpec
        from exporter.config.settings import ConfigError, option

        @dataclass(frozen=True)
        class ZfsOptions:
            pools: tuple[str, ...] = option("zfs.pools", (), "ZFS pools")

        class ZfsBackend:
            name = "zfs"
            refresh_interval = 10.0
            def __init__(self, pools): self.pools = pools

        def _check(o):
            if "bad" in o.pools:
                raise ConfigError("zfs.pools", "no pool may be called bad")

        SPEC = BackendSpec("zfs", 99, ZfsOptions, lambda o, core: ZfsBackend(o.pools) if o.pools else None, _check)
    '''))
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    registry.specs.cache_clear()
    yield
    registry.specs.cache_clear()


def test_a_new_backend_is_one_module(extra_backend, capsys):
    settings = load(["--zfs.pools=tank", "--no-rbd.enabled", "--no-kubernetes.enabled"])
    [backend] = registry.build(settings)
    assert backend.name == "zfs" and backend.pools == ("tank",)
    with pytest.raises(SystemExit):
        load(["--help"])
    assert "--zfs.pools" in capsys.readouterr().out
    from exporter.config.settings import ConfigError
    with pytest.raises(ConfigError) as err:
        load(["--zfs.pools=bad"])
    assert err.value.key == "zfs.pools"
