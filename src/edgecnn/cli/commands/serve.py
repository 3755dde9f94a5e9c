import sys

from ...apps.classify import BACKENDS
from ...apps.resolve import resolve
from ...apps.serve import make_server
from ...apps.serve_http import Limits, exposure_warning

HELP = "a local web page: drop an image, see the top-5"


def add_arguments(p):
    d = Limits()
    p.add_argument("model", help="model file, pretrained name, zoo name or ELL string")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1, this machine only; another "
                        "address makes the page reachable from other machines)")
    p.add_argument("--backend", choices=BACKENDS, default="reference")
    p.add_argument("--max-active", type=int, default=d.max_active,
                   help=f"requests handled at once (default {d.max_active}); up to "
                        f"{d.max_waiting} more get 503 busy, further ones are closed")
    p.add_argument("--timeout", type=float, default=d.read_timeout,
                   help=f"seconds a client may take to send a request (default "
                        f"{d.read_timeout:g}); slower ones get 408")


def run(args) -> int:
    from ...errors import EdgecnnError

    if args.max_active < 1 or args.timeout <= 0:
        raise EdgecnnError("--max-active must be at least 1 and --timeout more than 0")
    limits = Limits(max_active=args.max_active, max_waiting=max(16, 4 * args.max_active),
                    read_timeout=args.timeout)
    warning = exposure_warning(args.host)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    server = make_server(resolve(args.model), args.host, args.port, args.backend, limits)
    host, port = server.server_address[:2]
    print(f"serving {args.model} on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
