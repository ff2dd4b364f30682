"""The exporter in native mode on a directory of real qcow2 images (qemu-img / qemu-io)."""

import json
import subprocess

from tests.support.process import ExporterProcess, one, pick

MiB = 2**20


def qemu(*args, input_text=None):
    subprocess.run(list(args), check=True, capture_output=True, text=True, input=input_text)


def actual_size(path):
    return json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(path)], check=True,
                                     capture_output=True, text=True).stdout)["actual-size"]


def test_qcow2_directory_volumes_parents_and_family(tmp_path):
    d = tmp_path / "images"
    d.mkdir()
    qemu("qemu-img", "create", "-q", "-f", "qcow2", str(d / "golden.qcow2"), "32M")
    qemu("qemu-io", "-f", "qcow2", str(d / "golden.qcow2"), input_text="write -q -P 0x5a 0 32M\n")
    for name, drift in (("c1", 2), ("c2", 4)):
        qemu("qemu-img", "create", "-q", "-f", "qcow2", "-b", "golden.qcow2", "-F", "qcow2", str(d / f"{name}.qcow2"))
        qemu("qemu-io", "-f", "qcow2", str(d / f"{name}.qcow2"), input_text=f"write -q -P 0xab 0 {drift}M\n")
    qemu("qemu-img", "convert", "-O", "qcow2", str(d / "golden.qcow2"), str(d / "full.qcow2"))
    (d / "notes.qcow2").write_text("not an image")          # right suffix, wrong content: skipped
    missing = tmp_path / "not-yet"
    proc = ExporterProcess(["--no-kubernetes.enabled", "--no-rbd.enabled", f"--qcow2.dirs={d},{missing}",
                            "--qcow2.refresh-interval=0.5"], tmp_path / "log")
    try:
        proc.wait_ready()
        s = proc.samples()
        for name in ("golden", "c1", "c2", "full"):
            path = str(d / f"{name}.qcow2")
            assert one(s, "clonewatch_volume_consumed_bytes", backend="qcow2", volume=path) == actual_size(path)
            assert one(s, "clonewatch_volume_provisioned_bytes", volume=path) == 32 * MiB
        assert one(s, "clonewatch_volume_info", volume=str(d / "c1.qcow2"), parent=str(d / "golden.qcow2")) == 1
        assert one(s, "clonewatch_volume_info", volume=str(d / "full.qcow2"), parent="") == 1
        assert one(s, "clonewatch_volume_clone_depth", volume=str(d / "c2.qcow2")) == 1
        assert not pick(s, "clonewatch_volume_info", volume=str(d / "notes.qcow2"))
        fam = dict(source_name=str(d / "golden.qcow2"), backend="qcow2")
        assert one(s, "clonewatch_source_clones", **fam) == 2
        ratio = one(s, "clonewatch_source_efficiency_ratio", **fam)
        assert abs(ratio - (1 - 38 / 102)) < 0.02, ratio      # (32+2+4) actual vs (32+34+36) as copies
        assert one(s, "clonewatch_backend_up", backend="qcow2", target=str(d)) == 1
        assert one(s, "clonewatch_backend_up", backend="qcow2", target=str(missing)) == 0
        missing.mkdir()
        proc.wait_for(lambda s: one(s, "clonewatch_backend_up", backend="qcow2", target=str(missing)) == 1,
                      what="directory appears")
    finally:
        proc.stop()
