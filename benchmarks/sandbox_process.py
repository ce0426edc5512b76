"""``python -m benchmarks.sandbox_process --port P --companies FILE --budgets JSON``: the
sandbox with the benchmark's companies (a JSON file: a thousand companies do not fit in one
command-line argument), a threaded werkzeug server like ``python -m sandbox``."""
import argparse
import json
import logging
from pathlib import Path

from werkzeug.serving import make_server

from sandbox import create_app


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--companies", required=True, type=Path, help="a JSON file: a list of company specs")
    parser.add_argument("--budgets", default="{}")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = create_app(seed=args.seed, companies=json.loads(args.companies.read_text()), budgets=json.loads(args.budgets))
    make_server("127.0.0.1", args.port, app, threaded=True).serve_forever()


if __name__ == "__main__":
    main()
