"""Print a rule compiled for a target: ``manage.py compile_rule --target nftables 'ip.src eq 192.0.2.1'``."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from mitigations.rules import CompileError, RuleError, compile_iptables, compile_nftables, parse
from mitigations.rules.cloudflare import compile_cloudflare


class Command(BaseCommand):
    help = "Compile an expression of the rules language for nftables, iptables or Cloudflare and print it."
    # A file in, text out: no database, no URL, so not the system checks either (loading the
    # URLconf for them is most of what the engineer would wait for before the work starts).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("expression")
        parser.add_argument("--target", choices=["nftables", "iptables", "cloudflare"], required=True)
        parser.add_argument("--action", default="block")
        parser.add_argument("--name", default="sw-0", help="rule comment / set prefix")
        parser.add_argument(
            "--kind", default="waf", choices=["waf", "ratelimit", "magic_firewall"], help="Cloudflare product"
        )
        parser.add_argument("--zone-id", default="ZONE_ID")
        parser.add_argument("--account-id", default="ACCOUNT_ID")
        parser.add_argument("--rate", help='e.g. "100/60" (requests per seconds) for a rate limit')

    def handle(
        self,
        *args,
        expression: str,
        target: str,
        action: str,
        name: str,
        kind: str,
        zone_id: str,
        account_id: str,
        rate: str | None,
        **options,
    ) -> None:
        try:
            rule = parse(expression)
            rate_opts = None
            if rate:
                requests, _, period = rate.partition("/")
                rate_opts = {"requests": int(requests), "period": int(period or 1), "unit": "second"}
            if target == "nftables":
                verdict = {"block": "drop", "allow": "accept"}.get(action, action)
                self.stdout.write(compile_nftables(rule, verdict, name=name, rate=rate_opts))
            elif target == "iptables":
                verdict = {"block": "drop", "allow": "accept"}.get(action, action)
                script = compile_iptables(rule, verdict, name=name, rate=rate_opts)
                if script.ipset:
                    self.stdout.write("# ipset restore\n" + script.ipset)
                self.stdout.write("# iptables-restore --noflush\n" + script.rules)
                self.stdout.write("# ip6tables-restore --noflush\n" + script.rules6)
            else:
                opts = {"account_id": account_id} if kind == "magic_firewall" else {"zone_id": zone_id}
                if kind == "ratelimit":
                    requests, _, period = (rate or "100/60").partition("/")
                    opts.update(requests_per_period=int(requests), period=int(period or 60), mitigation_timeout=600)
                request = compile_cloudflare(rule, action, kind=kind, **opts)
                self.stdout.write(f"{request.method} {request.path}\n" + json.dumps(request.body, indent=2))
        except (RuleError, CompileError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
