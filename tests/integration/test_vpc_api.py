"""The VPC backend with the VPC API check, over HTTPS against the IAM + VPC double: the restore
relationship confirmed from `source_snapshot`, and every way the API can fail."""

from datetime import UTC, datetime

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


def tagged_backend(api, tmp_path, tags=("clusterid:c1",)):
    (tmp_path / "apikey").write_text(api.api_key)
    client = VpcApiClient(VpcApiAccess(url=api.url, api_key_file=tmp_path / "apikey", iam_url=api.url,
                                       ca_file=api.cert), timeout_seconds=5.0)
    return VpcBackend(client, csi_tags=tags)


async def test_tagged_volumes_no_pv_maps_to_are_reported_with_what_the_api_says(api, tmp_path):
    import uuid
    ours = ["clusterid:c1", "env:prod"]
    claimed = api.add_volume(f"pvc-{uuid.uuid4()}", 10, user_tags=ours)
    leaked = api.add_volume(f"pvc-{uuid.uuid4()}", 20, user_tags=["CLUSTERID:C1"],      # tags ignore case
                            created_at="2026-10-01T08:30:00Z", source_snapshot="r006-snap-1")
    boot = api.add_volume("worker-1-boot", 100, user_tags=ours)          # tagged, not named as the driver names
    other = api.add_volume(f"pvc-{uuid.uuid4()}", 10, user_tags=["clusterid:c2"])    # another cluster's
    untagged = api.add_volume(f"pvc-{uuid.uuid4()}", 10)
    for i in range(120):                                                  # more than one page of 100
        api.add_volume(f"vsi-data-{i}", 10)
    odd = {api.add_volume(f"pvc-{uuid.uuid4()}", 10, user_tags=ours, created_at=when): when
           for when in ("yesterday", "2026-10-01T08:30:00", "", "2026-13-45T99:00:00Z")}
    no_capacity = api.add_volume(f"pvc-{uuid.uuid4()}", 10, user_tags=ours)
    api.volumes[no_capacity].pop("capacity")
    no_tags = api.add_volume(f"pvc-{uuid.uuid4()}", 10, user_tags=ours)
    api.volumes[no_tags]["user_tags"] = "clusterid:c1"                   # not a list: says nothing
    no_name = api.add_volume(f"pvc-{uuid.uuid4()}", 10, user_tags=ours)
    api.volumes[no_name].pop("name")
    b = tagged_backend(api, tmp_path)
    try:
        b.want([pv("pv-1", claimed)])
        await b.refresh()
        st = b.states()["vpc-block"]
        assert st.up, st.error
        assert api.list_gets == 2                                         # 127 volumes: two pages
        assert set(st.volumes) == {claimed, leaked, boot, no_name, *odd}
        v = st.volumes[leaked]
        assert (v.made_by, v.csi_kind, v.consumed_bytes, v.provisioned_bytes, v.origin) == (
            "csi", "volume", 20 * GiB, 20 * GiB, "r006-snap-1")
        assert v.created == datetime(2026, 10, 1, 8, 30, tzinfo=UTC).timestamp()
        assert (st.volumes[boot].made_by, st.volumes[boot].csi_kind) == ("", "")
        assert st.volumes[no_name].made_by == ""
        assert all(st.volumes[o].created == 0.0 and st.volumes[o].made_by == "csi" for o in odd)
        assert st.volumes[claimed].made_by == ""                          # from its PV, as before
        assert other not in st.volumes and untagged not in st.volumes
        # A listing that fails takes the target down: nothing rather than a thinner list.
        api.fail_next.append(500)
        b.want([])
        await b.refresh()
        st = b.states()["vpc-block"]
        assert not st.up and "HTTP 500" in st.error and st.volumes == {}
        await b.refresh()
        assert set(b.states()["vpc-block"].volumes) == {claimed, leaked, boot, no_name, *odd}   # no PV at all now
    finally:
        await b.close()


async def test_without_tags_no_volume_is_listed(api, tmp_path):
    import uuid
    api.add_volume(f"pvc-{uuid.uuid4()}", 10, user_tags=["clusterid:c1"])
    b = tagged_backend(api, tmp_path, tags=())
    try:
        await b.refresh()
        assert api.list_gets == 0 and b.states() == {}
    finally:
        await b.close()


async def test_pages_that_never_end_or_lose_their_token_are_errors(api, tmp_path, monkeypatch):
    from exporter.backends.base import BackendError
    b = tagged_backend(api, tmp_path)
    try:
        replies = iter([(200, '{"volumes": [], "next": {"href": "https://x/v1/volumes?start=a"}}'),
                        (200, '{"volumes": [], "next": {"href": "https://x/v1/volumes?start=a"}}')])

        async def fake_get(path, params):
            return next(replies)
        monkeypatch.setattr(b.api, "_get", fake_get)
        with pytest.raises(BackendError, match="come round again"):
            await b.api.volumes()
        for body in ('{"volumes": [], "next": {"href": "https://x/v1/volumes?limit=5"}}', '{"volume": []}',
                     '{"volumes": {}}', "[]", "<html>"):
            replies = iter([(200, body)])
            with pytest.raises(BackendError):
                await b.api.volumes()
    finally:
        await b.close()


def test_csi_tags_need_the_api():
    from exporter.backends.vpc.backend import VpcOptions, _check
    from exporter.config.settings import ConfigError
    with pytest.raises(ConfigError, match=r"vpc\.csi-tags"):
        _check(VpcOptions(csi_tags=("clusterid:c1",)))
    _check(VpcOptions(csi_tags=("clusterid:c1",), api_url="https://us-south.iaas.cloud.ibm.com",
                      api_key_file="/k"))
