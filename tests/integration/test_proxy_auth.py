#!/usr/bin/env python3
"""Proxy authentication with the htpasswd back end ([auth]): an htpasswd file made by Apache's
htpasswd (bcrypt, SHA-256 crypt, SHA-512 crypt, and an Apache-MD5 line Outpost refuses) and a
group file. curl without credentials gets 407 with Proxy-Authenticate; with good ones the
answer, and the user in the access log's user column; wrong passwords, unknown users,
malformed and non-Basic credentials get 407; no password (nor its base64) ever reaches a log.
The rules by group (a guest refused one host by name, 403, allowed others); CONNECT the same
way (407 and close without credentials, a tunnel with them); the verdict cache (one check for
many requests, /metrics); SIGHUP with a user removed (refused at once, cache and all) and one
added, and a reload whose file is missing (refused whole, the old users still work).
Headless Chromium (driven over the DevTools protocol, answering its proxy-credentials
prompt) loads a page and its script as a user; with a wrong password it gets only 407s.
Intercepted traffic: a bumped CONNECT authenticates like any other, and the requests inside
its tunnel (which carry no credentials) are its user's, in the access log too."""
import base64
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

import cdp
import dnsfixture
import harness as h

ADMIN_PORT = 9146
TUNNEL_PORT = 8443   # a test origin reached through CONNECT
USERS = {"alice": ("-B", "wonder land"), "bob": ("-5", "b0b-pass"), "carol": ("-2", "c@rol"),
         "dave": ("-m", "apr1-pass")}


def htpasswd(path, user, flag, password, create=False):
    args = ["htpasswd", "-b"] + (["-c"] if create else []) + ([flag] if flag else []) + [path, user, password]
    subprocess.run(args, check=True, capture_output=True)


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class ProxyAuth(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hier = dnsfixture.Hierarchy(os.path.join(cls.tmp, "dns"))
        cls.hier.start()
        cls.hints = cls.hier.write_hints()
        cls.origin = h.TestOrigin(cls.procs)
        cls.tunnel_origin = h.TestOrigin(cls.procs, port=TUNNEL_PORT)
        cls.users = os.path.join(cls.tmp, "htpasswd")
        first = True
        for user, (flag, password) in USERS.items():
            htpasswd(cls.users, user, flag, password, create=first)
            first = False
        cls.groups = os.path.join(cls.tmp, "groups")
        with open(cls.groups, "w") as f:
            f.write("# staff and guests\nstaff: alice bob\nguests: carol\n")
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config=(
            "[dns]\n" + h.fake_root_keys(cls.hints) + "listen = []\n"
            f'[admin]\nenabled = true\nlisten = ["127.0.0.1:{ADMIN_PORT}"]\n'
            f'[auth]\nbackend = "htpasswd"\nrealm = "Outpost test"\nhtpasswd_file = "{cls.users}"\n'
            f'group_file = "{cls.groups}"\ncache_ttl = 300\n'
            'rules = [{ action = "deny", groups = ["guests"], hosts = ["origin.a.test"] }]\n')).start()

    @classmethod
    def tearDownClass(cls):
        cls.hier.stop()
        super().tearDownClass()

    def get(self, url, *extra):
        """curl through the proxy: (status, headers text)."""
        r = h.curl("-s", "-o", "/dev/null", "-D", "-", *extra, url, check=False)
        head = r.stdout.decode(errors="replace")
        m = re.match(r"HTTP/1\.1 (\d+)", head)
        self.assertIsNotNone(m, head + r.stderr.decode(errors="replace"))
        return int(m.group(1)), head

    def as_user(self, user, url=None):
        return self.get(url or self.origin.url("/echo"), "-U", f"{user}:{USERS[user][1]}")

    def metric(self, name, labels=""):
        with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN_PORT}/metrics", timeout=10) as r:
            text = r.read().decode()
        m = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    def access_line_for(self, marker, also=""):
        """The last access-log line with `marker` (and `also`), once there is one."""
        for _ in range(50):
            lines = [l for l in self.outpost.access_lines() if marker in l and also in l]
            if lines:
                return lines[-1]
            time.sleep(0.1)
        self.fail(f"no access-log line with {marker}")

    def wait_log(self, text, timeout=10):
        """The log once it holds `text` (it is flushed every second)."""
        deadline = time.time() + timeout
        while time.time() < deadline and text not in self.outpost.log_text():
            time.sleep(0.1)
        log = self.outpost.log_text()
        self.assertIn(text, log)
        return log

    def test_no_credentials_407(self):
        status, head = self.get(self.origin.url("/anon-only"))
        self.assertEqual(status, 407)
        self.assertIn('Proxy-Authenticate: Basic realm="Outpost test", charset="UTF-8"', head)
        line = self.access_line_for("/anon-only")
        self.assertIn("TCP_DENIED/407", line)
        self.assertRegex(line, r" GET http://127\.0\.0\.1:8080/anon-only - HIER_NONE/")
        self.assertEqual(self.origin.count("/anon-only"), 0)  # nothing reached the origin

    def test_good_credentials_every_hash_and_user_in_log(self):
        for user in ("alice", "bob", "carol"):
            status, _ = self.get(self.origin.url(f"/echo?u={user}"), "-U", f"{user}:{USERS[user][1]}")
            self.assertEqual(status, 200, user)
            line = self.access_line_for(f"/echo?u={user}")
            self.assertRegex(line, rf" GET http://127\.0\.0\.1:8080/echo\?u={user} {user} HIER_DIRECT/")
            # The credentials are the proxy's: never forwarded.
            self.assertNotIn("proxy-authorization", self.origin.last_headers("/echo"))

    def test_bad_credentials_407_and_never_logged(self):
        cases = [("alice", "wrong password!"), ("nosuchuser", "whatever-pw"), ("dave", USERS["dave"][1])]
        for user, password in cases:
            status, head = self.get(self.origin.url("/echo?bad"), "-U", f"{user}:{password}")
            self.assertEqual(status, 407, user)
            self.assertIn("Proxy-Authenticate: Basic", head)
        log = self.wait_log("user alice not authenticated (wrong password)")
        self.assertIn("user nosuchuser not authenticated (unknown user)", log)
        # dave's Apache-MD5 hash was refused when the file was read.
        self.assertRegex(log, r"htpasswd:4: user dave has a password hash in Apache MD5")
        # Malformed and other schemes, raw.
        for value, why in (("Basic !!!notbase64", "not base64"), ("Basic " + base64.b64encode(b"nocolon").decode(),
                                                                    "without a ':'"),
                           ("Digest username=\"alice\"", "other than Basic")):
            resp = h.raw_exchange(f"GET {self.origin.url('/echo')} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                                  f"Proxy-Authorization: {value}\r\nConnection: close\r\n\r\n".encode(),
                                  until_close=True)
            self.assertEqual(h.status_of(resp), 407, value)
            time.sleep(0.05)
        log = self.wait_log("Basic credentials that are not base64, 407")
        self.assertIn("Basic credentials without a ':' between user and password, 407", log)
        self.assertIn("Proxy-Authorization in a scheme other than Basic, 407", log)
        # No password, nor its base64, anywhere in the logs (the debug level logs a lot).
        self.outpost.access_lines()
        time.sleep(1.2)  # the access log is flushed every second
        with open(self.outpost.access_log) as f:
            access = f.read()
        log = self.outpost.log_text()
        for user, (_, password) in USERS.items():
            for secret in (password, base64.b64encode(f"{user}:{password}".encode()).decode()):
                self.assertNotIn(secret, log)
                self.assertNotIn(secret, access)
        self.assertNotIn("wrong password!", log + access)

    def test_group_rules(self):
        status, head = self.as_user("carol", "http://origin.a.test:8080/echo?guest")
        self.assertEqual(status, 403, head)
        self.assertIn("TCP_DENIED/403", self.access_line_for("/echo?guest"))
        self.assertEqual(self.as_user("carol", self.origin.url("/echo?guest-ip"))[0], 200)
        self.assertEqual(self.as_user("alice", "http://origin.a.test:8080/echo?staff")[0], 200)

    def test_connect(self):
        # Without credentials: 407 and the connection closes.
        resp = h.raw_exchange(f"CONNECT 127.0.0.1:{TUNNEL_PORT} HTTP/1.1\r\nHost: 127.0.0.1:{TUNNEL_PORT}\r\n\r\n"
                              .encode(), until_close=True)
        self.assertEqual(h.status_of(resp), 407)
        self.assertIn(b"Proxy-Authenticate: Basic", resp)
        # With them: a tunnel (curl -p: CONNECT, then the request through it).
        r = h.curl("-s", "-p", "-U", f"bob:{USERS['bob'][1]}", f"http://127.0.0.1:{TUNNEL_PORT}/echo?tunnel")
        self.assertIn(b'"path": "/echo?tunnel"', r.stdout)
        # (A tunnel is logged when it closes, a moment after curl is done.)
        line = self.access_line_for(f"CONNECT 127.0.0.1:{TUNNEL_PORT}", also="TCP_TUNNEL/200")
        self.assertRegex(line, rf"CONNECT 127\.0\.0\.1:{TUNNEL_PORT} bob HIER_DIRECT/")
        # A guest refused a host by name: 403 for the CONNECT too.
        r = h.curl("-s", "-p", "-U", f"carol:{USERS['carol'][1]}", "-o", "/dev/null", "-w", "%{http_connect}",
                   f"http://origin.a.test:{TUNNEL_PORT}/", check=False)
        self.assertEqual(r.stdout, b"403")

    def test_verdicts_are_cached(self):
        self.assertEqual(self.as_user("bob", self.origin.url("/echo?warm"))[0], 200)
        before = self.metric("outpost_proxy_auth_cached_total")
        for i in range(10):
            self.assertEqual(self.as_user("bob", self.origin.url(f"/echo?cached={i}"))[0], 200)
        self.assertEqual(self.metric("outpost_proxy_auth_cached_total") - before, 10)
        self.assertGreater(self.metric("outpost_proxy_auth_total", '{result="ok"}'), 0)

    def test_reload(self):
        self.assertEqual(self.as_user("alice")[0], 200)
        with open(self.users) as f:
            saved = f.read()
        try:
            subprocess.run(["htpasswd", "-D", self.users, "alice"], check=True, capture_output=True)
            htpasswd(self.users, "erin", "-B", "erin-pass")
            self.outpost.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 10
            while time.time() < deadline:
                if self.get(self.origin.url("/echo"), "-U", "erin:erin-pass")[0] == 200:
                    break
                time.sleep(0.1)
            self.assertEqual(self.get(self.origin.url("/echo"), "-U", "erin:erin-pass")[0], 200)
            # alice's verdict was cached: the new file is a new cache.
            self.assertEqual(self.as_user("alice")[0], 407)
            # A file that cannot be read: the reload is refused, the users of the last one stay.
            os.rename(self.users, self.users + ".away")
            self.outpost.proc.send_signal(signal.SIGHUP)
            self.wait_log("configuration not reloaded: auth:")
            self.assertEqual(self.get(self.origin.url("/echo"), "-U", "erin:erin-pass")[0], 200)
            os.rename(self.users + ".away", self.users)
        finally:
            with open(self.users, "w") as f:
                f.write(saved)
            self.outpost.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 10
            while time.time() < deadline and self.as_user("alice")[0] != 200:
                time.sleep(0.1)
        self.assertEqual(self.as_user("alice")[0], 200)

    def browse(self, user, password, port):
        """Loads a page through the proxy in headless Chromium, answering every proxy
        credentials prompt with user/password once per request. The page's text (or None if
        it did not load) and the number of prompts."""
        import shutil
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        self.assertIsNotNone(chromium, "chromium is needed (scripts/install-deps.sh test)")
        profile = os.path.join(self.tmp, f"profile-{user}-{port}")
        os.makedirs(profile, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env["HOME"] = self.tmp
        proc = self.procs.start(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--remote-debugging-port={port}",
             f"--proxy-server=http://127.0.0.1:{h.PROXY_PORT}", "--proxy-bypass-list=<-loopback>", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        prompts = {}
        state = {"loaded": False, "failed": False}
        try:
            c = cdp.Cdp(port)

            def on_event(msg):
                m, p = msg["method"], msg.get("params", {})
                if m == "Fetch.requestPaused":
                    c.send("Fetch.continueRequest", requestId=p["requestId"])
                elif m == "Fetch.authRequired":
                    rid = p["requestId"]
                    prompts[rid] = prompts.get(rid, 0) + 1
                    self.assertEqual(p["authChallenge"]["source"], "Proxy")
                    self.assertEqual(p["authChallenge"]["realm"], "Outpost test")
                    answer = ({"response": "ProvideCredentials", "username": user, "password": password}
                              if prompts[rid] == 1 else {"response": "CancelAuth"})
                    c.send("Fetch.continueWithAuth", requestId=rid, authChallengeResponse=answer)
                elif m == "Page.loadEventFired":
                    state["loaded"] = True

            c.call("Page.enable", on_event)
            c.call("Fetch.enable", on_event, handleAuthRequests=True, patterns=[{"urlPattern": "*"}])
            c.call("Page.navigate", on_event, url=self.origin.url("/script/page.html"))
            deadline = time.time() + 30
            while not state["loaded"] and time.time() < deadline:
                on_event(c.next_event())
            text = c.call("Runtime.evaluate", on_event, expression="document.body ? document.body.innerText : ''",
                          returnByValue=True)["result"].get("value")
            c.close()
            return text, sum(prompts.values())
        finally:
            proc.terminate()
            proc.wait(10)

    def test_chromium_page_as_a_user(self):
        self.origin.script("/script/page.html", content_type="text/html",
                           body='<!DOCTYPE html><html><body><p id="x">script did not run</p>'
                                '<script src="/script/app.js"></script></body></html>')
        self.origin.script("/script/app.js", content_type="application/javascript",
                           body="document.getElementById('x').textContent = 'script ran as a user';")
        text, prompts = self.browse("alice", USERS["alice"][1], 9223)
        self.assertIn("script ran as a user", text or "")
        self.assertGreaterEqual(prompts, 1)
        page = self.access_line_for("/script/page.html", also="/200 ")
        self.assertRegex(page, r" GET http://127\.0\.0\.1:8080/script/page\.html alice HIER_DIRECT/")
        self.assertRegex(self.access_line_for("/script/app.js", also="/200 "), r" alice HIER_DIRECT/")
        # A wrong password: the prompt comes back, is cancelled, and nothing reaches the origin.
        before = self.origin.count("/script/page.html")
        text, prompts = self.browse("alice", "not her password", 9224)
        self.assertNotIn("script ran", text or "")
        self.assertGreaterEqual(prompts, 2)
        self.assertEqual(self.origin.count("/script/page.html"), before)


class InterceptAuth(h.IntegrationTest):
    """[auth] with [intercept]: HTTPS through a bumped tunnel (curl trusting Outpost's CA, an
    nginx origin signed by a test CA, names from a local zone)."""
    PROXY = h.PROXY_PORT + 20
    ORIGIN = 8444

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = os.path.join(cls.tmp, "certs")
        os.makedirs(c)
        h.make_test_pki(c)
        h.sign_leaf(c, "origin", "DNS:origin.test")
        cls.nginx = h.Nginx(cls.procs, cls.tmp, extra_http=h.nginx_tls_server(cls.ORIGIN, c, "origin",
                                                                              os.path.join(cls.tmp, "www")),
                            extra_ports=(cls.ORIGIN,))
        cls.nginx.put_file("hello.txt", b"hello through the bump\n")
        cls.ca = os.path.join(cls.tmp, "intercept-ca.pem")
        ca_key = os.path.join(cls.tmp, "intercept-ca.key")
        subprocess.run([h.OUTPOST, "ca", "init", "--cert", cls.ca, "--key", ca_key], check=True, capture_output=True)
        cls.users = os.path.join(cls.tmp, "htpasswd")
        htpasswd(cls.users, "bob", "-5", USERS["bob"][1], create=True)
        cls.outpost = h.Outpost(
            cls.procs, cls.tmp, port=cls.PROXY,
            extra_config=f'[origin]\nca_file = "{c}/ca.pem"\n'
                         f'[intercept]\nca_certificate = "{cls.ca}"\nca_key = "{ca_key}"\nbump = ["*.test"]\n'
                         + h.local_test_zone(cls.tmp, ["origin"]) +
                         f'[auth]\nbackend = "htpasswd"\nhtpasswd_file = "{cls.users}"\n',
            acl='[acl]\nallow_clients = ["127.0.0.0/8"]\nallow_hosts = ["*.test"]\n'
                f'allow_networks = ["127.0.0.0/8"]\nconnect_ports = [{cls.ORIGIN}]\n').start()

    def test_bumped_requests_are_the_connect_user(self):
        url = f"https://origin.test:{self.ORIGIN}/hello.txt"
        r = h.curl("-s", "--cacert", self.ca, "-U", f"bob:{USERS['bob'][1]}", url, proxy=self.PROXY)
        self.assertEqual(r.stdout, b"hello through the bump\n")
        lines = []
        for _ in range(50):
            lines = self.outpost.access_lines()
            if any(" GET " in l for l in lines) and any(" CONNECT " in l for l in lines):
                break
            time.sleep(0.1)
        connect = [l for l in lines if f" CONNECT origin.test:{self.ORIGIN} " in l]
        get = [l for l in lines if f" GET {url} " in l]
        self.assertTrue(connect and get, lines)
        self.assertRegex(connect[-1], rf"TCP_TUNNEL/200 .* CONNECT origin\.test:{self.ORIGIN} bob HIER_NONE/- bump:origin\.test")
        self.assertRegex(get[-1], rf"/200 \d+ GET {re.escape(url)} bob HIER_DIRECT/")
        # Without credentials the CONNECT is refused and nothing is bumped.
        r = h.curl("-s", "--cacert", self.ca, "-o", "/dev/null", "-w", "%{http_connect}", url, proxy=self.PROXY,
                   check=False)
        self.assertEqual(r.stdout, b"407")
        r = h.curl("-s", "--cacert", self.ca, "-o", "/dev/null", "-w", "%{http_connect}", "-U", "bob:nope", url,
                   proxy=self.PROXY, check=False)
        self.assertEqual(r.stdout, b"407")


if __name__ == "__main__":
    h.main()
