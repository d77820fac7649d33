#!/usr/bin/env python3
"""`outpost ctl` against a running Outpost ([control] socket): status, stats (the same figures
as /metrics, scraped side by side), reload (good, bad and restart-only changes), purge of a URL
and of a prefix (the origin is asked again, other URLs stay hits), cache info (headers, age,
freshness, variants), dns lookup and flush of a name and of a zone (against the fake NSD
hierarchy: the counting relay sees the resolver ask again after a flush), log level,
connections (an idle client and a request in flight). The socket's hostile clients: control
bytes, an endless line, too many words, a silent client (cut after control.timeout), a client
that leaves at once, more clients than the service takes — the service answers the next
command. A stale socket file is replaced at start, a live one refuses a second Outpost, the
file goes at shutdown, and permissions are 0600."""
import os
import re
import signal
import socket
import stat
import subprocess
import threading
import time
import urllib.request

import dnsfixture
import harness as h

ADMIN_PORT = 9145
DNS_PORT = 5353
TIMEOUT = 1  # control.timeout in the test's configuration


def unix_exchange(path, data, timeout=10.0, shut=False):
    """Raw bytes to the control socket; what arrives before the server closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        if data:
            s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        return h.read_until_close(s)


def parse_samples(text):
    """{sample line's name+labels: value} of Prometheus text (comments skipped)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, value = line.rsplit(" ", 1)
        out[key] = float(value)
    return out


class Control(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hier = dnsfixture.Hierarchy(os.path.join(cls.tmp, "dns"))
        cls.hier.start()
        cls.hints = cls.hier.write_hints()
        cls.origin = h.TestOrigin(cls.procs)
        cls.sock = os.path.join(cls.tmp, "control.sock")
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config=cls.config_text()).start()

    @classmethod
    def config_text(cls, level="debug", socket_path=None):
        return ("[dns]\n" + h.fake_root_keys(cls.hints) + f'listen = ["127.0.0.1:{DNS_PORT}"]\n'
                f'[admin]\nenabled = true\nlisten = ["127.0.0.1:{ADMIN_PORT}"]\n'
                f'[control]\nsocket = "{socket_path or cls.sock}"\ntimeout = {TIMEOUT}\n'
                f'[log]\nlevel = "{level}"\nfile = "{cls.tmp}/outpost.log"\n'
                f'access_log = "{cls.tmp}/access.log"\n')

    @classmethod
    def tearDownClass(cls):
        cls.hier.stop()
        super().tearDownClass()

    def ctl(self, *words, sock=None, config=None, check=True):
        args = [h.OUTPOST, "ctl"]
        if config:
            args += ["-c", config]
        else:
            args += ["-s", sock or self.sock]
        r = subprocess.run(args + list(words), capture_output=True, text=True, timeout=60)
        if check:
            self.assertEqual(r.returncode, 0, f"ctl {' '.join(words)}: {r.stdout}{r.stderr}")
        return r

    def dig(self, *args):
        r = subprocess.run(["dig", "@127.0.0.1", "-p", str(DNS_PORT), "+time=3", "+tries=1", *args],
                           capture_output=True, text=True, timeout=20)
        return r.stdout

    def fetch(self, path, *headers):
        args = ["-s", "-D", "-", "-o", "/dev/null"]
        for hd in headers:
            args += ["-H", hd]
        return h.curl(*args, self.origin.url(path)).stdout.decode()

    def test_socket_permissions_and_help(self):
        st = os.stat(self.sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        out = self.ctl("help").stdout
        for cmd in ("status", "stats", "reload", "purge URL | --prefix URL", "cache info URL",
                    "dns flush NAME | --zone NAME", "dns lookup NAME", "log level LEVEL", "connections"):
            self.assertIn(cmd, out)
        # The socket found through the configuration file.
        out = self.ctl("status", config=self.outpost.config_path).stdout
        self.assertIn(f"pid: {self.outpost.proc.pid}\n", out)

    def test_status(self):
        out = self.ctl("status").stdout
        self.assertRegex(out, r"version: \d+\.\d+")
        self.assertIn(f"pid: {self.outpost.proc.pid}\n", out)
        self.assertIn("workers: 2\n", out)
        self.assertIn(f"config: {self.outpost.config_path}\n", out)
        self.assertRegex(out, r"connections: \d+ \(per worker: \d+, \d+\)")
        self.assertIn("http cache: on", out)

    def test_stats_are_the_metrics(self):
        for i in range(3):
            self.fetch(f"/echo?stats={i}")
        self.dig("www.a.test", "A")

        def scrape():
            with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN_PORT}/metrics", timeout=10) as r:
                return parse_samples(r.read().decode())

        def stable(samples):
            return {k: v for k, v in samples.items()
                    if k.startswith(("outpost_http_requests_total", "outpost_dns_queries_total",
                                     "outpost_proxy_connections_accepted_total"))}

        # The same families and label sets; every counter of the proxy and the resolver the
        # same value (the admin and control channels count their own use, process figures
        # move). A request is counted when its exchange ends, which may be a moment after
        # curl has its answer, and a background task may add a label set: compare a /metrics
        # scrape taken between two equal ctl stats.
        for _ in range(50):
            before = parse_samples(self.ctl("stats").stdout)
            theirs = scrape()
            ours = parse_samples(self.ctl("stats").stdout)
            if stable(before) == stable(ours) and set(before) == set(ours) == set(theirs):
                break
            time.sleep(0.1)
        self.assertEqual(set(ours), set(theirs))
        self.assertTrue(stable(ours), sorted(ours)[:40])
        self.assertEqual(stable(ours), stable(theirs))
        self.assertIn('outpost_control_commands_total{result="ok"}', ours)

    def test_purge_and_cache_info(self):
        self.origin.script("/script/purge-a", body="a" * 100, headers=[["Cache-Control", "max-age=300"]])
        self.assertIn("X-Cache: MISS", self.fetch("/script/purge-a"))
        self.assertIn("X-Cache: HIT", self.fetch("/script/purge-a"))
        url = self.origin.url("/script/purge-a")
        out = self.ctl("cache", "info", url).stdout
        self.assertIn(f"key: {url}\n", out)
        self.assertIn("status: 200 OK\n", out)
        self.assertIn("body: 100 bytes\n", out)
        self.assertIn("freshness lifetime: 300 s\n", out)
        self.assertRegex(out, r"fresh for: \d+ s\n")
        self.assertRegex(out, r"age: \d+ s\n")
        self.assertIn("  Cache-Control: max-age=300\n", out)
        self.assertEqual(self.ctl("purge", url).stdout, "purged 1 object(s)\n")
        r = self.ctl("cache", "info", url, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not in the cache", r.stderr)
        self.assertIn("X-Cache: MISS", self.fetch("/script/purge-a"))
        self.assertEqual(self.origin.count("/script/purge-a"), 2)
        # A URL not in the cache: nothing purged, not an error.
        self.assertEqual(self.ctl("purge", self.origin.url("/script/never")).stdout, "purged 0 object(s)\n")
        r = self.ctl("purge", "not-a-url", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not an absolute http", r.stderr)

    def test_purge_prefix(self):
        for p in ("/script/dir/1", "/script/dir/2", "/script/dirx", "/script/other"):
            self.origin.script(p, body="x", headers=[["Cache-Control", "max-age=300"]])
            self.fetch(p)
            self.assertIn("X-Cache: HIT", self.fetch(p))
        out = self.ctl("purge", "--prefix", self.origin.url("/script/dir/")).stdout
        self.assertEqual(out, "purged 2 object(s)\n")
        self.assertIn("X-Cache: MISS", self.fetch("/script/dir/1"))
        self.assertIn("X-Cache: MISS", self.fetch("/script/dir/2"))
        self.assertIn("X-Cache: HIT", self.fetch("/script/dirx"))
        self.assertIn("X-Cache: HIT", self.fetch("/script/other"))

    def test_cache_info_variants(self):
        self.origin.script("/script/vary", body_from_header="Accept-Language",
                           headers=[["Cache-Control", "max-age=300"], ["Vary", "Accept-Language"]])
        self.fetch("/script/vary", "Accept-Language: fr")
        self.fetch("/script/vary", "Accept-Language: de")
        self.assertIn("X-Cache: HIT", self.fetch("/script/vary", "Accept-Language: fr"))
        out = self.ctl("cache", "info", self.origin.url("/script/vary")).stdout
        self.assertIn("variants: 2\n", out)
        self.assertIn("variant: accept-language=de\n", out)
        self.assertIn("variant: accept-language=fr\n", out)
        self.assertEqual(out.count("status: 200 OK"), 2)
        out = self.ctl("purge", self.origin.url("/script/vary")).stdout
        self.assertEqual(out, "purged 3 object(s)\n")  # the Vary marker and both variants
        self.assertIn("X-Cache: MISS", self.fetch("/script/vary", "Accept-Language: de"))

    def test_dns_lookup_and_flush(self):
        self.assertIn("192.0.2.1", self.dig("www.a.test", "A"))
        self.assertIn("final.a.test", self.dig("chain.a.test", "A"))
        self.assertIn("192.0.2.4", self.dig("host.b.example", "A"))
        self.assertIn("NXDOMAIN", self.dig("nosuch.a.test", "A"))
        out = self.ctl("dns", "lookup", "www.a.test").stdout
        self.assertRegex(out, r"www\.a\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.1")
        self.assertRegex(out, r";; A: original TTL 300")
        out = self.ctl("dns", "lookup", "nosuch.a.test").stdout
        self.assertRegex(out, r";; NXDOMAIN, TTL \d+")
        # One name.
        out = self.ctl("dns", "flush", "www.a.test").stdout
        self.assertRegex(out, r"flushed [1-9]\d* entr")
        r = self.ctl("dns", "lookup", "www.a.test", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("nothing cached for www.a.test", r.stderr)
        self.assertIn("192.0.2.1", self.dig("www.a.test", "A"))
        self.ctl("dns", "lookup", "www.a.test")
        # A zone: everything at and under a.test goes, b.example stays.
        self.ctl("dns", "flush", "--zone", "a.test")
        for name in ("www.a.test", "final.a.test", "chain.a.test", "nosuch.a.test", "a.test"):
            self.assertEqual(self.ctl("dns", "lookup", name, check=False).returncode, 1, name)
        self.assertIn("192.0.2.4", self.ctl("dns", "lookup", "host.b.example").stdout)
        # The resolver asks upstream again after a flush (the counting relay sees it), though
        # the worker kept its reply: the digs come from one source port, so one worker answers
        # them (SO_REUSEPORT), the third from the reply it kept at the second.
        def kept_hits():
            with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN_PORT}/metrics", timeout=10) as r:
                return parse_samples(r.read().decode())["outpost_dns_reply_cache_hits_total"]

        same_port = "-b127.0.0.1#53531"
        hits0 = kept_hits()
        for _ in range(3):
            self.assertIn("192.0.2.9", self.dig(same_port, "long.count.test", "A"))
        self.assertEqual(self.hier.relay.count("long.count.test"), 1)
        self.assertEqual(kept_hits(), hits0 + 1)
        self.ctl("dns", "flush", "long.count.test")
        self.assertIn("192.0.2.9", self.dig(same_port, "long.count.test", "A"))
        self.assertEqual(self.hier.relay.count("long.count.test"), 2)
        self.assertEqual(kept_hits(), hits0 + 1)
        r = self.ctl("dns", "flush", "bad..name", check=False)
        self.assertEqual(r.returncode, 1)

    def test_log_level(self):
        self.assertEqual(self.ctl("log", "level", "warn").stdout, "log level warn\n")
        self.assertIn("log level: warn\n", self.ctl("status").stdout)
        r = self.ctl("log", "level", "loud", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("usage: log level", r.stderr)
        self.assertIn("log level: warn\n", self.ctl("status").stdout)
        # A reload applies the file's level again.
        self.ctl("reload")
        self.assertIn("log level: debug\n", self.ctl("status").stdout)

    def test_connections(self):
        idle = socket.create_connection(("127.0.0.1", h.PROXY_PORT))
        try:
            idle.sendall(f"GET {self.origin.url('/echo?idle')} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data:
                data += idle.recv(65536)
            port = idle.getsockname()[1]
            slow = threading.Thread(target=lambda: h.curl("-s", "-o", "/dev/null", self.origin.url("/slow?delay=3")))
            slow.start()
            seen = ""
            idle_line = rf"worker \d 127\.0\.0\.1:{port} age=\d+s phase=idle"
            for _ in range(100):  # until the slow request is in flight and the first one is done (at most 10 s)
                seen = self.ctl("connections").stdout
                if "/slow?delay=3" in seen and re.search(idle_line, seen):
                    break
                time.sleep(0.1)
            slow.join()
            self.assertRegex(seen, idle_line)
            self.assertRegex(seen, r"request=GET http://127\.0\.0\.1:8080/slow\?delay=3 stage=[\w-]+ age=\d+s")
        finally:
            idle.close()

    def test_reload(self):
        path = self.outpost.config_path
        with open(path) as f:
            original = f.read()
        try:
            with open(path, "w") as f:
                f.write(original.replace('level = "debug"', 'level = "info"'))
            out = self.ctl("reload").stdout
            self.assertIn(f"configuration reloaded from {path}", out)
            self.assertIn("log level: info\n", self.ctl("status").stdout)
            # A setting that needs a restart is named in the answer.
            with open(path, "w") as f:
                f.write(original.replace(f'socket = "{self.sock}"', f'socket = "{self.tmp}/other.sock"'))
            out = self.ctl("reload").stdout
            self.assertIn("a restart is needed to apply: control.socket", out)
            self.assertTrue(os.path.exists(self.sock))
            # A bad file is refused whole, with the reason.
            with open(path, "w") as f:
                f.write(original + "\n[proxy]\nno_such_key = 1\n")
            r = self.ctl("reload", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("configuration not reloaded", r.stderr)
        finally:
            with open(path, "w") as f:
                f.write(original)
            self.ctl("reload")
        self.assertIn("log level: debug\n", self.ctl("status").stdout)

    def test_hostile_clients(self):
        def error_of(answer):
            self.assertTrue(answer.startswith(b"error\n"), answer[:200])
            return answer.decode(errors="replace")

        self.assertIn("printable ASCII", error_of(unix_exchange(self.sock, b"status\x01\n")))
        self.assertIn("printable ASCII", error_of(unix_exchange(self.sock, b"st\xc3\xa4tus\n")))
        self.assertIn("empty command", error_of(unix_exchange(self.sock, b"   \n")))
        self.assertIn("more than 16 words", error_of(unix_exchange(self.sock, b"x " * 17 + b"\n")))
        self.assertIn("unknown command 'frobnicate'", error_of(unix_exchange(self.sock, b"frobnicate\n")))
        self.assertIn("longer than 8192", error_of(unix_exchange(self.sock, b"a" * 20000)))
        # Silent: cut after control.timeout with a clear answer.
        self.assertIn("no complete command", error_of(unix_exchange(self.sock, b"", timeout=TIMEOUT + 10)))
        # A command without its newline, then a half-close: taken as the command.
        self.assertTrue(unix_exchange(self.sock, b"status", shut=True).startswith(b"ok\nversion:"))
        # A half-close right after the command does not lose the answer.
        self.assertTrue(unix_exchange(self.sock, b"stats\n", shut=True).startswith(b"ok\n"))
        # Leaves at once.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.sock)
        s.close()
        # More clients than the service takes: the extra ones are closed without an answer.
        held = []
        try:
            for _ in range(24):
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.connect(self.sock)
                held.append(c)
            closed = 0
            for c in held[16:]:
                c.settimeout(TIMEOUT + 10)
                if c.recv(100) == b"":
                    closed += 1
            self.assertGreaterEqual(closed, 1)
        finally:
            for c in held:
                c.close()
        # Still serving.
        self.assertIn(f"pid: {self.outpost.proc.pid}\n", self.ctl("status").stdout)
        self.assertIsNone(self.outpost.proc.poll())

    def test_socket_lifecycle(self):
        d = os.path.join(self.tmp, "lifecycle")
        os.makedirs(d, exist_ok=True)
        sock = os.path.join(d, "c.sock")
        cfg = "[dns]\n" + h.fake_root_keys(self.hints) + f'listen = []\n[control]\nsocket = "{sock}"\n'
        a = h.Outpost(self.procs, d, port=h.PROXY_PORT + 10, extra_config=cfg).start()
        self.assertIn(f"pid: {a.proc.pid}", self.ctl("status", sock=sock).stdout)
        # A second Outpost on the same socket refuses to start, and the first keeps it.
        d2 = os.path.join(d, "second")
        os.makedirs(d2, exist_ok=True)
        b = h.Outpost(self.procs, d2, port=h.PROXY_PORT + 11, extra_config=cfg)
        with open(os.path.join(d2, "stderr.log"), "wb") as err:
            rc = subprocess.run([h.OUTPOST, "--config", b.config_path], stderr=err, stdout=subprocess.DEVNULL,
                                timeout=30).returncode
        self.assertNotEqual(rc, 0)
        self.assertIn("another process (another Outpost?) answers on it", b.log_text() + b.stderr_text())
        self.assertIn(f"pid: {a.proc.pid}", self.ctl("status", sock=sock).stdout)
        # Killed: the file stays; the next start replaces it.
        a.stop(signal.SIGKILL)
        self.assertTrue(os.path.exists(sock))
        r = self.ctl("status", sock=sock, check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot connect", r.stderr)
        a = h.Outpost(self.procs, d, port=h.PROXY_PORT + 10, extra_config=cfg).start()
        self.assertIn(f"pid: {a.proc.pid}", self.ctl("status", sock=sock).stdout)
        self.assertIn("removed the stale socket", a.log_text())
        # Stopped: the file goes.
        self.assertEqual(a.stop(), 0)
        self.assertFalse(os.path.exists(sock))
        # A path that is not a socket is never replaced.
        with open(sock, "w") as f:
            f.write("precious")
        with open(os.path.join(d, "stderr.log"), "wb") as err:
            rc = subprocess.run([h.OUTPOST, "--config", a.config_path], stderr=err, stdout=subprocess.DEVNULL,
                                timeout=30).returncode
        self.assertNotEqual(rc, 0)
        with open(sock) as f:
            self.assertEqual(f.read(), "precious")

    def test_no_control_socket_configured(self):
        d = os.path.join(self.tmp, "nocontrol")
        os.makedirs(d, exist_ok=True)
        cfg = os.path.join(d, "outpost.toml")
        with open(cfg, "w") as f:
            f.write("[server]\nworkers = 1\n")
        r = self.ctl("status", config=cfg, check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("no control socket", r.stderr)
        # The default configuration has none either.
        r = subprocess.run([h.OUTPOST, "ctl", "status"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    h.main()
