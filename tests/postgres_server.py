"""A throwaway PostgreSQL server for the tests: `initdb` into a temporary directory, `pg_ctl
start` on a free loopback port (its unix socket in that directory too), stopped and removed at
the end. Debian's `postgresql` package provides the programs (`make test` installs it).

PostgreSQL refuses to run as root: as root the server runs as the `postgres` user the package
created, which then owns the directory.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg

from flowlang.store.postgres import PostgresStore
from tests.ports import free_port

USER = "flowlang"
DATABASE = "flowlang_test"
_schemas = itertools.count(1)
# The servers started here, by the URL they yielded: (the command prefix to run as, pg_ctl,
# the data directory, the server's options), for `stop_server` and `start_server`.
_servers: dict[str, tuple[list[str], Path, Path, str]] = {}


class NoPostgres(Exception):
    """No PostgreSQL server can be started here (the reason says why)."""


def binaries() -> Path:
    """The newest installed PostgreSQL's bin directory (not on PATH in Debian)."""
    found = [
        d
        for d in Path("/usr/lib/postgresql").glob("*/bin")
        if (d / "initdb").exists() and (d / "pg_ctl").exists()
    ]
    if not found:
        raise NoPostgres(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
            "run `scripts/ensure-system-packages postgresql` as root, or `make test`"
        )
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)


@contextmanager
def postgres_server(durable: bool = False) -> Iterator[str]:
    """Start a server with one empty database; yields its URL. Raises NoPostgres.

    The tests' server does not sync to disk (a crash of the test machine loses nothing of
    value); a `durable` one keeps PostgreSQL's defaults, for benchmarks."""
    bin_dir = binaries()
    as_user: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise NoPostgres("running as root and there is no `postgres` user to run as") from exc
        as_user = ["runuser", "-u", "postgres", "--"]
    # Not under pytest's tmp_path: its folders are private to root, out of the server's reach.
    home = Path(tempfile.mkdtemp(prefix="flowlang-pg-"))
    if owner is not None:
        os.chown(home, owner.pw_uid, owner.pw_gid)
    data = home / "data"
    log = home / "server.log"

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise NoPostgres(f"{' '.join(args[:2])} failed: {done.stderr.strip()}\n{tail}")

    try:
        run(
            str(bin_dir / "initdb"),
            "-D", str(data), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-locale",
            "--no-sync",
        )  # fmt: skip
        settings = "-c listen_addresses=127.0.0.1 -c max_connections=300"
        if not durable:
            settings += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        for attempt in range(3):
            port = free_port()
            try:
                run(
                    str(bin_dir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(data),
                    "-l", str(log), "-o", f"-p {port} -k {home} {settings}",
                )  # fmt: skip
                break
            except NoPostgres:
                if attempt == 2:
                    raise
        url = f"postgresql://{USER}@127.0.0.1:{port}"
        with psycopg.connect(f"{url}/postgres", autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        options = f"-p {port} -k {home} {settings}"
        _servers[f"{url}/{DATABASE}"] = (as_user, bin_dir / "pg_ctl", data, options)
        yield f"{url}/{DATABASE}"
    finally:
        _servers.pop(f"{url}/{DATABASE}", None)
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*as_user, str(bin_dir / "pg_ctl"), "stop", "-m", "immediate", "-D", str(data)],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(home, ignore_errors=True)


def stop_server(url: str) -> None:
    """Stop the server `postgres_server` started at `url` (fast: every connection ends)."""
    as_user, pg_ctl, data, _options = _servers[url]
    subprocess.run(
        [*as_user, str(pg_ctl), "stop", "-w", "-m", "fast", "-D", str(data)],
        capture_output=True,
        check=True,
    )


def start_server(url: str) -> None:
    """Start again a server `stop_server` stopped, with the options it had."""
    as_user, pg_ctl, data, options = _servers[url]
    subprocess.run(
        [*as_user, str(pg_ctl), "start", "-w", "-t", "60", "-D", str(data),
         "-l", str(data.parent / "server.log"), "-o", options],
        capture_output=True,
        check=True,
    )  # fmt: skip


def fresh_database(url: str) -> str:
    """The URL of a new, empty database on the server of `url`: connections to it are told
    apart from other tests' in `pg_stat_activity` (`datname`)."""
    name = f"d{os.getpid()}_{next(_schemas)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + "/" + name


def terminate(url: str, application_name: str) -> int:
    """End (`pg_terminate_backend`, waiting for each to be gone) the connections to the
    database of `url` named `application_name`; how many there were."""
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
            "FROM pg_stat_activity WHERE application_name = %s "
            "AND datname = current_database() AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchone()
    return int(row[0]) if row else 0


def fresh_schema(url: str) -> str:
    """A URL whose store lives in a new, empty schema of the server's database: each test
    gets a clean store without a new database."""
    name = f"t{os.getpid()}_{next(_schemas)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    return f"{url}?options={quote(f'-csearch_path={name}')}"


def empty(store: PostgresStore) -> None:
    """Delete everything in a store (its schema stays): a clean store for each example of a
    property test, faster than a new schema."""
    tables = [
        row[0]
        for row in store.db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename != 'schema_version'"
        )
    ]
    store.db.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY".encode())
