from ...apps.classify import BACKENDS
from ...apps.resolve import resolve
from ...apps.serve import make_server

HELP = "a local web page: drop an image, see the top-5"


def add_arguments(p):
    p.add_argument("model", help="model file, pretrained name, zoo name or ELL string")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--backend", choices=BACKENDS, default="reference")


def run(args) -> int:
    server = make_server(resolve(args.model), args.host, args.port, args.backend)
    host, port = server.server_address[:2]
    print(f"serving {args.model} on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
