"""A scripted misbehaving origin for the proxy's hostile-peer tests.

Unlike origin.py (a well-behaved HTTP server), this one writes exactly the bytes a test
gives it: wrong lengths, bodies on responses that have none, interim responses, forged
responses meant for the next request, pauses between writes. It runs in a thread of the
test process and records every request it reads (connection number, method, path), so a
test can tell which connection carried which request.

    o = HostileOrigin(8090)
    o.route("/a", b"HTTP/1.1 204 No Content\\r\\nContent-Length: 5\\r\\n\\r\\n", 0.3, b"hello")
    ... requests through the proxy ...
    o.requests  -> [(conn, "GET", "/a"), ...]

Steps: bytes are written as they are, a number sleeps that many seconds, CLOSE closes the
connection. A path without a route gets a plain 200 whose body names the path, so a
response that arrives for the wrong request is easy to spot.
"""
import socket
import threading
import time

CLOSE = object()


def ok(body, extra=b""):
    """A well-formed 200 with a Content-Length (extra: more header lines, CRLF-terminated)."""
    if isinstance(body, str):
        body = body.encode()
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n%sContent-Length: %d\r\n\r\n%s" % (extra, len(body), body)


class HostileOrigin:
    def __init__(self, port, host="127.0.0.1"):
        self.port = port
        self.routes = {}
        self.requests = []
        self.heads = {}  # path -> the last request head read for it (text)
        self.connections = 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(128)
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path, *steps):
        with self.lock:
            self.routes[path] = list(steps)

    def count(self, path):
        with self.lock:
            return sum(1 for _, _, p in self.requests if p == path)

    def connection_of(self, path):
        with self.lock:
            return [c for c, _, p in self.requests if p == path]

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                n = self.connections
            threading.Thread(target=self._serve, args=(conn, n), daemon=True).start()

    def _serve(self, conn, n):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                length, chunked = 0, False
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    if k.strip().lower() == "content-length":
                        length = int(v.strip())
                    if k.strip().lower() == "transfer-encoding" and v.strip().lower().endswith("chunked"):
                        chunked = True
                if chunked:  # enough for the tests: read up to the last chunk
                    while b"\r\n0\r\n\r\n" not in b"\r\n" + buf:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buf += data
                    buf = (b"\r\n" + buf).split(b"\r\n0\r\n\r\n", 1)[1]
                while len(buf) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                buf = buf[length:]
                path = target.split("?")[0]
                if "://" in path:
                    path = "/" + path.split("://", 1)[1].split("/", 1)[1]
                with self.lock:
                    self.requests.append((n, method, path))
                    self.heads[path] = head.decode("latin-1")
                    steps = self.routes.get(path)
                if steps is None:
                    steps = [ok(f"genuine {path}", b"Cache-Control: max-age=3600\r\n")]
                for step in steps:
                    if step is CLOSE:
                        return
                    if isinstance(step, (int, float)):
                        time.sleep(step)
                    else:
                        conn.sendall(step)
        except OSError:
            pass
        finally:
            conn.close()
