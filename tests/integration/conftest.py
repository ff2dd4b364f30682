import pytest

from tests.support.kube import KubeAPI


@pytest.fixture
def kube():
    api = KubeAPI()
    yield api
    api.close()
