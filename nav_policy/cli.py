"""Learned local planners for ROS 2, from simulation to the robot.

Train a policy in PyBullet worlds, export it to ONNX, benchmark it against DWA and MPPI on the
same worlds, score recorded runs, parse instructions, plan deceptive routes, and run the ROS 2
nodes (or the whole stack on one instruction with `demo`).
"""

from __future__ import annotations

import argparse
import sys

from nav_policy.errors import NavPolicyError

EPILOG = """\
examples:
  nav-policy demo --headless                     the whole stack on one instruction
  nav-policy bench --compare rl,dwa --tier hard --episodes 20 --seed 0
  nav-policy COMMAND --help                      options, defaults and an example

Bad input exits 2 with a one-line reason on stderr; Ctrl-C exits 130 and keeps what finished."""

# one example per subcommand, shown under its --help (a command's own epilog or description
# may hold one already)
EXAMPLES = {
    "demo": "nav-policy demo --headless --planner rl --out out/demo",
    "train": "nav-policy train local --config config/train_local.yaml",
    "export": "nav-policy export runs/local/<run> --out models/local_rl.onnx",
    "bench": "nav-policy bench --compare rl,dwa,mppi --tier easy,hard --episodes 20 --seed 0",
    "metrics": "nav-policy metrics --bag out/demo/run.mcap",
    "export-sdf": "nav-policy export-sdf --tier hard --seed 0 --count 10 --out worlds/",
    "deceive": "nav-policy deceive --graph grid32.json --start 0 --goal 1023 --decoy 31 "
               "--json -",
    "up": "nav-policy up --sim",
    "parse": 'nav-policy parse "go past the couch then stop at the kitchen door" '
             "--landmarks config/landmarks_demo.yaml --json -",
    "import-barn": "nav-policy import-barn ~/the-barn-challenge --out sim/worlds/barn",
}
JSON_HELP = ("write the result as JSON to FILE, or '-' for one JSON object on stdout (logs go "
             "to stderr)")


def shows_default(default: object) -> bool:
    """Whether an option's default is worth printing (not None, a flag's False, or empty)."""
    if default is None or isinstance(default, bool) or default is argparse.SUPPRESS:
        return False
    return default not in ("", [])


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's default shown; descriptions and epilogs wrapped paragraph by paragraph,
    with indented lines (commands, examples) kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if shows_default(action.default) and action.option_strings and "default" not in text:
            text += " (default: %(default)s)"
        return text

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        out = []
        for para in text.split("\n\n"):
            lines = para.splitlines()
            if any(ln.startswith(" ") for ln in lines) or para.rstrip().endswith(":"):
                out.append("\n".join(indent + ln for ln in lines))
            else:
                out.append(textwrap.fill(" ".join(ln.strip() for ln in lines), width,
                                         initial_indent=indent, subsequent_indent=indent))
        return "\n\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    from nav_policy import __version__, cli_commands

    parser = argparse.ArgumentParser(prog="nav-policy", description=__doc__, epilog=EPILOG,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"nav-policy {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli_commands.add_all(sub)
    helps = {a.dest: a.help for a in sub._choices_actions}  # noqa: SLF001 - argparse has no API
    for name, p in sub.choices.items():
        _even_help(name, p, helps.get(name))
    return parser


def _even_help(name: str, p: argparse.ArgumentParser, purpose: str | None) -> None:
    """The same --help for every subcommand: a purpose, defaults, one example, one --json."""
    p.formatter_class = HelpFormatter
    if not p.description and purpose:
        p.description = purpose[0].upper() + purpose[1:] + "."
    example = EXAMPLES.get(name)
    if example and "example" not in f"{p.description or ''} {p.epilog or ''}".lower():
        p.epilog = ((p.epilog + "\n\n") if p.epilog else "") + f"example:\n  {example}"
    for action in p._actions:  # noqa: SLF001
        if "--json" in action.option_strings:
            action.metavar = "FILE|-"
            action.help = JSON_HELP


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
