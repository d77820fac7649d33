#!/usr/bin/env python3
"""Proxy authentication with the LDAP back end ([auth] backend = "ldap") against a real
OpenLDAP slapd started here with its own database (slapdfixture.py): people, a locked
account (ppolicy), a groupOfNames and a posixGroup, a service account, StartTLS and LDAPS
with a test CA.

- Search-then-bind as the service account over StartTLS: right passwords get through (the
  user in the access log), wrong ones, unknown users, an empty password, filter-injection
  names and the locked account get 407 with the reason in the log; the groups of both
  kinds drive the user rules (default deny); verdicts are cached; no password in any log.
- Bind as the user (a DN template) over LDAPS, groups searched as the user.
- LDAPS to a server whose certificate the configured CA did not sign: 407, the TLS failure
  logged, no user let in.
- slapd stopped: 407 at once with the cause logged (Squid's answer when its helper cannot
  reach the directory); slapd back: the pooled connection is replaced, users get in.
- slapd frozen (SIGSTOP): a check ends after ldap_timeout with 407, and meanwhile a user
  whose verdict is cached is served (no loop waits on the directory).
- A TCP peer that accepts and never answers, behind ldaps:// (a stalled TLS handshake): the
  checks time out, and beyond ldap_max_pending they are refused at once ("busy").
- Headless Chromium loads a page as an LDAP user (its proxy prompt answered over CDP)."""
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import harness as h
import slapdfixture as sl
import test_proxy_auth

ADMIN_PORT = 9147
SECOND_ORIGIN = "127.0.0.2"   # a second test origin, on another address, for host rules
PEOPLE = sl.PEOPLE


class SilentPeer:
    """Accepts TCP connections and never sends a byte (a hung directory)."""

    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.accepted = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(c)


class LdapAuth(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        certs = os.path.join(cls.tmp, "certs")
        os.makedirs(certs)
        h.make_test_pki(certs)
        cls.ldap = sl.Slapd(cls.procs, cls.tmp, certs=certs).start()
        cls.origin = h.TestOrigin(cls.procs)
        cls.procs.start([sys.executable, os.path.join(h.HERE, "origin.py"), str(h.ORIGIN_PORT), SECOND_ORIGIN],
                        stdout=subprocess.DEVNULL)
        h.wait_port(h.ORIGIN_PORT, host=SECOND_ORIGIN)
        secret = os.path.join(cls.tmp, "service.secret")
        with open(secret, "w") as f:
            f.write(sl.SERVICE_PASSWORD + "\n")
        os.chmod(secret, 0o600)
        acl = ('[acl]\nallow_clients = ["127.0.0.0/8"]\nallow_hosts = ["localhost", "*.test"]\n'
               'allow_networks = ["127.0.0.0/8"]\nconnect_ports = [443]\n')

        def outpost(name, port, auth):
            d = os.path.join(cls.tmp, name)
            os.makedirs(d)
            return h.Outpost(cls.procs, d, port=port, acl=acl, extra_config=(
                f'[admin]\nenabled = {"true" if name == "search" else "false"}\nlisten = ["127.0.0.1:{ADMIN_PORT}"]\n'
                '[auth]\nbackend = "ldap"\nrealm = "Outpost test"\ncache_ttl = 300\n' + auth)).start()

        # Search-then-bind over StartTLS with the service account; groups rule the hosts.
        cls.search = outpost("search", h.PROXY_PORT, (
            f'ldap_uri = "ldap://127.0.0.1:{cls.ldap.port}"\nldap_starttls = true\n'
            f'ldap_ca_file = "{cls.ldap.ca_file}"\nldap_base_dn = "ou=people,{sl.SUFFIX}"\n'
            f'ldap_bind_dn = "{sl.SERVICE_DN}"\nldap_bind_password_file = "{secret}"\n'
            f'ldap_group_base_dn = "ou=groups,{sl.SUFFIX}"\nldap_timeout = 3\n'
            'default_action = "deny"\n'
            f'rules = [{{ action = "deny", groups = ["guests"], hosts = ["{SECOND_ORIGIN}"] }},\n'
            '         { action = "allow", groups = ["staff", "guests"] }]\n'))
        # Bind as the user (a DN template) over LDAPS; groups searched as the user.
        cls.template = outpost("template", h.PROXY_PORT + 20, (
            f'ldap_uri = "ldaps://127.0.0.1:{cls.ldap.tls_port}"\nldap_ca_file = "{cls.ldap.ca_file}"\n'
            f'ldap_bind_dn_template = "uid=%s,ou=people,{sl.SUFFIX}"\nldap_group_base_dn = "ou=groups,{sl.SUFFIX}"\n'
            'default_action = "deny"\nrules = [{ action = "allow", groups = ["staff"] }]\n'))
        # LDAPS trusting another CA (the test PKI's self-signed leaf): the server is not trusted.
        cls.wrong_ca = outpost("wrong-ca", h.PROXY_PORT + 40, (
            f'ldap_uri = "ldaps://127.0.0.1:{cls.ldap.tls_port}"\nldap_ca_file = "{certs}/self.pem"\n'
            f'ldap_bind_dn_template = "uid=%s,ou=people,{sl.SUFFIX}"\n'))
        # A directory that accepts and never answers, at most two checks pending.
        cls.silent = SilentPeer(3390)
        cls.hung = outpost("hung", h.PROXY_PORT + 60, (
            'ldap_uri = "ldaps://127.0.0.1:3390"\n'
            f'ldap_bind_dn_template = "uid=%s,ou=people,{sl.SUFFIX}"\nldap_timeout = 2\n'
            'ldap_connections = 1\nldap_max_pending = 2\n'))

    def get(self, url, user=None, password=None, proxy=h.PROXY_PORT):
        args = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "60"]
        if user is not None:
            args += ["-U", f"{user}:{password}"]
        r = h.curl(*args, url, proxy=proxy, check=False)
        return int(r.stdout or b"0")

    def as_user(self, user, url=None, proxy=h.PROXY_PORT):
        return self.get(url or self.origin.url(f"/echo?{user}"), user, PEOPLE[user], proxy=proxy)

    def wait_log(self, outpost, text, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline and text not in outpost.log_text():
            time.sleep(0.1)
        log = outpost.log_text()
        self.assertIn(text, log)
        return log

    def access_line(self, outpost, pattern, timeout=10):
        """The access-log line matching `pattern`, once there is one (flushed every second)."""
        deadline = time.time() + timeout
        while True:
            lines = outpost.access_lines()
            found = [l for l in lines if re.search(pattern, l)]
            if found or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertTrue(found, f"no access-log line matching {pattern}: {lines}")
        return found[-1]

    def metric(self, name, labels=""):
        with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN_PORT}/metrics", timeout=10) as r:
            text = r.read().decode()
        m = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    def test_search_then_bind_users_and_groups(self):
        # alice and bob: staff (groupOfNames); carol: guests (posixGroup). Default deny, so a
        # 200 proves the group was found.
        self.assertEqual(self.as_user("alice"), 200)
        self.assertEqual(self.as_user("bob"), 200)
        self.assertEqual(self.as_user("carol"), 200)
        self.assertEqual(self.as_user("carol", f"http://{SECOND_ORIGIN}:{h.ORIGIN_PORT}/echo?guest"), 403)
        self.assertEqual(self.as_user("alice", f"http://{SECOND_ORIGIN}:{h.ORIGIN_PORT}/echo?staff"), 200)
        self.access_line(self.search, r"/200 .* GET http://127\.0\.0\.1:8080/echo\?bob bob HIER_DIRECT/")
        self.access_line(self.search, r"TCP_DENIED/403 .* GET http://127\.0\.0\.2:8080/echo\?guest carol ")

    def test_refused_users(self):
        cases = [("alice", "not-alices", "user alice not authenticated (wrong password)"),
                 ("nobody", "whatever-pw", "user nobody not authenticated (unknown user)"),
                 ("locked", PEOPLE["locked"], "user locked not authenticated (account locked)"),
                 ("alice", "", "user alice not authenticated (empty password)"),
                 # Filter metacharacters are escaped: "*" is a name, not a wildcard.
                 ("*", "any-password", "user * not authenticated (unknown user)"),
                 ("alice)(uid=*", "any-password", "user alice)(uid=*")]
        for user, password, logged in cases:
            self.assertEqual(self.get(self.origin.url("/refused"), user, password), 407, user)
            self.wait_log(self.search, logged)
        self.assertEqual(self.origin.count("/refused"), 0)
        # The directory agrees about the locked account's password being right.
        self.assertIn("Account locked", self.ldap_whoami_locked())

    def ldap_whoami_locked(self):
        r = subprocess.run(["ldapwhoami", "-x", "-e", "ppolicy", "-H", f"ldap://127.0.0.1:{self.ldap.port}", "-D",
                            f"uid=locked,ou=people,{sl.SUFFIX}", "-w", PEOPLE["locked"]], capture_output=True)
        return (r.stdout + r.stderr).decode()

    def test_template_bind_over_ldaps(self):
        p = self.template.port
        self.assertEqual(self.as_user("alice", proxy=p), 200)
        self.assertEqual(self.as_user("carol", proxy=p), 403)   # not staff
        self.assertEqual(self.get(self.origin.url("/echo"), "bob", "wrong!", proxy=p), 407)
        self.assertEqual(self.get(self.origin.url("/echo"), "locked", PEOPLE["locked"], proxy=p), 407)
        log = self.wait_log(self.template, "user locked not authenticated (account locked)")
        self.assertIn("user bob not authenticated (wrong password or unknown user)", log)
        # A user name that would change the DN is escaped: no such entry.
        self.assertEqual(self.get(self.origin.url("/echo"), "alice,ou=people", PEOPLE["alice"], proxy=p), 407)

    def test_ldaps_untrusted_server_certificate(self):
        self.assertEqual(self.as_user("alice", proxy=self.wrong_ca.port), 407)
        log = self.wait_log(self.wrong_ca, "cannot check user alice:")
        self.assertRegex(log, r"cannot check user alice: .*\(ldap back end\), 407")
        self.assertEqual(self.as_user("alice", proxy=self.wrong_ca.port), 407)  # not cached as good

    def test_verdicts_cached(self):
        self.assertEqual(self.as_user("bob", self.origin.url("/echo?warm")), 200)
        before = self.metric("outpost_proxy_auth_cached_total")
        for i in range(10):
            self.assertEqual(self.as_user("bob", self.origin.url(f"/echo?cached={i}")), 200)
        self.assertEqual(self.metric("outpost_proxy_auth_cached_total") - before, 10)

    def test_zz_directory_stopped_then_back(self):
        self.assertEqual(self.as_user("alice"), 200)  # a pooled connection now
        self.ldap.stop()
        try:
            # Not cached yet: carol to a new URL with a new password attempt.
            self.assertEqual(self.get(self.origin.url("/echo?down"), "carol", "carol-typo"), 407)
            log = self.wait_log(self.search, "cannot check user carol:")
            self.assertRegex(log, r"cannot check user carol: .*Can't contact LDAP server.*\(ldap back end\), 407")
            self.assertEqual(self.as_user("alice"), 200)  # cached
        finally:
            self.ldap.start()
        # Back: the dead pooled connection is replaced; the unavailable verdict was not kept.
        self.assertEqual(self.get(self.origin.url("/echo?back"), "carol", "carol-typo"), 407)
        self.wait_log(self.search, "user carol not authenticated (wrong password)")
        self.assertEqual(self.get(self.origin.url("/echo?back"), "bob", PEOPLE["bob"]), 200)

    def test_zz_directory_frozen(self):
        self.assertEqual(self.as_user("alice"), 200)
        self.ldap.pause()
        try:
            slow = self.procs.start(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "60",
                                     "-x", f"http://127.0.0.1:{h.PROXY_PORT}", "-U", "bob:frozen-try",
                                     self.origin.url("/echo?frozen")], stdout=subprocess.PIPE)
            # While bob's check waits on the directory, a cached user is served.
            self.assertEqual(self.as_user("alice", self.origin.url("/echo?meanwhile")), 200)
            out, _ = slow.communicate(timeout=60)
            self.assertEqual(out, b"407")
            log = self.wait_log(self.search, "cannot check user bob:")
            self.assertRegex(log, r"cannot check user bob: .*no answer (to the \w+ )?in time.* \(ldap back end\), 407")
        finally:
            self.ldap.resume()
        self.assertEqual(self.as_user("bob", self.origin.url("/echo?thawed")), 200)

    def test_hung_directory_timeouts_and_bound(self):
        p = self.hung.port
        clients = [self.procs.start(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "60",
                                     "-x", f"http://127.0.0.1:{p}", "-U", f"user{i}:pw-{i}",
                                     self.origin.url(f"/hung{i}")], stdout=subprocess.PIPE)
                   for i in range(6)]
        codes = [c.communicate(timeout=60)[0] for c in clients]
        log = self.hung.log_text()
        self.assertEqual(codes, [b"407"] * 6, log)
        self.assertIn("back end busy: 2 checks pending already", log)
        self.assertTrue(self.silent.accepted, "the silent peer saw no connection")
        # A check that reached the peer ended at the timeout (its TLS handshake never done); one
        # waiting for the only connection meanwhile ends so too, or gets it and is cut.
        self.assertRegex(log, r"cannot check user user\d: no answer in time, connection cut .*\(ldap back end\), 407")
        self.assertEqual(len(re.findall(r"cannot check user user\d: (back end busy|no answer in time|all 1 LDAP "
                                        r"connections busy for 2 s)", log)), 6, log)
        self.assertEqual(sum(self.origin.count(f"/hung{i}") for i in range(6)), 0)

    def test_no_password_in_logs(self):
        self.assertEqual(self.as_user("alice", self.origin.url("/echo?logs")), 200)
        self.get(self.origin.url("/echo?logs"), "bob", "typo-" + PEOPLE["bob"])
        time.sleep(1.2)  # logs are flushed every second
        for o in (self.search, self.template, self.wrong_ca, self.hung):
            text = o.log_text()
            with open(o.access_log) as f:
                text += f.read()
            for secret in list(PEOPLE.values()) + [sl.SERVICE_PASSWORD, "typo-" + PEOPLE["bob"]]:
                self.assertNotIn(secret, text)

    browse = test_proxy_auth.ProxyAuth.browse  # headless Chromium answering the proxy prompt

    def test_chromium_page_as_an_ldap_user(self):
        self.origin.script("/script/page.html", content_type="text/html",
                           body='<!DOCTYPE html><html><body><p id="x">script did not run</p>'
                                '<script src="/script/app.js"></script></body></html>')
        self.origin.script("/script/app.js", content_type="application/javascript",
                           body="document.getElementById('x').textContent = 'script ran as a user';")
        text, prompts = self.browse("bob", PEOPLE["bob"], 9225)
        self.assertIn("script ran as a user", text or "")
        self.assertGreaterEqual(prompts, 1)
        self.access_line(self.search, r"/200 .* GET http://127\.0\.0\.1:8080/script/app\.js bob HIER_DIRECT/")


if __name__ == "__main__":
    h.main()
