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
        rc = int(args.func(args) or 0)
    except NavPolicyError as exc:
        print(f"nav-policy {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        rc = 130
        _ignore_interrupts()
        print(f"nav-policy {args.command}: interrupted", file=sys.stderr)
    if rc == 130:
        _ignore_interrupts()  # a late Ctrl-C must not turn the exit into a traceback or -2
    return rc


def _ignore_interrupts() -> None:
    """SIGINT ignored from here to the exit (Python leaves SIG_IGN in place at shutdown)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
