"""--web.config.file parsing (exporter-toolkit's format) and the basic-auth cache."""

import bcrypt
import pytest
import yaml
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from exporter.config.settings import ConfigError
from exporter.http.webconfig import BasicAuth, ReloadingContext, load
from tests.support.https import make_tls


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls(tmp_path_factory.mktemp("tls"))


def write(tmp_path, doc) -> str:
    path = tmp_path / "web.yml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return str(path)


def test_a_full_file_loads_with_exporter_toolkit_meanings(tmp_path, tls):
    cert, key = tls
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / cert.name).write_bytes(cert.read_bytes())          # relative paths: relative to the file
    (tmp_path / key.name).write_bytes(key.read_bytes())
    cfg = load(write(tmp_path, {
        "tls_server_config": {"cert_file": cert.name, "key_file": key.name, "client_auth_type": "VerifyClientCertIfGiven",
                              "client_ca_file": cert.name, "min_version": "TLS12", "max_version": "TLS13",
                              "cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"], "curve_preferences": ["X25519"],
                              "client_allowed_sans": ["prometheus"]},
        "http_server_config": {"headers": {"Strict-Transport-Security": "max-age=31536000"}, "http2": True},
        "basic_auth_users": {"prometheus": hashed}}))
    assert cfg.tls.cert_file == tmp_path / cert.name and cfg.tls.client_allowed_sans == ("prometheus",)
    assert cfg.headers == (("Strict-Transport-Security", "max-age=31536000"),)
    assert cfg.users == {"prometheus": hashed.encode()}
    assert ReloadingContext(cfg.tls).context.verify_mode.name == "CERT_OPTIONAL"


@pytest.mark.parametrize("doc,where", [
    ({"tls_server_config": {"cert_file": "CERT"}}, "tls_server_config: cert_file and key_file"),
    ({"tls_server_config": {"cert_file": "CERT", "key_file": "KEY", "client_auth_type": "RequestClientCert"}},
     "tls_server_config.client_auth_type: RequestClientCert is not supported"),
    ({"tls_server_config": {"cert_file": "CERT", "key_file": "KEY", "client_auth_type": "RequireAndVerifyClientCert"}},
     "tls_server_config.client_ca_file: required"),
    ({"tls_server_config": {"cert_file": "CERT", "key_file": "KEY", "min_version": "TLS13", "max_version": "TLS12"}},
     "tls_server_config.min_version: is above max_version"),
    ({"tls_server_config": {"cert_file": "CERT", "key_file": "KEY", "cipher_suites": ["TLS_FAKE"]}},
     "tls_server_config.cipher_suites: unknown cipher suite"),
    ({"tls_server_config": {"cert_file": "CERT", "key_file": "KEY", "curve_preferences": ["CurveP256", "X25519"]}},
     "tls_server_config.curve_preferences: only one curve"),
    ({"tls_server_config": {"cert_file": "CERT", "key_file": "CERT"}}, "tls_server_config: cannot use"),
    ({"http_server_config": {"headers": {"Server": "x"}}}, "http_server_config.headers.Server: unknown key"),
    ({"basic_auth_users": {"a:b": "$2b$" + "x" * 56}}, "basic_auth_users: user names"),
    ({"basic_auth_users": ["prometheus"]}, "basic_auth_users: expected a mapping"),
    ("tls_server_config: [\n", "is not YAML"),
])
def test_bad_files_name_the_key(tmp_path, tls, doc, where):
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc).replace("CERT", str(tls[0])).replace("KEY", str(tls[1]))
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, text))
    assert err.value.key == "web.config.file" and where in str(err.value)


keys = st.sampled_from(["tls_server_config", "http_server_config", "basic_auth_users", "cert_file", "key_file",
                        "client_auth_type", "min_version", "headers", "x"])
values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3), max_leaves=8)


@hsettings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, values, max_size=4) | values)
def test_any_document_loads_or_is_a_config_error(tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("h") / "web.yml"
    path.write_text(yaml.safe_dump(doc))
    try:
        load(str(path))
    except ConfigError as exc:
        assert exc.key == "web.config.file"


def test_basic_auth_pays_bcrypt_once_per_pair_and_refuses_unknown_users():
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=4))
    auth = BasicAuth({"prometheus": hashed})
    assert auth.cached("prometheus", "right") is None
    assert auth.check("prometheus", "right") and auth.check("prometheus", "right")
    assert auth.cached("prometheus", "right") is True and auth.bcrypt_calls == 1
    assert not auth.check("prometheus", "wrong") and not auth.check("nobody", "right")
    assert auth.bcrypt_calls == 3, "an unknown user costs a bcrypt too"


def test_the_bcrypt_budget_refills_at_its_rate():
    from exporter.http.verdicts import Budget
    bucket = Budget(rate=5, burst=5)
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    bucket.at -= 0.25                     # a quarter of a second later: one more token (5/s)
    assert bucket.take() and not bucket.take()
