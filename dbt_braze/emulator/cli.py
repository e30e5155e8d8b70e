"""`python -m dbt_braze.emulator` (and `dbt-braze emulator`): serve until stopped.

Prints exactly one line, `braze emulator listening on <url>`, once the
socket is bound, so a script can wait for it; then serves until SIGINT or
SIGTERM. Knobs not offered as options can be changed while it runs with
`POST /_emulator/config`, catalogs created with `POST /_emulator/catalogs`.
"""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
from types import FrameType
from typing import Any

from .app import ALL_PERMISSIONS
from .catalogs import catalog_fields
from .faults import (
    DEFAULT_CATALOG_RATE_LIMIT,
    DEFAULT_MAX_OBJECTS,
    DEFAULT_RATE_LIMIT,
    DEFAULT_RATE_WINDOW_SECONDS,
    EmulatorConfig,
)
from .server import DEFAULT_API_KEY, BrazeEmulator

EXIT_OK = 0
EXIT_USAGE = 2
_GC_THRESHOLD = 100_000


def build_parser(prog: str = "python -m dbt_braze.emulator") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a strict Braze REST API emulator (POST /users/track, "
        "/users/delete, /users/export/ids; the asynchronous catalog item endpoints "
        "and GET /catalogs; inspection under /_emulator/).",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    add("--port", type=int, default=4080, help="port to bind, 0 = any free (default: %(default)s)")
    add(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help=f"accepted key with every permission; repeatable (default: {DEFAULT_API_KEY})",
    )
    add(
        "--rate-limit",
        type=int,
        default=DEFAULT_RATE_LIMIT,
        help="/users/track requests per window, 0 = unlimited (default: %(default)s)",
    )
    add(
        "--rate-window",
        type=float,
        default=DEFAULT_RATE_WINDOW_SECONDS,
        metavar="SECONDS",
        help="rate-limit window (default: %(default)s)",
    )
    add(
        "--catalog-rate-limit",
        type=int,
        default=DEFAULT_CATALOG_RATE_LIMIT,
        help="catalog item requests per minute, the four methods together, 0 = unlimited "
        "(default: %(default)s)",
    )
    add(
        "--catalog",
        action="append",
        dest="catalogs",
        type=_catalog_option,
        default=[],
        metavar="NAME:FIELD=TYPE,...",
        help="a catalog and its fields (types: string, number, boolean, time, object, array), "
        "e.g. products:title=string,price=number; repeatable",
    )
    add(
        "--max-objects",
        type=int,
        default=DEFAULT_MAX_OBJECTS,
        help="objects per track request (default: %(default)s)",
    )
    add("--latency-ms", type=float, default=0.0, help="added to every request")
    add("--error-rate", type=float, default=0.0, help="fraction answered with --error-status")
    add("--error-status", type=int, default=503, help="(default: %(default)s)")
    add(
        "--drop-rate",
        type=float,
        default=0.0,
        help="fraction of track requests applied, then dropped without an answer",
    )
    add(
        "--retry-after-header",
        action="store_true",
        help="send X-Ratelimit-Retry-After and Retry-After on 429s",
    )
    add("--seed", type=int, default=None, help="seed of the fault RNG")
    add("--sink", action="store_true", help="count and acknowledge only (benchmarks)")
    add("-v", "--verbose", action="store_true", help="log every request to stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        config = EmulatorConfig(
            rate_limit=args.rate_limit or None,
            rate_window_seconds=args.rate_window,
            catalog_rate_limit=args.catalog_rate_limit or None,
            max_objects_per_request=args.max_objects,
            latency_ms=args.latency_ms,
            error_rate=args.error_rate,
            error_status=args.error_status,
            drop_after_apply_rate=args.drop_rate,
            retry_after_header=args.retry_after_header,
            seed=args.seed,
            sink_mode=args.sink,
        )
        keys = {key: ALL_PERMISSIONS for key in args.api_keys or [DEFAULT_API_KEY]}
        emulator = BrazeEmulator(keys, config, host=args.host, port=args.port)
        for name, fields in args.catalogs:
            emulator.create_catalog(name, fields)
        emulator.start()
    except (ValueError, OSError) as exc:
        print(f"braze emulator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stopped = threading.Event()
    previous = _on_sigterm(stopped)  # before announcing: a SIGTERM may follow at once
    print(f"braze emulator listening on {emulator.url}", flush=True)
    # Every track request allocates thousands of small containers; with the
    # default threshold (700) the cyclic GC runs several times per request and
    # costs ~20% of the throughput. The process only serves, so collect less
    # often while it does, and put the setting back afterwards.
    thresholds = gc.get_threshold()
    gc.set_threshold(_GC_THRESHOLD, *thresholds[1:])
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        gc.set_threshold(*thresholds)
        emulator.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return EXIT_OK


def _catalog_option(text: str) -> tuple[str, dict[str, str]]:
    """`NAME:field=type,field=type` (`NAME` alone: a catalog with only its id)."""
    name, _, spec = text.partition(":")
    fields: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        field, equals, kind = part.partition("=")
        if not equals:
            raise argparse.ArgumentTypeError(f"{part!r} in {text!r}: write FIELD=TYPE, e.g. price=number")
        fields[field.strip()] = kind.strip()
    try:
        catalog_fields(name, fields)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name, fields


def _on_sigterm(stopped: threading.Event) -> Any:
    """Stop on SIGTERM too; returns the previous handler (None off the main thread)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # signals can only be set from the main thread
        return None
