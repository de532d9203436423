"""Command-line usage the CLI refuses before it touches the database."""

from click.testing import CliRunner

from heaters_db.cli import cli


def test_a_note_without_force_is_refused():
    result = CliRunner().invoke(cli, ["heads", "activate", "1", "--note", "why"])
    assert result.exit_code == 2
    assert "--note gives the reason for --force" in result.output


def test_wait_with_now_and_a_negative_timeout_are_refused():
    both = CliRunner().invoke(cli, ["train", "--mode", "trick", "--now", "--wait"])
    assert both.exit_code == 2 and "--wait is for a queued job" in both.output
    negative = CliRunner().invoke(cli, ["train", "--mode", "trick", "--wait", "--timeout", "-1"])
    assert negative.exit_code == 2 and "--timeout" in negative.output
    epochs = CliRunner().invoke(cli, ["train", "--mode", "trick", "--epochs", "-1"])
    assert epochs.exit_code == 2 and "--epochs" in epochs.output
