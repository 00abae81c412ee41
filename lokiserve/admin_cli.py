"""``lokiserve fields``: list, show, replace, zero and export the memory fields
of a running ``lokiserve serve`` through its admin API.

``add_fields_parser(sub)`` plugs the subcommand into ``lokiserve``'s parser;
``python -m lokiserve.admin_cli fields ...`` runs it alone. Exit status: 0 on
success, 1 when the server refuses or cannot be reached, 2 on a usage error
(a missing token included).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import httpx

PROG = "lokiserve fields"
DEFAULT_ADMIN_URL = "http://127.0.0.1:8001"
TOKEN_ENV = "LOKISERVE_ADMIN_TOKEN"
TABLE_COLUMNS = ("id", "name", "state", "version", "sha256", "source", "updated_at")
SHA_PREFIX = 12


class CliError(Exception):
    """A failure to report as ``lokiserve fields: error: <message>``."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- parser


def _admin_url(text: str) -> str:
    url = httpx.URL(text)
    if url.scheme not in ("http", "https") or not url.host:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL")
    return text.rstrip("/")


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number of seconds")
    return value


def _connection_options() -> argparse.ArgumentParser:
    """The flags every ``fields`` action takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--admin-url", type=_admin_url, default=DEFAULT_ADMIN_URL,
                        help="base URL of the memory admin API (default: %(default)s)")
    common.add_argument("--token-file", type=Path,
                        help=f"file holding the admin bearer token (default: ${TOKEN_ENV}; "
                             "`lokiserve serve` prints where a generated token is stored)")
    common.add_argument("--timeout", type=_timeout, default=60.0,
                        help="seconds to wait for the server per request (default: %(default)s)")
    common.add_argument("--json", action="store_true", help="print the server's JSON answer instead of a table")
    return common


def add_fields_parser(sub) -> argparse.ArgumentParser:
    common = _connection_options()
    p = sub.add_parser(
        "fields",
        help="list, show, replace, zero or export the memory fields of a running server",
        description="Talk to the memory admin API of a running `lokiserve serve`. A field ID is its name or "
        "its index. Run `lokiserve fields ACTION -h` for an action's flags.",
        epilog="exit status: 0 success, 1 the server refused or could not be reached, 2 usage error",
    )
    actions = p.add_subparsers(dest="fields_action", metavar="ACTION")

    a = actions.add_parser("list", parents=[common], help="every field: state, version, checksum, source",
                           description="List every field and the memory version.")
    a.set_defaults(func=cmd_list)

    a = actions.add_parser("show", parents=[common], help="one field in full", description="Show one field.")
    a.add_argument("field", metavar="ID", help="field name or index")
    a.set_defaults(func=cmd_show)

    a = actions.add_parser(
        "put", parents=[common], help="replace a field with a field file",
        description="Replace a field: upload FILE from this machine, or with --server-path name a field file "
        "under the server's memory folder. A file equal to the live contents changes nothing; an all-zero "
        "one loads as zeroed.",
    )
    a.add_argument("field", metavar="ID", help="field name or index")
    a.add_argument("file", metavar="FILE", nargs="?", type=Path, help="field file (.safetensors) to upload")
    a.add_argument("--server-path", metavar="PATH",
                   help="instead of FILE: a field file relative to the server's --memory-dir, read by the server")
    a.add_argument("--if-match", metavar="SHA256", help="apply only if the field's current sha256 is SHA256")
    a.add_argument("--source", help="label recorded as the field's source (default: FILE's name)")
    a.add_argument("--allow-rename", action="store_true",
                   help="accept a file made for another field (its name differs) onto a non-empty field; the field "
                   "then shows the file's name (without it the server answers 409)")
    a.set_defaults(func=cmd_put)

    a = actions.add_parser("zero", parents=[common], help="remove a field from retrieval",
                           description="Zero a field: its term in the memory sum becomes exactly 0.")
    a.add_argument("field", metavar="ID", help="field name or index")
    a.add_argument("--if-match", metavar="SHA256", help="zero only if the field's current sha256 is SHA256")
    a.set_defaults(func=cmd_zero)

    a = actions.add_parser("export", parents=[common], help="save a field's live contents as a field file",
                           description="Download a field's live contents as a field file to OUT (written to a "
                           "temporary file beside OUT, then renamed into place).")
    a.add_argument("field", metavar="ID", help="field name or index")
    a.add_argument("out", metavar="OUT", type=Path, help="where to write the field file")
    a.add_argument("--force", action="store_true", help="replace OUT if it exists")
    a.set_defaults(func=cmd_export)

    p.set_defaults(func=lambda args: _usage(p))
    return p


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


# --------------------------------------------------------------------------- client


def read_token(args) -> str:
    """--token-file wins over $LOKISERVE_ADMIN_TOKEN."""
    if args.token_file is not None:
        try:
            token = args.token_file.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read token file {args.token_file}: {getattr(exc, 'strerror', None) or exc}", 2) from None
        if not token:
            raise CliError(f"token file {args.token_file} is empty", 2)
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise CliError(f"no admin token: pass --token-file FILE or set ${TOKEN_ENV} "
                       "(`lokiserve serve` prints where a generated token is stored)", 2)
    return token


def client(args) -> httpx.Client:
    return httpx.Client(base_url=args.admin_url, timeout=args.timeout,
                        headers={"Authorization": f"Bearer {read_token(args)}"})


def request(args, method: str, path: str, **kwargs) -> httpx.Response:
    """One request; any failure becomes a ``CliError`` with the server's message."""
    with client(args) as http:
        try:
            response = http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(describe_transport_error(args.admin_url, exc)) from None
    check(response)
    return response


def describe_transport_error(url: str, exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {url}: {_reason(exc)} (is `lokiserve serve` running there?)"
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer from {url} in time ({type(exc).__name__}); raise --timeout for large fields"
    return f"request to {url} failed: {_reason(exc)}"


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return "connection refused" if "refused" in text.lower() else text


def check(response: httpx.Response) -> None:
    """Raise a ``CliError`` naming the status, code and message of an error answer."""
    if response.is_success:
        return
    response.read()
    try:
        error = response.json()["error"]
        detail = f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        detail = response.text.strip()[:300] or response.reason_phrase
    raise CliError(f"{response.status_code} {detail}")


def field_path(field: str, suffix: str = "") -> str:
    from urllib.parse import quote

    return f"/memory/fields/{quote(field, safe='')}{suffix}"


# --------------------------------------------------------------------------- output


def format_table(fields: list[dict]) -> str:
    rows = [[_cell(column, f.get(column)) for column in TABLE_COLUMNS] for f in fields]
    header = [c.upper() for c in TABLE_COLUMNS]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def _cell(column: str, value) -> str:
    if value is None:
        return "-"
    if column == "sha256":
        return str(value)[:SHA_PREFIX]
    return str(value)


def format_field(field: dict) -> str:
    width = max(len(c) for c in TABLE_COLUMNS)
    return "\n".join(f"{c.ljust(width)}  {'-' if field.get(c) is None else field[c]}" for c in TABLE_COLUMNS)


def print_answer(args, body: dict, human: str) -> None:
    print(json.dumps(body, indent=2) if args.json else human)


# --------------------------------------------------------------------------- actions


def run(handler):
    """Turn ``CliError`` into the message and exit status."""

    def wrapped(args) -> int:
        try:
            return handler(args)
        except CliError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return exc.status

    wrapped.__name__ = wrapped.__qualname__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


@run
def cmd_list(args) -> int:
    body = request(args, "GET", "/memory/fields").json()
    print_answer(args, body, f"memory version {body['version']}\n{format_table(body['fields'])}")
    return 0


@run
def cmd_show(args) -> int:
    body = request(args, "GET", field_path(args.field)).json()
    print_answer(args, body, format_field(body))
    return 0


@run
def cmd_put(args) -> int:
    if (args.file is None) == (args.server_path is None):
        raise CliError("give exactly one of FILE or --server-path PATH", 2)
    headers = {"If-Match": args.if_match} if args.if_match else {}
    if args.server_path is not None:
        kwargs = {"json": {"path": args.server_path}}
    else:
        try:
            data = args.file.read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {args.file}: {exc.strerror or exc}") from None
        source = args.source if args.source is not None else args.file.name
        headers["Content-Type"] = "application/octet-stream"
        headers["X-Lokiserve-Source"] = source.encode("ascii", "replace").decode()  # HTTP headers are ASCII
        kwargs = {"content": data}
    if args.allow_rename:
        kwargs["params"] = {"allow_rename": "true"}
    body = request(args, "PUT", field_path(args.field), headers=headers, **kwargs).json()
    print_answer(args, body, format_field(body))
    return 0


@run
def cmd_zero(args) -> int:
    headers = {"If-Match": args.if_match} if args.if_match else {}
    body = request(args, "POST", field_path(args.field, "/zero"), headers=headers).json()
    print_answer(args, body, format_field(body))
    return 0


@run
def cmd_export(args) -> int:
    out: Path = args.out
    if out.exists() and not args.force:
        raise CliError(f"{out} exists; pass --force to replace it")
    if not out.parent.is_dir():
        raise CliError(f"{out.parent} is not a directory")
    with client(args) as http:
        try:
            with http.stream("GET", field_path(args.field, "/file")) as response:
                check(response)
                size = write_atomically(out, response.iter_bytes(), replace=args.force)
        except httpx.HTTPError as exc:
            raise CliError(describe_transport_error(args.admin_url, exc)) from None
    sha = response.headers.get("etag", "").strip('"')
    body = {"field": args.field, "path": str(out), "bytes": size, "sha256": sha}
    print_answer(args, body, f"wrote {out} ({size} bytes, field sha256 {sha[:SHA_PREFIX]})")
    return 0


def write_atomically(out: Path, chunks, replace: bool) -> int:
    """Write ``chunks`` to a temp file beside ``out``, fsync, then move it into
    place: replacing ``out`` with ``replace``, else failing if it appeared."""
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    size = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
                size += len(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; an export is an ordinary file
        if replace:
            os.replace(tmp, out)
        else:
            try:
                os.link(tmp, out)  # fails if out exists: no clobbering even in a race
            except FileExistsError:
                raise CliError(f"{out} exists; pass --force to replace it") from None
            except OSError:  # no hard links on this file system: check, then rename
                if out.exists():
                    raise CliError(f"{out} exists; pass --force to replace it") from None
                os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return size


# --------------------------------------------------------------------------- standalone


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lokiserve", description="LoKiFormer memory admin client")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_fields_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m lokiserve.admin_cli fields ACTION ...``, as ``lokiserve fields ACTION ...``."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
