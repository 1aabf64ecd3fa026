"""``tessera``: run the service and administer it from a shell (SPEC §1).

Each command imports the domain code it needs when it runs: ``tessera --help`` and a command's
``--help`` then start without loading SQLAlchemy, pydantic or the service (about 0.2 s, not 1.7).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup, TyperOption

from tessera import errors

if TYPE_CHECKING:
    from rich.progress import Progress

    from tessera.config import Settings
    from tessera.db import Database


def _untyped_flags(params: list[Any]) -> list[Any]:
    """Typer shows every option's type in the help, so flags read ``--json <bool>`` as if they
    took a value: flags (``--help`` included) are shown bare, as they are typed."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    return params


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped_flags(super().get_params(ctx))


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped_flags(super().get_params(ctx))


def _typer(help: str) -> typer.Typer:
    return typer.Typer(help=help, cls=_Group)


app = _typer("Tessera: promo codes, gift certificates and the messages that deliver them.")
departments_app = _typer("Departments (shops, sites, apps) and their credentials.")
api_keys_app = _typer("API keys for the messaging face.")
promocodes_app = _typer("Promo-code groups.")
certificates_app = _typer("Gift certificates.")
admins_app = _typer("People who sign in to the admin UI at /admin.")
app.add_typer(departments_app, name="departments")
app.add_typer(api_keys_app, name="api-keys")
app.add_typer(promocodes_app, name="promocodes")
app.add_typer(certificates_app, name="certificates")
app.add_typer(admins_app, name="admins")

# Messages are lines a script may read: never wrapped at the terminal's width (a longer
# `migrate` answer came out split in two on an 80-column stderr).
console = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
MIGRATE_HINT = "run `tessera migrate`"


def _fail(message: str) -> NoReturn:
    """Ends the command with one readable line on stderr and exit code 1."""
    line = " ".join(message.split())  # one line, whatever a driver's message holds
    # Escaped and never wrapped: codes in a message are never read as markup or emoji.
    console.print(f"[red]error:[/red] {escape(line)}", soft_wrap=True, highlight=False, emoji=False)
    raise typer.Exit(1)


def _error_line(error: errors.TesseraError) -> str:
    """A service error as a person reads it: its message, then what it names (a line, the
    duplicates), never its JSON body."""
    details = []
    for key, value in error.extra.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        details.append(f"{key}: {shown}")
    return f"{error.text} ({'; '.join(details)})" if details else error.text


def _settings() -> Settings:
    from pydantic import ValidationError

    from tessera.config import Settings

    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"TESSERA_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
        )
        _fail(f"invalid configuration: {problems}")


def _database(settings: Settings) -> Database:
    try:
        return settings.database()
    except Exception as error:  # only parses TESSERA_DATABASE_URL: it is not one it can use
        _fail(f"TESSERA_DATABASE_URL cannot be used: {_driver_message(error)}")


def _is_database_error(error: BaseException) -> bool:
    import sqlite3

    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(error, SQLAlchemyError | sqlite3.Error | ConnectionError) or type(
        error
    ).__module__.startswith("asyncpg")


def _driver_message(error: BaseException) -> str:
    from sqlalchemy.exc import DBAPIError

    if isinstance(error, DBAPIError) and error.orig is not None:
        # The driver's own words ('no such table: partners'), without SQLAlchemy's SQL and links.
        lines = str(error.orig).strip().splitlines()
        return lines[0] if lines else type(error.orig).__name__
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


async def _schema_problem(database_url: str) -> str | None:
    """Why this code cannot run on the database's schema, or None when it is at the latest
    migration (missing, behind, or a newer Tessera's)."""
    from tessera import migrate  # alembic is slow to import: only the commands that need it load it

    head = await migrate.head_revision()
    try:
        current = await migrate.current_revision(database_url)
    except Exception as error:  # unreachable, refused, or not a database URL
        return f"cannot read the database: {_driver_message(error)}"
    if current == head:
        return None
    if current is None:
        return f"the database has no schema: {MIGRATE_HINT} first"
    if migrate.pending_revisions(current) is None:
        return (
            f"the database schema is at {current}, which this Tessera does not know (it needs {head}):"
            " run the newer Tessera that migrated it"
        )
    return f"the database schema is at {current}, this Tessera needs {head}: {MIGRATE_HINT} first"


async def _require_current_schema(database_url: str) -> None:
    problem = await _schema_problem(database_url)
    if problem is not None:
        _fail(problem)


def _run(work: Callable[[Database], Awaitable[T]]) -> T:
    """Runs one command against the configured database; a service error or a database that
    cannot be used ends it with one line on stderr and exit code 1."""
    settings = _settings()

    async def main() -> T:
        database = _database(settings)
        try:
            return await work(database)
        except errors.TesseraError as error:
            _fail(_error_line(error))
        except Exception as error:
            if not _is_database_error(error):
                raise
            # A missing or outdated schema is the likely cause: then that is what to say.
            _fail(await _schema_problem(settings.database_url) or _driver_message(error))
        finally:
            await database.dispose()

    return asyncio.run(main())


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
    else:
        for key, value in result.items():
            console.print(f"[bold]{key}[/bold]: {value}")


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None


def _print_rows(rows: Sequence[dict[str, Any]], columns: dict[str, str], as_json: bool) -> None:
    """A listing on stdout: a JSON array, or a plain table (``columns``: key -> heading) to read
    or grep."""
    if as_json:
        typer.echo(json.dumps(list(rows), ensure_ascii=False))
        return
    cells = [list(columns.values())]
    cells += [["-" if row[key] is None else str(row[key]) for key in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for line in cells:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


DEMO_ADMIN_EMAIL = "admin@demo.tessera.local"


async def create_demo_partner(database: Database) -> dict[str, Any] | None:
    """On a database with no partner, a demo partner with one department, an API key and an
    admin; else None."""
    from tessera.admin import service as admin_service
    from tessera.secrets import new_token
    from tessera.tenancy import repository as tenancy_repository
    from tessera.tenancy import service as tenancy

    async with database.transaction() as session:
        if await tenancy_repository.count_partners(session):
            return None
        department = await tenancy.create_department(session, "Demo shop")
        api_key = await tenancy.create_api_key(session, department.partner_id)
        admin_password = new_token()[:16]
        await admin_service.create_admin(session, department.partner_id, DEMO_ADMIN_EMAIL, admin_password)
    return {
        "partner_id": department.partner_id,
        "store_department_id": department.store_department_id,
        "store_department_key": department.store_department_key,
        "pin_code": department.pin_code,
        "api_key": api_key,
        "admin_email": DEMO_ADMIN_EMAIL,
        "admin_password": admin_password,
    }


def _secret_key_warning(settings: Settings, demo: bool) -> str | None:
    """The default (or a blank) TESSERA_SECRET_KEY ends a start that is not a demo; a demo runs
    with it, and gets this warning to print once it starts."""
    from tessera.config import Settings

    default = Settings.model_fields["secret_key"].default
    if settings.secret_key.strip() and settings.secret_key != default:
        return None
    if not demo:
        _fail(
            f"TESSERA_SECRET_KEY is unset or the default `{default}`, which only a demo may use:"
            " set TESSERA_SECRET_KEY to a long random secret (e.g. `openssl rand -hex 32`)"
        )
    return (
        f"TESSERA_SECRET_KEY is unset or the default `{default}`: fine for a demo, set your own"
        " before real use"
    )


@app.command(cls=_Command)
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes sharing the port.")] = 1,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Create the demo partner when the database has no partner (SQLite does without"
            " this flag), and allow the default TESSERA_SECRET_KEY.",
        ),
    ] = False,
) -> None:
    """Run the API and the admin UI.

    On SQLite the schema is migrated first and a database with no partner gets the demo partner;
    elsewhere the schema must be at the latest migration (`tessera migrate`)."""
    import uvicorn

    settings = _settings()
    database = _database(settings)
    # SQLite is the one-machine start that `make serve` makes: it migrates itself, gets a demo
    # partner when empty and may run with the default secret key. PostgreSQL does only with --demo.
    demo_start = demo or database.is_sqlite
    weak_key = _secret_key_warning(settings, demo_start)
    if database.is_sqlite:
        from tessera import migrate  # alembic is slow to import: only the commands that migrate load it

        try:
            migrate.upgrade(settings.database_url)
        except Exception as error:
            _fail(f"the schema could not be migrated: {_driver_message(error)}")

    async def prepare() -> dict[str, Any] | None:
        # One event loop for all: asyncpg connections cannot be closed from another loop.
        try:
            if not database.is_sqlite:
                await _require_current_schema(settings.database_url)
            return await create_demo_partner(database) if demo_start else None
        finally:
            await database.dispose()

    created = asyncio.run(prepare())
    if weak_key is not None:  # only now: a start refused for its schema says that alone
        console.print(f"[yellow]warning:[/yellow] {escape(weak_key)}", soft_wrap=True, highlight=False)
    if created is not None:
        console.print(
            "[bold green]Created the demo partner.[/bold green] Keep these; they are not shown again:"
        )
        _print(created, as_json=False)
    console.print(f"Tessera on http://{host}:{port} using {database.dialect}; admin UI at /admin/")
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker process counts into files here; /metrics, whichever process answers it,
        # sums them (tessera.metrics). Set before the workers start, so they inherit it.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tessera-metrics-")
    uvicorn.run(
        "tessera.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
    )


@app.command(cls=_Command)
def worker() -> None:
    """Run the workflow and delivery worker alone.

    API processes can then set TESSERA_SERVE_RUNS_WORKER=false. Any number of workers may share
    one database, whose schema must be at the latest migration (`tessera migrate`)."""
    import signal

    from tessera.messaging.worker import Worker

    settings = _settings()
    asyncio.run(_require_current_schema(settings.database_url))

    async def main() -> None:
        database = _database(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        console.print(f"Tessera worker on {database.dialect}")
        try:
            await Worker(database, settings).run_forever(stop)
        finally:
            await database.dispose()

    asyncio.run(main())


@app.command("migrate", cls=_Command)
def migrate_command() -> None:
    """Apply the schema migrations to the configured database, saying which it applied."""
    from tessera import migrate

    url = _settings().database_url
    try:
        before = asyncio.run(migrate.current_revision(url))
        migrate.upgrade(url)
        after = asyncio.run(migrate.current_revision(url))
    except Exception as error:
        _fail(f"the schema could not be migrated: {_driver_message(error)}")
    applied = (migrate.pending_revisions(before) or []) if after != before else []
    if applied:
        console.print(f"applied {', '.join(applied)}; schema at {after}", highlight=False)
    else:
        console.print(f"schema already at {after}", highlight=False)


@app.command(cls=_Command)
def check(as_json: JsonFlag = False) -> None:
    """Verify the stored data's invariants, changing nothing.

    Group counts, codes and certificates used once, deliveries with a cause, runs within their
    steps. Prints each problem on a line of its own and exits 1, or exits 0 when there is none."""
    from dataclasses import asdict

    from tessera.reconcile import find_problems

    problems = _run(find_problems)
    if as_json:
        typer.echo(json.dumps([asdict(problem) for problem in problems], ensure_ascii=False))
    else:
        # Plain lines on stdout, to grep or keep: a detail's quoted numbers are never read as markup.
        for problem in problems:
            typer.echo(str(problem))
    if not problems:
        console.print("[green]OK[/green]: no problems found")
        return
    console.print(f"[red]{len(problems)} problem{'s' if len(problems) > 1 else ''} found[/red]")
    raise typer.Exit(1)


@departments_app.command("create", cls=_Command)
def departments_create(
    name: Annotated[str, typer.Option(help="The department's name.")],
    partner_id: Annotated[
        int | None, typer.Option(help="Add to this partner; without it, a new partner.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a department (and its partner), printing its login credentials once."""
    from tessera.tenancy import service as tenancy

    async def work(database: Database) -> dict[str, Any]:
        async with database.transaction() as session:
            created = await tenancy.create_department(session, name, partner_id)
        return {
            "partner_id": created.partner_id,
            "store_department_id": created.store_department_id,
            "store_department_key": created.store_department_key,
            "pin_code": created.pin_code,
        }

    _print(_run(work), as_json)


@departments_app.command("list", cls=_Command)
def departments_list(
    partner_id: Annotated[int | None, typer.Option(help="Only this partner's departments.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List departments: id (the store_department_id), name and partner."""
    from tessera.tenancy import service as tenancy

    async def work(database: Database) -> list[dict[str, Any]]:
        async with database.reading() as session:
            listed = await tenancy.departments_listed(session, partner_id)
        return [
            {"id": d.id, "name": d.name, "partner_id": d.partner_id, "partner": d.partner_name}
            for d in listed
        ]

    columns = {"id": "id", "name": "name", "partner_id": "partner_id", "partner": "partner"}
    _print_rows(_run(work), columns, as_json)


@departments_app.command("rotate-key", cls=_Command)
def departments_rotate_key(
    department_id: Annotated[int, typer.Option(help="The store_department_id.")],
    as_json: JsonFlag = False,
) -> None:
    """Give a department a new store_department_key, printing it once.

    The old key stops logging in at once; tokens it logged in before keep working until they
    expire (TESSERA_TOKEN_TTL_SECONDS)."""
    from tessera.tenancy import service as tenancy

    async def work(database: Database) -> dict[str, Any]:
        async with database.transaction() as session:
            key = await tenancy.rotate_department_key(session, department_id)
        return {"store_department_id": department_id, "store_department_key": key}

    _print(_run(work), as_json)


@api_keys_app.command("create", cls=_Command)
def api_keys_create(
    partner_id: Annotated[int, typer.Option(help="The partner the key acts for.")],
    as_json: JsonFlag = False,
) -> None:
    """Create an API key for the messaging face, printing it once."""
    from tessera.tenancy import service as tenancy

    async def work(database: Database) -> dict[str, Any]:
        async with database.transaction() as session:
            return {"api_key": await tenancy.create_api_key(session, partner_id)}

    _print(_run(work), as_json)


@api_keys_app.command("list", cls=_Command)
def api_keys_list(
    partner_id: Annotated[int, typer.Option(help="The partner whose keys to list.")],
    as_json: JsonFlag = False,
) -> None:
    """List a partner's API keys: id, prefix (the key itself is not stored), created, revoked."""
    from tessera.tenancy import service as tenancy

    async def work(database: Database) -> list[dict[str, Any]]:
        async with database.reading() as session:
            keys = await tenancy.api_keys_of(session, partner_id)
        return [
            {
                "id": key.id,
                "prefix": key.prefix,
                "created_at": _time(key.created_at),
                "revoked_at": _time(key.revoked_at),
            }
            for key in keys
        ]

    columns = {"id": "id", "prefix": "prefix", "created_at": "created", "revoked_at": "revoked"}
    _print_rows(_run(work), columns, as_json)


@api_keys_app.command("revoke", cls=_Command)
def api_keys_revoke(
    partner_id: Annotated[int, typer.Option(help="The partner the key acts for.")],
    id_: Annotated[int, typer.Option("--id", help="The key's id (`tessera api-keys list`).")],
    as_json: JsonFlag = False,
) -> None:
    """Revoke an API key: the messaging face refuses it within seconds."""
    from tessera.tenancy import repository as tenancy_repository
    from tessera.tenancy import service as tenancy

    async def work(database: Database) -> dict[str, Any]:
        async with database.transaction() as session:
            if await tenancy_repository.get_partner(session, partner_id) is None:
                raise errors.PartnerNotFound(f"Partner {partner_id} not found")
            try:
                await tenancy.revoke_api_key(session, partner_id, id_)
            except errors.InvalidParameter:
                raise errors.NotFound(
                    f"Partner {partner_id} has no live API key {id_} (unknown or already revoked)"
                ) from None
        return {"partner_id": partner_id, "id": id_, "revoked": True}

    _print(_run(work), as_json)


PasswordOption = Annotated[
    str | None, typer.Option(help="At least 8 characters; asked for (twice) when omitted.")
]


def _password(given: str | None) -> str:
    """The --password given, or one typed twice, hidden; the questions go to stderr, so that
    stdout holds only the result (``--json``)."""
    if given is not None:
        return given
    try:
        typed: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    except typer.Abort:  # the input ended before a password was typed twice alike
        _fail("no password given: give --password or type it twice when asked")
    return typed


@admins_app.command("create", cls=_Command)
def admins_create(
    partner_id: Annotated[int, typer.Option(help="The partner whose admin UI they sign in to.")],
    email: Annotated[str, typer.Option(help="Their sign-in email.")],
    password: PasswordOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an admin who signs in at /admin with this email and password."""
    from tessera.admin import service as admin_service

    chosen = _password(password)

    async def work(database: Database) -> dict[str, Any]:
        async with database.transaction() as session:
            admin_id = await admin_service.create_admin(session, partner_id, email, chosen)
        return {"admin_id": admin_id, "partner_id": partner_id, "email": email.strip().lower()}

    _print(_run(work), as_json)


@admins_app.command("list", cls=_Command)
def admins_list(
    partner_id: Annotated[int | None, typer.Option(help="Only this partner's admins.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List the admins: id, email, partner and when they were created."""
    from tessera.admin import service as admin_service

    async def work(database: Database) -> list[dict[str, Any]]:
        async with database.reading() as session:
            admins = await admin_service.list_admins(session, partner_id)
        return [
            {
                "id": admin.admin_id,
                "email": admin.email,
                "partner_id": admin.partner_id,
                "partner": admin.partner_name,
                "created_at": _time(admin.created_at),
            }
            for admin in admins
        ]

    columns = {
        "id": "id",
        "email": "email",
        "partner_id": "partner_id",
        "partner": "partner",
        "created_at": "created",
    }
    _print_rows(_run(work), columns, as_json)


@admins_app.command("reset-password", cls=_Command)
def admins_reset_password(
    email: Annotated[str, typer.Option(help="The admin's sign-in email.")],
    password: PasswordOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Give an admin a new password; their open sessions are signed out."""
    from tessera.admin import service as admin_service

    chosen = _password(password)

    async def work(database: Database) -> dict[str, Any]:
        async with database.transaction() as session:
            admin = await admin_service.reset_password(session, email, chosen)
        return {"admin_id": admin.admin_id, "partner_id": admin.partner_id, "email": admin.email}

    _print(_run(work), as_json)


def _progress() -> Progress:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


@promocodes_app.command("import", cls=_Command)
def promocodes_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=".txt, .csv, .xls or .xlsx")],
    partner_id: Annotated[int, typer.Option(help="The partner owning the group.")],
    group: Annotated[str, typer.Option(help="Group name; created when missing, else appended to.")],
    type_: Annotated[
        str | None, typer.Option("--type", help="simple or activation (new groups: simple)")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Import promo codes into a group: every line or nothing."""
    from tessera.imports.parsers import detect_format
    from tessera.promocodes import rules as promocode_rules
    from tessera.promocodes import service as promocodes

    async def work(database: Database) -> dict[str, Any]:
        # Validated in here so that _run reports a bad --type or file type like any other error.
        group_type = promocode_rules.parse_group_type(type_) if type_ else None
        fmt = detect_format(file.name)
        with _progress() as progress, file.open("rb") as stream:
            task = progress.add_task(f"importing {file.name}", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            async with database.transaction() as session:
                imported_group, count = await promocodes.import_codes(
                    session,
                    partner_id,
                    name=group,
                    stream=stream,
                    fmt=fmt,
                    group_type=group_type,
                    on_progress=advance,
                )
        return {"group_id": imported_group.id, "group": imported_group.name, "imported_count": count}

    _print(_run(work), as_json)


@certificates_app.command("import", cls=_Command)
def certificates_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=".txt, .csv, .xls or .xlsx")],
    department_id: Annotated[int, typer.Option(help="The department the certificates belong to.")],
    group: Annotated[str, typer.Option(help="Name of the new certificate group.")],
    value: Annotated[str, typer.Option(help="Each certificate's value.")],
    as_json: JsonFlag = False,
) -> None:
    """Import gift certificates as a new group: every line or nothing."""
    from tessera.certificates import rules as certificate_rules
    from tessera.certificates import service as certificates
    from tessera.imports.parsers import detect_format
    from tessera.tenancy import repository as tenancy_repository

    async def work(database: Database) -> dict[str, Any]:
        # Validated in here so that _run reports a bad --value or file type like any other error.
        amount = certificate_rules.parse_value(value)
        fmt = detect_format(file.name)
        async with database.transaction() as session:
            department = await tenancy_repository.get_department(session, department_id)
            if department is None:
                raise errors.DepartmentNotFound()
            with _progress() as progress, file.open("rb") as stream:
                task = progress.add_task(f"importing {file.name}", total=None)

                def advance(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                imported_group, count = await certificates.import_certificates(
                    session,
                    department.partner_id,
                    department_id=department_id,
                    name=group,
                    value=amount,
                    stream=stream,
                    fmt=fmt,
                    on_progress=advance,
                )
        return {"group_id": imported_group.id, "group": imported_group.name, "imported_count": count}

    _print(_run(work), as_json)
