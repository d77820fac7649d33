#!/usr/bin/env python3
"""A consistent-hashing Outpost cluster without containers: HAProxy in front (`balance uri
whole` + `hash-type consistent`, health checks on each node's /health) over N Outpost
processes on their own loopback addresses (127.0.1.1, 127.0.1.2, ...), each with its own
cache directory and admin port, and optionally a Prometheus scraping every node's /metrics.
The same topology as deploy/compose.yaml (one HAProxy template: deploy/haproxy.cfg.in), for fast tests and for machines without a
container engine.

  deploy/cluster/cluster.py up   [--dir DIR] [--nodes N] [--listen 127.0.0.1:3128]
                                 [--outpost BIN] [--set section.key=TOML] ... [--prometheus PORT]
  deploy/cluster/cluster.py status [--dir DIR]
  deploy/cluster/cluster.py down [--dir DIR]
  deploy/cluster/cluster.py haproxy-config [--nodes N]   (> deploy/compose/haproxy.cfg without --nodes)

`up` writes DIR/node-<i>/outpost.toml, DIR/haproxy.cfg and DIR/prometheus.yml, starts
everything in the background (logs beside the configs) and returns once every node answers
/health and HAProxy listens; DIR/cluster.json records the PIDs, which `down` stops (SIGTERM,
then SIGKILL after the grace). Scaling is `--nodes`; `--set` overrides any node setting (for
example `--set dns.hints='"/etc/outpost/root.hints"'` or `--set server.workers=1`).
Node <i> listens on 127.0.1.<i>: proxy :3128, admin (/metrics, /health) :9145, DNS :53.
Run as root (binding port 53 and loopback addresses other than 127.0.0.1 needs nothing else
on Linux: the whole 127/8 is local).
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_DIR = "/var/lib/outpost-cluster"
NODE_NET = "127.0.1."
PROXY_PORT, ADMIN_PORT, DNS_PORT = 3128, 9145, 53


def node_addr(i):
    return f"{NODE_NET}{i}"


def toml_str(s):
    return json.dumps(s)  # a JSON string is a valid TOML basic string


def node_config(i, d, overrides):
    """Node i's settings as {section: {key: TOML literal}}; overrides win."""
    a = node_addr(i)
    sections = {
        "server": {"name": toml_str(f"node-{i}")},
        "log": {"file": toml_str(os.path.join(d, "outpost.log")), "access_log": toml_str(os.path.join(d, "access.log"))},
        "proxy": {"listen": f"[{toml_str(f'{a}:{PROXY_PORT}')}]"},
        "admin": {"enabled": "true", "listen": f"[{toml_str(f'{a}:{ADMIN_PORT}')}]"},
        "dns": {"listen": f"[{toml_str(f'{a}:{DNS_PORT}')}]"},
        "cache": {"disk_dir": toml_str(os.path.join(d, "cache"))},
    }
    for key, value in overrides:
        section, _, name = key.partition(".")
        if not section or not name:
            raise SystemExit(f"--set {key}=...: expected section.key")
        sections.setdefault(section, {})[name] = value
    out = [f"# node {i} of an Outpost cluster (written by deploy/cluster/cluster.py)"]
    for section, keys in sections.items():
        out.append(f"[{section}]")
        out += [f"{k} = {v}" for k, v in keys.items()]
    return "\n".join(out) + "\n"


TEMPLATE = os.path.join(ROOT, "deploy", "haproxy.cfg.in")
COMPOSE_SLOTS = 16


def render_haproxy(what, global_lines, bind, server_options, servers, tail=""):
    """deploy/haproxy.cfg.in with its @FIELDS@ filled in."""
    with open(TEMPLATE) as f:
        text = f.read()
    for key, value in (("@WHAT@", what), ("@GLOBAL@", "".join(f"  {l}\n" for l in global_lines)),
                       ("@BIND@", bind), ("@SERVER_OPTIONS@", server_options),
                       ("@SERVERS@", "".join(f"  {l}\n" for l in servers)), ("@TAIL@", tail)):
        text = text.replace(key, value)
    return text


def haproxy_config(n, listen, d):
    # Two descriptors a proxied connection, within this process's limit.
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = hard if hard != resource.RLIM_INFINITY else 1 << 20
    maxconn = max(256, min(100000, (limit - 100) // 2))
    host, _, port = listen.rpartition(":")
    return render_haproxy(f"{n} processes on {node_addr(1)}..{node_addr(n)} (deploy/cluster/cluster.py)",
                          [f"maxconn {maxconn}"], f"{host}:{port}", "",
                          [f"server node-{i} {node_addr(i)}:{PROXY_PORT} check" for i in range(1, n + 1)])


def compose_haproxy_config(slots=COMPOSE_SLOTS):
    """deploy/compose/haproxy.cfg: servers node-1..node-SLOTS found by name through Docker's
    DNS, so adding a node to the compose file needs no change here (up to SLOTS nodes)."""
    tail = """
# Docker's embedded DNS: node-<i> resolves while that container exists. A slot whose name does
# not resolve stays in maintenance, outside the hash; a node recreated with a new address is
# followed within a second. maxconn: HAProxy derives it from its file descriptor limit.
resolvers docker
  nameserver docker 127.0.0.11:53
  timeout resolve 1s
  hold valid 5s
"""
    return render_haproxy(f"the node-<i> containers of deploy/compose.yaml (up to {slots})", [], ":3128",
                          " resolvers docker resolve-prefer ipv4 init-addr none",
                          [f"server node-{i} node-{i}:{PROXY_PORT} check" for i in range(1, slots + 1)], tail)


def prometheus_config(n):
    targets = ", ".join(f"'{node_addr(i)}:{ADMIN_PORT}'" for i in range(1, n + 1))
    return f"""# Prometheus scraping every Outpost node (written by deploy/cluster/cluster.py)
global:
  scrape_interval: 5s
scrape_configs:
  - job_name: outpost
    static_configs:
      - targets: [{targets}]
"""


def wait_http(url, timeout, proc):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout} s ({last})")


def wait_port(host, port, timeout, proc):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listening on {host}:{port} after {timeout} s")


def start(argv, log_path):
    log = open(log_path, "ab")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def find_outpost(given):
    for c in (given, os.path.join(ROOT, "build", "release", "app", "outpost"),
              os.path.join(ROOT, "build", "dev", "app", "outpost"), shutil.which("outpost")):
        if c and os.path.exists(c):
            return os.path.abspath(c)
    raise SystemExit("no outpost binary: build it (scripts/install.sh) or pass --outpost")


def cmd_up(a):
    state_path = os.path.join(a.dir, "cluster.json")
    if os.path.exists(state_path) and any(alive(p) for p in load(a.dir)["pids"].values()):
        raise SystemExit(f"a cluster is running from {a.dir}: `cluster.py down --dir {a.dir}` first")
    if a.nodes < 1 or a.nodes > 254:
        raise SystemExit("--nodes: 1 to 254")
    overrides = []
    for s in a.set or []:
        k, sep, v = s.partition("=")
        if not sep:
            raise SystemExit(f"--set {s}: expected section.key=value")
        overrides.append((k.strip(), v.strip()))
    outpost = find_outpost(a.outpost)
    os.makedirs(a.dir, exist_ok=True)
    state = {"dir": os.path.abspath(a.dir), "nodes": a.nodes, "listen": a.listen, "pids": {}}
    procs = {}
    try:
        for i in range(1, a.nodes + 1):
            d = os.path.join(a.dir, f"node-{i}")
            os.makedirs(os.path.join(d, "cache"), exist_ok=True)
            conf = os.path.join(d, "outpost.toml")
            with open(conf, "w") as f:
                f.write(node_config(i, d, overrides))
            p = start([outpost, "--config", conf], os.path.join(d, "stdout.log"))
            procs[f"node-{i}"] = p
            state["pids"][f"node-{i}"] = p.pid
        for i in range(1, a.nodes + 1):
            try:
                wait_http(f"http://{node_addr(i)}:{ADMIN_PORT}/health", 30, procs[f"node-{i}"])
            except SystemExit as e:
                with open(os.path.join(a.dir, f"node-{i}", "stdout.log"), errors="replace") as f:
                    raise SystemExit(f"node-{i}: {e}\n{f.read()[-2000:]}")
        hcfg = os.path.join(a.dir, "haproxy.cfg")
        with open(hcfg, "w") as f:
            f.write(haproxy_config(a.nodes, a.listen, a.dir))
        p = start(["haproxy", "-db", "-f", hcfg], os.path.join(a.dir, "haproxy.log"))
        procs["haproxy"] = p
        state["pids"]["haproxy"] = p.pid
        host, _, port = a.listen.rpartition(":")
        wait_port(host, int(port), 15, p)
        if a.prometheus:
            pcfg = os.path.join(a.dir, "prometheus.yml")
            with open(pcfg, "w") as f:
                f.write(prometheus_config(a.nodes))
            p = start(["prometheus", f"--config.file={pcfg}", f"--storage.tsdb.path={os.path.join(a.dir, 'prometheus')}",
                       f"--web.listen-address=127.0.0.1:{a.prometheus}"], os.path.join(a.dir, "prometheus.log"))
            procs["prometheus"] = p
            state["pids"]["prometheus"] = p.pid
            wait_port("127.0.0.1", a.prometheus, 60, p)
    except BaseException:
        stop_all(state["pids"], 5)
        raise
    with open(state_path, "w") as f:
        json.dump(state, f, indent=1)
    print(f"cluster up: HAProxy on {a.listen} over {a.nodes} node(s) at {node_addr(1)}..{node_addr(a.nodes)}"
          + (f"; Prometheus on 127.0.0.1:{a.prometheus}" if a.prometheus else ""))


def load(d):
    with open(os.path.join(d, "cluster.json")) as f:
        return json.load(f)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_all(pids, grace):
    order = [k for k in ("prometheus", "haproxy") if k in pids] + [k for k in pids if k.startswith("node-")]
    for k in order:
        try:
            os.kill(pids[k], signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + grace
    for k in order:
        while alive(pids[k]) and time.time() < deadline:
            time.sleep(0.05)
        if alive(pids[k]):
            try:
                os.kill(pids[k], signal.SIGKILL)
            except ProcessLookupError:
                pass


def cmd_down(a):
    if not os.path.exists(os.path.join(a.dir, "cluster.json")):
        raise SystemExit(f"no cluster in {a.dir}")
    state = load(a.dir)
    stop_all(state["pids"], a.grace)
    os.remove(os.path.join(a.dir, "cluster.json"))
    print(f"cluster down ({len(state['pids'])} processes stopped; caches and logs stay in {a.dir})")


def cmd_status(a):
    state = load(a.dir)
    bad = 0
    for name, pid in state["pids"].items():
        up = alive(pid)
        bad += not up
        print(f"{name:12s} pid {pid:7d} {'running' if up else 'GONE'}")
    sys.exit(1 if bad else 0)


def cmd_haproxy_config(a):
    sys.stdout.write(haproxy_config(a.nodes, a.listen, None) if a.nodes else compose_haproxy_config())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up")
    up.add_argument("--dir", default=DEFAULT_DIR)
    up.add_argument("--nodes", type=int, default=3)
    up.add_argument("--listen", default="127.0.0.1:3128", help="HAProxy's address for the clients")
    up.add_argument("--outpost", help="the outpost binary (default: build/release, build/dev, then PATH)")
    up.add_argument("--set", action="append", metavar="SECTION.KEY=TOML", help="a node setting (repeatable)")
    up.add_argument("--prometheus", type=int, metavar="PORT", help="also run Prometheus on 127.0.0.1:PORT")
    down = sub.add_parser("down")
    down.add_argument("--dir", default=DEFAULT_DIR)
    down.add_argument("--grace", type=float, default=15, help="seconds to drain before SIGKILL")
    st = sub.add_parser("status")
    st.add_argument("--dir", default=DEFAULT_DIR)
    hc = sub.add_parser("haproxy-config", help="print HAProxy's config: the compose stack's "
                        "(deploy/compose/haproxy.cfg) or, with --nodes, this script's")
    hc.add_argument("--nodes", type=int, help="a cluster.py config for this many nodes")
    hc.add_argument("--listen", default="127.0.0.1:3128")
    a = ap.parse_args()
    {"up": cmd_up, "down": cmd_down, "status": cmd_status, "haproxy-config": cmd_haproxy_config}[a.cmd](a)


if __name__ == "__main__":
    main()
