"""`FAREGATE_*` settings: from the environment over `.env`, any case, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from faregate.settings import Settings, SettingsError


def test_defaults_with_nothing_set(tmp_path: Path) -> None:
    s = Settings.read({}, tmp_path / "missing.env")
    assert s == Settings()
    assert (s.config, s.port, s.auth, s.admin_key, s.log_level) == (
        Path("routes.yaml"),
        None,
        None,
        None,
        "INFO",
    )


def test_the_environment_wins_over_the_env_file_and_case_does_not_matter(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("FAREGATE_PORT=9000\nFAREGATE_HOST=0.0.0.0\nfaregate_log_level=debug\nOTHER=x\n")
    s = Settings.read(
        {"faregate_port": "9100", "FAREGATE_AUTH": "keys", "FAREGATE_STATE": "redis://x"}, env_file
    )
    assert (s.port, s.host, s.auth, s.log_level) == (9100, "0.0.0.0", "keys", "debug")


def test_the_admin_key_is_kept_but_never_shown(tmp_path: Path) -> None:
    s = Settings.read({"FAREGATE_ADMIN_KEY": "sk-admin-secret"}, None)
    assert s.admin_key == "sk-admin-secret"
    assert "sk-admin-secret" not in repr(s)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("FAREGATE_PORT", "eighty", "whole number"),
        ("FAREGATE_PORT", "70000", "between"),
        ("FAREGATE_AUTH", "none", "one of"),
    ],
)
def test_a_bad_value_is_an_error_naming_it(name: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=name) as e:
        Settings.read({name: value}, None)
    assert says in str(e.value)


def test_paths_are_paths(tmp_path: Path) -> None:
    s = Settings.read({"FAREGATE_STORE": str(tmp_path / "x.db"), "FAREGATE_CATALOG_DIR": "cat"}, None)
    assert s.store == tmp_path / "x.db" and s.catalog_dir == Path("cat")
