#!/usr/bin/env python3
"""Proxy auto-config ([pac]): /proxy.pac and /wpad.dat on the proxy port and on the admin
listener, generated from config and served as application/x-ns-proxy-autoconfig.

The script is checked three ways: its text and headers with curl; its logic by running it in
node (when installed) with the PAC helper functions a browser provides (isPlainHostName,
dnsDomainIs, isInNet, isInNetEx, dnsResolve); and in headless Chromium (--proxy-pac-url),
which must load a page on origin.test — a name only the proxy resolves — through the proxy,
and go DIRECT (so fail, no proxy log line) for a listed direct domain. A reload changes the
script; a Host header that is not host:port never reaches it; [pac] off is a 404."""
import json
import os
import shutil
import signal
import subprocess
import time

import harness as h

ADMIN_PORT = 9146
PAGE = b"<!DOCTYPE html><html><body><div id=\"r\">through-the-proxy</div></body></html>\n"

# The browser's PAC helpers, as Chromium and Firefox define them (enough for our scripts).
NODE_HELPERS = r"""
function ip4(s) { var p = s.split('.').map(Number); return ((p[0] << 24) >>> 0) + (p[1] << 16) + (p[2] << 8) + p[3]; }
function isPlainHostName(h) { return h.indexOf('.') < 0 && h.indexOf(':') < 0; }
function dnsDomainIs(h, d) { return h.length >= d.length && h.substring(h.length - d.length) == d; }
function isInNet(h, pat, mask) {
  if (!/^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/.test(h)) throw new Error('isInNet would resolve ' + h);
  return ((ip4(h) & ip4(mask)) >>> 0) == ((ip4(pat) & ip4(mask)) >>> 0);
}
function isInNetEx(h, cidr) { return cidr == 'fc00::/7' ? /^f[cd]/.test(h) : cidr == '::1/128' && h == '::1'; }
var resolved = 0;
function dnsResolve(h) { resolved++; return RESOLVE[h] || null; }
"""


def node_eval(script, cases, resolve=None):
    prog = ("var RESOLVE = " + json.dumps(resolve or {}) + ";\n" + NODE_HELPERS + script +
            "\nvar out = {}; var cases = " + json.dumps(cases) +
            ";\nfor (var i = 0; i < cases.length; i++) out[cases[i]] = FindProxyForURL('http://' + cases[i] + '/', cases[i]);"
            "\nout.resolved = resolved; console.log(JSON.stringify(out));")
    r = subprocess.run(["node", "-e", prog], capture_output=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError("node: " + r.stderr.decode())
    return json.loads(r.stdout)


class Pac(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.nginx = h.Nginx(cls.procs, cls.tmp)
        cls.nginx.put_file("index.html", PAGE)
        cls.pac_section = ('[pac]\nenabled = true\ndirect_domains = ["direct.test", ".intranet.example"]\n')
        cls.base = (f'[admin]\nenabled = true\nlisten = ["127.0.0.1:{ADMIN_PORT}"]\n' +
                    h.local_test_zone(cls.tmp, ["origin", "direct"]))
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config=cls.base + cls.pac_section).start()
        h.wait_port(ADMIN_PORT, proc=cls.outpost.proc)

    def fetch(self, path, port=h.PROXY_PORT, *args):
        return h.curl("-i", *args, f"http://127.0.0.1:{port}{path}", proxy=None, check=False)

    @staticmethod
    def split(resp):
        head, _, body = resp.stdout.partition(b"\r\n\r\n")
        return head.decode(errors="replace"), body.decode(errors="replace")

    def reload_with(self, pac_section):
        with open(self.outpost.config_path) as f:
            text = f.read()
        start = text.index("[pac]")
        end = text.find("\n[", start + 1)
        text = text[:start] + pac_section + (text[end + 1:] if end >= 0 else "")
        with open(self.outpost.config_path, "w") as f:
            f.write(text)
        before = self.outpost.log_text().count("configuration reloaded")
        self.outpost.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 30
        while self.outpost.log_text().count("configuration reloaded") == before:
            self.assertLess(time.time(), deadline, "no reload logged")
            time.sleep(0.05)

    def test_served_on_proxy_port_and_admin(self):
        for path in ("/proxy.pac", "/wpad.dat", "/proxy.pac?x=1"):
            head, body = self.split(self.fetch(path))
            self.assertIn("HTTP/1.1 200", head, path)
            self.assertIn("Content-Type: application/x-ns-proxy-autoconfig", head)
            self.assertIn("function FindProxyForURL(url, host)", body)
            # Fetched from the proxy port: the proxy named is the address the client used.
            self.assertIn(f'"PROXY 127.0.0.1:{h.PROXY_PORT}"', body)
        head, body = self.split(self.fetch("/proxy.pac", h.PROXY_PORT, "-H", "Host: proxy.example:3128"))
        self.assertIn('"PROXY proxy.example:3128"', body)
        # From the admin listener: the Host's host with the proxy's port.
        head, body = self.split(self.fetch("/wpad.dat", ADMIN_PORT))
        self.assertIn("HTTP/1.1 200", head)
        self.assertIn("Content-Type: application/x-ns-proxy-autoconfig", head)
        self.assertIn(f'"PROXY 127.0.0.1:{h.PROXY_PORT}"', body)
        head, body = self.split(self.fetch("/proxy.pac", h.PROXY_PORT, "-I"))
        self.assertIn("HTTP/1.1 200", head)
        self.assertEqual(body, "")
        # Other paths stay 404 on both.
        self.assertIn("HTTP/1.1 404", self.split(self.fetch("/proxy.pac.bak"))[0])
        self.assertIn("HTTP/1.1 404", self.split(self.fetch("/other", ADMIN_PORT))[0])
        # The access log has the script's fetch like any own page.
        self.assertTrue(any(" /proxy.pac " in l or "/proxy.pac" in l for l in self.outpost.access_lines(wait_for=1)))

    def test_hostile_host_header_never_reaches_the_script(self):
        for host in ('evil"; return "DIRECT', 'a"b:1', "a b:1", "[zz]:80", "a\\b:80"):
            r = h.raw_exchange(f"GET /proxy.pac HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode(),
                               until_close=True)
            self.assertEqual(h.status_of(r), 200, host)
            body = r.split(b"\r\n\r\n", 1)[1].decode()
            self.assertNotIn("evil", body)
            self.assertIn(f'"PROXY 127.0.0.1:{h.PROXY_PORT}"', body, host)
        # A good host with a bad port: the host, with the proxy's port.
        body = h.raw_exchange(b"GET /proxy.pac HTTP/1.1\r\nHost: x:99999\r\nConnection: close\r\n\r\n",
                              until_close=True).split(b"\r\n\r\n", 1)[1].decode()
        self.assertIn(f'"PROXY x:{h.PROXY_PORT}"', body)

    def test_logic_in_node(self):
        if not shutil.which("node"):
            self.skipTest("node is not installed: the script is checked in Chromium only")
        body = self.split(self.fetch("/proxy.pac"))[1]
        subprocess.run(["node", "--check", "-"], input=body.encode(), check=True, capture_output=True)
        proxy = f"PROXY 127.0.0.1:{h.PROXY_PORT}"
        got = node_eval(body, ["intranet", "direct.test", "www.direct.test", "intranet.example", "a.intranet.example",
                               "example.com", "10.1.2.3", "192.168.0.9", "172.32.0.1", "8.8.8.8", "fd00::1",
                               "2001:db8::1", "origin.test", "xintranet.example"])
        want = {"intranet": "DIRECT", "direct.test": "DIRECT", "www.direct.test": proxy, "intranet.example": "DIRECT",
                "a.intranet.example": "DIRECT", "example.com": proxy, "10.1.2.3": "DIRECT", "192.168.0.9": "DIRECT",
                "172.32.0.1": proxy, "8.8.8.8": proxy, "fd00::1": "DIRECT", "2001:db8::1": proxy,
                "origin.test": proxy, "xintranet.example": proxy}
        for k, v in want.items():
            self.assertEqual(got[k], v, k)
        self.assertEqual(got["resolved"], 0, "names are not resolved unless resolve_names is on")

    def test_chromium_uses_the_script(self):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if not chromium:
            raise RuntimeError("chromium is not installed (scripts/install-deps.sh test installs it)")

        def load(url, profile):
            profile = os.path.join(self.tmp, profile)
            os.makedirs(profile, exist_ok=True)
            cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                   f"--proxy-pac-url=http://127.0.0.1:{h.PROXY_PORT}/proxy.pac",
                   "--virtual-time-budget=5000", "--dump-dom", url]
            env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
            env["HOME"] = self.tmp
            r = subprocess.run(cmd, capture_output=True, timeout=90, env=env)
            return r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")[-2000:]

        dom, err = load(f"http://origin.test:{h.NGINX_PORT}/index.html", "p1")
        self.assertIn("through-the-proxy", dom, err)
        def page_logged(lines):
            return any(f" http://origin.test:{h.NGINX_PORT}/index.html " in l and "/200 " in l for l in lines)
        lines = self.outpost.access_lines(until=page_logged, timeout=10)
        self.assertTrue(page_logged(lines), "\n".join(lines))
        self.assertTrue(any("/proxy.pac" in l for l in lines), "Chromium fetched the script from the proxy port")
        # direct.test is DIRECT in the script: Chromium resolves it itself (it cannot: only the
        # proxy knows the name), so the page does not load and the proxy never sees it.
        dom, err = load(f"http://direct.test:{h.NGINX_PORT}/index.html", "p2")
        self.assertNotIn("through-the-proxy", dom)
        # Chromium has exited: a request of its through the proxy would be logged before this one.
        self.fetch("/proxy.pac?after-direct")
        deadline = time.time() + 10
        while not any("after-direct" in l for l in self.outpost.access_lines()):
            self.assertLess(time.time(), deadline, "the marker request was not logged")
            time.sleep(0.1)
        self.assertFalse(any("direct.test" in l for l in self.outpost.access_lines()), "went through the proxy")

    def test_zz_reload_changes_the_script_and_off_is_404(self):
        self.reload_with('[pac]\nenabled = true\nproxies = ["front.example:3128", "127.0.0.1:3128"]\n'
                         'fallback_direct = true\ndirect_networks = ["10.0.0.0/8"]\ndirect_plain_hosts = false\n'
                         'resolve_names = true\n')
        body = self.split(self.fetch("/proxy.pac"))[1]
        self.assertIn('"PROXY front.example:3128; PROXY 127.0.0.1:3128; DIRECT"', body)
        self.assertNotIn("isPlainHostName", body)
        if shutil.which("node"):
            got = node_eval(body, ["intranet", "files.corp", "www.example"], resolve={"files.corp": "10.9.9.9"})
            self.assertEqual(got["intranet"], "PROXY front.example:3128; PROXY 127.0.0.1:3128; DIRECT")
            self.assertEqual(got["files.corp"], "DIRECT")
            self.assertEqual(got["resolved"], 3)
        self.reload_with("[pac]\nenabled = false\n")
        self.assertIn("HTTP/1.1 404", self.split(self.fetch("/proxy.pac"))[0])
        self.assertIn("HTTP/1.1 404", self.split(self.fetch("/wpad.dat", ADMIN_PORT))[0])


if __name__ == "__main__":
    h.main()
