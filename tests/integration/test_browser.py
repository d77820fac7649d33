#!/usr/bin/env python3
"""A real browser through Outpost: headless Chromium loads a page with images and a script
from nginx via the proxy. The page must render (the script reports what loaded), every
object must be in the access log, and requests to internet hosts (the page's own third-party
image and Chromium's background traffic) must be refused by the destination rules. The same
page loads through the proxy's TLS listener (an https:// proxy setting), with Chromium
trusting the proxy's certificate by its key pin; without the pin it does not load.

With interception ([intercept]), Chromium trusting Outpost's CA through an NSS database
(certutil, as an operator would set it up) loads an HTTPS page from an nginx origin through
the proxy and through its TLS listener; the page renders, and a second browser profile's load
is served from Outpost's cache."""
import base64
import hashlib
import os
import re
import shutil
import struct
import subprocess
import time
import zlib

import harness as h

TLS_PORT = 3129


def png(width, height, rgb):
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


PAGE = b"""<!DOCTYPE html>
<html><head><title>Outpost browser test</title><script src="app.js"></script></head>
<body><h1>Through the proxy</h1>
<img id="a" src="a.png"><img id="b" src="b.png">
<img id="ext" src="http://update.googleapis.com/outpost-test.png">
<div id="result">pending</div></body></html>
"""

SCRIPT = b"""
window.addEventListener('load', function () {
  var ok = ['a', 'b'].filter(function (id) { return document.getElementById(id).naturalWidth > 0; });
  var ext = document.getElementById('ext').naturalWidth > 0 ? 'loaded' : 'blocked';
  document.getElementById('result').textContent = 'script-ran images=' + ok.length + ' external=' + ext;
});
"""


class Browser(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if not cls.chromium:
            raise RuntimeError("chromium is not installed (scripts/install-deps.sh test installs it)")
        cls.nginx = h.Nginx(cls.procs, cls.tmp)
        cls.nginx.put_file("index.html", PAGE)
        cls.nginx.put_file("app.js", SCRIPT)
        cls.nginx.put_file("a.png", png(40, 30, (200, 30, 30)))
        cls.nginx.put_file("b.png", png(20, 20, (30, 30, 200)))
        cls.certs = os.path.join(cls.tmp, "certs")
        os.makedirs(cls.certs)
        h.make_test_pki(cls.certs)
        c = cls.certs
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config=(
            f'[proxy]\nlisten = ["127.0.0.1:{h.PROXY_PORT}"]\ntls_listen = ["127.0.0.1:{TLS_PORT}"]\n'
            f'tls_certificate = "{c}/good.pem"\ntls_key = "{c}/good.key"\n')).start()
        h.wait_port(TLS_PORT, proc=cls.outpost.proc)

    def run_chromium(self, *extra, proxy=f"http://127.0.0.1:{h.PROXY_PORT}"):
        profile = os.path.join(self.tmp, "profile")
        os.makedirs(profile, exist_ok=True)
        cmd = [self.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}",
               f"--proxy-server={proxy}", "--proxy-bypass-list=<-loopback>",
               "--virtual-time-budget=5000", *extra, f"http://127.0.0.1:{h.NGINX_PORT}/index.html"]
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env["HOME"] = self.tmp
        return subprocess.run(cmd, capture_output=True, timeout=90, env=env)

    def test_page_renders_through_proxy(self):
        r = self.run_chromium("--dump-dom")
        dom = r.stdout.decode(errors="replace")
        self.assertIn("script-ran images=2 external=blocked", dom, r.stderr.decode(errors="replace")[-2000:])
        shot = os.path.join(self.tmp, "page.png")
        self.run_chromium(f"--screenshot={shot}", "--window-size=800,600")
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

        lines = self.outpost.access_lines(wait_for=5)
        base = f"http://127.0.0.1:{h.NGINX_PORT}/"
        for obj in ("index.html", "app.js", "a.png", "b.png"):
            self.assertTrue(any(f" {base}{obj} " in l and "/200 " in l and "HIER_DIRECT/127.0.0.1" in l for l in lines),
                            f"{obj} missing from the access log:\n" + "\n".join(lines))
        # Anything for a host outside loopback was refused, never forwarded.
        outside = [l for l in lines if not re.search(r" (http://)?(127\.0\.0\.1|localhost)[:/]", l)]
        self.assertTrue(any("update.googleapis.com" in l for l in outside), "\n".join(lines))
        for l in outside:
            self.assertIn("TCP_DENIED/403", l)
            self.assertIn("HIER_NONE", l)

    def spki_pin(self):
        """Chromium's pin of the TLS listener's key: base64 of the SHA-256 of its SPKI."""
        pub = subprocess.run(["openssl", "x509", "-in", f"{self.certs}/good.pem", "-pubkey", "-noout"],
                             capture_output=True, check=True).stdout
        spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, capture_output=True,
                              check=True).stdout
        return base64.b64encode(hashlib.sha256(spki).digest()).decode()

    def test_page_renders_through_the_tls_listener(self):
        tls_proxy = f"https://127.0.0.1:{TLS_PORT}"
        # Without trust in the proxy's certificate nothing loads: the proxy is reached over TLS.
        r = self.run_chromium("--dump-dom", proxy=tls_proxy)
        self.assertNotIn("script-ran", r.stdout.decode(errors="replace"))
        r = self.run_chromium("--dump-dom", f"--ignore-certificate-errors-spki-list={self.spki_pin()}", proxy=tls_proxy)
        self.assertIn("script-ran images=2 external=blocked", r.stdout.decode(errors="replace"),
                      r.stderr.decode(errors="replace")[-2000:])


ORIGIN_TLS = 8443
class BrowserIntercept(h.IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if not cls.chromium or not shutil.which("certutil"):
            raise RuntimeError("chromium and certutil are needed (scripts/install-deps.sh test installs them)")
        c = cls.certs = os.path.join(cls.tmp, "certs")
        os.makedirs(c)
        h.make_test_pki(c)  # the origin's CA; it also signs the TLS listener's certificate (good.pem)
        h.sign_leaf(c, "origin", "DNS:origin.test")
        www = os.path.join(cls.tmp, "www")
        cls.nginx = h.Nginx(cls.procs, cls.tmp, extra_http=f"""
            server {{
                listen 127.0.0.1:{ORIGIN_TLS} ssl;
                ssl_certificate {c}/origin.pem;
                ssl_certificate_key {c}/origin.key;
                root {www};
                expires 1h;
            }}""", extra_ports=(ORIGIN_TLS,))
        cls.nginx.put_file("index.html", PAGE)
        cls.nginx.put_file("app.js", SCRIPT)
        cls.nginx.put_file("a.png", png(40, 30, (200, 30, 30)))
        cls.nginx.put_file("b.png", png(20, 20, (30, 30, 200)))
        cls.ca = os.path.join(cls.tmp, "intercept-ca.pem")
        ca_key = os.path.join(cls.tmp, "intercept-ca.key")
        subprocess.run([h.OUTPOST, "ca", "init", "--cert", cls.ca, "--key", ca_key], check=True, capture_output=True)
        # The browser's trust: an NSS database under $HOME/.pki/nssdb with Outpost's CA (and the
        # CA of the TLS listener's certificate), as `outpost ca show` tells operators.
        cls.home = os.path.join(cls.tmp, "home")
        nssdb = os.path.join(cls.home, ".pki", "nssdb")
        os.makedirs(nssdb)
        subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True, capture_output=True)
        for name, pem in (("Outpost interception CA", cls.ca), ("Outpost test CA", f"{c}/ca.pem")):
            subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", name, "-i", pem], check=True,
                           capture_output=True)
        cls.outpost = h.Outpost(cls.procs, cls.tmp, extra_config=(
            f'[proxy]\nlisten = ["127.0.0.1:{h.PROXY_PORT}"]\ntls_listen = ["127.0.0.1:{TLS_PORT}"]\n'
            f'tls_certificate = "{c}/good.pem"\ntls_key = "{c}/good.key"\n'
            f'[origin]\nca_file = "{c}/ca.pem"\n'
            f'[intercept]\nca_certificate = "{cls.ca}"\nca_key = "{ca_key}"\nbump = ["origin.test"]\n'
            + h.local_test_zone(cls.tmp, ["origin"])),
            acl=('[acl]\nallow_clients = ["127.0.0.0/8"]\nallow_hosts = ["origin.test", "localhost"]\n'
                 f'allow_networks = ["127.0.0.0/8"]\nconnect_ports = [{ORIGIN_TLS}]\n')).start()
        h.wait_port(TLS_PORT, proc=cls.outpost.proc)

    def run_chromium(self, profile, proxy):
        profile = os.path.join(self.tmp, profile)
        os.makedirs(profile, exist_ok=True)
        cmd = [self.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--proxy-server={proxy}",
               "--virtual-time-budget=5000", "--dump-dom", f"https://origin.test:{ORIGIN_TLS}/index.html"]
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env["HOME"] = self.home
        r = subprocess.run(cmd, capture_output=True, timeout=90, env=env)
        return r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")[-2000:]

    def served(self, obj, codes, timeout=5):
        """Access-log lines for obj with one of codes (waiting for the log's once-a-second flush)."""
        url = f"https://origin.test:{ORIGIN_TLS}/{obj}"
        deadline = time.time() + timeout
        while True:
            found = [l for l in self.outpost.access_lines() if f" {url} " in l and any(c in l for c in codes)]
            if found or time.time() > deadline:
                return found
            time.sleep(0.1)

    def test_https_page_through_interception_then_from_cache(self):
        dom, err = self.run_chromium("p1", f"http://127.0.0.1:{h.PROXY_PORT}")
        self.assertIn("script-ran images=2 external=blocked", dom, err)
        for obj in ("index.html", "app.js", "a.png", "b.png"):
            self.assertTrue(self.served(obj, ("TCP_MISS/200",)), obj + "\n" + "\n".join(self.outpost.access_lines()))
        self.assertTrue(any(f"CONNECT origin.test:{ORIGIN_TLS}" in l and "bump:origin.test" in l
                            for l in self.outpost.access_lines()))
        # A second browser (its own profile, so its own empty browser cache): from Outpost's cache.
        dom, err = self.run_chromium("p2", f"http://127.0.0.1:{h.PROXY_PORT}")
        self.assertIn("script-ran images=2 external=blocked", dom, err)
        for obj in ("app.js", "a.png", "b.png"):
            self.assertTrue(self.served(obj, ("HIT/200",)), obj + "\n" + "\n".join(self.outpost.access_lines()))

    def test_https_page_through_interception_on_the_tls_listener(self):
        dom, err = self.run_chromium("p3", f"https://127.0.0.1:{TLS_PORT}")
        self.assertIn("script-ran images=2 external=blocked", dom, err)
        # Bumped, not spliced: the page's requests are in the log as https URIs.
        self.assertTrue(self.served("index.html", ("/200",)), "\n".join(self.outpost.access_lines()))


if __name__ == "__main__":
    h.main()
