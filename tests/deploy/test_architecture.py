"""The house stays easy to enter: small modules, classes and functions, and every module named by an
import-linter layer (pyproject.toml), so the layer lists are the map of the code."""

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("exporter", "loadgen")
MAX_MODULE, MAX_CLASS, MAX_FUNCTION = 350, 250, 60


def _modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the two packages (package __init__ files by their package)."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _holds_code(path: Path) -> bool:
    """More than a docstring: a package __init__ that only says what the package holds imports nothing."""
    body = ast.parse(path.read_text()).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)) for n in body)


def _unnamed(named: set[str]) -> list[str]:
    return [m for m, path in _modules().items() if m not in PACKAGES and _holds_code(path)
            and not any(m == n or m.startswith(n + ".") for n in named)]


def _lines(node: ast.AST) -> int:
    return node.end_lineno - node.lineno + 1     # type: ignore[attr-defined,operator]


def test_no_module_class_or_function_is_too_long():
    too_long = []
    for name, path in _modules().items():
        text = path.read_text()
        if text.count("\n") > MAX_MODULE:
            too_long.append(f"module {name}: {text.count(chr(10))} lines (max {MAX_MODULE})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and _lines(node) > MAX_CLASS:
                too_long.append(f"class {name}.{node.name}: {_lines(node)} lines (max {MAX_CLASS})")
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _lines(node) > MAX_FUNCTION:
                too_long.append(f"function {name}.{node.name} (line {node.lineno}): {_lines(node)} lines "
                                f"(max {MAX_FUNCTION})")
    assert not too_long, "\n".join(too_long)


def _layered() -> set[str]:
    """Every module or package an import-linter `layers` contract names."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    named = set()
    for contract in config["contracts"]:
        for layer in contract.get("layers", ()):
            named |= {part.strip() for part in layer.replace(":", "|").split("|")}
    return named


def test_every_module_sits_in_a_layer():
    unnamed = _unnamed(_layered())
    assert not unnamed, f"modules no import-linter layer names (add them to pyproject.toml): {unnamed}"


def test_the_layer_check_sees_a_module_left_out():
    """The check above can fail: a module outside every layer is reported."""
    assert _unnamed(_layered() - {"loadgen.drift", "exporter.kube"}) == \
        ["exporter.kube.client", "exporter.kube.objects", "exporter.kube.packed", "exporter.kube.quantity",
         "exporter.kube.resources", "exporter.kube.store", "exporter.kube.watch", "loadgen.drift"]
