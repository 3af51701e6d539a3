"""``longtail editor``: the local web scene editor. FastAPI and uvicorn are imported only when
the command runs, so ``longtail`` works without the ``editor`` extra."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

from longtail.errors import InputError


def add_command(sub, positive_int) -> None:
    ed = sub.add_parser("editor", help="start the local web scene editor and print its URL",
                        description="Serve a web page to compose a scenario on a top-down map, render it with its "
                        "labels and save the YAML that `longtail render` consumes. Binds 127.0.0.1 unless told "
                        "otherwise; reads and writes scenario files only inside the workspace.")
    ed.add_argument("--workspace", type=Path, default=Path("."), metavar="DIR",
                    help="directory of scenario files the page may load and save (default: the current one)")
    ed.add_argument("--port", type=int, default=8765, metavar="P", help="TCP port (default 8765)")
    ed.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                    help="address to bind (default 127.0.0.1: this machine only)")
    ed.add_argument("--workers", type=positive_int, default=1, metavar="K",
                    help="render worker processes (default 1); further renders queue, a few at most")


def cmd_editor(args) -> int:
    try:
        import uvicorn  # noqa: F401
        from longtail.editor.app import create_app
    except ImportError as e:
        raise InputError("editor", None, f"the editor needs the 'editor' extra ({e.name} is missing): "
                         "pip install 'longtail[editor]'") from None
    from longtail.editor.worker import RenderPool

    if not 0 <= args.port <= 65535:
        raise InputError("--port", None, f"expected 0..65535, got {args.port}")
    ws = Path(args.workspace)
    if ws.exists() and not ws.is_dir():
        raise InputError("--workspace", None, f"{ws} is not a directory")
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback:
        print(f"longtail editor: warning: binding {args.host}: other machines can reach the editor", file=sys.stderr)
    app = create_app(ws, RenderPool(workers=args.workers))
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
    server = uvicorn.Server(config)
    host = f"[{args.host}]" if ":" in args.host else args.host

    import asyncio

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.05)
        if server.started:
            port = server.servers[0].sockets[0].getsockname()[1] if server.servers else args.port
            print(f"longtail editor: http://{host}:{port}/  (workspace {ws.resolve()}; Ctrl-C to stop)", flush=True)
        await task

    asyncio.run(serve())
    return 0
