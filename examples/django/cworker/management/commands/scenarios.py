"""``python manage.py scenarios [name ...]``: send each scenario to the workers, show results."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cworker.scenarios import SCENARIOS


class Command(BaseCommand):
    help = "Send the example's scenarios to the running workers and show what happened."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "names", nargs="*", help=f"scenarios to run (default: all): {', '.join(SCENARIOS)}"
        )
        parser.add_argument("--skip", action="append", default=[], help="a scenario not to run")
        parser.add_argument(
            "--timeout", type=float, default=30.0, help="seconds to wait for each result"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        names = options["names"] or list(SCENARIOS)
        unknown = (set(names) | set(options["skip"])) - set(SCENARIOS)
        if unknown:
            raise CommandError(
                f"unknown scenario(s) {sorted(unknown)}: choose from {', '.join(SCENARIOS)}"
            )
        failed = []
        for name in names:
            if name in options["skip"]:
                continue
            self.stdout.write(self.style.MIGRATE_HEADING(f"== {name}"))
            try:
                SCENARIOS[name](lambda line: self.stdout.write(f"   {line}"), options["timeout"])
            except Exception as exc:
                failed.append(name)
                self.stdout.write(self.style.ERROR(f"   FAILED: {type(exc).__name__}: {exc}"))
        if failed:
            raise CommandError(f"failed: {', '.join(failed)}")
        self.stdout.write(self.style.SUCCESS("all scenarios passed"))
