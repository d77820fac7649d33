"""Shared fixtures for Outpost's integration tests.

Every test file runs inside its own private network namespace (netns_run.sh), so fixed
loopback ports are safe and nothing can leave the machine. Processes started here are
real: Outpost itself, nginx, the project's test origin, curl, Chromium.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPOST = os.environ.get("OUTPOST_BIN", os.path.join(HERE, "../../build/dev/app/outpost"))
PROXY_PORT = 3128
ORIGIN_PORT = 8080   # the project's test origin (origin.py)
NGINX_PORT = 8081    # nginx static origin
NGINX_TLS_PORT = 8443


# A resolver in a test always starts from a fake root on loopback, never the real one. DNSSEC
# validation is on by default with the real root's anchors built in, which no fake root can
# satisfy: these are the one place that says how a test's resolver meets its fake root --
# a signed fake root (dnsfixture.signed) gives its own trust anchor file, and validation
# stays on as by default; an unsigned one (every other fixture, scripted servers, or no
# server at all) turns validation off explicitly.
def fake_root_settings(hints, anchor=None):
    """{key: TOML value} for the [dns] section (or `--set dns.KEY=VALUE`)."""
    settings = {"hints": json.dumps(hints)}
    if anchor:
        settings["trust_anchor_file"] = json.dumps(anchor)
    else:
        settings["dnssec_validation"] = "false"
    return settings


def fake_root_keys(hints, anchor=None):
    """The same as [dns] lines: `hints = "..."` and the DNSSEC line."""
    return "".join(f"{k} = {v}\n" for k, v in fake_root_settings(hints, anchor).items())


def write_fake_root_hints(path, address="127.0.0.254"):
    """A hints file naming a fake root at ADDRESS (nothing answers there unless a test starts
    one); returns PATH."""
    with open(path, "w") as f:
        f.write(f".\t3600000\tNS\tfake-root.\nfake-root.\t3600000\tA\t{address}\n")
    return path


def in_private_netns():
    """True when only loopback exists (the guard that keeps tests off the network)."""
    # /proc/net/dev is per network namespace (/sys may still show the host's devices).
    try:
        with open("/proc/net/dev") as f:
            names = [line.split(":")[0].strip() for line in f.readlines()[2:]]
    except OSError:
        return False
    return names == ["lo"]


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout}s")


class Processes:
    """Starts processes and makes sure they are stopped (by PID) at the end."""

    def __init__(self):
        self.procs = []

    def start(self, args, **kw):
        p = subprocess.Popen(args, **kw)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


class Outpost:
    """One Outpost process on a generated config."""

    def __init__(self, procs, workdir, extra_config="", port=PROXY_PORT, acl=None):
        self.procs = procs
        self.dir = workdir
        self.port = port
        self.access_log = os.path.join(workdir, "access.log")
        self.log = os.path.join(workdir, "outpost.log")
        self.config_path = os.path.join(workdir, "outpost.toml")
        acl = acl if acl is not None else textwrap.dedent("""\
            [acl]
            allow_clients = ["127.0.0.0/8", "::1/128"]
            allow_hosts = ["localhost", "*.test"]
            allow_networks = ["127.0.0.0/8", "::1/128"]
            connect_ports = [443, 8443]
            """)
        self.write_config(extra_config, acl)
        self.proc = None

    def write_config(self, extra_config, acl):
        # extra_config may add keys to [server], [log], [proxy] or [origin] by giving whole
        # sections; the defaults below are only used for sections it does not name.
        # Never the real root: the resolver's hints name a fake root on loopback (nothing
        # answers there unless a test starts one), so no query can leave the machine.
        # No DNS server either (its default is 127.0.0.1:53): several Outposts share one
        # network namespace in some tests, and the proxy tests need only the in-process
        # resolver. A test that gives its own [dns] section gets the default listener unless
        # it sets listen (test_outpost_dns checks the default).
        hints = write_fake_root_hints(os.path.join(self.dir, "fake-root.hints"))
        sections = {
            "server": 'workers = 2\nname = "outpost-test"\nshutdown_grace = 5\n',
            "dns": fake_root_keys(hints) + "listen = []\n",
            "log": f'level = "debug"\nfile = "{self.log}"\naccess_log = "{self.access_log}"\n',
            "proxy": f'listen = ["127.0.0.1:{self.port}"]\n',
        }
        text = ""
        for name, body in sections.items():
            if f"[{name}]" not in extra_config:
                text += f"[{name}]\n{body}\n"
        text += extra_config + "\n" + acl
        with open(self.config_path, "w") as f:
            f.write(text)

    def start(self):
        with open(os.path.join(self.dir, "stderr.log"), "ab") as err:
            self.proc = self.procs.start([OUTPOST, "--config", self.config_path],
                                         stdout=subprocess.DEVNULL, stderr=err)
        wait_port(self.port, proc=self.proc)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            return self.proc.wait(timeout)
        return self.proc.returncode if self.proc else None

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def access_lines(self, wait_for=1, timeout=5.0, until=None):
        """Access-log lines (the log is flushed every second). Waits for at least `wait_for` lines
        and, when `until` is given, for until(lines) to hold (a transaction is logged when it ends,
        which can be after the client has its response)."""
        deadline = time.time() + timeout
        lines = []
        while time.time() < deadline:
            try:
                with open(self.access_log) as f:
                    lines = [l.rstrip("\n") for l in f if l.strip()]
            except FileNotFoundError:
                lines = []
            if len(lines) >= wait_for and (until is None or until(lines)):
                return lines
            time.sleep(0.1)
        return lines

    def stderr_text(self):
        try:
            with open(os.path.join(self.dir, "stderr.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except FileNotFoundError:
            return ""


class TestOrigin:
    def __init__(self, procs, port=ORIGIN_PORT):
        self.port = port
        self.proc = procs.start([sys.executable, os.path.join(HERE, "origin.py"), str(port)],
                                stdout=subprocess.DEVNULL)
        wait_port(port, proc=self.proc)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stats(self):
        return json.loads(direct_get(self.port, "/__stats"))

    def reset(self):
        direct_get(self.port, "/__reset")

    def count(self, path):
        return self.stats()["requests"].get(path, 0)

    def peak_waiting(self, path):
        return self.stats()["peak_waiting"].get(path, 0)

    def last_headers(self, path):
        return {k.lower(): v for k, v in self.stats()["last_headers"].get(path, [])}

    def script(self, path, **spec):
        spec["path"] = path
        body = json.dumps(spec).encode()
        with socket.create_connection(("127.0.0.1", self.port)) as s:
            s.sendall(b"POST /__script HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                      % len(body) + body)
            while s.recv(65536):
                pass


def direct_get(port, path):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = read_until_close(s)
    return data.split(b"\r\n\r\n", 1)[1]


class Nginx:
    """nginx as a static (and optionally TLS) origin with stub_status for connection counts."""

    def __init__(self, procs, workdir, port=NGINX_PORT, tls_port=None, cert=None, key=None, extra_http="",
                 access_format=None, extra_ports=(), netns=None):
        """extra_http: more of the http block (servers of a test's own); access_format: the
        access log's format instead of nginx's default; extra_ports: waited for too; netns:
        run in this named network namespace (the caller waits for its servers)."""
        self.port = port
        self.root = os.path.join(workdir, "www")
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(os.path.join(workdir, "nginx-tmp"), exist_ok=True)
        tls = ""
        if tls_port:
            tls = f"""
            server {{
                listen 127.0.0.1:{tls_port} ssl;
                ssl_certificate {cert};
                ssl_certificate_key {key};
                root {self.root};
                location /status {{ stub_status; }}
            }}"""
        conf = f"""
        daemon off;
        master_process on;
        worker_processes 1;
        user root;
        pid {workdir}/nginx.pid;
        error_log {workdir}/nginx-error.log warn;
        events {{ worker_connections 1024; }}
        http {{
            {f"log_format test '{access_format}';" if access_format else ""}
            access_log {workdir}/nginx-access.log{" test" if access_format else ""};
            client_body_temp_path {workdir}/nginx-tmp;
            proxy_temp_path {workdir}/nginx-tmp;
            fastcgi_temp_path {workdir}/nginx-tmp;
            uwsgi_temp_path {workdir}/nginx-tmp;
            scgi_temp_path {workdir}/nginx-tmp;
            default_type application/octet-stream;
            types {{ text/html html; image/png png; application/javascript js; text/plain txt; }}
            sendfile on;
            tcp_nopush off;
            keepalive_requests 100000;
            server {{
                listen 127.0.0.1:{port};
                root {self.root};
                location /status {{ stub_status; }}
            }}
            {tls}
            {extra_http}
        }}
        """
        self.conf = os.path.join(workdir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(textwrap.dedent(conf))
        prefix = ["ip", "netns", "exec", netns] if netns else []
        self.proc = procs.start(prefix + ["nginx", "-c", self.conf, "-p", workdir], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        for p in () if netns else (port, tls_port, *extra_ports):
            if p:
                wait_port(p, proc=self.proc)

    def accepted_connections(self):
        text = direct_get(self.port, "/status").decode()
        # "Active connections: N \nserver accepts handled requests\n A H R \n..."
        nums = text.splitlines()[2].split()
        return int(nums[0]) - 0

    def put_file(self, name, data):
        path = os.path.join(self.root, name)
        with open(path, "wb") as f:
            f.write(data)
        return path


def http_get(url, proxy=None, timeout=10):
    """GET URL (through the HTTP proxy PROXY if given): (status, {lower-case header: value}, body)."""
    import urllib.request
    handlers = [urllib.request.ProxyHandler({"http": proxy} if proxy else {})]
    with urllib.request.build_opener(*handlers).open(url, timeout=timeout) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()


def scrape_metrics(port, host="127.0.0.1"):
    """/metrics of the admin endpoint as {sample name with labels: value}."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as r:
        return parse_samples(r.read().decode())


def parse_samples(text):
    """Prometheus text (a scrape, `outpost ctl stats`) as {sample name with labels: value}."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def metric(text, name, **labels):
    """The sum of the Prometheus samples NAME in TEXT whose labels include LABELS."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        m = re.match(r'([^{\s]+)(?:\{(.*)\})?\s+(\S+)', line)
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def prometheus_up(port, done, timeout):
    """Prometheus' `up` series on 127.0.0.1:PORT as {instance: "1"/"0"}, asked again until
    DONE(it) holds or TIMEOUT seconds pass (then the last answer)."""
    deadline = time.time() + timeout
    up = {}
    while time.time() < deadline:
        try:
            _, _, b = http_get(f"http://127.0.0.1:{port}/api/v1/query?query=up")
            up = {r["metric"]["instance"]: r["value"][1] for r in json.loads(b)["data"]["result"]}
        except OSError:
            pass
        if done(up):
            break
        time.sleep(1)
    return up


def curl(*args, proxy=PROXY_PORT, timeout=60, check=True):
    """Runs curl through the proxy; returns CompletedProcess (stdout bytes)."""
    cmd = ["curl", "-sS", "--noproxy", "", "--max-time", str(timeout)]
    if proxy:
        cmd += ["-x", f"http://127.0.0.1:{proxy}"]
    cmd += list(args)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    r = subprocess.run(cmd, capture_output=True, env=env, timeout=timeout + 10)
    if check and r.returncode != 0:
        raise AssertionError(f"curl failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr.decode()}")
    return r


def complete_response(data):
    """True when data holds one whole response framed by Content-Length."""
    if b"\r\n\r\n" not in data:
        return False
    head, body = data.split(b"\r\n\r\n", 1)
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


def raw_exchange(data, port=PROXY_PORT, timeout=5.0, until_close=False):
    """Sends raw bytes to the proxy and returns its answer: until the connection closes or,
    unless until_close, until one complete Content-Length response has arrived."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                if not until_close and complete_response(out):
                    break
        except socket.timeout:
            pass
    return out


def status_of(response_bytes):
    line = response_bytes.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = line.split(" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cwd)


_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def nginx_tls_server(port, certs, name, root, extra=""):
    """An nginx server block for a test origin over TLS on 127.0.0.1:port with certs/NAME.pem
    and NAME.key: /fresh/ cacheable for an hour, /nc/ no-store."""
    return f"""
        server {{
            listen 127.0.0.1:{port} ssl;
            ssl_certificate {certs}/{name}.pem;
            ssl_certificate_key {certs}/{name}.key;
            root {root};
            {extra}
            location /fresh/ {{ expires 1h; }}
            location /nc/ {{ add_header Cache-Control no-store; }}
        }}"""


def read_until_close(sock, timeout=None):
    """Everything the peer sends until it closes; with `timeout`, socket.timeout is raised if
    it never does."""
    if timeout is not None:
        sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def local_test_zone(workdir, names):
    """A [dns] section whose resolver answers NAME.test -> 127.0.0.1 for each of `names` from
    a local zone (and otherwise only knows the fake root, like every test's); no DNS server,
    as the default section."""
    zone = os.path.join(workdir, "test.zone")
    with open(zone, "w") as f:
        f.write("$ORIGIN test.\n@ 3600 IN SOA ns admin 1 3600 600 86400 60\n@ 3600 IN NS ns\n"
                "ns 3600 IN A 127.0.0.1\n" + "".join(f"{n} 3600 IN A 127.0.0.1\n" for n in names))
    hints = write_fake_root_hints(os.path.join(workdir, "fake-root.hints"))
    return ("[dns]\n" + fake_root_keys(hints) +
            f'listen = []\nlocal_zones = [{{ name = "test", file = "{zone}" }}]\n')


def make_test_pki(d):
    """A test CA (ca.pem, ca.key) and, signed by it, EC P-256 leaves: good (DNS:localhost,
    IP:127.0.0.1), wrong (DNS:wrong.test), expired (good's names, 2020); and self (self-signed
    for localhost). Each NAME.pem has its NAME.key."""
    _openssl("req", "-x509", *_EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3", "-subj", "/CN=Outpost test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    ca_database(d)
    sign_leaf(d, "good", "DNS:localhost,IP:127.0.0.1")
    sign_leaf(d, "wrong", "DNS:wrong.test")
    sign_leaf(d, "expired", "DNS:localhost,IP:127.0.0.1", dates=("20200101000000Z", "20200102000000Z"))  # long past
    _openssl("req", "-x509", *_EC, "-keyout", "self.key", "-out", "self.pem", "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", cwd=d)


def ca_database(d):
    """What `openssl ca` needs beside d/ca.pem and d/ca.key (sign_leaf signs with it). `openssl
    ca`, not x509, so that validity dates can be set: OpenSSL 3.0's x509 has no
    -not_before/-not_after."""
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
                "default_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n")
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("1000\n")


def sign_leaf(d, name, san, dates=None, eku="serverAuth"):
    """NAME.pem / NAME.key in d (after make_test_pki, or ca_database): a certificate for `san`
    (None: no subjectAltName) and extended key usage `eku` from the CA in d, valid for two days
    or for `dates` (start, end as YYYYMMDDHHMMSSZ)."""
    _openssl("req", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write((f"subjectAltName={san}\n" if san else "") + f"basicConstraints=CA:FALSE\nextendedKeyUsage={eku}\n")
    validity = ["-startdate", dates[0], "-enddate", dates[1]] if dates else ["-days", "2"]
    _openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in", f"{name}.csr",
             "-out", f"{name}.pem", "-extfile", f"{name}.ext", "-notext", *validity, cwd=d)


class IntegrationTest(unittest.TestCase):
    """Base class: a temp dir and a process list per test class."""

    @classmethod
    def setUpClass(cls):
        if not in_private_netns():
            raise RuntimeError("integration tests must run inside netns_run.sh (private network namespace)")
        if not os.path.exists(OUTPOST):
            raise RuntimeError(f"outpost binary not found at {OUTPOST}")
        cls.tmp = tempfile.mkdtemp(prefix="outpost-it-")
        cls.procs = Processes()

    @classmethod
    def tearDownClass(cls):
        cls.procs.stop_all()
        if os.environ.get("KEEP_TMP"):
            print(f"kept {cls.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)


def main():
    unittest.main(verbosity=2)
