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
        assert not pick(s, "clonewatch_volume_chain_broken_info")
        missing.mkdir()
        proc.wait_for(lambda s: one(s, "clonewatch_backend_up", backend="qcow2", target=str(missing)) == 1,
                      what="directory appears")
    finally:
        proc.stop()


def test_an_overlay_whose_backing_file_is_gone_is_reported_once(tmp_path):
    d = tmp_path / "images"
    d.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    qemu("qemu-img", "create", "-q", "-f", "qcow2", str(elsewhere / "base.qcow2"), "8M")
    qemu("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(elsewhere / "base.qcow2"), "-F", "qcow2",
         str(d / "orphan.qcow2"))
    qemu("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(elsewhere / "base.qcow2"), "-F", "qcow2",
         str(d / "outside.qcow2"))
    (elsewhere / "base.qcow2").rename(elsewhere / "kept.qcow2")
    qemu("qemu-img", "rebase", "-u", "-f", "qcow2", "-b", str(elsewhere / "kept.qcow2"), "-F", "qcow2",
         str(d / "outside.qcow2"))                       # its backing file exists, outside the directory
    log = tmp_path / "log"
    proc = ExporterProcess(["--no-kubernetes.enabled", "--no-rbd.enabled", f"--qcow2.dirs={d}",
                            "--qcow2.refresh-interval=0.3", "--log.format=json"], log)
    try:
        proc.wait_ready()
        proc.wait_for(lambda s: len(pick(s, "clonewatch_volume_chain_broken_info")) == 2, what="two broken chains")
        s = proc.samples()
        assert one(s, "clonewatch_volume_chain_broken_info", volume=str(d / "orphan.qcow2"),
                   parent=str(elsewhere / "base.qcow2"), reason="backing-file-missing") == 1
        assert one(s, "clonewatch_volume_chain_broken_info", volume=str(d / "outside.qcow2"),
                   reason="parent-not-measured") == 1
        # Refreshes and rebuilds later, each seen by the volume it brings in: still one line per chain.
        for name in ("later-1", "later-2"):
            qemu("qemu-img", "create", "-q", "-f", "qcow2", str(d / f"{name}.qcow2"), "8M")
            proc.wait_for(lambda s, path=str(d / f"{name}.qcow2"): pick(s, "clonewatch_volume_info", volume=path),
                          what=f"{name} measured")
        lines = [json.loads(x) for x in log.read_text().splitlines() if "volume_chain_broken" in x]
        assert sorted(x["volume"] for x in lines) == [str(d / "orphan.qcow2"), str(d / "outside.qcow2")], \
            "logged once each, not on every refresh"
    finally:
        proc.stop()


def test_an_overlay_rebased_to_stand_alone_leaves_the_family(tmp_path):
    """`qemu-img rebase -b ""` copies the backing data into the overlay: it shares nothing any more."""
    d = tmp_path / "images"
    d.mkdir()
    qemu("qemu-img", "create", "-q", "-f", "qcow2", str(d / "golden.qcow2"), "16M")
    qemu("qemu-io", "-f", "qcow2", str(d / "golden.qcow2"), input_text="write -q -P 0x5a 0 16M\n")
    for name in ("c1", "c2"):
        qemu("qemu-img", "create", "-q", "-f", "qcow2", "-b", "golden.qcow2", "-F", "qcow2", str(d / f"{name}.qcow2"))
    proc = ExporterProcess(["--no-kubernetes.enabled", "--no-rbd.enabled", f"--qcow2.dirs={d}",
                            "--qcow2.refresh-interval=0.3"], tmp_path / "log")
    fam = dict(source_name=str(d / "golden.qcow2"), backend="qcow2")
    try:
        proc.wait_ready()
        assert one(proc.samples(), "clonewatch_source_clones", **fam) == 2
        qemu("qemu-img", "rebase", "-f", "qcow2", "-b", "", str(d / "c2.qcow2"))
        s = proc.wait_for(lambda s: one(s, "clonewatch_source_clones", **fam) == 1, what="c2 left the family")
        assert one(s, "clonewatch_volume_info", volume=str(d / "c2.qcow2"), parent="") == 1
        assert one(s, "clonewatch_volume_clone_depth", volume=str(d / "c2.qcow2")) == 0
        assert one(s, "clonewatch_volume_consumed_bytes", volume=str(d / "c2.qcow2")) >= 16 * MiB, "it holds it all"
    finally:
        proc.stop()
