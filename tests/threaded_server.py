"""A WSGI app on werkzeug's threaded server, in a background thread, on a free loopback port."""
import threading

from werkzeug.serving import make_server


class ThreadedServer:
    """``ThreadedServer(app, name).start()`` serves ``app`` at ``.url`` until ``.stop()``."""

    def __init__(self, app, name, **options):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True, **options)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name=name, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)
