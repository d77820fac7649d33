"""deploy/systemd/outpost.service and deploy/logrotate/outpost, checked by the real tools:
systemd-analyze verifies the unit (no unknown or misspelt directive, the ExecStart binary runs
`--check-config`) and rates its sandbox; logrotate rotates a running Outpost's logs with the
snippet's own postrotate signal, and the next lines land in the new files, none lost. The
container files without an engine (test_docker runs them): HAProxy's two configs come from the
one template and pass `haproxy -c`, the compose file passes `docker-compose config`, the
image's Outpost config passes `--check-config`. The drop-ins in deploy/systemd/outpost.service.d
verify with the unit, and the capabilities the unit grants are really all Outpost gets (run as
`nobody` by setpriv with exactly the unit's ambient set, no new privileges): enough for ports
53 and 3128 and for DHCP, not for TPROXY, which starts once tproxy.conf's are added."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import harness as h

DEPLOY = os.path.join(h.HERE, "..", "..", "deploy")


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


class DeployFiles(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="outpost-deploy-")
        self.procs = h.Processes()

    def tearDown(self):
        self.procs.stop_all()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def unit_with_binary(self):
        with open(os.path.join(DEPLOY, "systemd", "outpost.service")) as f:
            text = f.read()
        self.assertIn("ExecStart=/usr/local/bin/outpost --config /etc/outpost/outpost.toml", text)
        path = os.path.join(self.tmp, "outpost.service")
        with open(path, "w") as f:  # the one change: where this build's binary is
            f.write(text.replace("/usr/local/bin/outpost", os.path.abspath(h.OUTPOST)))
        return path

    def test_container_files_are_valid_and_share_haproxys_template(self):
        cluster = os.path.join(DEPLOY, "cluster", "cluster.py")
        compose_cfg = subprocess.run([sys.executable, cluster, "haproxy-config"], capture_output=True, text=True,
                                     check=True).stdout
        self.assertEqual(read(os.path.join(DEPLOY, "compose", "haproxy.cfg")), compose_cfg,
                         "deploy/compose/haproxy.cfg: write it again with `cluster.py haproxy-config`")
        three = subprocess.run([sys.executable, cluster, "haproxy-config", "--nodes", "3"], capture_output=True,
                               text=True, check=True).stdout
        # The same frontend and backend rules in both; only the servers and how they are found differ.
        for text in (compose_cfg, three):
            for line in ("balance uri whole", "hash-type consistent", "option httpchk HEAD /health",
                         "default-server inter 1s fall 2 rise 2", "server node-3 "):
                self.assertIn("  " + line, text)
        for name, text in (("compose", compose_cfg), ("cluster", three)):
            path = os.path.join(self.tmp, f"haproxy-{name}.cfg")
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run(["haproxy", "-c", "-f", path], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, f"{name}: {r.stdout}{r.stderr}")
        r = subprocess.run([h.OUTPOST, "--config", os.path.join(DEPLOY, "container", "outpost.toml"), "--check-config"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        compose = shutil.which("docker-compose")
        self.assertIsNotNone(compose, "docker-compose missing (scripts/install-deps.sh test)")
        r = subprocess.run([compose, "-f", os.path.join(DEPLOY, "compose.yaml"), "config", "--services"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(r.stdout.split()), ["haproxy", "node-1", "node-2", "node-3", "prometheus"])

    def test_image_installs_the_package_of_every_library_outpost_links(self):
        # The runtime stage lists packages by hand; a new library (libldap, libcurl) once
        # reached the image only as a failed --check-config in the 5-minute Docker test. Here:
        # each NEEDED entry of this build's binary, resolved by ldd, belongs to a package the
        # Dockerfile's runtime stage installs or bookworm-slim already has.
        runtime = read(os.path.join(DEPLOY, "Dockerfile")).rsplit("FROM debian:bookworm-slim", 1)[1]
        installed = set(re.search(r"apt-get install -y --no-install-recommends ([^\\\n]+)", runtime).group(1).split())
        base = {"libc6", "libstdc++6", "libgcc-s1", "libcrypt1", "zlib1g"}
        needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                                subprocess.run(["readelf", "-d", h.OUTPOST], capture_output=True, text=True,
                                               check=True).stdout))
        self.assertIn("libuv.so.1", needed)
        # A sanitizer build's runtimes are not the image's (it builds Release).
        needed = {lib for lib in needed if not re.match(r"lib(a|ub|t|l|hwa)san\.so", lib)}
        paths = {}
        for line in subprocess.run(["ldd", h.OUTPOST], capture_output=True, text=True, check=True).stdout.splitlines():
            m = re.match(r"\s*(\S+) => (\S+)", line)
            if m:
                paths[m.group(1)] = m.group(2)
        for lib in sorted(needed):
            self.assertIn(lib, paths, f"ldd does not resolve {lib}")
            owner = subprocess.run(["dpkg", "-S", os.path.realpath(paths[lib])], capture_output=True, text=True)
            if owner.returncode != 0:  # the /lib -> /usr/lib merge: dpkg knows one of the two paths
                owner = subprocess.run(["dpkg", "-S", paths[lib]], capture_output=True, text=True, check=True)
            pkg = owner.stdout.split(":", 1)[0]
            self.assertTrue(pkg in installed or pkg in base,
                            f"{lib} comes from {pkg}, which deploy/Dockerfile's runtime stage does not install")

    def test_unit_verifies_cleanly_and_is_sandboxed(self):
        tool = shutil.which("systemd-analyze")
        self.assertIsNotNone(tool, "systemd-analyze missing (Debian's systemd package)")
        unit = self.unit_with_binary()
        r = subprocess.run([tool, "verify", unit], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.strip(), "", "systemd-analyze verify complained")
        r = subprocess.run([tool, "security", "--offline=yes", unit], capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for outpost.service: ([\d.]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout[-500:] + r.stderr)
        self.assertLessEqual(float(m.group(1)), 2.5, "the unit's sandbox got weaker")
        with open(unit) as f:
            text = f.read()
        # Only the capability to bind low ports; no new privileges; the file system read-only
        # except the cache and the logs.
        for line in ("CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "NoNewPrivileges=yes", "ProtectSystem=strict",
                     "ReadWritePaths=/var/cache/outpost /var/log/outpost", "ExecReload=/bin/kill -HUP $MAINPID"):
            self.assertIn(line + "\n", text)

    def test_drop_ins_verify_with_the_unit(self):
        tool = shutil.which("systemd-analyze")
        self.assertIsNotNone(tool, "systemd-analyze missing (Debian's systemd package)")
        unit = self.unit_with_binary()
        drop_ins = sorted(os.listdir(os.path.join(DEPLOY, "systemd", "outpost.service.d")))
        self.assertEqual(drop_ins, ["dhcp.conf", "tproxy.conf"])
        shutil.copytree(os.path.join(DEPLOY, "systemd", "outpost.service.d"), unit + ".d")
        r = subprocess.run([tool, "verify", unit], capture_output=True, text=True, timeout=60)
        self.assertEqual((r.returncode, r.stderr.strip()), (0, ""))
        # The drop-ins are read (a misspelt directive in one is reported).
        with open(os.path.join(unit + ".d", "zz-check.conf"), "w") as f:
            f.write("[Service]\nAmbientCapabilitiez=CAP_NET_ADMIN\n")
        r = subprocess.run([tool, "verify", unit], capture_output=True, text=True, timeout=60)
        self.assertIn("AmbientCapabilitiez", r.stderr)

    @staticmethod
    def ambient_caps(*files):
        """The union of the AmbientCapabilities= lines in FILES (systemd merges them)."""
        caps = set()
        for path in files:
            for line in read(path).splitlines():
                if line.startswith("AmbientCapabilities="):
                    caps.update(line.split("=", 1)[1].split())
        return sorted(caps)

    def run_as_service(self, caps, config, stderr=subprocess.DEVNULL):
        """Outpost as `nobody` with exactly CAPS (ambient, inheritable, bounding), no new
        privileges: what the unit's User=, NoNewPrivileges= and capability lines give it."""
        names = ",".join("+" + c.lower().removeprefix("cap_") for c in caps)
        setpriv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--no-new-privs",
                   f"--inh-caps=-all,{names}", f"--ambient-caps=-all,{names}", f"--bounding-set=-all,{names}"]
        return self.procs.start(setpriv + [os.path.abspath(h.OUTPOST), "--config", config],
                                stdout=subprocess.DEVNULL, stderr=stderr, text=True)

    def service_config(self, name, extra):
        d = os.path.join(self.tmp, name)
        os.makedirs(d)
        os.chmod(self.tmp, 0o755)
        os.chmod(d, 0o777)  # nobody writes its logs (and leases) there
        hints = h.write_fake_root_hints(os.path.join(d, "hints"))
        path = os.path.join(d, "o.toml")
        with open(path, "w") as f:
            f.write(f'[log]\nfile = "{d}/outpost.log"\naccess_log = "{d}/access.log"\n'
                    '[dns]\nlisten = ["127.0.0.1:53"]\n' + h.fake_root_keys(hints) + extra)
        os.chmod(path, 0o644)
        return path, d

    def test_the_units_capabilities_suffice_but_for_tproxy_whose_drop_in_adds_them(self):
        if not shutil.which("setpriv"):
            self.skipTest("setpriv missing (util-linux)")
        unit = os.path.join(DEPLOY, "systemd", "outpost.service")
        drop_ins = os.path.join(DEPLOY, "systemd", "outpost.service.d")
        base = self.ambient_caps(unit)
        self.assertEqual(base, ["CAP_NET_BIND_SERVICE"])
        self.assertEqual(self.ambient_caps(unit, os.path.join(drop_ins, "dhcp.conf")), base,
                         "the DHCP drop-in grants nothing by default")
        # DNS on port 53, the proxy, and DHCP (port 67, bound to its interface): the unit's own.
        subprocess.run(["ip", "link", "add", "op-dhcp0", "type", "veth", "peer", "name", "op-dhcp1"], check=True)
        subprocess.run(["ip", "addr", "add", "10.77.0.1/24", "dev", "op-dhcp0"], check=True)
        for dev in ("op-dhcp0", "op-dhcp1"):
            subprocess.run(["ip", "link", "set", dev, "up"], check=True)
        conf, d = self.service_config(
            "dhcp", f'[proxy]\nlisten = ["127.0.0.1:{h.PROXY_PORT}"]\n'
                    f'[dhcp]\nenabled = true\ninterface = "op-dhcp0"\nlease_file = "{self.tmp}/dhcp/leases"\n'
                    'pools = [{ subnet = "10.77.0.0/24", first = "10.77.0.100", last = "10.77.0.110" }]\n')
        p = self.run_as_service(base, conf)
        h.wait_port(h.PROXY_PORT, proc=p)
        h.wait_port(53, proc=p)
        deadline = time.time() + 10
        while "dhcp" not in read(f"{d}/outpost.log") and time.time() < deadline:
            time.sleep(0.1)
        self.assertTrue(os.path.exists(f"{d}/leases"), read(f"{d}/outpost.log"))
        p.terminate()
        p.wait(15)
        # TPROXY: IP_TRANSPARENT is refused with the unit's capabilities alone...
        tp = f'intercept_listen = ["127.0.0.1:{h.PROXY_PORT + 1}"]\nintercept_mode = "tproxy"\n'
        conf, d = self.service_config("tproxy", f'[proxy]\nlisten = ["127.0.0.1:{h.PROXY_PORT}"]\n' + tp)
        p = self.run_as_service(base, conf, stderr=subprocess.PIPE)
        _, err = p.communicate(timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("TPROXY needs CAP_NET_ADMIN", err + read(f"{d}/outpost.log"))
        # ...and allowed with the drop-in's.
        caps = self.ambient_caps(unit, os.path.join(drop_ins, "tproxy.conf"))
        self.assertEqual(caps, ["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"])
        p = self.run_as_service(caps, conf)
        h.wait_port(h.PROXY_PORT + 1, proc=p)

    def test_logrotate_snippet_rotates_a_running_outposts_logs(self):
        tool = shutil.which("logrotate")
        self.assertIsNotNone(tool, "logrotate missing")
        logs = os.path.join(self.tmp, "log")
        os.makedirs(logs)
        conf = os.path.join(self.tmp, "o.toml")
        with open(conf, "w") as f:
            f.write(f'[log]\nlevel = "info"\nfile = "{logs}/outpost.log"\naccess_log = "{logs}/access.log"\n'
                    f'[proxy]\nlisten = ["127.0.0.1:{h.PROXY_PORT}"]\n[dns]\nlisten = []\n'
                    + h.fake_root_keys(f"{self.tmp}/hints"))
        with open(os.path.join(self.tmp, "hints"), "w") as f:
            f.write(". 3600000 NS a.root-servers.test.\na.root-servers.test. 3600000 A 127.0.0.2\n")
        p = self.procs.start([h.OUTPOST, "--config", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        h.wait_port(h.PROXY_PORT, proc=p)

        def health(tag):
            url = f"http://127.0.0.1:{h.PROXY_PORT}/health?{tag}"
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=5) as r:
                self.assertEqual(r.status, 200)

        def wait_for(path, text):
            deadline = time.time() + 10
            while time.time() < deadline:
                if os.path.exists(path) and text in read(path):
                    return
                time.sleep(0.05)
            self.fail(f"{text!r} never reached {path}")

        health("before-rotation")
        wait_for(f"{logs}/access.log", "before-rotation")
        with open(os.path.join(DEPLOY, "logrotate", "outpost")) as f:
            snippet = f.read()
        self.assertIn("/var/log/outpost/*.log {", snippet)
        # The test's paths, and no owner change (there is no `outpost` user here).
        snippet = snippet.replace("/var/log/outpost", logs)
        snippet = re.sub(r"\n\s*create 0640 outpost outpost", "", snippet)
        lconf = os.path.join(self.tmp, "logrotate.conf")
        with open(lconf, "w") as f:
            f.write(snippet)
        r = subprocess.run([tool, "-f", "-s", os.path.join(self.tmp, "state"), lconf], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("before-rotation", read(f"{logs}/access.log.1"))
        health("after-rotation")
        # The snippet's postrotate (pkill -HUP here: no systemd) made Outpost reopen its files.
        wait_for(f"{logs}/access.log", "after-rotation")
        self.assertNotIn("after-rotation", read(f"{logs}/access.log.1"))
        wait_for(f"{logs}/outpost.log", "logs reopened")
        self.assertIsNone(p.poll(), "Outpost stopped")


if __name__ == "__main__":
    unittest.main(verbosity=2)
