"""Run a collection synchronously, without a worker, and print what came back."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from diagnostics import services
from diagnostics.models import Playbook
from triage.models import Server, Ticket


class Command(BaseCommand):
    help = "collect <ticket> <server> --playbook NAME: run a playbook now and print each probe's result."

    def add_arguments(self, parser):
        parser.add_argument("ticket", type=int, help="ticket number")
        parser.add_argument("server", help="server id or name (of the ticket's customer)")
        parser.add_argument("--playbook", required=True, help="playbook name")
        parser.add_argument("--max-lines", type=int, default=40, help="lines of output to print per probe")

    def handle(self, *args, ticket, server, playbook, max_lines, **options):
        try:
            ticket_obj = Ticket.objects.get(pk=ticket)
        except Ticket.DoesNotExist:
            raise CommandError(f"no ticket #{ticket}") from None
        servers = Server.objects.filter(customer=ticket_obj.customer)
        server_obj = (servers.filter(pk=int(server)).first() if server.isdigit() else None) or servers.filter(
            name=server
        ).first()
        if server_obj is None:
            raise CommandError(f"no server {server!r} for {ticket_obj.customer.name}")
        book = Playbook.objects.filter(name=playbook).first()
        if book is None:
            names = ", ".join(Playbook.objects.values_list("name", flat=True))
            raise CommandError(f"no playbook {playbook!r}; known: {names}")
        try:
            run = services.run_request(ticket=ticket_obj, server=server_obj, playbook=book, by=None, enqueue=False)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(
            f"run {run.pk}: {book.name} on {server_obj.ssh_user}@{server_obj.address}:{server_obj.ssh_port}"
        )
        finished = services.run_execute(run_id=run.pk, worker="manage.py collect", on_evidence=self._print)
        if finished is None:  # run_execute's answer when the run is gone or a worker claimed it first
            raise CommandError(f"run {run.pk} was deleted or taken by a worker before it started")
        run = finished
        self.stdout.write(f"\nrun {run.pk} {run.state}: {run.reason}")
        if run.state == "failed":
            raise CommandError(run.reason)

    def _print(self, evidence) -> None:
        status = "timed out" if evidence.timed_out else f"exit {evidence.exit_status}"
        flags = " (truncated)" if evidence.truncated else ""
        self.stdout.write(
            f"\n== {evidence.probe} [{status}, {evidence.duration:.1f} s, {evidence.output_bytes} bytes{flags}]"
        )
        self.stdout.write(f"$ {evidence.command}")
        if evidence.binary:
            self.stdout.write(f"<{evidence.output_bytes} bytes of binary output stored>")
        else:
            lines = evidence.text.splitlines()
            for line in lines[: self.max_lines]:
                self.stdout.write(line)
            if len(lines) > self.max_lines:
                self.stdout.write(f"... {len(lines) - self.max_lines} more lines stored")
        if evidence.error:
            self.stdout.write(f"! {evidence.error}")

    def execute(self, *args, **options):
        self.max_lines = options.get("max_lines", 40)
        return super().execute(*args, **options)
