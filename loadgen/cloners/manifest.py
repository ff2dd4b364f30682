"""The ownership manifest of native cloners: a JSON document listing every volume loadgen
created, with its scenario, run, group, role and drift. Nothing that is not listed is ever
changed or deleted. qcow2 keeps it as a file in the image directory, RBD as a RADOS object in
the pool. Entries are written *before* the volumes they describe exist (a crash leaves a record
of something that may be missing, never an unrecorded volume of ours), a whole batch at a time.
"""

import json
import os
import subprocess
import tempfile
import threading
from abc import ABC, abstractmethod
from pathlib import Path

from .base import CloneFailed
from .names import OWNER
from .native_run import run


class Manifest(ABC):
    def __init__(self, scenario: str, run_id: str) -> None:
        self.scenario, self.run = scenario, run_id
        self._lock = threading.Lock()          # read-modify-write from worker threads

    # storage: where the document lives (a file, a RADOS object) ------------------------------
    @abstractmethod
    def _load_raw(self) -> str | None:
        """The stored text, or None when there is no manifest yet."""

    @abstractmethod
    def _store_raw(self, text: str) -> None:
        """Replace the stored text (atomically where the medium allows)."""

    @abstractmethod
    def where(self) -> str:
        """Where the manifest lives, for error messages."""

    # document --------------------------------------------------------------------------------
    def _doc(self) -> dict:
        text = self._load_raw()
        if text is None:
            return {"owner": OWNER, "volumes": {}}
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise CloneFailed(f"{self.where()} is damaged ({exc}); not touching anything") from None
        if not isinstance(doc, dict) or doc.get("owner") != OWNER or not isinstance(doc.get("volumes"), dict):
            raise CloneFailed(f"{self.where()} is not ours; not touching anything")
        return doc

    def update(self, change) -> None:
        with self._lock:
            doc = self._doc()
            change(doc["volumes"])
            self._store_raw(json.dumps(doc, indent=1, sort_keys=True))

    def mark(self, entries: dict[str, dict]) -> None:
        """entries: volume -> record fields; scenario and run are added."""
        self.update(lambda vols: vols.update({k: {"scenario": self.scenario, "run": self.run, **v}
                                              for k, v in entries.items()}))

    def unmark(self, volume: str) -> None:
        self.update(lambda vols: vols.pop(volume, None))

    def set_field(self, volume: str, key: str, value) -> None:
        def change(vols: dict) -> None:
            if isinstance(vols.get(volume), dict):
                vols[volume][key] = value
        self.update(change)

    def records(self) -> dict[str, dict]:
        with self._lock:
            return {k: v for k, v in self._doc()["volumes"].items()
                    if isinstance(v, dict) and v.get("scenario") == self.scenario}

    def get(self, volume: str) -> dict | None:
        return self.records().get(volume)


class FileManifest(Manifest):
    def __init__(self, directory: Path, scenario: str, run_id: str, name: str = ".clonewatch-loadgen.json") -> None:
        super().__init__(scenario, run_id)
        self.path = Path(directory) / name

    def where(self) -> str:
        return str(self.path)

    def _load_raw(self) -> str | None:
        try:
            return self.path.read_text()
        except FileNotFoundError:
            return None

    def _store_raw(self, text: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".cwlg-state-")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, self.path)


class RadosManifest(Manifest):
    def __init__(self, base_args: list[str], pool: str, scenario: str, run_id: str) -> None:
        super().__init__(scenario, run_id)
        self.base, self.pool, self.object = base_args, pool, f"clonewatch-loadgen.{scenario}"

    def where(self) -> str:
        return f"RADOS object {self.pool}/{self.object}"

    def _load_raw(self) -> str | None:
        proc = subprocess.run(self.base + ["-p", self.pool, "get", self.object, "-"], capture_output=True,
                              text=True, timeout=120)
        if proc.returncode != 0:
            if "No such file" in proc.stderr or "(2)" in proc.stderr:
                return None
            raise CloneFailed(f"cannot read {self.where()}: {proc.stderr.strip()[-300:]}")
        return proc.stdout

    def _store_raw(self, text: str) -> None:
        run(self.base + ["-p", self.pool, "put", self.object, "-"], input_text=text, timeout=120)
