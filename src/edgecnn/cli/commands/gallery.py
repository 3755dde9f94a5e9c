from ...publish.site import build_site

HELP = "a static site indexing the model cards in a folder; accuracy-vs-speed charts per device"


def add_arguments(p):
    p.add_argument("cards", help="folder searched for card.json files")
    p.add_argument("-o", "--output", required=True, help="the site folder to write")
    p.add_argument("--reference", metavar="ELL_GALLERY_JSON",
                   help="also plot ELL's published gallery figures from this JSON")


def run(args) -> int:
    written = build_site(args.cards, args.output, args.reference)
    print(f"wrote {len(written)} files; open {written[0]}")
    return 0
