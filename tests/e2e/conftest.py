import pytest

from tests.support.ceph import Pool, ceph_conf
from tests.support.kube import KubeAPI


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/fixtures/metrics.golden.prom from this run")


@pytest.fixture(scope="module")
def kube():
    api = KubeAPI()
    yield api
    api.close()


@pytest.fixture(scope="module")
def pool():
    p = Pool(ceph_conf(), prefix="e2e")
    yield p
    p.remove()
