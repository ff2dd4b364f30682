"""clonewatch-loadgen's command line: mistakes are named in one line, every option has help."""

import pytest

from loadgen.cli import main


@pytest.mark.parametrize("argv,line", [
    (["--bogus"], "clonewatch-loadgen: unrecognized arguments: --bogus"),
    ([], "clonewatch-loadgen: a command is needed: harness, run or cleanup"),
    (["run", "--scenario", "x.yaml", "--bogus"], "clonewatch-loadgen: unrecognized arguments: --bogus"),
])
def test_mistakes_are_one_line_and_a_hint(argv, line, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [line, "Try 'clonewatch-loadgen --help' for the options."]


@pytest.mark.parametrize("command", ["harness", "run", "cleanup"])
def test_every_option_has_help(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "scenario YAML" in out
    if command == "run":
        assert "address to serve /metrics" in out
