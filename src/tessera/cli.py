"""``tessera``: run the service and administer it from a shell (SPEC §1).

Each command imports the domain code it needs when it runs: ``tessera --help`` and a command's
``--help`` then start without loading SQLAlchemy, pydantic or the service (about 0.2 s, not 1.7).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from tessera import errors

if TYPE_CHECKING:
    from rich.progress import Progress

    from tessera.db import Database

app = typer.Typer(help="Tessera: promo codes, gift certificates and the messages that deliver them.")
departments_app = typer.Typer(help="Departments (shops, sites, apps) and their credentials.")
api_keys_app = typer.Typer(help="API keys for the messaging face.")
promocodes_app = typer.Typer(help="Promo-code groups.")
certificates_app = typer.Typer(help="Gift certificates.")
admins_app = typer.Typer(help="People who sign in to the admin UI at /admin.")
app.add_typer(departments_app, name="departments")
app.add_typer(api_keys_app, name="api-keys")
app.add_typer(promocodes_app, name="promocodes")
app.add_typer(certificates_app, name="certificates")
app.add_typer(admins_app, name="admins")

console = Console(stderr=True)
T = TypeVar("T")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _run(work: Callable[[Database], Awaitable[T]]) -> T:
    """Runs one command against the configured database, turning service errors into exit code 1."""
    from tessera.config import Settings

    settings = Settings()

    async def main() -> T:
        database = settings.database()
        try:
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(main())
    except errors.TesseraError as error:
        # Escaped and never wrapped: the body is one line of JSON whatever the numbers in it.
        body = escape(json.dumps(error.body(), ensure_ascii=False))
        console.print(f"[red]error[/red] {body}", soft_wrap=True)
        raise typer.Exit(1) from None


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
    else:
        for key, value in result.items():
            console.print(f"[bold]{key}[/bold]: {value}")


DEMO_ADMIN_EMAIL = "admin@demo.tessera.local"


async def create_demo_partner(database: Database) -> dict[str, Any] | None:
    """On an empty database, a demo partner with one department and an API key; else None."""
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


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes sharing the port.")] = 1,
) -> None:
    """Run the API and the admin UI. On SQLite the schema is migrated first."""
    import uvicorn

    from tessera.config import Settings

    settings = Settings()
    database = settings.database()
    if database.is_sqlite:
        from tessera import migrate  # alembic is slow to import: only the commands that migrate load it

        migrate.upgrade(settings.database_url)

    async def prepare() -> dict[str, Any] | None:
        # One event loop for both: asyncpg connections cannot be closed from another loop.
        try:
            return await create_demo_partner(database)
        finally:
            await database.dispose()

    demo = asyncio.run(prepare())
    if demo is not None:
        console.print(
            "[bold green]Created the demo partner.[/bold green] Keep these; they are not shown again:"
        )
        _print(demo, as_json=False)
    console.print(f"Tessera on http://{host}:{port} using {database.dialect}; admin UI at /admin/")
    uvicorn.run(
        "tessera.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
    )


@app.command()
def worker() -> None:
    """Run the workflow and delivery worker alone (API processes can then set
    TESSERA_SERVE_RUNS_WORKER=false). Any number of workers may share one database."""
    import signal

    from tessera.config import Settings
    from tessera.messaging.worker import Worker

    settings = Settings()

    async def main() -> None:
        database = settings.database()
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


@app.command("migrate")
def migrate_command() -> None:
    """Apply the schema migrations to the configured database."""
    from tessera import migrate
    from tessera.config import Settings

    migrate.upgrade(Settings().database_url)
    console.print("schema is up to date")


@app.command()
def check(as_json: JsonFlag = False) -> None:
    """Verify the stored data's invariants (group counts, codes and certificates used once,
    deliveries with a cause, runs within their steps), changing nothing. Prints each problem on a
    line of its own and exits 1, or exits 0 when there is none."""
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


@departments_app.command("create")
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


@api_keys_app.command("create")
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


@admins_app.command("create")
def admins_create(
    partner_id: Annotated[int, typer.Option(help="The partner whose admin UI they sign in to.")],
    email: Annotated[str, typer.Option(help="Their sign-in email.")],
    password: Annotated[
        str,
        typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 characters."),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Create an admin who signs in at /admin with this email and password."""
    from tessera.admin import service as admin_service

    async def work(database: Database) -> dict[str, Any]:
        async with database.transaction() as session:
            admin_id = await admin_service.create_admin(session, partner_id, email, password)
        return {"admin_id": admin_id, "partner_id": partner_id, "email": email.strip().lower()}

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


@promocodes_app.command("import")
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


@certificates_app.command("import")
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
