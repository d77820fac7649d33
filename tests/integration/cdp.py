"""A minimal Chrome DevTools Protocol client (Python stdlib only): a WebSocket client enough
for CDP's text frames, and the calls the browser tests make. Chromium is started by the
caller with --remote-debugging-port."""
import base64
import json
import os
import socket
import struct
import time
import urllib.request


class WebSocket:
    """RFC 6455 client: text frames out (masked), text/continuation frames in; no extensions."""

    def __init__(self, url, timeout=30):
        assert url.startswith("ws://"), url
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port or 80)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("no WebSocket handshake answer")
            head += chunk
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise ConnectionError(f"WebSocket handshake refused: {head!r}")

    def _read(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("WebSocket closed")
            out += chunk
        return out

    def send(self, text):
        data = text.encode()
        head = bytearray([0x81])
        if len(data) < 126:
            head.append(0x80 | len(data))
        elif len(data) < 65536:
            head.append(0x80 | 126)
            head += struct.pack(">H", len(data))
        else:
            head.append(0x80 | 127)
            head += struct.pack(">Q", len(data))
        mask = os.urandom(4)
        self.sock.sendall(bytes(head) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("WebSocket closed by the browser")
            if opcode in (0x9, 0xA):  # ping/pong: not used by CDP
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()

    def close(self):
        self.sock.close()


class Cdp:
    """One page target: commands with results, events collected while waiting."""

    def __init__(self, port, timeout=60):
        deadline = time.time() + timeout
        targets = []
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    targets = [t for t in json.load(r) if t.get("type") == "page"]
                if targets:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        if not targets:
            raise RuntimeError(f"no page target on the DevTools port {port}")
        self.ws = WebSocket(targets[0]["webSocketDebuggerUrl"], timeout=timeout)
        self.next_id = 0
        self.events = []

    def send(self, method, **params):
        """A command whose result is not awaited (answers to paused requests)."""
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return self.next_id

    def call(self, method, on_event=None, **params):
        """A command and its result; events meanwhile go to on_event (else are kept)."""
        my_id = self.send(method, **params)
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                if on_event:
                    on_event(msg)
                else:
                    self.events.append(msg)

    def next_event(self):
        if self.events:
            return self.events.pop(0)
        while True:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                return msg

    def close(self):
        self.ws.close()
