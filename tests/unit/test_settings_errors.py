"""A bad HEATERS_* value or --log-level is one line naming the variable, never a traceback."""

import pytest
from click.testing import CliRunner

from heaters_db.cli import cli
from heaters_db.devices import UnknownDevice, resolve_device
from heaters_db.settings import get_settings


@pytest.fixture(autouse=True)
def fresh_settings():
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("HEATERS_BATCH_SIZE", "abc", "HEATERS_BATCH_SIZE='abc': Input should be a valid integer"),
        (
            "HEATERS_BATCH_SIZE",
            "0",
            "HEATERS_BATCH_SIZE='0': Input should be greater than or equal to 1",
        ),
        ("HEATERS_POLL_SECONDS", "0", "HEATERS_POLL_SECONDS='0': Input should be greater than 0"),
        ("HEATERS_LOG_LEVEL", "loud", "unknown log level 'loud' (one of DEBUG, INFO"),
    ],
)
def test_a_bad_environment_value_is_one_line_naming_it(monkeypatch, variable, value, says):
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(cli, ["config"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: bad setting: ") and says in result.output
    assert "Traceback" not in result.output


def test_log_level_is_checked_and_case_free(monkeypatch):
    result = CliRunner().invoke(cli, ["--log-level", "LOUD", "config"])
    assert result.exit_code == 2 and "unknown log level 'LOUD'" in result.output
    monkeypatch.setenv("HEATERS_LOG_LEVEL", "debug")
    assert get_settings().log_level == "DEBUG"


def test_an_unknown_device_is_refused_by_name():
    with pytest.raises(UnknownDevice, match="unknown device 'tpu'"):
        resolve_device("tpu")
    assert resolve_device("cpu").type == "cpu"
