"""The command line: ``python -m langchain_bytez.server`` and ``bytez-local-server``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from langchain_bytez.testing.control import DEFAULT_LOG_LIMIT, is_loopback
from langchain_bytez.testing.fake_tools import TOOL_FORMATS
from langchain_bytez.testing.faults import FaultKind
from langchain_bytez.testing.modes import AuthForm, ClusterRoutes
from langchain_bytez.testing.server import DEFAULT_IDLE_TIMEOUT, LocalBytezServer

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the command line.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(
        prog="python -m langchain_bytez.server",
        description="Serve a local Bytez-compatible API (for tests, demos and benchmarks).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (0: a free port)")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accepted API key (repeatable; default: any non-empty key)",
    )
    parser.add_argument("--ttfb", type=float, default=0.0, help="seconds before a run's first byte")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds between tokens")
    parser.add_argument("--load-delay", type=float, default=0.3, help="cold start seconds")
    parser.add_argument(
        "--idle-seconds-per-minute",
        type=float,
        default=60.0,
        help="real seconds per minute of cluster idle timeout",
    )
    parser.add_argument(
        "--concurrency-limit", type=int, default=None, help="account-wide in-flight run limit"
    )
    parser.add_argument(
        "--cluster-routes",
        choices=[mode.value for mode in ClusterRoutes],
        default=ClusterRoutes.NOT_FOUND.value,
        help="how the cluster routes answer (default: not_found, as the documented service)",
    )
    parser.add_argument(
        "--no-cluster-routes",
        action="store_true",
        help="same as --cluster-routes gone (404 for reads, 405 for writes)",
    )
    parser.add_argument(
        "--lenient-params",
        action="store_true",
        help="accept (and ignore) unknown params instead of answering 422",
    )
    parser.add_argument(
        "--auth-form",
        action="append",
        dest="auth_forms",
        choices=[form.value for form in AuthForm],
        help="accepted Authorization form (repeatable; default: key)",
    )
    parser.add_argument(
        "--tool-format",
        choices=TOOL_FORMATS,
        default=None,
        help="how tool-calling models write a call (default: each model's own form)",
    )
    parser.add_argument(
        "--request-log-limit",
        type=int,
        default=DEFAULT_LOG_LIMIT,
        help="most requests the inspection log keeps",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT,
        help="seconds before an idle keep-alive connection is closed",
    )
    parser.add_argument("--fault-rate", type=float, default=0.0, help="random fault fraction")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random faults")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[:COUNT]",
        help=f"queue faults on runs (repeatable); kinds: {', '.join(k.value for k in FaultKind)}",
    )
    parser.add_argument("--port-file", default=None, help="write the bound port to this file")
    parser.add_argument("--quiet", action="store_true", help="no request log")
    return parser


async def _serve(server: LocalBytezServer, port_file: str | None) -> int:
    loop = asyncio.get_running_loop()
    await server._astart(loop)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if port_file:
        tmp = f"{port_file}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as handle:  # noqa: ASYNC230 - tiny, once
            handle.write(f"{server.port}\n")
        os.replace(tmp, port_file)
    sys.stdout.write(f"Local Bytez-compatible server listening on {server.url}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await server._ashutdown()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server in the foreground until SIGINT/SIGTERM.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The process exit status.
    """
    args = build_parser().parse_args(argv)
    if not is_loopback(args.host):
        sys.stderr.write(
            f"error: --host must be a loopback address (127.0.0.1, ::1, localhost); "
            f"got {args.host!r}. The local server never listens on other interfaces.\n"
        )
        return 2
    faults: list[tuple[str, int]] = []
    for spec in args.fault:
        kind, _, raw_count = spec.partition(":")
        try:
            FaultKind(kind)
            count = int(raw_count) if raw_count else 1
        except ValueError:
            sys.stderr.write(f"error: bad --fault {spec!r} (KIND[:COUNT])\n")
            return 2
        faults.append((kind, count))
    if not args.quiet:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    try:
        server = LocalBytezServer(
            host=args.host,
            port=args.port,
            api_keys=args.api_keys,
            ttfb=args.ttfb,
            token_delay=args.token_delay,
            load_delay=args.load_delay,
            idle_seconds_per_minute=args.idle_seconds_per_minute,
            concurrency_limit=args.concurrency_limit,
            cluster_routes=ClusterRoutes.GONE if args.no_cluster_routes else args.cluster_routes,
            strict_params=not args.lenient_params,
            auth_forms=args.auth_forms or [AuthForm.KEY],
            fault_rate=args.fault_rate,
            seed=args.seed,
            request_log_limit=args.request_log_limit,
            idle_timeout=args.idle_timeout if args.idle_timeout > 0 else None,
            tool_format=args.tool_format,
        )
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    for kind, count in faults:
        server.inject(kind, count)
    try:
        return asyncio.run(_serve(server, args.port_file))
    except OSError as exc:
        sys.stderr.write(f"error: cannot listen on {args.host}:{args.port}: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 0
