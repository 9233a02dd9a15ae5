"""--print-completion: a shell completion script generated from the parser, that completes."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from gos3matic.cli import main
from gos3matic.commands import COMMANDS

BASH = shutil.which("bash")


def script_for(shell: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(["--print-completion", shell])
    assert exited.value.code == 0
    return capsys.readouterr().out


def complete_in_bash(script: str, words: list[str]) -> list[str]:
    line = " ".join(words)
    program = (
        f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
        f'COMP_LINE="{line}"; COMP_POINT=${{#COMP_LINE}}\n'
        '_shtab_gos3matic; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    assert BASH is not None
    done = subprocess.run([BASH, "-c", program], capture_output=True, text=True, check=True)
    return done.stdout.split()


@pytest.mark.skipif(BASH is None, reason="no bash on this machine")
def test_bash_completes_commands_and_their_options(capsys):
    script = script_for("bash", capsys)
    assert complete_in_bash(script, ["gos3matic", "ann"]) == ["annotate"]
    assert complete_in_bash(script, ["gos3matic", "annotate", "--la"]) == ["--label"]
    every = complete_in_bash(script, ["gos3matic", ""])
    assert {command.__name__.rpartition(".")[2] for command in COMMANDS} <= set(every)


def test_zsh_gets_a_completion_function_for_every_command(capsys):
    script = script_for("zsh", capsys)
    assert script.startswith("#compdef gos3matic")
    for command in COMMANDS:
        assert command.__name__.rpartition(".")[2] in script
    assert "--traceback-url" in script


def test_an_unknown_shell_is_a_usage_error(capsys):
    assert main(["--print-completion", "fish"]) == 2
    assert "invalid choice: 'fish'" in capsys.readouterr().err
