"""``lokiserve serve``: one process, one engine, two HTTP servers.

vLLM's own OpenAI server (``/v1/completions`` …) and the memory admin API run
in the same event loop over the same ``AsyncLLM``, so a field change reaches
exactly the engine that answers completions. Flags lokiserve does not know
are vLLM's and are passed through unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from pathlib import Path

from lokiserve.control import WORKER_EXTENSION
from lokiserve.paths import default_model_dir


KEEP_ALIVE_S = 75  # idle HTTP keep-alive of both servers (nginx's default; VLLM_HTTP_TIMEOUT_KEEP_ALIVE overrides)


def add_serve_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    # MODEL_DIR is found among vLLM's flags in any order (``split_model``), not by
    # argparse: a positional would swallow the value of an unknown flag
    # (``--data-parallel-size 2`` would serve a model called "2").
    parser.usage = "lokiserve serve [MODEL_DIR] [options] [vLLM flags ...]"
    parser.add_argument("--host", default="127.0.0.1", help="OpenAI API host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="OpenAI API port (default 8000)")
    parser.add_argument("--admin-host", default="127.0.0.1", help="memory admin API host (default 127.0.0.1; non-loopback needs --allow-remote-admin)")
    parser.add_argument("--admin-port", type=int, default=8001, help="memory admin API port (default 8001)")
    parser.add_argument("--admin-token-file", type=Path, help="file holding the admin bearer token (else $LOKISERVE_ADMIN_TOKEN, else one is generated)")
    parser.add_argument("--allow-remote-admin", action="store_true", help="allow the admin API on a non-loopback address")
    parser.add_argument("--memory-dir", type=Path, help="folder that JSON {'path': ...} PUTs may read from (default: the model directory)")
    parser.add_argument("--state-dir", type=Path, help="manifest and applied field copies (default: .lokiserve/<model name> in the working directory)")
    parser.add_argument("--max-field-bytes", type=int, default=256 << 20, help="largest accepted field file in bytes (default 256 MiB)")
    parser.epilog = ("MODEL_DIR: a LoKiFormer directory (default: the shipped demo model), anywhere on the line "
                     "or as --model DIR. The served model name defaults to its folder name "
                     "(--served-model-name overrides it).")
    return parser


def _vllm_parser():
    try:
        from vllm.entrypoints.launchers.cli_args import make_arg_parser
    except ImportError:  # vLLM before the launchers package
        from vllm.entrypoints.openai.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    return make_arg_parser(FlexibleArgumentParser(prog="lokiserve serve (vLLM flags)"))


def split_model(argv: list[str], takes_value=None) -> tuple[str | None, list[str]]:
    """(MODEL_DIR or None, the other arguments) from vLLM-style arguments in
    any order: ``--model DIR`` / ``--model=DIR``, or the one bare word that is
    not a flag's value. ``takes_value(flag) -> bool`` says whether a flag
    consumes the next word (default: vLLM's own parser decides)."""
    if takes_value is None:
        actions = _vllm_parser()._option_string_actions
        takes_value = lambda flag: flag not in actions or actions[flag].nargs != 0  # noqa: E731
    model, rest, i = None, [], 0
    while i < len(argv):
        word = argv[i]
        if word == "--model" and i + 1 < len(argv):
            model, i = argv[i + 1], i + 2
        elif word.startswith("--model="):
            model, i = word.split("=", 1)[1], i + 1
        elif word.startswith("-") and len(word) > 1:
            rest.append(word)
            i += 1
            if "=" not in word and takes_value(word) and i < len(argv) and not argv[i].startswith("--"):
                rest.append(argv[i])
                i += 1
        elif model is None:
            model, i = word, i + 1
        else:
            rest.append(word)  # a second bare word: vLLM's parser names it
            i += 1
    return model, rest


def served_model_name(model: str | Path, passthrough: list[str]) -> str:
    """``--served-model-name`` if given, else the model folder's name (``demo``),
    so clients need not know the path the server was started with."""
    for i, word in enumerate(passthrough):
        if word.startswith("--served-model-name="):
            return word.split("=", 1)[1]
        if word == "--served-model-name" and i + 1 < len(passthrough):
            return passthrough[i + 1]
    return Path(model).resolve().name


def build_vllm_args(args: argparse.Namespace, passthrough: list[str]):
    """vLLM's own parser, fed our defaults first so explicit flags win."""
    try:
        from vllm.entrypoints.launchers.cli_args import validate_parsed_serve_args
    except ImportError:  # vLLM before the launchers package
        from vllm.entrypoints.openai.cli_args import validate_parsed_serve_args

    parser = _vllm_parser()
    argv = ["--model", str(args.model), "--host", args.host, "--port", str(args.port),
            "--worker-extension-cls", WORKER_EXTENSION,
            "--served-model-name", served_model_name(args.model, passthrough),
            "--middleware", "lokiserve.server.version_header.MemoryVersionHeader", *passthrough]
    vllm_args = parser.parse_args(argv)
    validate_parsed_serve_args(vllm_args)
    return vllm_args


def build_settings(args: argparse.Namespace):
    from lokiserve.server.settings import AdminSettings

    model = Path(args.model).resolve()
    state = args.state_dir or Path.cwd() / ".lokiserve" / model.name
    return AdminSettings(
        admin_host=args.admin_host,
        admin_port=args.admin_port,
        admin_token=os.environ.get("LOKISERVE_ADMIN_TOKEN") or None,
        admin_token_file=args.admin_token_file,
        memory_dir=args.memory_dir or model,
        state_dir=state.resolve(),
        max_field_bytes=args.max_field_bytes,
        allow_remote_admin=args.allow_remote_admin,
    )


def bind_admin_socket(host: str, port: int) -> socket.socket:
    """The admin API's socket, bound before the engine starts (as vLLM binds
    its own port): a port that looked free when the server was launched cannot
    be taken by another process during the minute the engine takes to load,
    and a port already in use is reported before any of that work."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def port_error(what: str, flag: str, host: str, port: int, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"cannot listen on {what} {host}:{port}: {reason.lower()} (choose another {flag})"


async def serve(args: argparse.Namespace, passthrough: list[str], settings, token: str, token_path,
                admin_sock: socket.socket) -> int:
    import uvicorn
    try:
        from vllm.entrypoints.launchers.api_server.entry import build_and_serve, build_async_engine_client
        from vllm.entrypoints.launchers.launcher import setup_server
    except ImportError:  # vLLM before the launchers package
        from vllm.entrypoints.openai.api_server import build_and_serve, build_async_engine_client, setup_server

    from lokiserve.server.app import build_admin_app
    from lokiserve.server.manifest import ManifestStore
    from lokiserve.server.memory_service import MemoryService

    vllm_args = build_vllm_args(args, passthrough)
    try:
        listen_address, sock = setup_server(vllm_args, reuse_port=False)
    except OSError as exc:  # the OpenAI port is taken: one line, before the engine starts
        print(f"lokiserve serve: error: {port_error('the OpenAI API', '--port', args.host, args.port, exc)}",
              file=sys.stderr)
        return 2
    async with build_async_engine_client(vllm_args) as engine:
        config = engine.model_config.hf_config
        service = MemoryService(
            engine, list(config.kmm_field_names), config.memory_geometry,
            ManifestStore(settings.state_dir), settings.max_field_bytes,
        )
        await service.start()
        from lokiserve.server.live_edits import LiveEditor

        service.editor = LiveEditor(args.model)
        admin = uvicorn.Server(uvicorn.Config(
            build_admin_app(service, settings, token), host=settings.admin_host,
            port=settings.admin_port, log_level="warning", lifespan="off",
            timeout_keep_alive=int(os.environ.get("VLLM_HTTP_TIMEOUT_KEEP_ALIVE", KEEP_ALIVE_S)),
        ))
        admin.install_signal_handlers = lambda: None  # vLLM's server owns SIGINT/SIGTERM
        admin_task = asyncio.create_task(admin.serve(sockets=[admin_sock]))
        where = f"token in {token_path}" if token_path else "token from your environment/file"
        print(f"lokiserve: memory admin API on http://{settings.admin_host}:{settings.admin_port} ({where})", flush=True)
        print(f"lokiserve: state (manifest, applied fields) in {settings.state_dir}", flush=True)
        print(f"lokiserve: serving {args.model} as model {served_model_name(args.model, passthrough)!r} on "
              f"http://{args.host}:{args.port}/v1", flush=True)
        shutdown = await build_and_serve(engine, listen_address, sock, vllm_args)
        admin.should_exit = True
        await admin_task
    try:
        await shutdown
    finally:
        sock.close()
    return 0


def config_error(exc: Exception) -> str:
    """One line for a configuration error (pydantic's are multi-line tables)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        msgs = [str(e.get("msg", "")).removeprefix("Value error, ") for e in errors()]
        return "; ".join(m for m in msgs if m) or str(exc)
    return str(exc)


def run_serve(args: argparse.Namespace, passthrough: list[str]) -> int:
    """``lokiserve serve``: exit 2 with one line for any configuration error,
    before vLLM or the engine start."""
    from lokiserve.server.auth import resolve_token

    model, passthrough = split_model(passthrough)
    args.model = model or str(default_model_dir())
    # vLLM's unauthenticated dev-mode endpoints (/collective_rpc, /pause, …) stay off.
    os.environ["VLLM_SERVER_DEV_MODE"] = "0"
    # CPU: size the KV cache explicitly (the GPU-style memory fraction fails here).
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    # Idle keep-alive connections live longer than uvicorn's 5 s: a pooled client
    # that reuses a connection just as the server times it out gets "Server
    # disconnected without sending a response" (a known keep-alive race); a
    # slow admin call between two completions made that idle gap under load.
    os.environ.setdefault("VLLM_HTTP_TIMEOUT_KEEP_ALIVE", str(KEEP_ALIVE_S))
    if not (Path(args.model) / "config.json").is_file():
        print(f"lokiserve serve: error: {args.model} has no config.json (a LoKiFormer model directory; "
              "train the demo with `lokiserve train-demo`)", file=sys.stderr)
        return 2
    try:
        settings = build_settings(args)
        token, token_path = resolve_token(settings)
    except (ValueError, OSError) as exc:
        print(f"lokiserve serve: error: {config_error(exc)}", file=sys.stderr)
        return 2
    try:
        admin_sock = bind_admin_socket(settings.admin_host, settings.admin_port)
    except OSError as exc:
        print(f"lokiserve serve: error: "
              f"{port_error('the admin API', '--admin-port', settings.admin_host, settings.admin_port, exc)}",
              file=sys.stderr)
        return 2
    import uvloop

    try:
        return uvloop.run(serve(args, passthrough, settings, token, token_path, admin_sock))
    finally:
        admin_sock.close()
