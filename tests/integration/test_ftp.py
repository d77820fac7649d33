#!/usr/bin/env python3
"""The FTP gateway ([ftp]): ftp:// URLs through the proxy against a real vsftpd started by
the test (anonymous, and a local user's login — the user exists only in this test's mount
namespace: copies of /etc/passwd, shadow and group with the user added are bind-mounted over
the real ones), and against a scripted hostile server (ftp_hostile.py).

Checked: files (small, 4 MiB stored, 24 MiB over the store's object limit) byte-exact with
Content-Length and Last-Modified; the second fetch of an unchanged file is answered from the
store after MDTM and SIZE only (vsftpd's protocol log shows no second RETR); a changed file
(new size, or only a new MDTM) is fetched again; missing and unreadable files are 404 with
the server's reply; a directory lists as HTML with links, and without its '/' is a 301; a
bad login is 401 with a challenge; destinations the rules deny are 403 without a
connection; a server that drops the data connection or lies about SIZE never gets its short
body presented as complete; junk replies are 502, a silent server 504; /metrics counts."""
import hashlib
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request

import harness as h

FTP_PORT = 2121
ADMIN_PORT = 9147
HOSTILE = {"drop": 2131, "drop426": 2132, "sizelie": 2133, "junk": 2134, "silent": 2135, "badpasv": 2136,
           "pasvmlsd": 2137}
PASSWORD = "s3cret pw"


def sha(b):
    return hashlib.sha256(b).hexdigest()


class Ftp(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        t = cls.tmp
        cls.root = os.path.join(t, "anon")
        os.makedirs(os.path.join(cls.root, "pub", "sub dir"))
        cls.files = {
            "hello.txt": b"hello over ftp\n",
            "pub/mid.bin": os.urandom(4 << 20),
            "pub/big.bin": os.urandom(24 << 20),
            "pub/change.txt": b"version one\n",
            "pub/sub dir/a & b.txt": b"ampersand\n",
            "pub/empty.dat": b"",
        }
        for name, data in cls.files.items():
            with open(os.path.join(cls.root, name), "wb") as f:
                f.write(data)
        secret = os.path.join(cls.root, "pub", "secret.txt")
        with open(secret, "wb") as f:
            f.write(b"not for anonymous\n")
        os.chmod(secret, 0o600)  # root's: vsftpd's anonymous user (ftp) cannot read it
        for d, _, _ in os.walk(cls.root):
            os.chmod(d, 0o555)
        # A local user, only in this mount namespace (its home under our temp dir).
        os.chmod(t, 0o711)
        home = os.path.join(t, "home")
        os.makedirs(home)
        with open(os.path.join(home, "mine.txt"), "wb") as f:
            f.write(b"the user's own file\n")
        os.chmod(home, 0o755)
        pw_hash = subprocess.run(["openssl", "passwd", "-6", PASSWORD], capture_output=True, check=True,
                                 text=True).stdout.strip()
        for name, line in (("passwd", f"ftptester:x:4242:4242::{home}:/bin/sh\n"),
                           ("shadow", f"ftptester:{pw_hash}:19000:0:99999:7:::\n"),
                           ("group", "ftptester:x:4242:\n")):
            copy = os.path.join(t, name)
            with open(f"/etc/{name}") as src, open(copy, "w") as dst:
                dst.write(src.read() + line)
            os.chmod(copy, 0o640 if name == "shadow" else 0o644)
            subprocess.run(["mount", "--bind", copy, f"/etc/{name}"], check=True)
        empty = os.path.join(t, "empty")
        os.makedirs(empty)
        cls.vlog = os.path.join(t, "vsftpd.log")
        conf = os.path.join(t, "vsftpd.conf")
        with open(conf, "w") as f:
            f.write(f"""listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port={FTP_PORT}
anonymous_enable=YES
local_enable=YES
write_enable=NO
no_anon_password=YES
anon_root={cls.root}
secure_chroot_dir={empty}
pasv_enable=YES
pasv_min_port=30000
pasv_max_port=30100
seccomp_sandbox=NO
background=NO
pam_service_name=vsftpd
xferlog_enable=YES
xferlog_std_format=NO
log_ftp_protocol=YES
vsftpd_log_file={cls.vlog}
delay_failed_login=0
""")
        os.chown(conf, 0, 0)
        cls.vsftpd = cls.procs.start(["vsftpd", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        h.wait_port(FTP_PORT, proc=cls.vsftpd)
        for mode, port in HOSTILE.items():
            p = cls.procs.start(["python3", os.path.join(h.HERE, "ftp_hostile.py"), str(port), mode])
            h.wait_port(port, proc=p)
        cls.outpost = h.Outpost(cls.procs, t, extra_config=(
            f'[admin]\nenabled = true\nlisten = ["127.0.0.1:{ADMIN_PORT}"]\n'
            f'[log]\nlevel = "{os.environ.get("FTP_LOG_LEVEL", "debug")}"\nfile = "{t}/outpost.log"\naccess_log = "{t}/access.log"\n'
            # A refused login takes pam_unix's delay (2 s, +-25%) before the 530: the timeout
            # stays above it (the silent and junk servers wait this long).
            '[ftp]\ntimeout = 5\n'
            '[cache]\nmemory_size = 67108864\n')).start()
        h.wait_port(ADMIN_PORT, proc=cls.outpost.proc)

    def get(self, url, *args, check=True):
        return h.curl("-D", "-", "-o", "-", *args, url, check=check)

    @staticmethod
    def split(out):
        head, _, body = out.partition(b"\r\n\r\n")
        return head.decode(errors="replace"), body

    def retr_count(self, name):
        return self.command_count("RETR " + name)

    def command_count(self, command):
        """How often vsftpd's protocol log shows COMMAND (the whole command line, or its verb)."""
        with open(self.vlog, errors="replace") as f:
            return len(re.findall(r'FTP command: Client "[^"]*", "' + re.escape(command) + '( [^"]*)?"', f.read()))

    def metrics(self):
        return h.scrape_metrics(ADMIN_PORT)

    def logged(self, url, code, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(f" {url} " in l and code in l for l in self.outpost.access_lines()):
                return True
            time.sleep(0.1)
        return False

    def test_small_file_then_hit_without_transfer(self):
        url = f"ftp://127.0.0.1:{FTP_PORT}/hello.txt"
        head, body = self.split(self.get(url).stdout)
        self.assertIn("HTTP/1.1 200", head)
        self.assertEqual(body, self.files["hello.txt"])
        self.assertIn("Content-Type: text/plain", head)
        self.assertIn(f"Content-Length: {len(body)}", head)
        self.assertIn("Last-Modified: ", head)
        self.assertTrue(self.logged(url, "TCP_MISS/200"))
        retr = self.retr_count("hello.txt")
        self.assertEqual(retr, 1)
        head, body = self.split(self.get(url).stdout)
        self.assertEqual(body, self.files["hello.txt"])
        self.assertTrue(self.logged(url, "TCP_REFRESH_UNMODIFIED/200"), "\n".join(self.outpost.access_lines()))
        self.assertEqual(self.retr_count("hello.txt"), retr, "an unchanged file was transferred again")
        # HEAD: the head alone, from the same validators.
        r = h.curl("-I", url)
        self.assertIn(b"Content-Length: 15", r.stdout)

    def test_large_files_hash(self):
        for name in ("pub/mid.bin", "pub/big.bin"):
            url = f"ftp://127.0.0.1:{FTP_PORT}/{name}"
            r = h.curl(url)
            self.assertEqual(sha(r.stdout), sha(self.files[name]), name)
        # 4 MiB fits the store: a hit, byte-exact; 24 MiB is over max_object_size: transferred again.
        mid = f"ftp://127.0.0.1:{FTP_PORT}/pub/mid.bin"
        self.assertEqual(sha(h.curl(mid).stdout), sha(self.files["pub/mid.bin"]))
        self.assertTrue(self.logged(mid, "TCP_REFRESH_UNMODIFIED/200"))
        self.assertEqual(self.retr_count("mid.bin"), 1)
        big = f"ftp://127.0.0.1:{FTP_PORT}/pub/big.bin"
        self.assertEqual(sha(h.curl("--limit-rate", "8M", big).stdout), sha(self.files["pub/big.bin"]))
        self.assertEqual(self.retr_count("big.bin"), 2)

    def test_changed_file_fetched_again(self):
        url = f"ftp://127.0.0.1:{FTP_PORT}/pub/change.txt"
        path = os.path.join(self.root, "pub", "change.txt")
        self.assertEqual(h.curl(url).stdout, b"version one\n")
        # The copy is committed on the server's 226, which can come after curl has its
        # Content-Length bytes; the transaction is logged after the commit.
        self.assertTrue(self.logged(url, "TCP_MISS/200"))
        os.chmod(os.path.join(self.root, "pub"), 0o755)
        try:
            with open(path, "wb") as f:
                f.write(b"version two, longer\n")
            self.assertEqual(h.curl(url).stdout, b"version two, longer\n")
            self.assertTrue(self.logged(url, "TCP_REFRESH_MODIFIED/200"))
            # Same size, only a new modification time.
            with open(path, "wb") as f:
                f.write(b"version 3!, longer\n\n")
            st = os.stat(path)
            os.utime(path, (st.st_atime, st.st_mtime + 3600))
            self.assertEqual(h.curl(url).stdout, b"version 3!, longer\n\n")
        finally:
            os.chmod(os.path.join(self.root, "pub"), 0o555)
        self.assertEqual(self.retr_count("change.txt"), 3)

    def test_empty_file(self):
        head, body = self.split(self.get(f"ftp://127.0.0.1:{FTP_PORT}/pub/empty.dat").stdout)
        self.assertIn("HTTP/1.1 200", head)
        self.assertIn("Content-Length: 0", head)
        self.assertEqual(body, b"")

    def test_missing_and_unreadable_are_404(self):
        for name in ("nothing-here.txt", "pub/secret.txt", "nodir/x.txt"):
            head, body = self.split(self.get(f"ftp://127.0.0.1:{FTP_PORT}/{name}", check=False).stdout)
            self.assertIn("HTTP/1.1 404", head, name)
            self.assertIn(b"550", body, name)  # the server's reply is on the page

    def test_directory_listing_and_redirect(self):
        head, body = self.split(self.get(f"ftp://127.0.0.1:{FTP_PORT}/pub/").stdout)
        self.assertIn("HTTP/1.1 200", head)
        self.assertIn("Content-Type: text/html", head)
        page = body.decode()
        self.assertIn('<a href="mid.bin">mid.bin</a>', page)
        self.assertIn('<a href="mid.bin;type=i">[download]</a>', page)
        self.assertIn('<a href="sub%20dir/">sub dir/</a>', page)
        self.assertIn('<a href="../">Parent Directory</a>', page)
        self.assertIn(str(4 << 20), page)
        head, body = self.split(self.get(f"ftp://127.0.0.1:{FTP_PORT}/pub/sub%20dir/").stdout)
        self.assertIn('<a href="a%20%26%20b.txt">a &amp; b.txt</a>', body.decode())
        # The link works.
        self.assertEqual(h.curl(f"ftp://127.0.0.1:{FTP_PORT}/pub/sub%20dir/a%20%26%20b.txt").stdout, b"ampersand\n")
        head, _ = self.split(self.get(f"ftp://127.0.0.1:{FTP_PORT}/pub", check=False).stdout)
        self.assertIn("HTTP/1.1 301", head)
        self.assertIn(f"Location: ftp://127.0.0.1:{FTP_PORT}/pub/", head)
        # MLSD is tried first; vsftpd answers 500, so LIST, and LIST at once after that (each
        # of the two workers learns it once).
        for _ in range(2):
            self.assertIn(b"mid.bin", h.curl(f"ftp://127.0.0.1:{FTP_PORT}/pub/").stdout)
        self.assertEqual(self.command_count("LIST"), 4)
        self.assertIn(self.command_count("MLSD"), (1, 2))
        self.assertGreaterEqual(h.metric(urllib.request.urlopen(f"http://127.0.0.1:{ADMIN_PORT}/metrics").read().decode(),
                                         "outpost_ftp_mlsd_fallbacks_total"), 1)

    def test_passive_only_epsv_first(self):
        # Every data connection vsftpd saw was asked with EPSV; never PORT/EPRT (active).
        self.assertEqual(h.curl(f"ftp://127.0.0.1:{FTP_PORT}/hello.txt").stdout, self.files["hello.txt"])
        self.assertGreaterEqual(self.command_count("EPSV"), 1)
        self.assertEqual(self.command_count("PASV"), 0)
        self.assertEqual(self.command_count("PORT") + self.command_count("EPRT"), 0)
        # A server without EPSV: PASV (its data connection on the control connection's address).
        r = h.curl("-D", "-", f"ftp://127.0.0.1:{HOSTILE['pasvmlsd']}/f.txt")
        head, body = self.split(r.stdout)
        self.assertIn("HTTP/1.1 200", head)
        self.assertEqual(body, b"via PASV ok\n")

    def test_mlsd_listing(self):
        # A server with MLSD: its facts, not LIST's lines, make the page.
        page = h.curl(f"ftp://127.0.0.1:{HOSTILE['pasvmlsd']}/dir/").stdout.decode()
        self.assertIn('<a href="only%20in%20mlsd.iso">only in mlsd.iso</a>', page)
        self.assertIn("123456789", page)
        self.assertIn('<a href="subdir/">subdir/</a>', page)
        self.assertNotIn("only-in-list.txt", page)
        self.assertGreaterEqual(h.metric(urllib.request.urlopen(f"http://127.0.0.1:{ADMIN_PORT}/metrics").read().decode(),
                                         "outpost_ftp_listings_total", command="mlsd"), 1)

    def test_slow_reader_back_pressure(self):
        # A client that reads nothing after the head: the transfer pauses (curl's
        # CURL_WRITEFUNC_PAUSE) instead of the proxy buffering the 24 MiB file.
        before = self.metrics()
        rss_before = self.outpost.rss_kib()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.settimeout(60)
        s.connect(("127.0.0.1", h.PROXY_PORT))
        s.sendall(f"GET ftp://127.0.0.1:{FTP_PORT}/pub/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        # Wait until the gateway has paused and stopped taking bytes from vsftpd.
        last, stable = -1.0, 0
        while stable < 3:
            time.sleep(0.3)
            m = self.metrics()
            got = m["outpost_ftp_received_bytes_total"]
            stable = stable + 1 if got == last and m["outpost_ftp_pauses_total"] > before["outpost_ftp_pauses_total"] else 0
            last = got
        held = last - before["outpost_ftp_received_bytes_total"]
        rss_growth = self.outpost.rss_kib() - rss_before
        print(f"slow reader: {held / 1048576:.1f} MiB taken from the server while the client read nothing; "
              f"RSS grew {rss_growth / 1024:.1f} MiB")
        self.assertLess(held, 8 << 20)  # the 24 MiB file was not read ahead
        self.assertLess(rss_growth, 20 << 10)
        # Every transfer is paused: the gateway's 10 ms curl tick has stopped too.
        ticks = self.metrics()["outpost_ftp_loop_ticks_total"]
        time.sleep(1)
        self.assertEqual(self.metrics()["outpost_ftp_loop_ticks_total"], ticks)
        # The client reads again: the transfer resumes and completes byte-exact.
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            buf += d
        s.close()
        head, _, body = buf.partition(b"\r\n\r\n")
        self.assertIn(b"200", head.split(b"\r\n")[0])
        self.assertEqual(sha(body), sha(self.files["pub/big.bin"]))
        # Nothing runs: no tick either.
        self.assertTrue(self.logged(f"ftp://127.0.0.1:{FTP_PORT}/pub/big.bin", "/200"))
        ticks = self.metrics()["outpost_ftp_loop_ticks_total"]
        time.sleep(1)
        self.assertEqual(self.metrics()["outpost_ftp_loop_ticks_total"], ticks)

    def test_user_login(self):
        pw = PASSWORD.replace(" ", "%20")
        url = f"ftp://ftptester:{pw}@127.0.0.1:{FTP_PORT}/mine.txt"
        head, body = self.split(self.get(url).stdout)
        self.assertIn("HTTP/1.1 200", head)
        self.assertEqual(body, b"the user's own file\n")
        # The password never reaches the access log.
        self.assertTrue(self.logged(f"ftp://127.0.0.1:{FTP_PORT}/mine.txt", "TCP_MISS/200"))
        self.assertFalse(any("s3cret" in l for l in self.outpost.access_lines()))
        head, body = self.split(self.get(f"ftp://ftptester:wrong@127.0.0.1:{FTP_PORT}/mine.txt", check=False).stdout)
        self.assertIn("HTTP/1.1 401", head)
        self.assertIn('WWW-Authenticate: Basic realm="FTP 127.0.0.1:2121"', head)
        self.assertIn(b"530", body)
        # Credentials in Authorization (what a browser sends after the 401).
        r = h.curl("-H", "Authorization: Basic " + __import__("base64").b64encode(
            f"ftptester:{PASSWORD}".encode()).decode(), f"ftp://127.0.0.1:{FTP_PORT}/mine.txt")
        self.assertEqual(r.stdout, b"the user's own file\n")

    def test_control_characters_in_credentials_never_reach_a_server(self):
        # libcurl 7.88 sends CURLOPT_USERNAME/PASSWORD as they are: a decoded CR LF would put
        # the client's commands on the control connection (DELE, SITE, PORT for a bounce) or
        # lines on any TCP service (SMTP). A listener that records what reaches it.
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(8)
        lst.settimeout(0.5)
        port = lst.getsockname()[1]
        try:
            for userinfo in ("anonymous%0D%0ADELE%20pub:pw", "anonymous:x%0D%0ASITE%20CHMOD%20777%20x",
                             "a%0AMAIL%20FROM:x:pw", "a%00b:pw", "a:%7F"):
                r = h.raw_exchange(f"GET ftp://{userinfo}@127.0.0.1:{port}/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   "Connection: close\r\n\r\n".encode(), until_close=True)
                self.assertEqual(h.status_of(r), 400, userinfo)
                self.assertIn(b"control character", r)
            with self.assertRaises(socket.timeout):
                lst.accept()
        finally:
            lst.close()
        # Outpost still serves.
        self.assertEqual(h.curl(f"ftp://127.0.0.1:{FTP_PORT}/hello.txt").stdout, self.files["hello.txt"])

    def test_credentials_never_logged_on_refusals(self):
        # Refused before the gateway (method, malformed URL): the access log and the log keep
        # the target without its user:password.
        for req in (f"PUT ftp://alice:hunter2a@127.0.0.1:{FTP_PORT}/up.txt HTTP/1.1",
                    "GET ftp://alice:hunter2b@[bad/x HTTP/1.1",
                    f"GET ftp://alice:hunter2c%0A@127.0.0.1:{FTP_PORT}/x HTTP/1.1"):
            r = h.raw_exchange(f"{req}\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode(),
                               until_close=True)
            self.assertIn(h.status_of(r), (400, 501), req)
        self.assertTrue(self.logged(f"ftp://127.0.0.1:{FTP_PORT}/up.txt", "/501"))
        self.outpost.access_lines(until=lambda ls: any(f"127.0.0.1:{FTP_PORT}/x " in l for l in ls))
        text = "\n".join(self.outpost.access_lines()) + self.outpost.log_text()
        for pw in ("hunter2a", "hunter2b", "hunter2c"):
            self.assertNotIn(pw, text)

    def test_denied_destination(self):
        head, _ = self.split(self.get("ftp://192.0.2.1/x.txt", check=False).stdout)
        self.assertIn("HTTP/1.1 403", head)
        self.assertTrue(self.logged("ftp://192.0.2.1/x.txt", "TCP_DENIED/403"))

    def test_hostile_servers(self):
        # The data connection ends early: the client sees an incomplete body (curl 18), never
        # a complete response.
        for mode in ("drop", "drop426"):
            r = h.curl("-D", "-", f"ftp://127.0.0.1:{HOSTILE[mode]}/file.bin", check=False)
            self.assertIn(b"Content-Length: 1000000", r.stdout, mode)
            self.assertEqual(r.returncode, 18, (mode, r.stderr))
        # More than SIZE announced: cut, not padded into the promised length.
        r = h.curl("-D", "-", f"ftp://127.0.0.1:{HOSTILE['sizelie']}/file.bin", check=False)
        self.assertIn(b"Content-Length: 10", r.stdout)
        self.assertEqual(r.returncode, 18, r.stderr)
        # Junk is no reply: curl waits for one, so ftp.timeout ends it (504), or it is malformed (502).
        head, _ = self.split(self.get(f"ftp://127.0.0.1:{HOSTILE['junk']}/file.bin", check=False).stdout)
        self.assertRegex(head, r"HTTP/1.1 50[24]")
        head, _ = self.split(self.get(f"ftp://127.0.0.1:{HOSTILE['silent']}/file.bin", check=False).stdout)
        self.assertIn("HTTP/1.1 504", head)
        head, _ = self.split(self.get(f"ftp://127.0.0.1:{HOSTILE['badpasv']}/file.bin", check=False).stdout)
        self.assertIn("HTTP/1.1 502", head)
        # Nothing of the broken transfers was stored: the next try transfers again.
        r = h.curl("-D", "-", f"ftp://127.0.0.1:{HOSTILE['drop']}/file.bin", check=False)
        self.assertEqual(r.returncode, 18)
        # Outpost still serves.
        self.assertEqual(h.curl(f"ftp://127.0.0.1:{FTP_PORT}/hello.txt").stdout, self.files["hello.txt"])

    def test_chromium_sends_no_ftp_to_the_proxy(self):
        # Chromium removed FTP in version 95, and with it ftp:// through a proxy: given a proxy
        # (no bypass, loopback included) it neither asks the proxy nor the server. If this
        # fails, a Chromium speaks FTP via proxies again: docs/FTP.md must say so.
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if not chromium:
            raise RuntimeError("chromium is not installed (scripts/install-deps.sh test installs it)")
        profile = os.path.join(self.tmp, "chromium-profile")
        os.makedirs(profile, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env["HOME"] = self.tmp
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}",
               f"--proxy-server=http://127.0.0.1:{h.PROXY_PORT}", "--proxy-bypass-list=<-loopback>",
               "--virtual-time-budget=3000", "--dump-dom", f"ftp://127.0.0.1:{FTP_PORT}/hello.txt?probe-from-chromium"]
        r = subprocess.run(cmd, capture_output=True, timeout=90, env=env)
        self.assertNotIn(b"hello over ftp", r.stdout)
        # Chromium has exited: a request of its would be logged before this marker.
        self.assertEqual(h.curl(f"ftp://127.0.0.1:{FTP_PORT}/hello.txt").stdout, self.files["hello.txt"])
        self.assertTrue(self.logged(f"ftp://127.0.0.1:{FTP_PORT}/hello.txt", "/200"))
        self.assertFalse(any("probe-from-chromium" in l for l in self.outpost.access_lines()), r.stderr[-2000:])
        self.assertEqual(self.command_count("RETR hello.txt?probe-from-chromium"), 0)

    def test_zz_metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN_PORT}/metrics", timeout=10) as r:
            text = r.read().decode()
        def value(name):
            m = re.search(r"^" + re.escape(name) + r" (\S+)$", text, re.M)
            return float(m.group(1)) if m else 0.0
        self.assertGreaterEqual(value('outpost_ftp_requests_total{result="hit"}'), 1, text[-3000:])
        self.assertGreaterEqual(value('outpost_ftp_requests_total{result="listing"}'), 1)
        self.assertGreaterEqual(value('outpost_ftp_requests_total{result="error"}'), 1)
        self.assertGreaterEqual(value("outpost_ftp_received_bytes_total"), 28 << 20)


if __name__ == "__main__":
    h.main()
