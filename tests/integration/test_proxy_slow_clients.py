#!/usr/bin/env python3
"""Slow readers (issue 10, item 5): a client that reads slowly holds back neither the origin
fetch nor the other clients collapsed onto it; the origin's read timeout never fires because
of a client; a client that reads nothing for write_timeout is cut."""
import hashlib
import socket
import threading
import time

import harness as h

SIZE = 6 * 1024 * 1024
READ_TIMEOUT = 1    # origin side: short, so a held-back origin would time out during the test
WRITE_TIMEOUT = 4   # client side


def slow_client(url, pause, rcvbuf=16384, headers="", until=None):
    """Asks for url with a tiny receive buffer, reads the head and a little, pauses `pause`
    seconds (or until the event `until` is set, at most `pause`) reading nothing, then reads
    the rest. Returns (head, body, whether `until` was set when it started reading again)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(30)
    s.connect(("127.0.0.1", h.PROXY_PORT))
    s.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    woken = until.wait(pause) if until is not None else time.sleep(pause)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                break
            buf += data
    except OSError:
        pass
    s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    return head, body, woken


class SlowClients(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.nginx = h.Nginx(cls.procs, cls.tmp)
        cls.origin = h.TestOrigin(cls.procs)
        cls.data = bytes((i * 7) % 251 for i in range(SIZE))
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config=(
            '[server]\nworkers = 1\nname = "outpost-test"\n'
            f'[proxy]\nlisten = ["127.0.0.1:{h.PROXY_PORT}"]\nwrite_timeout = {WRITE_TIMEOUT}\n'
            f'[origin]\nread_timeout = {READ_TIMEOUT}\n')).start()

    def url(self, name):
        return f"http://127.0.0.1:{h.NGINX_PORT}/{name}"

    def test_slow_leader_holds_back_no_follower(self):
        # The origin sends half the body, then the rest a little later (within its read
        # timeout); the first client reads nothing meanwhile, others ask for the same URL.
        body = (self.data[:SIZE // 2]).hex()[:SIZE]  # text: the test origin scripts strings
        self.origin.script("/script/big1", body=body, trickle=0.8, headers=[["Cache-Control", "max-age=3600"]])
        url = self.origin.url("/script/big1")
        result = {}
        followers_done = threading.Event()

        def leader():
            # Reads nothing until the followers are done (or WRITE_TIMEOUT - 1 s, when they
            # would be waiting for this client: the fetch held back by its slowest reader).
            result["leader"] = slow_client(url, pause=WRITE_TIMEOUT - 1, until=followers_done)

        t = threading.Thread(target=leader)
        t.start()
        time.sleep(0.3)  # the leader's fetch is under way and its client is not reading
        followers = []
        threads = [threading.Thread(target=lambda: followers.append(h.curl(url, timeout=20, check=False)))
                   for _ in range(2)]
        for f in threads:
            f.start()
        for f in threads:
            f.join()
        followers_done.set()
        for r in followers:
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(hashlib.sha256(r.stdout).hexdigest(), hashlib.sha256(body.encode()).hexdigest())
        t.join()
        head, got, followers_done_first = result["leader"]
        self.assertTrue(followers_done_first, "the followers waited for the slow first client")
        self.assertIn(b" 200 ", head.split(b"\r\n")[0])
        self.assertEqual(got, body.encode())
        deadline = time.time() + 5  # the access log is flushed every second
        lines = []
        while len(lines) < 3 and time.time() < deadline:
            lines = [l for l in self.outpost.access_lines() if "/script/big1" in l]
            time.sleep(0.1)
        self.assertEqual(len(lines), 3, lines)
        self.assertFalse([l for l in lines if "ABORTED" in l], lines)
        self.assertEqual(len([l for l in lines if "TCP_CF_HIT" in l]), 2, lines)
        self.assertEqual(self.origin.count("/script/big1"), 1)

    def test_client_pausing_longer_than_origin_read_timeout(self):
        # Not cacheable (no-store): the origin is held back while the client pauses, and that
        # silence is ours, not the origin's.
        self.nginx.put_file("big2.bin", self.data)
        head, body, _ = slow_client(self.url("big2.bin"), pause=READ_TIMEOUT + 1.5,
                                 headers="Cache-Control: no-store\r\n")
        self.assertIn(b" 200 ", head.split(b"\r\n")[0])
        self.assertEqual(body, self.data)

    def test_client_reading_nothing_is_cut_after_write_timeout(self):
        self.nginx.put_file("big3.bin", self.data)
        start = time.time()
        head, body, _ = slow_client(self.url("big3.bin") + "?cut", pause=WRITE_TIMEOUT + 3)
        self.assertLess(len(body), SIZE, "the client should have been cut")
        deadline = time.time() + 3
        while "read nothing of its response" not in self.outpost.log_text() and time.time() < deadline:
            time.sleep(0.1)
        self.assertIn("read nothing of its response", self.outpost.log_text())
        self.assertGreater(time.time() - start, WRITE_TIMEOUT)
        # The proxy keeps serving.
        r = h.curl(self.url("big3.bin"), timeout=20)
        self.assertEqual(len(r.stdout), SIZE)


if __name__ == "__main__":
    h.main()
