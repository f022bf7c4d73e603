"""placement.conf: found as the reference finds it, its names, PLACEMENT_* on top."""

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import show
from app.config.placement_conf import ConfigError, config_files, read, source_of
from app.settings import Settings

REFERENCE_STYLE = """
[DEFAULT]
debug = False
[api]
auth_strategy = keystone
[placement_database]
connection = postgresql+psycopg2://placement:s3cret@db.example.com/placement
max_pool_size = 7
max_overflow = 3
sync_on_startup = False
[keystone_authtoken]
www_authenticate_uri = https://keystone.example.com/identity
auth_url = http://keystone.internal:5000/v3
auth_type = password
username = placement
password = ks-s3cret
project_name = service
user_domain_name = Default
project_domain_name = Default
memcached_servers = 10.0.0.1:11211,10.0.0.2:11211
token_cache_time = 120
[placement]
max_allocation_candidates = 1000
allocation_conflict_retry_count = 5
randomize_allocation_candidates = True
[oslo_policy]
policy_file = policy.yaml
enforce_scope = False
enforce_new_defaults = False
[cors]
allowed_origin = https://horizon.example.com,https://other.example.com
"""


@pytest.fixture(autouse=True)
def _no_placement_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PLACEMENT_") or name == "OS_PLACEMENT_CONFIG_DIR":
            monkeypatch.delenv(name)


@pytest.fixture
def conf_dir(tmp_path: Path) -> Path:
    (tmp_path / "placement.conf").write_text(REFERENCE_STYLE)
    (tmp_path / "policy.yaml").write_text("{}\n")
    return tmp_path


def test_reference_style_file_maps_to_the_settings(
    conf_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OS_PLACEMENT_CONFIG_DIR", str(conf_dir))
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg2://placement:s3cret@db.example.com/placement"
    assert (settings.db_pool_size, settings.db_max_overflow) == (7, 3)
    assert settings.sync_on_startup is False
    assert settings.auth_strategy == "keystone"
    ks = settings.keystone
    assert ks.auth_url == "http://keystone.internal:5000/v3"
    assert ks.www_authenticate_uri == "https://keystone.example.com/identity"
    assert ks.password.get_secret_value() == "ks-s3cret"
    assert ks.memcached_servers == ["10.0.0.1:11211", "10.0.0.2:11211"]
    assert ks.token_cache_time == 120
    assert settings.max_allocation_candidates == 1000
    assert settings.allocation_conflict_retry_count == 5
    assert settings.randomize_allocation_candidates is True
    assert settings.policy_file == str(conf_dir / "policy.yaml")
    assert (settings.enforce_scope, settings.enforce_new_defaults) == (False, False)
    assert settings.cors_allowed_origins == [
        "https://horizon.example.com", "https://other.example.com"]


def test_placement_variables_win_over_the_file(
    conf_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OS_PLACEMENT_CONFIG_DIR", str(conf_dir))
    monkeypatch.setenv("PLACEMENT_DATABASE_URL", "sqlite+aiosqlite:////tmp/x.sqlite")
    monkeypatch.setenv("PLACEMENT_AUTH_STRATEGY", "noauth2")
    monkeypatch.setenv("PLACEMENT_KEYSTONE__TOKEN_CACHE_TIME", "9")
    settings = Settings()
    assert settings.database_url == "sqlite+aiosqlite:////tmp/x.sqlite"
    assert settings.auth_strategy == "noauth2"
    assert settings.keystone.token_cache_time == 9
    assert settings.keystone.username == "placement"  # the rest still from the file



def test_variables_are_read_without_regard_to_case_and_as_the_file_reads_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OS_PLACEMENT_CONFIG_DIR", str(tmp_path))  # no placement.conf there
    monkeypatch.setenv("placement_max_in_items", "7")
    monkeypatch.setenv("PLACEMENT_RANDOMIZE_ALLOCATION_CANDIDATES", "yes")
    monkeypatch.setenv("PLACEMENT_CORS_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("PLACEMENT_TRUSTED_PROXIES", '["10.0.0.1"]')
    monkeypatch.setenv("PLACEMENT_NO_SUCH_SETTING", "ignored")
    # A nested model as one JSON object, a field of it on top.
    monkeypatch.setenv("PLACEMENT_KEYSTONE", '{"username": "p", "token_cache_time": 5}')
    monkeypatch.setenv("PLACEMENT_KEYSTONE__TOKEN_CACHE_TIME", "6")
    monkeypatch.setenv("PLACEMENT_KEYSTONE__SERVICE_TOKEN_ROLES", "service,admin")
    settings = Settings(max_in_items=9)  # keyword arguments win over variables
    assert settings.max_in_items == 9
    assert Settings().max_in_items == 7
    assert settings.randomize_allocation_candidates is True
    assert settings.cors_allowed_origins == ["https://a.example", "https://b.example"]
    assert settings.trusted_proxies == ["10.0.0.1"]
    assert not hasattr(settings, "no_such_setting")
    assert settings.keystone.username == "p"
    assert settings.keystone.token_cache_time == 6
    assert settings.keystone.service_token_roles == ["service", "admin"]


def test_a_bad_variable_is_refused_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OS_PLACEMENT_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("PLACEMENT_DB_LOCK_TIMEOUT", "soon")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert refused.value.errors()[0]["loc"] == ("db_lock_timeout",)
    monkeypatch.delenv("PLACEMENT_DB_LOCK_TIMEOUT")
    monkeypatch.setenv("PLACEMENT_KEYSTONE", "{not json")
    with pytest.raises(ConfigError, match="PLACEMENT_KEYSTONE is not JSON"):
        Settings()

LIMITS = """
[placement_database]
max_pool_size = 9
max_overflow = 4
pool_timeout = 2.5
[api_limits]
max_url_length = 4096
max_body_bytes = 1048576
max_param_repeats = 16
max_request_groups = 8
max_in_items = 20
max_traits_per_group = 12
candidates_max_in_flight = 2
candidates_queue_size = 5
candidates_queue_seconds = 1.5
candidates_max_combinations = -1
[database_timeouts]
statement_timeout_read = 11
statement_timeout_write = 12
statement_timeout_candidates = 13.5
lock_timeout = 3
connect_timeout = 2
reconnect_window = 7
"""


def test_limits_and_timeouts_from_the_file_variables_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "placement.conf").write_text(LIMITS)
    monkeypatch.setenv("OS_PLACEMENT_CONFIG_DIR", str(tmp_path))
    settings = Settings()
    assert (settings.db_pool_size, settings.db_max_overflow, settings.db_pool_timeout) == (
        9, 4, 2.5)
    assert (settings.max_url_length, settings.max_body_bytes, settings.max_param_repeats,
            settings.max_request_groups, settings.max_in_items,
            settings.max_traits_per_group) == (4096, 1048576, 16, 8, 20, 12)
    assert (settings.candidates_max_in_flight, settings.candidates_queue_size,
            settings.candidates_queue_seconds, settings.candidates_max_combinations) == (
        2, 5, 1.5, -1)
    assert (settings.db_statement_timeout_read, settings.db_statement_timeout_write,
            settings.db_statement_timeout_candidates, settings.db_lock_timeout,
            settings.db_connect_timeout, settings.db_reconnect_window) == (
        11, 12, 13.5, 3, 2, 7)
    monkeypatch.setenv("PLACEMENT_MAX_URL_LENGTH", "2048")
    monkeypatch.setenv("PLACEMENT_DB_LOCK_TIMEOUT", "0.5")
    settings = Settings()
    assert (settings.max_url_length, settings.db_lock_timeout) == (2048, 0.5)
    assert settings.max_in_items == 20  # the rest still from the file


def test_bad_limit_in_the_file_names_where_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert source_of("max_in_items") == (
        "[api_limits] max_in_items in placement.conf, or PLACEMENT_MAX_IN_ITEMS")
    assert source_of("db_lock_timeout") == (
        "[database_timeouts] lock_timeout in placement.conf, or PLACEMENT_DB_LOCK_TIMEOUT")
    (tmp_path / "placement.conf").write_text("[api_limits]\nmax_in_items = many\n")
    monkeypatch.setenv("OS_PLACEMENT_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="max_in_items"):
        Settings()


def test_config_file_option_wins_over_the_directory(
    conf_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other.conf"
    other.write_text("[placement]\nmax_allocation_candidates = 3\n")
    monkeypatch.setenv("OS_PLACEMENT_CONFIG_DIR", str(conf_dir))
    monkeypatch.setenv("PLACEMENT_CONFIG_FILE", str(other))
    assert config_files() == [other]
    settings = Settings()
    assert settings.max_allocation_candidates == 3
    # A file that names no strategy gets the reference's default, keystone.
    assert settings.auth_strategy == "keystone"


def test_no_file_anywhere_keeps_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OS_PLACEMENT_CONFIG_DIR", str(tmp_path))  # no placement.conf there
    assert config_files() == []
    settings = Settings()
    assert settings.auth_strategy == "noauth2"
    assert settings.trusted_proxies == ["127.0.0.1", "::1"]
    assert settings.docs_and_metrics_public is True


def test_missing_or_broken_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        config_files({"PLACEMENT_CONFIG_FILE": str(tmp_path / "nope.conf")})
    broken = tmp_path / "broken.conf"
    broken.write_text("[placement\nmax_allocation_candidates = 1\n")
    with pytest.raises(ConfigError, match="cannot read"):
        read([broken])


def test_config_show_masks_secrets_and_names_sources(
    conf_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OS_PLACEMENT_CONFIG_DIR", str(conf_dir))
    monkeypatch.setenv("PLACEMENT_MAX_ALLOCATION_CANDIDATES", "10")
    text = "\n".join(show.lines(Settings()))
    assert "s3cret" not in text
    assert "ks-s3cret" not in text
    assert "database_url = postgresql+psycopg2://placement:***@db.example.com/placement" in text
    assert "keystone.password = ***  # placement.conf" in text
    assert "max_allocation_candidates = 10  # PLACEMENT_MAX_ALLOCATION_CANDIDATES" in text
    assert "serialization_retry_count = 20  # default" in text
    assert f"# placement.conf: {conf_dir / 'placement.conf'}" in text
