"""``placement.conf``, read with oslo.config as the reference reads it.

Found as the reference finds it: the files given with ``--config-file``
(``PLACEMENT_CONFIG_FILE``, os.pathsep-separated, is how the command line hands
them to the server's workers), else ``$OS_PLACEMENT_CONFIG_DIR/placement.conf``,
else oslo.config's default places for project ``placement``
(``~/.placement/``, ``~/``, ``/etc/placement/``, ``/etc/``).

Only options the file sets are passed on; everything else keeps the service's
defaults, and ``PLACEMENT_*`` variables win over the file.
"""

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from oslo_config import cfg

CONFIG_FILE_VARIABLE = "PLACEMENT_CONFIG_FILE"
LIST = "list"
SECRET = "secret"

# (section, option, setting, kind): the reference's names on the left, the
# service's settings (``keystone.x``: a KeystoneSettings field) on the right.
OPTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("placement_database", "connection", "database_url", SECRET),
    ("placement_database", "max_pool_size", "db_pool_size", ""),
    ("placement_database", "max_overflow", "db_max_overflow", ""),
    ("placement_database", "sync_on_startup", "sync_on_startup", ""),
    ("placement_database", "slave_connection", "database_read_url", SECRET),
    ("api", "auth_strategy", "auth_strategy", ""),
    ("api", "allow_remote_noauth2", "allow_remote_noauth2", ""),
    ("api", "trusted_proxies", "trusted_proxies", LIST),
    ("api", "public_docs_and_metrics", "public_docs_and_metrics", ""),
    ("placement", "max_allocation_candidates", "max_allocation_candidates", ""),
    ("placement", "allocation_conflict_retry_count", "allocation_conflict_retry_count", ""),
    ("placement", "randomize_allocation_candidates", "randomize_allocation_candidates", ""),
    ("placement", "incomplete_consumer_project_id", "incomplete_consumer_project_id", ""),
    ("placement", "incomplete_consumer_user_id", "incomplete_consumer_user_id", ""),
    ("oslo_policy", "policy_file", "policy_file", ""),
    ("oslo_policy", "enforce_scope", "enforce_scope", ""),
    ("oslo_policy", "enforce_new_defaults", "enforce_new_defaults", ""),
    ("cors", "allowed_origin", "cors_allowed_origins", LIST),
    *(("keystone_authtoken", name, f"keystone.{name}", kind) for name, kind in (
        ("www_authenticate_uri", ""), ("auth_url", ""), ("auth_type", ""),
        ("username", ""), ("password", SECRET), ("project_name", ""),
        ("user_domain_name", ""), ("user_domain_id", ""), ("project_domain_name", ""),
        ("project_domain_id", ""), ("system_scope", ""), ("interface", ""),
        ("region_name", ""), ("token_cache_time", ""), ("http_connect_timeout", ""),
        ("http_request_max_retries", ""), ("service_token_roles", LIST),
        ("service_token_roles_required", ""), ("memcached_servers", LIST),
        ("token_cache_size", ""), ("validation_timeout", ""),
    )),
    ("placement_database", "pool_timeout", "db_pool_timeout", ""),
    # This service's own bounds (README "Limits"), which the reference does not have:
    # one request's work, and waits on the database (seconds).
    *(("api_limits", name, name, "") for name in (
        "max_url_length", "max_body_bytes", "max_param_repeats", "max_request_groups",
        "max_in_items", "max_traits_per_group", "candidates_max_in_flight",
        "candidates_queue_size", "candidates_queue_seconds", "candidates_max_combinations",
    )),
    *(("database_timeouts", name, f"db_{name}", "") for name in (
        "statement_timeout_read", "statement_timeout_write", "statement_timeout_candidates",
        "lock_timeout", "connect_timeout", "reconnect_window",
    )),
)


class ConfigError(Exception):
    """placement.conf cannot be used: reported in one line at start-up."""


def config_files(environ: dict[str, str] | None = None) -> list[Path]:
    env = os.environ if environ is None else environ
    explicit = [Path(name) for name in env.get(CONFIG_FILE_VARIABLE, "").split(os.pathsep)
                if name.strip()]
    if explicit:
        for path in explicit:
            if not path.is_file():
                raise ConfigError(f"config file {path} not found")
        return explicit
    directory = env.get("OS_PLACEMENT_CONFIG_DIR", "").strip()
    if directory:
        candidate = Path(directory) / "placement.conf"
        return [candidate] if candidate.is_file() else []
    return [Path(name) for name in cfg.find_config_files(project="placement", prog="placement")]


def _register(conf: cfg.ConfigOpts) -> None:
    for section, option, _, kind in OPTIONS:
        opt: cfg.Opt
        if kind == LIST:
            opt = cfg.ListOpt(option)
        else:
            opt = cfg.StrOpt(option, secret=kind == SECRET)
        conf.register_opt(opt, group=section)


def read(files: Iterable[Path]) -> dict[str, Any]:
    """The settings the files set, nested as Settings takes them."""
    files = list(files)
    if not files:
        return {}
    conf = cfg.ConfigOpts()
    _register(conf)
    try:
        conf([], project="placement", default_config_files=[str(f) for f in files],
             default_config_dirs=[], use_env=False)
    except cfg.Error as exc:
        raise ConfigError(f"cannot read {', '.join(map(str, files))}: {exc}") from None
    values: dict[str, Any] = {}
    for section, option, setting, _ in OPTIONS:
        try:
            value = getattr(getattr(conf, section), option)
        except cfg.Error as exc:
            raise ConfigError(f"[{section}] {option}: {exc}") from None
        if value is None:
            continue
        target = values
        *parents, leaf = setting.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    # The reference's default strategy: a placement.conf that names none is keystone.
    values.setdefault("auth_strategy", "keystone")
    policy = values.get("policy_file")
    if policy and not Path(policy).is_absolute():
        # oslo.policy looks for a relative policy file beside the config files.
        for directory in (f.parent for f in files):
            if (directory / policy).is_file():
                values["policy_file"] = str(directory / policy)
                break
    values["config_files"] = [str(f) for f in files]
    return values


def source_of(setting: str) -> str:
    """Where an operator sets ``setting``: for messages."""
    variable = "PLACEMENT_" + setting.upper().replace(".", "__")
    for section, option, name, _ in OPTIONS:
        if name == setting:
            return f"[{section}] {option} in placement.conf, or {variable}"
    return variable
