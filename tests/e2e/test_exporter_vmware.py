"""The exporter as a process in native mode against vcsim over verified TLS: VMs' disk layers as
volumes, backend_up per vCenter, and the target going down (series gone) when vCenter does."""

import secrets

from tests.support.https import make_tls
from tests.support.process import ExporterProcess, one, pick
from tests.support.vcsim import VCSim


def test_vcenter_volumes_and_outage(tmp_path):
    cert, key = make_tls(tmp_path)
    sim = VCSim(cert, key, username="monitor@vsphere.local", password=secrets.token_urlsafe(10))
    proc = ExporterProcess(["--no-kubernetes.enabled", "--no-rbd.enabled",
                            f"--vmware.vcenters=vc1={sim.write_secret_dir(tmp_path / 'vc1', cert)}",
                            "--vmware.refresh-interval=1", "--vmware.timeout=5"], tmp_path / "exporter.log")
    try:
        proc.wait_ready()
        s = proc.samples()
        assert one(s, "clonewatch_backend_up", backend="vmware", target="vc1") == 1
        vms = {dict(ls)["volume"] for (n, ls), _ in s.items()
               if n == "clonewatch_volume_info" and dict(ls)["backend"] == "vmware"}
        assert {"vc1/DC0_H0_VM0", "vc1/DC0_H0_VM1", "vc1/DC0_C0_RP0_VM0", "vc1/DC0_C0_RP0_VM1"} <= vms
        assert one(s, "clonewatch_volume_provisioned_bytes", volume="vc1/DC0_H0_VM0") > 0
        sim.stop()
        s = proc.wait_for(lambda s: one(s, "clonewatch_backend_up", backend="vmware", target="vc1") == 0,
                          what="vCenter down")
        assert not pick(s, "clonewatch_volume_consumed_bytes", backend="vmware")
        assert sim.password not in proc.logs()
    finally:
        proc.stop()
        sim.stop()
