"""``lokiserve fleet apply``'s command line: flags, tokens, the changes to
upload, the table of what each server now serves, and the exit status
(0 all converged: committed everywhere, or aborted everywhere with
``--abort``; 1 not: aborted after a failure, or some server not converged,
rerun with ``--id``; 2 usage error). The protocol is ``lokiserve.fleet``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import sys
from datetime import datetime, timezone
from pathlib import Path

from lokiserve.admin_cli import SHA_PREFIX, TOKEN_ENV, _admin_url, _timeout
from lokiserve.fleet import PROG, STOPPED, Fleet, Member, UsageError, apply

# --------------------------------------------------------------------------- flags


def _field_change(text: str) -> tuple[str, Path]:
    field_id, sep, file = text.partition("=")
    if not sep or not field_id or not file:
        raise argparse.ArgumentTypeError(f"{text!r} is not ID=FILE")
    return field_id, Path(file)


def _tx_id(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", text):
        raise argparse.ArgumentTypeError(f"{text!r}: an id is 1-64 letters, digits, '.', '_' or '-'")
    return text


def _ttl(text: str) -> float:
    value = _timeout(text)
    if not 1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text}: between 1 and 3600 seconds")
    return value


def add_fleet_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "fleet",
        help="change fields on every server of a fleet, all or none",
        description="Coordinate the memory admin APIs of several `lokiserve serve` processes.",
        epilog="exit status: 0 converged, 1 aborted or not converged (rerun with --id), 2 usage error",
    )
    actions = p.add_subparsers(dest="fleet_action", metavar="ACTION")
    a = actions.add_parser(
        "apply",
        help="stage field changes on every server, then commit on all or abort on all",
        description="Stage the changes on every --server, then commit everywhere, or abort everywhere if any "
        "server refuses or cannot be reached before the first commit. Prints the transaction id first: if the "
        "coordinator dies between commits, rerun with the same --id (and the same --field flags) to finish.",
        epilog="Guarantee: all servers commit or none, unless the coordinator dies (or a server stays unreachable) "
        "between the first and the last commit; then a rerun with the same --id rolls forward. Staged changes "
        "expire after --ttl. exit status: 0 converged, 1 aborted or not converged, 2 usage error",
    )
    a.add_argument("--server", dest="servers", metavar="URL", type=_admin_url, action="append", required=True,
                   help="admin API base URL of one server (repeat for each)")
    a.add_argument("--token-file", dest="token_files", metavar="FILE", type=Path, action="append", default=[],
                   help=f"file holding the admin token: once for all servers, or once per --server in the same "
                        f"order (default: ${TOKEN_ENV})")
    a.add_argument("--field", dest="fields", metavar="ID=FILE", type=_field_change, action="append", default=[],
                   help="field (name or index) := field file FILE, uploaded to every server (repeat)")
    a.add_argument("--zero", dest="zeros", metavar="ID", action="append", default=[],
                   help="zero field ID on every server (repeat)")
    a.add_argument("--allow-rename", action="store_true",
                   help="accept field files made for another field onto non-empty fields")
    a.add_argument("--id", dest="tx_id", metavar="TXID", type=_tx_id,
                   help="transaction id (default: generated and printed first); rerun with it to finish a run")
    a.add_argument("--abort", action="store_true",
                   help="with --id: abort the transaction everywhere, unless some server already committed it")
    a.add_argument("--ttl", metavar="SECONDS", type=_ttl, default=300.0,
                   help="seconds a staged change waits for its commit before it expires (default: %(default)s)")
    a.add_argument("--retry-seconds", metavar="SECONDS", type=_timeout, default=60.0,
                   help="how long to retry a server that cannot be reached during commit (default: %(default)s)")
    a.add_argument("--timeout", metavar="SECONDS", type=_timeout, default=120.0,
                   help="seconds to wait for a server per request (default: %(default)s)")
    a.add_argument("--json", action="store_true", help="print the outcome as JSON")
    a.add_argument("--stop-after-commits", type=int, default=None, help=argparse.SUPPRESS)  # tests: a crash
    a.set_defaults(func=cmd_apply)
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])
    return p


# --------------------------------------------------------------------------- inputs


def read_tokens(args) -> list[str]:
    files = args.token_files
    if len(files) not in (0, 1, len(args.servers)):
        raise UsageError(f"{len(files)} --token-file for {len(args.servers)} --server: give one, or one per server")
    if not files:
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            raise UsageError(f"no admin token: pass --token-file FILE or set ${TOKEN_ENV}")
        return [token] * len(args.servers)
    tokens = []
    for path in files:
        try:
            token = path.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read token file {path}: {getattr(exc, 'strerror', None) or exc}") from None
        if not token:
            raise UsageError(f"token file {path} is empty")
        tokens.append(token)
    return tokens * len(args.servers) if len(tokens) == 1 else tokens


def read_changes(args) -> list[dict]:
    changes, seen = [], set()
    for field_id, path in args.fields:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
        changes.append({"field": field_id, "file_b64": base64.b64encode(data).decode(), "source": path.name[:200]})
    changes += [{"field": field_id, "zero": True} for field_id in args.zeros]
    for c in changes:
        if c["field"] in seen:
            raise UsageError(f"field {c['field']!r} is changed twice")
        seen.add(c["field"])
        if args.allow_rename and "file_b64" in c:
            c["allow_rename"] = True
    return changes


# --------------------------------------------------------------------------- output


def changed_fields(changes: list[dict], members: list[Member]) -> list[str]:
    """The changed fields' ids as given (a rerun without --field: as the servers staged them)."""
    return [c["field"] for c in changes] or sorted({str(c["id"]) for m in members for c in m.staged}, key=int)


def converged(outcome: str, members: list[Member], fields: list[str]) -> bool:
    """Committed everywhere with the same contents of every changed field, or aborted everywhere."""
    if outcome == "aborted":
        return all(m.state in ("aborted", "unknown") for m in members)
    if outcome != "committed" or not all(m.state == "committed" and m.version is not None for m in members):
        return False
    seen = [[(m.fields.get(i) or {}).get("sha256") for i in fields] for m in members]
    return all(s == seen[0] and None not in s for s in seen)


def format_table(members: list[Member], fields: list[str]) -> str:
    header = ["SERVER", "TRANSACTION", "VERSION", *[f.upper() for f in fields]]
    rows = []
    for m in members:
        cells = [m.url, m.state, "-" if m.version is None else str(m.version)]
        for field_id in fields:
            f = m.fields.get(field_id)
            cells.append("-" if f is None else f"{f['name']} {f['state']} {f['sha256'][:SHA_PREFIX]}")
        rows.append(cells)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    lines += [f"{m.url}: {m.error}" for m in members if m.error]
    return "\n".join(lines)


def cmd_apply(args) -> int:
    try:
        tokens = read_tokens(args)
        changes = read_changes(args)
        if not changes and not args.tx_id:
            raise UsageError("nothing to change: give --field ID=FILE or --zero ID (or --id to finish a run)")
        if args.abort and not args.tx_id:
            raise UsageError("--abort needs --id")
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    tx_id = args.tx_id or f"fleet-{stamp}-{secrets.token_hex(4)}"
    print(f"{PROG}: transaction {tx_id}", file=sys.stderr, flush=True)
    fleet = Fleet([Member(url, token) for url, token in zip(args.servers, tokens)], tx_id, args.timeout,
                  args.retry_seconds)
    log = lambda msg: print(f"{PROG}: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    outcome = apply(fleet, changes, args.ttl, args.abort, log, args.stop_after_commits)
    if outcome == "stopped":
        return STOPPED
    fields = changed_fields(changes, fleet.members)
    for m in fleet.members:
        fleet.report(m, fields)
    ok = converged(outcome, fleet.members, fields)
    if args.json:
        print(json.dumps({"id": tx_id, "outcome": outcome, "converged": ok, "servers": [
            {"url": m.url, "state": m.state, "version": m.version, "error": m.error or None, "fields": m.fields}
            for m in fleet.members]}, indent=2))
    else:
        print(f"transaction {tx_id}: {outcome}{'' if ok else ' (not converged: rerun with --id ' + tx_id + ')'}")
        print(format_table(fleet.members, fields))
    if outcome == "aborted" and args.abort:
        return 0 if ok else 1
    return 0 if ok and outcome == "committed" else 1


__all__ = ["add_fleet_parser", "cmd_apply"]
