"""The `backfill` command: one typer application, one module per command group.

Server side (talk to Postgres and RabbitMQ, configured by BACKFILL_*): migrate, up, api,
worker, keys, teams, demo. Client side (talk to the REST API at BACKFILL_URL with
BACKFILL_TOKEN): targets, backfills, watch. Whatever goes wrong ends as one line on stderr and
an exit code from `orchestrator.cli.errors.Exit`, never a traceback."""

from __future__ import annotations

import sys

import typer

from orchestrator.cli import admin, server
from orchestrator.cli.backfills import backfills
from orchestrator.cli.bench import CONTEXT, bench
from orchestrator.cli.config import unknown_variable_lines
from orchestrator.cli.demo import demo
from orchestrator.cli.errors import CliError, Exit
from orchestrator.cli.sources import sources
from orchestrator.cli.targets import targets
from orchestrator.cli.watch import watch

PROG = "backfill"
SERVER_COMMANDS = frozenset({"migrate", "up", "api", "worker", "keys", "teams", "sources"})

app = typer.Typer(
    name=PROG,
    help="Backfill orchestrator: run the service, manage keys, and start, steer and watch "
    "backfills over its REST API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
server.register(app)
app.add_typer(admin.keys, name="keys")
app.add_typer(admin.teams, name="teams")
app.add_typer(sources, name="sources")
app.add_typer(targets, name="targets")
app.add_typer(backfills, name="backfills")
app.command("watch")(watch)
app.command("demo")(demo)
app.command("bench", context_settings=CONTEXT)(bench)
# Further groups register here, one module each.


def fail(message: str, code: int) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def given_value(args: list[str], param: object) -> str | None:
    """The text given for an option that failed to convert, so the error line can name it
    (typer's own message says only what was expected)."""
    opts: list[str] = list(getattr(param, "opts", None) or [])
    for i, arg in enumerate(args):
        for opt in opts:
            if arg == opt and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(f"{opt}="):
                return arg[len(opt) + 1 :]
    return None


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not set(args) & SERVER_COMMANDS:
        # Server commands report these in their structured log instead.
        for line in unknown_variable_lines():
            print(f"{PROG}: warning: {line}", file=sys.stderr)
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name=PROG, standalone_mode=False)
    except CliError as exc:
        fail(exc.message, exc.code)
    except typer.TyperException as exc:
        # Typer's own usage errors (it carries click inside): one line, with the command
        # they concern. A group given no subcommand answers with its help instead.
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":
            print(exc.format_message(), file=sys.stderr)
            sys.exit(Exit.USAGE)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        given = given_value(args, getattr(exc, "param", None))
        got = f" (got {given!r})" if given is not None else ""
        fail(f"{where}{exc.format_message()}{got}; see --help", exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        fail("interrupted", Exit.INTERRUPTED)
    sys.exit(result if isinstance(result, int) else 0)
