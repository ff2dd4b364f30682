"""A throwaway PKI with openssl: one CA, server certificates for 127.0.0.1, client certificates."""

import subprocess
from pathlib import Path


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


class Pki:
    def __init__(self, directory: Path, name: str = "ca") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.ca_cert, self.ca_key = directory / f"{name}.crt", directory / f"{name}.key"
        _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(self.ca_key),
             "-out", str(self.ca_cert), "-subj", f"/CN=clonewatch test {name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, name: str, cn: str, san: str, client: bool = False, out: Path | None = None,
              ecdsa: bool = False) -> tuple[Path, Path]:
        """(cert, key) signed by this CA; `out` names the directory (default the PKI's)."""
        where = out or self.dir
        where.mkdir(parents=True, exist_ok=True)
        cert, key, csr, ext = where / f"{name}.crt", where / f"{name}.key", where / f"{name}.csr", where / f"{name}.ext"
        ext.write_text(f"subjectAltName={san}\nextendedKeyUsage={'clientAuth' if client else 'serverAuth'}\n")
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if ecdsa else ["-newkey", "rsa:2048"]
        _run("openssl", "req", "-new", *newkey, "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", f"/CN={cn}")
        _run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(self.ca_cert), "-CAkey", str(self.ca_key),
             "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile", str(ext))
        csr.unlink()
        ext.unlink()
        return cert, key
