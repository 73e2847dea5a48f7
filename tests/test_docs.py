"""Docs checked by tests: every command and every setting is in the README."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from faceledger.cli import app
from faceledger.config import ENV_PREFIX, Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _commands(group, prefix=()) -> list[tuple[str, ...]]:
    found = []
    for name, command in getattr(group, "commands", {}).items():
        path = (*prefix, name)
        found.append(path)
        found += _commands(command, path)
    return found


def test_every_command_is_in_the_readme_and_has_help():
    root = typer.main.get_command(app)
    commands = _commands(root)
    assert len(commands) > 30
    missing = [" ".join(c) for c in commands if f"faceledger {' '.join(c)}" not in README]
    assert not missing, f"commands missing from README.md: {missing}"
    for path in commands:
        command = root
        for word in path:
            command = command.commands[word]
        assert (command.help or "").strip(), f"`faceledger {' '.join(path)}` has no help"


def test_every_setting_is_in_the_readme():
    names = [ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings)]
    missing = [n for n in names if n not in README]
    assert not missing, f"settings missing from README.md: {missing}"
