"""`--help` is even across `nav-policy`: a purpose for users, every default shown, one example
per subcommand, `--json FILE|-` written one way, and `--version`."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from nav_policy import __version__
from nav_policy.cli import HelpFormatter, build_parser, shows_default

PARSER = build_parser()
SUB = next(a for a in PARSER._actions if isinstance(a, argparse._SubParsersAction))


def test_top_level_speaks_to_users() -> None:
    text = PARSER.format_help()
    assert "add_parser" not in text and "Each concern" not in text
    assert "example" in text and "--version" in text
    exe = str(Path(sys.executable).parent / "nav-policy")
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0 and done.stdout.strip() == f"nav-policy {__version__}"


@pytest.mark.parametrize("name", sorted(SUB.choices))
def test_every_subcommand_has_purpose_defaults_and_an_example(name: str) -> None:
    p = SUB.choices[name]
    assert p.description and len(p.description) > 20, name
    text = p.format_help()
    assert "example" in text.lower(), f"{name} --help has no example"
    fmt = HelpFormatter(p.prog)
    for action in p._actions:
        if action.option_strings and shows_default(action.default) and action.help:
            assert "default" in fmt._get_help_string(action), (name, action.option_strings)
        if "--json" in action.option_strings:
            assert action.metavar == "FILE|-", name


def test_up_names_every_node_it_runs() -> None:
    text = " ".join(SUB.choices["up"].format_help().split())
    for node in ("sensor_fusion_node", "local_planner_node", "instruction_node",
                 "mission_executor_node", "sim_bridge_node", "deceptive_planner_node"):
        assert node in text
