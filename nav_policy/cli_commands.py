"""Subcommand registry for `nav-policy`. Heavy imports stay inside each command's run()."""

from __future__ import annotations

import argparse
import importlib

# module path -> each module exposes add_parsers(sub) registering its subcommands
_MODULES = (
    "nav_policy.demo",
    "nav_policy.train_cli",
    "nav_policy.bench.cli",
    "nav_policy.bench.barn",
    "nav_policy.deception.cli",
    "nav_policy.ros.cli",
    "nav_policy.instruct.cli",
)


def add_all(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name in _MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # concern not built yet
            raise
        mod.add_parsers(sub)
