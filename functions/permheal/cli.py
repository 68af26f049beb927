"""`permheal` command line: scan, remediate, explain, check, demo, local-aws, history, revert.

Exit codes (design.md): 0 = clean / repaired / no_change / dry_run, 1 = findings / refused / failed,
2 = usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from permheal.errors import (
    AmbiguousApiError,
    AwsCallError,
    AwsClientError,
    ConfigError,
    ConflictError,
    NotFoundError,
    PermhealError,
)
from permheal.models import Finding, Outcome, RemediationResult

if TYPE_CHECKING:
    from permheal.org_scan import OrgScanReport

EXIT_OK, EXIT_ATTENTION, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run one command; every failure ends as one `permheal: ...` line on stderr, never a traceback."""
    stream = out or sys.stdout
    parser = _parser()
    args = parser.parse_args(argv)  # usage errors: the usage, one error line, SystemExit(2)
    if getattr(args, "command", None) == "scan" and not args.org and (args.role_name or args.regions):
        parser.error("--role-name and --regions apply only with --org")
    try:
        return _run(args, stream)
    except KeyboardInterrupt:
        print("permheal: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # the last resort: one line instead of a traceback
        return _report(exc)


def _run(args: argparse.Namespace, out: TextIO) -> int:
    from permheal.adapters.aws import use_region

    if getattr(args, "local_only", False) and args.region:
        raise ConfigError(
            f"--region does not apply to `permheal {args.command}`: it serves its own local AWS"
        )
    with use_region(args.region):
        code: int = args.run(args, out)
    return code


def _report(exc: Exception) -> int:
    """Print what went wrong as one line on stderr; exit 2 (usage, configuration or AWS client)."""
    from permheal.adapters.aws import translate
    from permheal.config import cli_debug

    error = translate(exc) or exc
    if isinstance(error, ConfigError | NotFoundError | AmbiguousApiError | AwsClientError):
        line = str(error)
    elif isinstance(error, PermhealError):
        line = f"error: {error}"
    else:
        if cli_debug():
            traceback.print_exc(file=sys.stderr)
        line = f"internal error: {type(exc).__name__}: {exc} (please report; PERMHEAL_DEBUG=1 shows where)"
    print(f"permheal: {' '.join(line.split()) or type(error).__name__}", file=sys.stderr)
    return EXIT_USAGE


def _text(kind: str, limit: int) -> Callable[[str], str]:
    """An argparse type: a non-blank, printable value of at most `limit` characters."""

    def check(value: str) -> str:
        if not value.strip():
            raise argparse.ArgumentTypeError(f"{kind} must not be empty")
        if len(value) > limit:
            raise argparse.ArgumentTypeError(f"{kind} is {len(value)} characters long (at most {limit})")
        if not value.isprintable():
            raise argparse.ArgumentTypeError(f"{kind} {value!r} contains control characters")
        return value

    check.__name__ = kind  # argparse names the type in its messages
    return check


def _stage(value: str) -> str:
    """API Gateway stage names: letters, digits, `-` and `_` (128 at most), or `$default`."""
    if value != "$default" and not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a stage name (letters, digits, - and _, at most 128)"
        )
    return value


def _region(value: str) -> str:
    from permheal.adapters.aws import checked_region

    try:
        return checked_region(value, "--region")
    except ConfigError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an AWS region name (like us-east-1)") from None


def _regions(value: str) -> list[str]:
    """`us-east-1,eu-west-1`: region names, each once, in the order given."""
    names = [name.strip() for name in value.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of AWS regions")
    return list(dict.fromkeys(_region(name) for name in names))


def _role_name(value: str) -> str:
    """IAM role names: 1-64 of letters, digits and + = , . @ _ -."""
    if not re.fullmatch(r"[\w+=,.@-]{1,64}", value, flags=re.ASCII):
        raise argparse.ArgumentTypeError(f"{value!r} is not an IAM role name (1-64 of A-Z a-z 0-9 +=,.@_-)")
    return value


def _port(value: str) -> int:
    if not value.strip().isdigit() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a TCP port (1-65535)")
    return int(value)


API = _text("API name or id", 1024)  # the workflow's own limit for "apiName" (ExecutionInput)
FUNCTION = _text("function", 256)
CHANGE_ID = _text("change id", 128)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="permheal", description=__doc__.splitlines()[0] if __doc__ else None
    )
    region_help = "AWS region (else AWS_REGION, AWS_DEFAULT_REGION, the profile's)"
    parser.add_argument("--region", type=_region, help=region_help)
    # Accepted after the command too; SUPPRESS keeps a region given before it.
    aws = argparse.ArgumentParser(add_help=False)
    aws.add_argument("--region", type=_region, default=argparse.SUPPRESS, help=region_help)
    commands = parser.add_subparsers(dest="command", required=True)

    scan = commands.add_parser(
        "scan",
        parents=[aws],
        help="read-only audit of REST, HTTP and WebSocket APIs and their Lambda permissions",
    )
    targets = scan.add_mutually_exclusive_group()
    targets.add_argument(
        "--api", action="append", default=[], type=API, metavar="NAME_OR_ID", help="repeatable"
    )
    targets.add_argument(
        "--org",
        action="store_true",
        help="every ACTIVE account of the AWS Organization, through a role assumed in each "
        "(run from the management or a delegated administrator account)",
    )
    scan.add_argument(
        "--role-name",
        type=_role_name,
        metavar="NAME",
        help="with --org: the role to assume in each account (default PermhealScanRole, org/scan-role.yaml)",
    )
    scan.add_argument(
        "--regions",
        type=_regions,
        metavar="R,...",
        help="with --org: the regions to scan in each account (default: the region)",
    )
    scan.add_argument("--stage", type=_stage)
    scan.add_argument("--format", choices=("table", "json"), default="table")
    scan.set_defaults(run=_scan)

    remediate = commands.add_parser("remediate", parents=[aws], help="repair one API's Lambda permissions")
    remediate.add_argument("--api", required=True, type=API, metavar="NAME_OR_ID")
    remediate.add_argument("--stage", type=_stage)
    remediate.add_argument("--dry-run", action="store_true", help="report the plan, change nothing")
    remediate.add_argument("--local", action="store_true", help="run the steps in this process")
    remediate.add_argument("--state-machine-arn", type=_text("state machine ARN", 2048))
    remediate.add_argument("--no-wait", action="store_true", help="print the execution ARN and return")
    remediate.add_argument("--format", choices=("table", "json"), default="table")
    remediate.set_defaults(run=_remediate)

    history = commands.add_parser(
        "history", parents=[aws], help="the audit ledger: applied changes, refusals, reverts"
    )
    history.add_argument("--api", type=API, metavar="API_ID")
    history.add_argument("--function", type=FUNCTION, metavar="FUNCTION_ARN[:QUALIFIER]")
    history.add_argument("--format", choices=("table", "json"), default="table")
    history.set_defaults(run=_history)

    revert = commands.add_parser(
        "revert", parents=[aws], help="undo exactly what one recorded change altered"
    )
    revert.add_argument("change_id", type=CHANGE_ID, metavar="CHANGE_ID")
    revert.add_argument("--format", choices=("table", "json"), default="table")
    revert.set_defaults(run=_revert)

    clear = commands.add_parser(
        "clear-flap", parents=[aws], help="let permheal repair a function the flap breaker stopped"
    )
    clear.add_argument("function", type=FUNCTION, metavar="FUNCTION_ARN[:QUALIFIER]")
    clear.set_defaults(run=_clear_flap)

    demo = commands.add_parser("demo", help="the whole loop on an embedded local AWS (no account needed)")
    demo.add_argument("--json", action="store_true", help="print the timeline as JSON")
    demo.set_defaults(run=_demo, local_only=True)

    local = commands.add_parser("local-aws", help="serve the faithful local AWS on 127.0.0.1")
    local.add_argument("--port", type=_port, default=5000)
    local.set_defaults(run=_local_aws, local_only=True)

    check = commands.add_parser(
        "check",
        help="predict API Gateway -> Lambda permission failures from templates, before deploy (offline)",
    )
    check.add_argument(
        "paths", nargs="+", metavar="PATH", help="SAM/CloudFormation template, cdk.out, OpenAPI"
    )
    check.add_argument("--format", choices=("table", "json", "sarif"), default="table")
    check.set_defaults(run=_check)
    from permheal.explain_command import add_parser as add_explain  # argparse only; logic loads when run

    add_explain(commands, [aws], API, _stage)
    return parser


def _scan(args: argparse.Namespace, out: TextIO) -> int:
    if args.org:
        return _scan_org(args, out)
    from permheal.adapters.ports import Adapters
    from permheal.config import CliSettings
    from permheal.pacing import Pacer
    from permheal.planner import PlanOptions
    from permheal.workflow.scan import scan

    settings = CliSettings.from_env().workflow
    adapters = Adapters.default(settings.ledger_table, Pacer(settings.quota_share))
    findings = scan(adapters, args.api, args.stage, PlanOptions(settings.scope))
    if args.format == "json":
        json.dump({"findings": [f.to_dict() for f in findings]}, out, indent=2)
        out.write("\n")
    else:
        out.write(render_findings(findings) if findings else "No findings.\n")
    return EXIT_ATTENTION if findings else EXIT_OK


def _scan_org(args: argparse.Namespace, out: TextIO) -> int:
    """Exit 0 clean, 1 findings, 2 when any account or region could not be scanned (after the report:
    an incomplete scan is never mistaken for a clean one, nor for findings someone may accept)."""
    from contextlib import nullcontext

    from permheal.adapters.aws import region, use_region
    from permheal.config import CliSettings
    from permheal.org_scan import DEFAULT_ROLE_NAME, scan_organization
    from permheal.planner import PlanOptions
    from permheal.workflow.scan import scan

    settings = CliSettings.from_env().workflow
    regions, home = args.regions or [region()], None  # no region at all: one line, before any call
    if args.regions:
        try:
            region()
        except ConfigError:
            home = regions[0]  # the organization's own calls go to the first region scanned
    # Only without a region of its own: use_region(None) would drop the --region flag.
    with use_region(home) if home else nullcontext():
        from permheal.adapters.organization import MemberAccounts, active_accounts

        accounts = active_accounts()
        members = MemberAccounts(args.role_name or DEFAULT_ROLE_NAME, settings.quota_share)
        options = PlanOptions(settings.scope)
        report = scan_organization(
            accounts, members, regions, lambda ports: scan(ports, [], args.stage, options)
        )
    if args.format == "json":
        json.dump(report.to_dict(), out, indent=2)
        out.write("\n")
    else:
        out.write(render_org_report(report))
    if report.failures:
        print(
            f"permheal: {len(report.failures)} of {len(report.scans)} account/region scans failed "
            "(the error rows say why); the report is incomplete",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return EXIT_ATTENTION if report.finding_count else EXIT_OK


def _remediate(args: argparse.Namespace, out: TextIO) -> int:
    from permheal.adapters.aws import translate
    from permheal.adapters.ports import Adapters
    from permheal.config import CliSettings
    from permheal.workflow.in_process import remediate
    from permheal.workflow.state import ExecutionInput

    cli = CliSettings.from_env()
    settings = cli.workflow
    if args.local:
        try:
            result = remediate(
                Adapters.default(settings.ledger_table),
                ExecutionInput(args.api, args.stage, dry_run=args.dry_run),
                settings,
            )
        except (AwsCallError, ConflictError) as exc:
            if isinstance(translate(exc), AwsClientError | ConfigError):  # the caller's environment
                raise  # exit 2, one line
            # AWS kept failing or other writers kept winning: a failed remediation, not a usage error.
            result = RemediationResult(Outcome.FAILED, None, args.stage, args.api, error=str(exc))
    else:
        from permheal.adapters.workflow import Workflow, find_state_machine

        arn = args.state_machine_arn or cli.state_machine_arn or find_state_machine(cli.stack_name)
        workflow = Workflow(arn)
        execution = workflow.start(
            ExecutionInput(args.api, args.stage, dry_run=args.dry_run).to_event(),
            manual_execution_name(args.api),
        )
        if args.no_wait:
            out.write(execution + "\n")
            return EXIT_OK
        result = workflow.wait(execution)
    if args.format == "json":
        json.dump(result.to_dict(), out, indent=2)
        out.write("\n")
    else:
        out.write(render_result(result))
    return EXIT_OK if result.outcome.succeeded else EXIT_ATTENTION


def _ledger() -> Any:
    from permheal.adapters.ledger import Ledger
    from permheal.adapters.workflow import find_stack_output
    from permheal.config import CliSettings

    cli = CliSettings.from_env()
    return Ledger(cli.workflow.ledger_table or find_stack_output(cli.stack_name, "LedgerTableName"))


def _function_key(text: str | None) -> str | None:
    """`pets:live`, `pets` or a partial ARN as the full ARN the ledger keys on (this account and region)."""
    if not text:
        return text
    from permheal.adapters.account import caller_identity
    from permheal.adapters.aws import region
    from permheal.arns import parse_function

    parse_function(text, partition="aws", region="-", account="-")  # reject garbage before any AWS call
    if text.startswith("arn:"):
        return text
    identity = caller_identity()
    return parse_function(text, partition=identity.partition, region=region(), account=identity.account).arn


def _history(args: argparse.Namespace, out: TextIO) -> int:
    function = _function_key(args.function)  # a malformed name fails before the ledger is looked up
    entries = _ledger().history(api_id=args.api, function=function)
    if args.format == "json":
        json.dump({"entries": [e.to_dict() for e in entries]}, out, indent=2)
        out.write("\n")
        return EXIT_OK
    rows = [
        (
            e.change_id,
            e.kind,
            f"{e.api_name or e.api_id}/{e.stage or '*'}",
            e.function_key.rsplit(":function:", 1)[-1],
            " ".join([f"+{a['sid']}" for a in e.added] + [f"-{r['sid']}" for r in e.removed])
            or e.detail[:60],
            e.trigger,
        )
        for e in entries
    ]
    out.write(render_table(("CHANGE_ID", "KIND", "API/STAGE", "FUNCTION", "WHAT", "TRIGGER"), rows))
    return EXIT_OK


def _revert(args: argparse.Namespace, out: TextIO) -> int:
    from permheal.adapters.lambda_policy import LambdaPolicies
    from permheal.workflow.revert import revert

    result = revert(LambdaPolicies(), _ledger(), args.change_id)
    if args.format == "json":
        json.dump(result.to_dict(), out, indent=2)
        out.write("\n")
    elif result.reverted:
        out.write(
            f"reverted {result.change_id} (recorded as {result.revert_id}): removed "
            f"{', '.join(result.removed) or 'nothing'}; restored {', '.join(result.restored) or 'nothing'}\n"
        )
    else:
        out.write(f"refused to revert {result.change_id}; nothing changed:\n")
        out.writelines(f"  - {c}\n" for c in result.conflicts)
    return EXIT_OK if result.reverted else EXIT_ATTENTION


def _clear_flap(args: argparse.Namespace, out: TextIO) -> int:
    from permheal.adapters.ledger import EntryKind, LedgerEntry, function_key
    from permheal.arns import parse_function

    function = parse_function(str(_function_key(args.function)), partition="aws", region="-", account="-")
    entry = _ledger().record(
        LedgerEntry(
            kind=EntryKind.CLEARED,
            api_id="-",
            function_key=function_key(function),
            detail="flap breaker cleared by an operator",
        )
    )
    out.write(f"cleared the flap breaker for {function.arn} ({entry.change_id})\n")
    return EXIT_OK


def _check(args: argparse.Namespace, out: TextIO) -> int:
    # Imported only when used: the check needs PyYAML (permheal[check]), no other command does.
    try:
        from permheal.check.command import run
    except ImportError as exc:
        raise ConfigError(f"permheal check needs {exc.name}: pip install 'permheal[check]'") from exc
    return run(args, out)


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    # The local AWS is a package of its own (permheal_local, the `local` extra), imported only here:
    # without moto its import raises a ConfigError naming the extra (exit 2, one line).
    from permheal_local.demo import run_demo

    code: int = run_demo(out, as_json=args.json)
    return code


def _local_aws(args: argparse.Namespace, out: TextIO) -> int:
    from permheal_local.server import serve

    serve(args.port, out)
    return EXIT_OK


def manual_execution_name(api: str) -> str:
    """A readable, unique name (Step Functions shows it in the console and in the notification link)."""
    import re
    import uuid

    return f"manual-{re.sub(r'[^0-9A-Za-z_-]', '_', api)[:40]}-{uuid.uuid4().hex[:12]}"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


FINDING_HEADERS = ("KIND", "API/STAGE", "WHERE", "FUNCTION", "DETAIL")


def render_findings(findings: Sequence[Finding]) -> str:
    return render_table(FINDING_HEADERS, [_finding_cells(f) for f in findings])


def _finding_cells(f: Finding) -> tuple[str, ...]:
    return (
        f.kind.value,
        f"{f.api_name or f.api_id or '-'}/{f.stage or '*'}" if (f.api_id or f.api_name) else "-",
        f.route_key
        if f.route_key
        else f"{f.method} {f.resource_path}"
        if f.method
        else (f"authorizer {f.authorizer_id}" if f.authorizer_id else (f.sid or "-")),
        _function_label(f.function_arn, f.qualifier),
        f.detail,
    )


def render_org_report(report: OrgScanReport) -> str:
    """One table for the organization: each finding and each failed account/region, then a summary."""
    rows: list[tuple[str, ...]] = []
    for s in report.scans:
        where = (s.account_id, s.account_name or "-", s.region)
        if s.error is not None:
            rows.append((*where, "error", "-", "-", "-", s.error))
        rows.extend((*where, *_finding_cells(f)) for f in s.findings)
    summary = (
        f"{report.accounts} account(s) x {len(report.regions)} region(s): "
        f"{len(report.scans) - len(report.failures)} scanned, {len(report.failures)} failed, "
        f"{report.finding_count} finding(s).\n"
    )
    if not rows:
        return "No findings. " + summary
    return render_table(("ACCOUNT", "NAME", "REGION", *FINDING_HEADERS), rows) + "\n" + summary


def render_result(result: RemediationResult) -> str:
    head = f"{result.outcome.value}: {result.api_name or result.api_id}/{result.stage or '*'}"
    lines = [head + (f" — {result.error}" if result.error else "")]
    for change in result.changes:
        label = _function_label(change.function_arn, change.qualifier)
        lines.append(f"  {label}: policy {change.policy_bytes_before} -> {change.policy_bytes_after} bytes")
        lines.extend(f"    + {a.sid}  {a.source_arn}" for a in change.added)
        lines.extend(f"    - {r.sid}  {r.source_arn or '(any source)'}  ({r.reason})" for r in change.removed)
    text = "\n".join(lines) + "\n"
    if result.findings:
        text += "\n" + render_findings(result.findings)
    return text


def _function_label(arn: str | None, qualifier: str | None) -> str:
    """`name:qualifier`, as every alert writes it (one owner: permheal.chat.label); `-` for none."""
    from permheal.chat import label

    return label(arn, qualifier) if arn else "-"


if __name__ == "__main__":
    raise SystemExit(main())
