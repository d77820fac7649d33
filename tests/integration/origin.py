#!/usr/bin/env python3
"""Outpost's scriptable test origin (HTTP/1.1, keep-alive, threaded).

Endpoints (all counted, see /__stats):
  /echo            JSON: method, path, headers, body length and sha256
  /bytes?n=N[&chunked=1][&close=1]   N deterministic bytes (Content-Length, chunked or
                   close-delimited)
  /slow?delay=S[&n=N]   waits S seconds before answering
  /stall           sends headers and part of the body, then stalls
  /garbage         answers with bytes that are not HTTP
  /drop            closes the connection without answering
  /script/<name>   answers as scripted with POST /__script (JSON {"path": "/script/x",
                   "status": 200, "headers": [[k, v], ...], "body": "...", "delay": 0})
  /__stats         JSON: {"requests": {path: count}, "connections": N,
                   "last_headers": {path: [[k, v], ...]},  (the last request's headers per path)
                   "peak_waiting": {path: N}}  (most /script/ requests in their delay at once)
  Script keys: status, headers, body, delay, content_type, date (the Date field's value, as
  sent), etag / last_modified (the origin
  answers matching If-None-Match / If-Modified-Since with 304), body_from_header (the body is
  the request's value of that header), chunked (no Content-Length).
  /__reset         clears the counters and scripts
Usage: origin.py PORT [ADDR]
"""
import hashlib
import json
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
STATS = {"requests": {}, "connections": 0, "last_headers": {}, "waiting": {}, "peak_waiting": {}}
SCRIPTS = {}


def pattern(n):
    block = bytes(range(256)) * 256
    out = bytearray()
    while len(out) < n:
        out += block
    return bytes(out[:n])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "outpost-test-origin"

    def setup(self):
        super().setup()
        with LOCK:
            STATS["connections"] += 1

    def log_message(self, *args):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, body, headers=(), ctype="application/octet-stream"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def date_time_string(self, timestamp=None):
        # A script's "date" replaces the Date field the server adds.
        return getattr(self, "fixed_date", None) or super().date_time_string(timestamp)

    def handle_any(self):
        self.fixed_date = None
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = self.read_body()
        with LOCK:
            STATS["requests"][url.path] = STATS["requests"].get(url.path, 0) + 1
            STATS["last_headers"][url.path] = [[k, v] for k, v in self.headers.items()]
        p = url.path
        if p == "/__stats":
            with LOCK:
                data = json.dumps(STATS).encode()
            return self.send(200, data, ctype="application/json")
        if p == "/__reset":
            with LOCK:
                STATS["requests"].clear()
                STATS["last_headers"].clear()
                STATS["waiting"].clear()
                STATS["peak_waiting"].clear()
                STATS["connections"] = 0
                SCRIPTS.clear()
            return self.send(200, b"ok\n", ctype="text/plain")
        if p == "/__script":
            spec = json.loads(body)
            with LOCK:
                SCRIPTS[spec["path"]] = spec
            return self.send(200, b"ok\n", ctype="text/plain")
        if p == "/echo":
            info = {
                "method": self.command,
                "path": self.path,
                "version": self.request_version,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body_length": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
            }
            return self.send(200, json.dumps(info).encode(), ctype="application/json")
        if p in ("/bytes", "/slow"):
            if p == "/slow":
                time.sleep(float(q.get("delay", "1")))
            data = pattern(int(q.get("n", "100")))
            if q.get("chunked"):
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if self.command != "HEAD":
                    step = 7777
                    for i in range(0, len(data), step):
                        part = data[i:i + step]
                        self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                return
            if q.get("close"):
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                self.close_connection = True
                return
            return self.send(200, data)
        if p == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            time.sleep(float(q.get("delay", "30")))
            self.close_connection = True
            return
        if p == "/garbage":
            self.wfile.write(b"THIS IS NOT HTTP\r\n\r\n")
            self.close_connection = True
            return
        if p == "/drop":
            self.close_connection = True
            return
        if p.startswith("/script/"):
            with LOCK:
                spec = SCRIPTS.get(p)
            if spec is None:
                return self.send(404, b"no script\n", ctype="text/plain")
            # "peak_waiting": the most requests for one script path waiting out their delay at
            # once (a request stops waiting before its answer is written, so a request sent
            # only after another's answer arrived never overlaps it).
            with LOCK:
                w = STATS["waiting"].get(p, 0) + 1
                STATS["waiting"][p] = w
                STATS["peak_waiting"][p] = max(STATS["peak_waiting"].get(p, 0), w)
            time.sleep(float(spec.get("delay", 0)))
            with LOCK:
                STATS["waiting"][p] -= 1
            headers = list(spec.get("headers", []))
            self.fixed_date = spec.get("date")
            etag, lm = spec.get("etag"), spec.get("last_modified")
            if etag:
                headers.append(["ETag", etag])
            if lm:
                headers.append(["Last-Modified", lm])
            inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
            if (etag and inm and etag.replace("W/", "") in [t.strip().replace("W/", "") for t in inm.split(",")]) or \
               (lm and ims and not inm and ims == lm):
                self.send_response(304)
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                return
            body = spec.get("body", "")
            if spec.get("body_from_header"):
                body = self.headers.get(spec["body_from_header"], "")
            body = body.encode()
            if spec.get("chunked"):
                self.send_response(int(spec.get("status", 200)))
                self.send_header("Content-Type", spec.get("content_type", "text/plain"))
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n")
                return
            if spec.get("trickle"):
                # Headers and the first half now, the rest after `trickle` seconds.
                self.send_response(int(spec.get("status", 200)))
                self.send_header("Content-Type", spec.get("content_type", "text/plain"))
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                time.sleep(float(spec["trickle"]))
                self.wfile.write(body[len(body) // 2:])
                return
            return self.send(int(spec.get("status", 200)), body, headers=headers,
                             ctype=spec.get("content_type", "text/plain"))
        return self.send(404, b"not found\n", ctype="text/plain")

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = handle_any

    def __getattr__(self, name):
        # Extension methods (RFC 9110 §9.1: any token) are answered like the others.
        if name.startswith("do_"):
            return self.handle_any
        raise AttributeError(name)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    port = int(sys.argv[1])
    addr = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    srv = Server((addr, port), Handler)
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
