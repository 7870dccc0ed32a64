import pytest

from indexers.errors import ConfigError
from services.serve import settings_from_args
from services.settings import ServiceSettings, load_api_keys

K = "k" * 20


def test_keys_from_env_and_file(tmp_path):
    f = tmp_path / "keys"
    f.write_text(f"# ops keys\n{K}\n\n{'f' * 20}  # rotated 2026\n")
    assert load_api_keys(f, env=f" {'e' * 20} ,,{K}") == ("e" * 20, K, "f" * 20)
    with pytest.raises(ConfigError, match="cannot read the API keys file"):
        load_api_keys(tmp_path / "missing", env="")


def test_no_keys_needs_an_explicit_no_auth():
    with pytest.raises(ConfigError, match="ADARAG_API_KEYS"):
        ServiceSettings()
    assert ServiceSettings(allow_anonymous=True).api_keys == ()
    with pytest.raises(ConfigError, match="at least 16"):
        ServiceSettings(api_keys=("short",))
    with pytest.raises(ConfigError, match="max_queue"):
        ServiceSettings(api_keys=(K,), max_queue=0)
    with pytest.raises(ConfigError, match="timeout_s"):
        ServiceSettings(api_keys=(K,), timeout_s=0)


def test_no_auth_is_loopback_only(monkeypatch):
    monkeypatch.delenv("ADARAG_API_KEYS", raising=False)
    assert settings_from_args(host="127.0.0.1", no_auth=True).allow_anonymous
    assert settings_from_args(host="::1", no_auth=True).allow_anonymous
    with pytest.raises(ConfigError, match="loopback only"):
        settings_from_args(host="0.0.0.0", no_auth=True)
    monkeypatch.setenv("ADARAG_API_KEYS", K)
    with pytest.raises(ConfigError, match="drop --no-auth"):
        settings_from_args(host="127.0.0.1", no_auth=True)
