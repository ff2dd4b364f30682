"""scripts/import-cycles.py finds a cycle where there is one, and none where there is none."""

import importlib.util
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "scripts" / "import-cycles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finds_a_cycle_through_a_function_local_import(tmp_path, monkeypatch):
    pkg = tmp_path / "cyc"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from . import c\n")
    (pkg / "c.py").write_text("from .a import b\n")
    (pkg / "d.py").write_text("from . import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = _script().cycles(grimp.build_graph("cyc", cache_dir=None))
    assert found == [["cyc.a", "cyc.b", "cyc.c"]]
    sys.modules.pop("cyc", None)


def test_the_project_has_none():
    assert _script().cycles(grimp.build_graph("exporter", "loadgen", cache_dir=None)) == []
