"""The VPC backend with the VPC API check, over HTTPS against the IAM + VPC double: the restore
relationship confirmed from `source_snapshot`, and every way the API can fail."""

import pytest

from exporter.backends.vpc.api import VpcApiAccess, VpcApiClient
from exporter.backends.vpc.backend import VpcBackend
from tests.support.objects import pv_vpc
from tests.support.vpc_api import VpcApiDouble

GiB = 2**30


@pytest.fixture
def api(tmp_path):
    d = VpcApiDouble(tmp_path)
    yield d
    d.close()


def backend(api, tmp_path, key=None, ca=True, timeout=5.0):
    (tmp_path / "apikey").write_text(key if key is not None else api.api_key)
    client = VpcApiClient(VpcApiAccess(url=api.url, api_key_file=tmp_path / "apikey", iam_url=api.url,
                                       ca_file=api.cert if ca else None), timeout_seconds=timeout)
    return VpcBackend(client)


def pv(name, handle, size="10Gi"):
    obj = pv_vpc(name, size)
    obj["spec"]["csi"]["volumeHandle"] = handle
    return obj


async def test_restores_are_confirmed_and_unknown_volumes_left_out(api, tmp_path):
    golden = api.add_volume("pvc-golden", 10)
    restored = api.add_volume("pvc-vm-1", 10, source_snapshot="r006-0f1e2d3c-snap")
    b = backend(api, tmp_path)
    try:
        b.want([pv("pv-g", golden), pv("pv-1", restored), pv("pv-gone", "r006-not-in-vpc")])
        await b.refresh()
        st = b.states()["vpc-block"]
        assert st.up, st.error
        assert st.volumes[restored].origin == "r006-0f1e2d3c-snap"
        assert st.volumes[golden].origin == ""
        assert st.volumes[restored].consumed_bytes == 10 * GiB == st.volumes[restored].provisioned_bytes
        assert "r006-not-in-vpc" not in st.volumes           # the API does not know it: absent
        assert api.token_grants == 1 and api.volume_gets == 3
        await b.refresh()
        assert api.token_grants == 1                          # the token is reused until it expires
        assert api.volume_gets == 4      # known volumes are not asked again; the unknown one is
        b.want([pv("pv-g", golden), pv("pv-1", restored)])
        await b.refresh()
        assert api.volume_gets == 5      # nothing due: one known volume is still asked, as a health check
        api.expire_tokens()
        await b.refresh()
        assert b.states()["vpc-block"].up and api.token_grants == 2
    finally:
        await b.close()


async def test_wrong_key_server_errors_and_untrusted_tls_take_the_target_down(api, tmp_path, capsys):
    vid = api.add_volume("pvc-golden", 10)
    b = backend(api, tmp_path, key="not-the-key-123")
    try:
        b.want([pv("pv-g", vid)])
        await b.refresh()
        st = b.states()["vpc-block"]
        assert not st.up and "BXNIM0415E" in st.error and st.volumes == {}
        assert "not-the-key-123" not in st.error + capsys.readouterr().out
    finally:
        await b.close()
    b = backend(api, tmp_path)
    try:
        b.want([pv("pv-g", vid)])
        api.fail_next.append(500)
        await b.refresh()
        st = b.states()["vpc-block"]
        assert not st.up and "HTTP 500" in st.error and "internal_error" in st.error
        await b.refresh()
        assert b.states()["vpc-block"].up
    finally:
        await b.close()
    b = backend(api, tmp_path, ca=False)
    try:
        b.want([pv("pv-g", vid)])
        await b.refresh()
        assert "certificate" in b.states()["vpc-block"].error
    finally:
        await b.close()
