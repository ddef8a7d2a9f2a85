"""The `nav-policy` command. Each concern adds its subcommands via add_parser(sub)."""

from __future__ import annotations

import argparse
import sys

from nav_policy.errors import NavPolicyError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nav-policy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    from nav_policy import cli_commands

    cli_commands.add_all(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except NavPolicyError as exc:
        print(f"nav-policy {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
