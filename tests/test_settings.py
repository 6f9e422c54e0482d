"""The settings loader: embedded defaults, the documented example, environment overrides."""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path

import pytest

from relay.settings import ConfigError, Settings, load_settings, load_sourced_settings
from tests.support import REPO

EXAMPLE = REPO / "config" / "relay.example.toml"


def test_no_config_at_all_gives_the_embedded_defaults() -> None:
    settings = load_settings(None, environ={})
    assert settings.server.listen == "127.0.0.1:8080"
    assert settings.storage.url == "sqlite:///relay.db"
    assert [app.id for app in settings.apps] == ["default"]
    assert settings.forwarding.max_requests_per_second == 100


def test_the_example_config_loads_and_equals_the_defaults() -> None:
    assert load_settings(EXAMPLE, environ={}) == load_settings(None, environ={})


def _documented_keys(table: dict, prefix: str = "") -> set[str]:
    keys = set()
    for name, value in table.items():
        if isinstance(value, dict) and name not in ("aliases", "customerio_ids"):
            keys |= _documented_keys(value, f"{prefix}{name}.")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            keys |= _documented_keys(value[0], f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def _setting_keys(cls: type, prefix: str = "") -> set[str]:
    keys = set()
    for name, hint in typing.get_type_hints(cls).items():
        if typing.get_origin(hint) is tuple and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            hint = typing.get_args(hint)[0]
        if dataclasses.is_dataclass(hint):
            keys |= _setting_keys(hint, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_every_setting_is_documented_in_the_example_config() -> None:
    documented = _documented_keys(tomllib.loads(EXAMPLE.read_text()))
    assert documented == _setting_keys(Settings)


def test_environment_variables_override_scalar_keys() -> None:
    settings = load_settings(
        None,
        environ={
            "RELAY_STORAGE_URL": "sqlite:////tmp/x.db",
            "RELAY_FORWARDING_MAX_REQUESTS_PER_SECOND": "5",
            "RELAY_CUSTOMERIO_SITE_ID": "0123abc",
        },
    )
    assert settings.storage.url == "sqlite:////tmp/x.db"
    assert settings.forwarding.max_requests_per_second == 5
    assert settings.customerio.site_id == "0123abc"


def test_relay_config_variable_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text('[server]\nlisten = "127.0.0.1:9999"\n')
    assert load_settings(None, environ={"RELAY_CONFIG": str(path)}).server.port == 9999


def test_apps_are_read_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(
        '[[apps]]\nid = "ios-shop"\n[apps.apns]\ntopic = "com.shop"\n[[apps]]\nid = "b"\n'
    )
    settings = load_settings(path, environ={})
    assert settings.app_ids == {"ios-shop", "b"}
    assert settings.app("ios-shop").apns.topic == "com.shop"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[server]\nlistne = 'x'\n", "server.listne"),
        ("[server]\nlisten = 5\n", "server.listen"),
        ("[storage]\npool_size = 1\n", "storage.pool_size"),
        ("[storage]\nurl = 'mysql://x'\n", "storage.url"),
        ("[customerio]\nregion = 'ap'\n", "customerio.region"),
        ("[[apps]]\nid = 'a'\n[[apps]]\nid = 'a'\n", "unique"),
        ("[server]\ntls_cert = 'a.pem'\n", "tls_key"),
        ("[attribution]\nconversion_events = 'Order Completed'\n", "conversion_events"),
        ("[server\n", "cannot read TOML"),
    ],
)
def test_a_bad_config_is_refused_naming_the_key(tmp_path: Path, text: str, names: str) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=names):
        load_settings(path, environ={})


def test_a_bad_environment_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match="forwarding.give_up_hours"):
        load_settings(None, environ={"RELAY_FORWARDING_GIVE_UP_HOURS": "soon"})


def test_an_unknown_relay_variable_is_reported_with_the_closest_setting_name() -> None:
    warnings: list[str] = []
    load_settings(None, environ={"RELAY_STORAGE_ULR": "sqlite:///x.db"}, warn=warnings.append)
    assert warnings == ["RELAY_STORAGE_ULR names no setting; did you mean RELAY_STORAGE_URL?"]


def test_an_unknown_relay_variable_does_not_stop_loading() -> None:
    environ = {"RELAY_STORAGE_ULR": "sqlite:///x.db"}
    assert load_settings(None, environ=environ, warn=lambda _: None) == Settings()


def test_an_apps_variable_is_reported_as_file_only() -> None:
    warnings: list[str] = []
    load_settings(None, environ={"RELAY_APPS_ID": "shop"}, warn=warnings.append)
    assert warnings == ["RELAY_APPS_ID names no setting; [[apps]] is set in the config file only"]


def test_relay_variables_read_for_other_purposes_are_not_reported(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text("")
    warnings: list[str] = []
    environ = {"RELAY_CONFIG": str(path), "RELAY_BENCH_DATA": "/tmp/bench", "OTHER_X": "1"}
    load_settings(None, environ=environ, warn=warnings.append)
    assert warnings == []


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RELAY_CUSTOMERIO_API_KEY", "12e45"),
        ("RELAY_CUSTOMERIO_SITE_ID", "00123"),
        ("RELAY_CUSTOMERIO_CDP_API_KEY", "true"),
        ("RELAY_SERVER_LISTEN", "127.0.0.1:9000"),
        ("RELAY_SERVER_PUBLIC_URL", '"quoted"'),
    ],
)
def test_a_string_setting_takes_the_variable_text_as_written(variable: str, value: str) -> None:
    settings = load_settings(None, environ={variable: value})
    section, _, key = variable.removeprefix("RELAY_").lower().partition("_")
    assert getattr(getattr(settings, section), key) == value


def test_a_non_string_setting_reads_the_variable_as_toml() -> None:
    environ = {
        "RELAY_STORAGE_READ_CONNECTIONS": "4",
        "RELAY_ATTRIBUTION_CONVERSION_EVENTS": '["Purchase", "Signup"]',
    }
    settings = load_settings(None, environ=environ)
    assert settings.storage.read_connections == 4
    assert settings.attribution.conversion_events == ("Purchase", "Signup")


def test_an_unparseable_number_from_the_environment_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^RELAY_STORAGE_READ_CONNECTIONS: .*'abc'"):
        load_settings(None, environ={"RELAY_STORAGE_READ_CONNECTIONS": "abc"})


def test_a_bad_environment_value_names_the_variable_not_the_file(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text("[forwarding]\ngive_up_hours = 12\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(path, environ={"RELAY_FORWARDING_GIVE_UP_HOURS": "soon"})
    assert str(refused.value).startswith("RELAY_FORWARDING_GIVE_UP_HOURS: ")
    assert str(path) not in str(refused.value)


def test_an_impossible_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^RELAY_SERVER_LISTEN: server\.listen"):
        load_settings(None, environ={"RELAY_SERVER_LISTEN": "nowhere"})


def test_a_bad_file_value_names_the_file_beside_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text("[forwarding]\ngive_up_hours = 'soon'\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(path, environ={"RELAY_FORWARDING_RETRY_MAX_SECONDS": "30"})
    assert str(refused.value).startswith(f"{path}: forwarding.give_up_hours")


def test_each_value_knows_whether_it_came_from_file_environment_or_default(
    tmp_path: Path,
) -> None:
    path = tmp_path / "relay.toml"
    path.write_text("[storage]\nread_connections = 3\n[[apps]]\nid = 'shop'\n")
    loaded = load_sourced_settings(path, environ={"RELAY_STORAGE_URL": "sqlite:///y.db"})
    assert loaded.origins.of("storage.read_connections").label == "file"
    assert loaded.origins.of("storage.url").label == "env RELAY_STORAGE_URL"
    assert loaded.origins.of("storage.synchronous").label == "default"
    assert loaded.origins.of("apps[0].apns.topic").label == "file"
