"""Forms for collection: starting a run, credentials, host keys, jump hosts, playbooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django import forms
from django.core.exceptions import ValidationError

from diagnostics.models import Credential, JumpHost, Playbook
from triage.line_endings import lf_line_endings

if TYPE_CHECKING:
    from triage.models import Server, ServerRole


class CollectForm(forms.Form):
    server: forms.ModelChoiceField[Server] = forms.ModelChoiceField(queryset=None)  # the ticket's customer's, below
    playbook = forms.ModelChoiceField(queryset=Playbook.objects.filter(enabled=True).order_by("name"))

    def __init__(self, *args, ticket, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["server"]).queryset = ticket.customer.servers.order_by("name")
        linked = list(ticket.servers.values_list("pk", flat=True))
        if linked and not self.is_bound:
            self.initial.setdefault("server", linked[0])


class SecretForm(forms.Form):
    """A private key or password (a jump host's credential). The secret is write-only: the form never
    renders a stored value back."""

    kind = forms.ChoiceField(choices=Credential.KINDS, widget=forms.RadioSelect, initial=Credential.KEY)
    secret = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "autocomplete": "off", "spellcheck": "false"}),
        max_length=20_000,
        strip=False,
        help_text="Paste an OpenSSH or PEM private key, or the password.",
    )
    passphrase = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        strip=False,
        max_length=1000,
        help_text="Only for an encrypted private key.",
    )

    def clean_secret(self):
        secret = self.cleaned_data["secret"]
        if self.data.get("kind") == Credential.KEY:
            secret = secret.strip() + "\n"
        return secret


class CredentialForm(SecretForm):
    """A server's or customer's credential: the secret, and who logs in with it."""

    username = forms.CharField(
        required=False,
        max_length=32,
        help_text="The login user, e.g. support (blank: the server's SSH user). Probes that need root "
        "use sudo when it is not root; the sudoers lines below allow exactly those.",
    )
    sudo_password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        strip=False,
        max_length=1000,
        help_text="Only if the login user's sudo asks for a password. Stored encrypted; sent to sudo on "
        "its input, never on a command line.",
    )


class KnownHostsForm(forms.Form):
    known_hosts = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        max_length=200_000,
        help_text="Lines from a known_hosts file (ssh-keyscan output works too).",
    )


class JumpHostForm(forms.Form):
    name = forms.CharField(max_length=40, help_text="Short, as errors name it: 'jump host bastion1: …'.")
    address = forms.CharField(max_length=253, help_text="As the hop before it (or this desk) reaches it.")
    ssh_port = forms.IntegerField(min_value=1, max_value=65535, initial=22, label="SSH port")
    username = forms.CharField(max_length=32, label="Login user")
    connect_timeout = forms.FloatField(required=False, min_value=0.5, label="Connect bound (s)")
    banner_timeout = forms.FloatField(required=False, min_value=0.5, label="Banner bound (s)")
    handshake_timeout = forms.FloatField(required=False, min_value=0.5, label="Key exchange bound (s)")
    auth_timeout = forms.FloatField(
        required=False,
        min_value=0.5,
        label="Authentication bound (s)",
        help_text="Blank bounds: the same as for servers.",
    )

    @staticmethod
    def initial_for(jump_host: JumpHost) -> dict:
        return {name: getattr(jump_host, name) for name in JumpHostForm.base_fields}


class JumpChainForm(forms.Form):
    """Up to three hops, in order; blank hops are skipped (all blank: no chain of its own)."""

    HOPS = 3
    scope = forms.ChoiceField(
        choices=[("server", "this server"), ("customer", "all of the customer's servers that set none")],
        initial="server",
    )

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        for n in range(1, self.HOPS + 1):
            self.fields[f"hop{n}"] = forms.ModelChoiceField(
                queryset=JumpHost.objects.filter(customer=customer), required=False, label=f"Hop {n}"
            )

    def clean(self):
        super().clean()
        data = self.cleaned_data
        data["chain"] = [hop for n in range(1, self.HOPS + 1) if (hop := data.get(f"hop{n}"))]
        return data


class SshTrustForm(forms.Form):
    ca_keys = forms.CharField(
        label="Customer's SSH CA keys",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        max_length=20_000,
        help_text="OpenSSH CA public keys (ca.pub lines), one per line, for all of this customer's servers: a host "
        "certificate they signed that names the server (its name or address) is trusted like a pinned key.",
    )
    allow_legacy = forms.BooleanField(
        label="Allow legacy SSH algorithms for this server",
        required=False,
        help_text="SHA-1 key exchange (diffie-hellman-group1/group14-sha1) and ssh-rsa host keys. Only for an old "
        "server that offers nothing else.",
    )


class PlaybookForm(forms.Form):
    """A playbook's name, description and switch; its steps are rows of their own (``diagnostics.step_forms``)."""

    name = forms.CharField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000)
    enabled = forms.BooleanField(required=False, initial=True)
    # When the editor opened the playbook: a save over a later one is a conflict, shown, not applied.
    seen_updated_at = forms.DateTimeField(required=False, widget=forms.HiddenInput)

    def __init__(self, data=None, *args, instance: Playbook | None = None, **kwargs):
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": instance.name,
                "description": instance.description,
                "enabled": instance.enabled,
                "seen_updated_at": instance.updated_at.isoformat(),
            }
        super().__init__(lf_line_endings(data), *args, **kwargs)

    def typed(self) -> dict:
        """What was posted, as initial values for re-rendering it unchecked (a row button was pressed)."""
        return {name: self[name].data for name in self.fields}

    def stale(self) -> bool:
        """Whether someone saved the playbook since this editor opened it."""
        seen = self.cleaned_data.get("seen_updated_at")
        return self.instance is not None and seen is not None and seen != self.instance.updated_at

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        clash = Playbook.objects.filter(name=name)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError("A playbook with this name exists.")
        return name


class SweepForm(forms.Form):
    """Run a playbook across a customer's servers, or those with one role."""

    playbook = forms.ModelChoiceField(queryset=Playbook.objects.filter(enabled=True).order_by("name"))
    role: forms.ModelChoiceField[ServerRole] = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="Every server", help_text="Only servers with this role."
    )
    open_tickets = forms.BooleanField(
        required=False,
        label="Open tickets for findings",
        help_text="One ticket per symptom found; an open one from an earlier sweep gets a note instead.",
    )

    def __init__(self, *args, customer, **kwargs):
        super().__init__(*args, **kwargs)
        from triage.models import ServerRole

        cast(forms.ModelChoiceField, self.fields["role"]).queryset = (
            ServerRole.objects.filter(servers__customer=customer).distinct().order_by("name")
        )


class SweepScheduleForm(SweepForm):
    """A daily sweep at a UTC time."""

    hour = forms.IntegerField(min_value=0, max_value=23, label="Hour (UTC)")
    minute = forms.IntegerField(min_value=0, max_value=59, initial=0)
    open_tickets = forms.BooleanField(required=False, initial=True, label="Open tickets for findings")
