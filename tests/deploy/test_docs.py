"""Documents that match the code: every metric name README and docs/ mention is one the code
declares (or a recording rule records), every flag README gives exists, and every command README
gives that starts a project entry point exists and answers --help, or a test runs it."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from exporter.cli import options
from exporter.collectors import registry
from exporter.http.metrics import WebCollector
from exporter.http.serve import Security
from loadgen.daemon import Metrics

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
METRIC = re.compile(r"(?<![\w:])clonewatch_[a-z0-9_]*")
# The flags README says the exporter hands to the `rbd` command (backends/rbd: the CLI client).
RBD_FLAGS = {"--conf", "--id", "--keyring", "--mon-host"}


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _family_names(reg: CollectorRegistry) -> set[str]:
    """What a registry's families expose, samples or not yet (a labelled counter has none until used)."""
    return {f.name + suffix for f in reg.collect() for suffix in ("", *SUFFIXES.get(f.type, ()))}


def _sample_names(collector) -> set[str]:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    return _family_names(reg)


def _recorded() -> set[str]:
    """Metric names inside the recording rules' names (level:metric:operations)."""
    names = set()
    for path in (ROOT / "deploy" / "rules").glob("*.rules.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    names |= set(rule["record"].split(":"))
    return names


def known_metrics() -> set[str]:
    names = {n for m in registry.metrics() for n in (m.name, *m.samples)}
    names |= _sample_names(WebCollector(Security())) | _sample_names(WebCollector(Security(), "clonewatch_loadgen"))
    names |= _family_names(Metrics().registry)
    return names | _recorded()


def _mentioned(path: Path) -> set[str]:
    return set(METRIC.findall(path.read_text()))


def test_every_metric_name_in_the_docs_is_declared():
    known = known_metrics()
    unknown = {}
    for path in DOCS:
        for name in _mentioned(path):
            # "clonewatch_volume_*" and the like name a prefix: some metric must have it.
            ok = any(k.startswith(name) for k in known) if name.endswith("_") else name in known
            if not ok:
                unknown.setdefault(path.name, []).append(name)
    assert not unknown, f"metric names no collector declares: {unknown}"


def test_the_metric_check_sees_a_name_nobody_declares(tmp_path):
    assert "clonewatch_pvc_consumed_bytes" in known_metrics()
    assert "clonewatch_pvc_consumed_byte" not in known_metrics()       # a typo is caught


def _exporter_flags() -> set[str]:
    flags = {"--config.file", "--help"}
    for opt in options():
        flags.add(f"--{opt.key}")
        if opt.kind == "bool":
            flags.add(f"--no-{opt.key}")
    return flags


def _help_flags(*command: str) -> set[str]:
    out = subprocess.run([sys.executable, *command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return set(re.findall(r"--[a-z][a-z0-9.-]*[a-z0-9]", out.stdout))


def _pytest_flags() -> set[str]:
    return set(re.findall(r'addoption\("(--[a-z-]+)"', (ROOT / "tests" / "conftest.py").read_text()))


def _tool_flags() -> set[str]:
    """What the benchmarks and scripts take (README quotes their runs)."""
    sources = [*(ROOT / "bench").glob("*.py"), *(ROOT / "scripts").glob("*.py")]
    return {f for p in sources for f in re.findall(r'add_argument\(\s*"(--[a-z][a-z0-9.-]*)"', p.read_text())}


def test_every_flag_in_readme_exists():
    known = _exporter_flags() | _pytest_flags() | _tool_flags() | RBD_FLAGS
    for sub in ("harness", "run", "cleanup"):
        known |= _help_flags("-m", "loadgen", sub)
    readme = (ROOT / "README.md").read_text()
    unknown = []
    for flag in set(re.findall(r"--[a-z][a-z0-9.-]*[a-z0-9](?:\.\*)?", readme)):
        if flag.endswith(".*"):         # "--ceph.*": a family of flags
            if not any(k.startswith(flag[:-1]) for k in known):
                unknown.append(flag)
        elif flag not in known:
            unknown.append(flag)
    assert not unknown, f"flags in README that nothing takes: {sorted(unknown)}"
    rbd_cli = "".join(p.read_text() for p in (ROOT / "exporter" / "backends" / "rbd").glob("*.py"))
    assert all(f'"{flag}"' in rbd_cli for flag in RBD_FLAGS), "README's rbd flags are the ones the backend passes"


COMMAND = re.compile(r"(?:^|`|\s)((?:\.venv/bin/)?(?:clonewatch-[a-z]+|python3? -m [a-z_.]+|scripts/[\w.-]+))")


def _commands() -> set[str]:
    """The project entry points README starts: console scripts, `python -m` modules, scripts/."""
    return {m.group(1).removeprefix(".venv/bin/") for m in COMMAND.finditer((ROOT / "README.md").read_text())}


def _run_by_tests(script: str) -> bool:
    """A script the test command runs, or a test starts."""
    sources = [ROOT / ".ci" / "run", ROOT / "scripts" / "test.sh", *(ROOT / "tests").rglob("*.py")]
    return any(script in p.read_text() for p in sources if p.is_file() and p.name != "test_docs.py")


def test_every_command_in_readme_exists_and_answers_help():
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    commands = _commands()
    assert {"clonewatch-exporter", "clonewatch-loadgen", "scripts/test.sh", "scripts/local.sh"} <= commands
    failures = []
    for command in sorted(commands):
        if command.startswith("clonewatch-"):
            name = command.split()[0]
            if name not in entry_points:
                failures.append(f"{name}: no such console script in pyproject.toml")
                continue
            module = entry_points[name].split(":")[0]
            argv = [sys.executable, "-c", f"import sys; from {module} import main; sys.exit(main(['--help']))"]
        elif command.startswith(("python -m", "python3 -m")):
            argv = [sys.executable, "-m", command.split()[-1], "--help"]
        else:
            if not (ROOT / command).is_file():
                failures.append(f"{command}: no such file")
                continue
            if _run_by_tests(command):
                continue
            argv = [str(ROOT / command), "--help"]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
        if done.returncode != 0 or "usage" not in (done.stdout + done.stderr).lower():
            failures.append(f"{command} --help: exit {done.returncode}: {(done.stdout + done.stderr)[-300:]}")
    assert not failures, "\n".join(failures)
