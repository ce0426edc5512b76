"""``python -m sandbox --host 127.0.0.1 --port 5050 [--seed 42]``: serve the sandbox (threaded)."""
import argparse

from sandbox import create_app


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Firmsync's local vendor API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5050)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    create_app(seed=args.seed).run(host=args.host, port=args.port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
