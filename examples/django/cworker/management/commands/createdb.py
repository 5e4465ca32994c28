"""``python manage.py createdb``: create the PostgreSQL database the settings name, if missing.

``migrate`` creates the tables, not the database. SQLite creates its file itself;
PostgreSQL needs ``CREATE DATABASE`` first, which this command runs through the
server's ``postgres`` database with the same host, port, user and password.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection


class Command(BaseCommand):
    help = "Create the database named in DATABASES['default'] when it is missing (PostgreSQL)."

    def handle(self, *args: Any, **options: Any) -> None:
        settings = connection.settings_dict
        name = settings["NAME"]
        if connection.vendor != "postgresql":
            self.stdout.write(f"{connection.vendor}: {name} is created by migrate, nothing to do")
            return
        try:
            import psycopg
            from psycopg import sql
        except ImportError:
            raise CommandError(
                "psycopg is missing: ./scripts/setup django,postgresql "
                "(or pip install 'celeriac[postgresql]')"
            ) from None
        try:
            admin = psycopg.connect(
                host=settings["HOST"],
                port=settings["PORT"] or 5432,
                user=settings["USER"],
                password=settings["PASSWORD"] or None,
                dbname="postgres",
                autocommit=True,
                connect_timeout=5,
            )
        except psycopg.OperationalError as exc:
            raise CommandError(
                f"cannot reach PostgreSQL at {settings['HOST']}:{settings['PORT']} as "
                f"{settings['USER']}: {exc}; check POSTGRES_HOST, POSTGRES_USER, POSTGRES_PASSWORD"
            ) from None
        with admin:
            found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if found:
                self.stdout.write(f"database {name} exists")
                return
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.stdout.write(f"database {name} created")
