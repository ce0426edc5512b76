"""``python -m sandbox --host 127.0.0.1 --port 5050 [--seed 42] [--mode xero:backdated_journals]``: serve the sandbox (threaded)."""
import argparse

from sandbox import create_app


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Firmsync's local vendor API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5050)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--mode", action="append", default=[], metavar="PACKAGE:MODE",
                        help="answer in a vendor variant, e.g. xero:backdated_journals (repeatable)")
    args = parser.parse_args(argv)
    modes = {}
    for item in args.mode:
        package, _, name = item.partition(":")
        modes.setdefault(package, []).append(name)
    create_app(seed=args.seed, modes=modes).run(host=args.host, port=args.port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
