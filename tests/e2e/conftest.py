import pytest

from tests.support.ceph import Pool, ceph_conf
from tests.support.kube import KubeAPI


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
