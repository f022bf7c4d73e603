"""placement.conf's database URLs map to the async drivers; passwords never show."""

import pytest

from app.db.urls import BadDatabaseURL, async_url, mask


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql+psycopg2://u:p@db/placement", "postgresql+asyncpg://u:p@db/placement"),
        ("postgresql://db/placement", "postgresql+asyncpg://db/placement"),
        ("postgres://db/placement", "postgresql+asyncpg://db/placement"),
        ("postgresql+asyncpg://db/placement", "postgresql+asyncpg://db/placement"),
        (
            "mysql+pymysql://root:pw@127.0.0.1/placement?charset=utf8",
            "mysql+asyncmy://root:pw@127.0.0.1/placement?charset=utf8",
        ),
        ("mysql+aiomysql://r@h/d", "mysql+aiomysql://r@h/d"),
        ("sqlite:////var/lib/placement.sqlite", "sqlite+aiosqlite:////var/lib/placement.sqlite"),
        ("sqlite+aiosqlite:///./placement.sqlite", "sqlite+aiosqlite:///./placement.sqlite"),
    ],
)
def test_sync_forms_map_to_async_drivers(given: str, expected: str) -> None:
    assert async_url(given) == expected


@pytest.mark.parametrize("given", ["oracle://db/x", "not a url", ""])
def test_unsupported_or_unparseable_urls_are_refused(given: str) -> None:
    with pytest.raises(BadDatabaseURL):
        async_url(given)


def test_mask_hides_the_password() -> None:
    assert "secret" not in mask("mysql+pymysql://placement:secret@db/placement")
    assert mask("mysql+pymysql://placement:secret@db/placement").startswith("mysql+pymysql://")


def test_a_port_that_is_no_number_is_a_bad_url_not_a_crash() -> None:
    with pytest.raises(BadDatabaseURL):
        async_url("postgresql://u:secret@db:port/placement")
    assert "secret" not in mask("postgresql://u:secret@db:port/placement")
