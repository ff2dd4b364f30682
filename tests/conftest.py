import asyncio
import inspect
import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite the golden files of /metrics (tests/fixtures/metrics*.golden.prom) from this run")


@pytest.fixture
async def no_task_leaks():
    """Fails an async test that leaves asyncio tasks running behind it."""
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)       # let cancelled tasks finish
    leaked = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()]
    assert not leaked, f"tasks left running: {[t.get_name() + ' ' + repr(t.get_coro()) for t in leaked]}"


@pytest.fixture(autouse=True, scope="module")
def no_exporter_left_behind():
    """After each module, stop any exporter process it left running (a fixture whose set-up
    failed never reaches its teardown), so one failure does not load the machine for the rest."""
    yield
    from tests.support.process import ExporterProcess
    for proc in list(ExporterProcess.started):
        if proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait()


def pytest_collection_modifyitems(items):
    for item in items:
        if inspect.iscoroutinefunction(getattr(item, "function", None)) and "no_task_leaks" not in item.fixturenames:
            item.fixturenames.insert(0, "no_task_leaks")
