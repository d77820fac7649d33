"""deploy/Dockerfile and deploy/compose.yaml, for real, with Docker (ctest label `docker`).

The test starts its own dockerd (data root in the test cache directory, its own socket and
exec root; stopped by PID at the end), makes the base image debian:bookworm-slim once with
debootstrap (deploy/container/base-image.sh; the tar is cached in OUTPOST_TEST_CACHE, default
~/.cache/outpost-test, and so are Docker's layers and the build's ccache), builds the images
(holding /tmp/coord/build.lock where it exists: the build compiles Outpost), starts the stack
under a project name of its own with every port published on 127.0.0.1 only, and checks:
the image (non-root user, volumes, health check, stop signal, every shared library found);
DNS through node-1's published port, resolved from a fake root on the compose network's
gateway; Prometheus scraping all three nodes; through HAProxy, each URL cached on exactly one
node (counted at the test origin, on the gateway, and in each node's /metrics); a node stopped
with `docker-compose stop` costs only its share of the URLs and HAProxy routes around it;
`down` leaves no container, network or volume behind.

Runs on the host's network (not netns_run.sh): the image build installs packages from the
configured Debian mirror; the test's own traffic stays on loopback and the compose network.
Skipped, saying why, only where no engine can run (not root, or dockerd cannot start).
"""
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dnsfixture as dns  # noqa: E402
from harness import fake_root_keys, http_get, metric, prometheus_up  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
CACHE = os.environ.get("OUTPOST_TEST_CACHE", os.path.expanduser("~/.cache/outpost-test"))
RUN = "/run/outpost-test-docker"
SOCK = f"unix://{RUN}/docker.sock"
DOCKER = "/usr/bin/docker"   # not an unpackaged /usr/local/bin/docker without compose support
COMPOSE = "/usr/bin/docker-compose"
BUILD_LOCK = os.environ.get("OUTPOST_BUILD_LOCK", "/tmp/coord/build.lock")
NODES = ("node-1", "node-2", "node-3")
N_URLS = 60


def log(msg):
    print(f"[docker test {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def env():
    e = dict(os.environ)
    e.update(DOCKER_HOST=SOCK, DOCKER_BUILDKIT="1", COMPOSE_DOCKER_CLI_BUILD="1",
             PATH="/usr/sbin:/usr/bin:/sbin:/bin:" + e.get("PATH", ""))
    return e


def run(args, timeout=120, check=True, **kw):
    r = subprocess.run(args, env=env(), capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def docker(*args, **kw):
    return run([DOCKER, *args], **kw)


def alive(pid):
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def free_port(kind=socket.SOCK_STREAM, also_udp=False):
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not also_udp:
            return port
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


def free_subnet():
    """A /24 for the compose network that no route of this host overlaps."""
    used = []
    for line in subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                               text=True).stdout.splitlines():
        word = line.split()[0] if line.split() else ""
        if word in ("local", "broadcast", "unreachable", "blackhole", "prohibit"):
            word = line.split()[1]
        try:
            used.append(ipaddress.ip_network(word if word != "default" else "0.0.0.0/32", strict=False))
        except ValueError:
            pass
    for k in range(64 + os.getpid() % 128, 256):
        net = ipaddress.ip_network(f"172.30.{k}.0/24")
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return net
    raise AssertionError("no free 172.30.x.0/24 for the compose network")


def lock_holder_is_ancestor(path):
    """True when the lock on PATH is held by this process's ancestor (a ctest run under the
    lock): waiting for it would deadlock."""
    try:
        ino = os.stat(path).st_ino
        holders = set()
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                dev_ino = [p for p in parts if p.count(":") == 2]
                if dev_ino and dev_ino[0].rsplit(":", 1)[1] == str(ino):
                    holders.add(int(parts[4]))
        pid = os.getppid()
        while pid > 1:
            if pid in holders:
                return True
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return False


class BuildLock:
    """The machine's shared build lock (an image build compiles Outpost), where it exists."""

    def __enter__(self):
        self.f = None
        if os.path.exists(os.path.dirname(BUILD_LOCK)) and not lock_holder_is_ancestor(BUILD_LOCK):
            self.f = open(BUILD_LOCK, "a")
            log(f"waiting for {BUILD_LOCK}")
            fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.f:
            self.f.close()



class Docker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("no container engine can run: needs root (to start dockerd)")
        for tool in (DOCKER, COMPOSE, "/usr/sbin/dockerd", "/usr/sbin/debootstrap"):
            if not os.path.exists(tool):
                raise AssertionError(f"{tool} not installed (scripts/install-deps.sh test)")
        cls.t0 = time.time()
        cls.tmp = tempfile.mkdtemp(prefix="outpost-docker-")
        cls.dockerd = None
        cls.project = None
        cls.threads = []
        cls.procs = []
        os.makedirs(CACHE, exist_ok=True)
        # One run of this test at a time on a machine (one dockerd, its socket, docker0), whatever
        # its cache directory.
        cls.lock = open(RUN + ".lock", "a")
        fcntl.flock(cls.lock, fcntl.LOCK_EX)
        try:
            cls.start_engine()
            cls.make_images()
            cls.start_stack()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_engine(cls):
        os.makedirs(RUN, exist_ok=True)
        pidfile = os.path.join(RUN, "dockerd.pid")
        try:  # a dockerd left by a run that was killed: stop it by its PID
            with open(pidfile) as f:
                pid = int(f.read())
            if alive(pid):
                os.kill(pid, signal.SIGTERM)
                for _ in range(200):
                    if not alive(pid):
                        break
                    time.sleep(0.1)
        except (OSError, ValueError):
            pass
        cls.dockerd_log = os.path.join(cls.tmp, "dockerd.log")
        with open(cls.dockerd_log, "wb") as out:
            cls.dockerd = subprocess.Popen(
                ["/usr/sbin/dockerd", "--data-root", os.path.join(CACHE, "docker"), "--exec-root",
                 os.path.join(RUN, "exec"), "-H", SOCK, "--pidfile", pidfile],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if cls.dockerd.poll() is not None:
                break
            if docker("info", check=False, timeout=20).returncode == 0:
                log(f"dockerd up (pid {cls.dockerd.pid})")
                # The data root is this test's own: containers a killed run left behind (restarted
                # by their restart policy) would hold old ports and subnets. Images stay.
                left = docker("ps", "-aq").stdout.split()
                if left:
                    docker("rm", "-f", "-v", *left, timeout=120)
                docker("network", "prune", "-f", timeout=60)
                docker("volume", "prune", "-f", timeout=60)
                return
            time.sleep(0.5)
        with open(cls.dockerd_log, errors="replace") as f:
            tail = f.read()[-1500:]
        cls.stop_engine()
        raise unittest.SkipTest(f"no container engine can run here: dockerd did not start:\n{tail}")

    @classmethod
    def make_images(cls):
        if docker("image", "inspect", "debian:bookworm-slim", check=False).returncode != 0:
            tar = os.path.join(CACHE, "debian-bookworm-slim.tar")
            if not os.path.exists(tar):
                log("making the base image with debootstrap (once; cached in %s)" % tar)
                run([os.path.join(DEPLOY, "container", "base-image.sh"), tar], timeout=900)
            docker("import", "--change", 'CMD ["bash"]', tar, "debian:bookworm-slim", timeout=300)
        t = time.time()
        with BuildLock():
            log("building the images")
            r = run([COMPOSE, "-f", os.path.join(DEPLOY, "compose.yaml"), "build"], timeout=1800)
        cls.build_seconds = time.time() - t
        hits = re.findall(r"Hits:\s+(\d+) /\s+(\d+)", r.stdout + r.stderr)
        log(f"images built in {cls.build_seconds:.0f} s" + (f" (ccache hits {hits[-1][0]}/{hits[-1][1]})" if hits else ""))
        # Old layers of earlier builds: keep the data root from growing run after run.
        docker("image", "prune", "-f", check=False, timeout=120)
        docker("builder", "prune", "-f", "--keep-storage", "4gb", check=False, timeout=120)

    @classmethod
    def start_stack(cls):
        cls.subnet = free_subnet()
        cls.gateway = str(next(cls.subnet.hosts()))
        cls.ports = {"OUTPOST_PROXY_PORT": free_port(), "OUTPOST_DNS_PORT": free_port(also_udp=True),
                     "OUTPOST_PROMETHEUS_PORT": free_port()}
        # The nodes' config: the image's, resolving from a fake root on the gateway (never the
        # real root), their admin ports published on loopback for the test to read /metrics.
        with open(os.path.join(DEPLOY, "container", "outpost.toml")) as f:
            conf = f.read()
        # The image's config validates (the default); the scripted fake root is unsigned.
        conf = conf.replace("[dns]\n", "[dns]\n" + fake_root_keys("/etc/outpost/root.hints"), 1)
        with open(os.path.join(cls.tmp, "outpost.toml"), "w") as f:
            f.write(conf)
        with open(os.path.join(cls.tmp, "root.hints"), "w") as f:
            f.write(f". 3600000 IN NS a.root-servers.test.\na.root-servers.test. 3600000 IN A {cls.gateway}\n")
        mounts = [f"{cls.tmp}/outpost.toml:/etc/outpost/outpost.toml:ro", f"{cls.tmp}/root.hints:/etc/outpost/root.hints:ro"]
        override = {"services": {n: {"volumes": mounts, "ports": ["127.0.0.1::9145"]} for n in NODES},
                    "networks": {"default": {"ipam": {"config": [{"subnet": str(cls.subnet)}]}}}}
        cls.override = os.path.join(cls.tmp, "compose.test.yaml")
        with open(cls.override, "w") as f:
            json.dump(override, f)  # JSON is YAML
        cls.project = f"outposttest{os.getpid()}"
        os.environ.update({k: str(v) for k, v in cls.ports.items()},
                          OUTPOST_PUBLISH="127.0.0.1", OUTPOST_PUBLISH_ADMIN="127.0.0.1")
        t = time.time()
        cls.compose("up", "-d", "--no-build", timeout=300)
        # Every node healthy by the image's HEALTHCHECK (HEAD /health, no curl in the image).
        deadline = time.time() + 120
        state = {}
        while time.time() < deadline:
            state = {n: cls.inspect(n)["State"].get("Health", {}).get("Status") for n in NODES}
            if all(s == "healthy" for s in state.values()):
                break
            time.sleep(1)
        else:
            raise AssertionError(f"nodes not healthy: {state}\n{cls.compose('logs', '--tail', '30', check=False).stdout}")
        log(f"stack up and healthy in {time.time() - t:.0f} s on {cls.subnet}")
        # The test origin and the fake root, on the compose network's gateway only.
        cls.origin_port = free_port()
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "origin.py"), str(cls.origin_port), cls.gateway],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.procs.append(p)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection((cls.gateway, cls.origin_port), timeout=0.5).close()
                break
            except OSError:
                if time.time() > deadline or p.poll() is not None:
                    raise AssertionError("the test origin did not start")
                time.sleep(0.1)
        cls.urls = [f"http://{cls.gateway}:{cls.origin_port}/script/o{i}" for i in range(N_URLS)]
        for i, u in enumerate(cls.urls):
            body = json.dumps({"path": f"/script/o{i}", "body": f"object {i}\n" * 20,
                               "headers": [["Cache-Control", "max-age=3600"]]}).encode()
            urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                urllib.request.Request(f"http://{cls.gateway}:{cls.origin_port}/__script", data=body), timeout=5).read()
        root = cls.gateway

        def fake_root(q):
            soa = dns.rr(".", "SOA", 300, ("a.root-servers.test.", "admin.root-servers.test.", 60))
            if q.name == "." and q.type == dns.TYPES["NS"]:
                return q.reply(answer=[dns.rr(".", "NS", 3600, "a.root-servers.test.")],
                               additional=[dns.rr("a.root-servers.test.", "A", 3600, root)])
            if q.name == "a.root-servers.test." and q.type == dns.TYPES["A"]:
                return q.reply(answer=[dns.rr(q.name, "A", 3600, root)])
            if q.name == "www.outpost.test." and q.type == dns.TYPES["A"]:
                return q.reply(answer=[dns.rr(q.name, "A", 300, "192.0.2.80")])
            if q.name in ("test.", "outpost.test.", "www.outpost.test.", "root-servers.test.", "a.root-servers.test."):
                return q.reply(authority=[soa])
            return q.reply(authority=[soa], rcode=3)
        cls.root = dns.ScriptedServer(cls.gateway, fake_root)
        cls.root.start()
        cls.threads.append(cls.root)

    @classmethod
    def compose(cls, *args, timeout=120, check=True):
        return run([COMPOSE, "-p", cls.project, "-f", os.path.join(DEPLOY, "compose.yaml"), "-f", cls.override, *args],
                   timeout=timeout, check=check)

    @classmethod
    def container(cls, service):
        out = cls.compose("ps", "-q", service).stdout.split()
        return out[0] if out else None

    @classmethod
    def inspect(cls, service):
        return json.loads(docker("inspect", cls.container(service)).stdout)[0]

    @classmethod
    def stop_engine(cls):
        if cls.dockerd and cls.dockerd.poll() is None:
            cls.dockerd.send_signal(signal.SIGTERM)
            try:
                cls.dockerd.wait(60)
            except subprocess.TimeoutExpired:
                cls.dockerd.kill()
                cls.dockerd.wait()
        cls.dockerd = None

    @classmethod
    def tearDownClass(cls):
        for t in cls.threads:
            t.stop()
        for p in cls.procs:
            p.terminate()
            p.wait(10)
        if cls.project and cls.dockerd and cls.dockerd.poll() is None:
            if getattr(cls, "override", None) and docker("ps", "-aq", "--filter",
                                                         f"label=com.docker.compose.project={cls.project}").stdout.strip():
                cls.compose("down", "-v", "-t", "5", "--remove-orphans", timeout=180, check=False)
        cls.stop_engine()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        cls.lock.close()
        log(f"total {time.time() - cls.t0:.0f} s")

    # The tests run in name order: the stack's state goes from whole to gone.

    def test_1_image(self):
        info = json.loads(docker("image", "inspect", "outpost:local").stdout)[0]
        c = info["Config"]
        self.assertEqual(c["User"], "outpost")
        self.assertEqual(sorted(c["Volumes"]), ["/var/cache/outpost", "/var/log/outpost"])
        self.assertEqual(c["StopSignal"], "SIGTERM")
        self.assertEqual(c["Healthcheck"]["Test"], ["CMD", "outpost-healthcheck"])
        log(f"image outpost:local: {info['Size'] / 1e6:.1f} MB")
        r = docker("run", "--rm", "--entrypoint", "ldd", "outpost:local", "/usr/local/bin/outpost")
        self.assertNotIn("not found", r.stdout)
        self.assertIn("libssl.so.3", r.stdout)
        # Inside, the node runs as that user and its volumes are its own to write.
        r = docker("exec", self.container("node-1"), "sh", "-c",
                   "id -un && touch /var/cache/outpost/.w /var/log/outpost/.w && rm /var/cache/outpost/.w /var/log/outpost/.w")
        self.assertEqual(r.stdout.split(), ["outpost"])
        r = docker("exec", self.container("node-1"), "outpost", "ctl", "-c", "/etc/outpost/outpost.toml", "status")
        self.assertIn("outpost", r.stdout)

    def test_2_dns_through_the_published_port(self):
        r = run(["dig", "@127.0.0.1", "-p", str(self.ports["OUTPOST_DNS_PORT"]), "www.outpost.test", "A",
                 "+tries=1", "+time=5"])
        self.assertIn("status: NOERROR", r.stdout)
        self.assertRegex(r.stdout, r"www\.outpost\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.80")
        self.assertGreaterEqual(self.root.count("www.outpost.test.", 1), 1, "the fake root was not asked")
        r = run(["dig", "@127.0.0.1", "-p", str(self.ports["OUTPOST_DNS_PORT"]), "www.outpost.test", "A",
                 "+tcp", "+tries=1", "+time=5"])
        self.assertIn("192.0.2.80", r.stdout)

    def test_3_prometheus_scrapes_every_node(self):
        want = sorted(f"{self.inspect(n)['NetworkSettings']['Networks'][self.project + '_default']['IPAddress']}:9145"
                      for n in NODES)
        up = prometheus_up(self.ports["OUTPOST_PROMETHEUS_PORT"],
                           lambda up: sorted(up) == want and set(up.values()) == {"1"}, 90)
        self.assertEqual(sorted(up), want)
        self.assertEqual(set(up.values()), {"1"}, up)

    def origin_counts(self):
        _, _, b = http_get(f"http://{self.gateway}:{self.origin_port}/__stats")
        reqs = json.loads(b)["requests"]
        return {u: reqs.get(f"/script/o{i}", 0) for i, u in enumerate(self.urls)}

    def node_of_each(self):
        """Fetches every URL through HAProxy; {url: (node, hit)}."""
        out = {}
        for u in self.urls:
            status, headers, body = http_get(u, proxy=f"http://127.0.0.1:{self.ports['OUTPOST_PROXY_PORT']}")
            self.assertEqual(status, 200, u)
            self.assertTrue(body.startswith(b"object "), u)
            m = re.fullmatch(r"(HIT|MISS) from outpost", headers.get("x-cache", ""))
            self.assertIsNotNone(m, f"{u}: X-Cache {headers.get('x-cache')!r}")
            self.assertIn(headers.get("x-outpost-node"), NODES, u)
            out[u] = (headers["x-outpost-node"], m.group(1) == "HIT")
        return out

    def scrape(self, node):
        port = self.compose("port", node, "9145").stdout.strip().rsplit(":", 1)[1]
        _, _, b = http_get(f"http://127.0.0.1:{port}/metrics")
        return b.decode()

    def test_4_each_url_on_one_node_and_a_stopped_node_moves_only_its_share(self):
        first = self.node_of_each()
        second = self.node_of_each()
        for u in self.urls:
            self.assertEqual(second[u][0], first[u][0], u)
            self.assertTrue(second[u][1], f"{u} not a hit the second time")
        self.assertEqual(set(self.origin_counts().values()), {1})
        share = {n: sum(1 for u in self.urls if first[u][0] == n) for n in NODES}
        for n, c in share.items():
            self.assertGreaterEqual(c, 6, f"{n} got {c} of {N_URLS} URLs: {share}")
        for n in NODES:
            text = self.scrape(n)
            hits = metric(text, "outpost_http_requests_total", outcome="TCP_MEM_HIT", method="GET") + \
                metric(text, "outpost_http_requests_total", outcome="TCP_HIT", method="GET")
            misses = metric(text, "outpost_http_requests_total", outcome="TCP_MISS", method="GET")
            self.assertEqual((hits, misses), (share[n], share[n]), f"{n} counters")

        before = self.origin_counts()
        self.compose("stop", "-t", "5", "node-2")
        self.assertEqual(self.inspect("node-2")["State"]["Status"], "exited")
        one_of_node2 = [u for u in self.urls if first[u][0] == "node-2"][0]
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                _, headers, _ = http_get(one_of_node2, proxy=f"http://127.0.0.1:{self.ports['OUTPOST_PROXY_PORT']}")
                if headers.get("x-outpost-node") != "node-2":
                    break
            except OSError:
                pass
            time.sleep(0.2)
        third = self.node_of_each()
        after = self.origin_counts()
        moved = [u for u in self.urls if after[u] > before[u]]
        self.assertEqual(sorted(moved), sorted(u for u in self.urls if first[u][0] == "node-2"))
        for u in self.urls:
            if first[u][0] != "node-2":
                self.assertEqual(third[u], (first[u][0], True), f"{u} moved although its node stayed")
            else:
                self.assertIn(third[u][0], ("node-1", "node-3"))

    def test_5_down_leaves_nothing_behind(self):
        label = f"label=com.docker.compose.project={self.project}"
        volumes = {m["Name"] for n in NODES + ("haproxy", "prometheus")
                   for m in self.inspect(n)["Mounts"] if m["Type"] == "volume"}
        self.assertGreaterEqual(len(volumes), 7, volumes)  # cache + logs a node, Prometheus' data
        self.compose("down", "-v", "-t", "5", timeout=180)
        self.assertEqual(docker("ps", "-aq", "--filter", label).stdout.split(), [])
        self.assertEqual(docker("network", "ls", "-q", "--filter", label).stdout.split(), [])
        left = set(docker("volume", "ls", "-q").stdout.split())
        self.assertEqual(volumes & left, set())
        for port in self.ports.values():
            with self.assertRaises(OSError, msg=f"127.0.0.1:{port} still open"):
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
