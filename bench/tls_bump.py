#!/usr/bin/env python3
"""HTTPS interception (ssl-bump) benchmark: Squid 5.7 (squid-openssl) and Outpost side by side.

Run as root inside a private network namespace (loopback only), after a Release build of
`outpost` and `outpost_loadgen`:

    tests/integration/netns_run.sh python3 bench/tls_bump.py [--quick] [--runs N] [--seconds S]
                                                              [--only squid,outpost,direct] [--out DIR]

Rows (every client request is `GET` of a fresh 1 KiB object, `Cache-Control: max-age=3600`,
that both proxies hold in memory after the preflight; the 1 MiB object for the splice row):
  1. bumped new connections/s: TCP connect to the proxy, `CONNECT origin.test:8443`, a full TLS
     handshake verified against the interception CA (no resumption), one GET (a hit), close;
  2. bumped keep-alive hits req/s: 16 connections, one CONNECT + handshake each, then GETs;
  3. spliced tunnel MB/s: `CONNECT splice.test:8443` (in both proxies' splice lists), the client
     verifies the ORIGIN's certificate (origin CA), then keep-alive GETs of a 1 MiB object from
     nginx through the tunnel (plus, for context, spliced new connections/s);
  4. plain-HTTP keep-alive hits req/s (absolute-form `GET http://origin.test:8080/1k`), same
     client and connection count, for the ratio bumped keep-alive / plain.
The client is `loadgen tls` (bench/loadgen/tls_client.cpp: epoll threads, OpenSSL); a wrk run of
row 4 is printed as a cross-check. Direct-to-nginx rows give the ceiling on this machine.
Each figure: median of N runs (default 3) of S seconds after 1 s of warm-up, Squid and Outpost
interleaved. CPU: the server's user+system seconds (all its processes) per 1 000 requests (or
connections). `/proc/loadavg` before each run and the CPU used by processes outside the
benchmark are recorded; runs where others used more than 10% of a core are flagged.
Benchmarks print figures, they assert nothing.
"""
import argparse
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "suite"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402  make_test_pki, sign_leaf, in_private_netns
from common import Proc, wait_port  # noqa: E402
import peers  # noqa: E402  squid_common

BUILD = os.environ.get("BUILD_DIR", os.path.join(ROOT, "build", "release"))
OUTPOST = os.path.join(BUILD, "app", "outpost")
LOADGEN = os.path.join(BUILD, "bench", "loadgen", "loadgen")
SQUID_PORT = 13128
OUTPOST_PORT = 13129
TLS_PORT = 8443      # nginx HTTPS: origin.test and splice.test
HTTP_PORT = 8080     # nginx plain HTTP: origin.test (row 4)
STATUS_PORT = 8081   # nginx stub_status (origin requests and connections during a run)
CONNECTIONS = 16
SPLICE_CONNECTIONS = 16
NEW_CONN_CLIENTS = 16  # concurrent connections in the new-connection rows
KIB = 1024
MIB = 1 << 20

COMMANDS = []  # every command line the benchmark ran (the first of each kind), for the report


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {(r.stderr or r.stdout).strip()[-600:]}")
    return r


def note_command(argv):
    text = " ".join(argv)
    key = re.sub(r"\d+(\.\d+)?", "N", text)
    if key not in {re.sub(r"\d+(\.\d+)?", "N", c) for c in COMMANDS}:
        COMMANDS.append(text)


# ---------------------------------------------------------------- PKI, origin, proxies

def make_pki(d):
    """Origin CA + a leaf for origin.test and splice.test (the integration tests' helpers), and
    the interception CA (`outpost ca init`, EC P-256), used by both proxies."""
    origin = os.path.join(d, "origin-pki")
    os.makedirs(origin)
    harness.make_test_pki(origin)
    harness.sign_leaf(origin, "origin", "DNS:origin.test,DNS:splice.test")
    icpt = os.path.join(d, "intercept-ca")
    os.makedirs(icpt)
    cert, key = os.path.join(icpt, "ca.pem"), os.path.join(icpt, "ca.key")
    argv = [OUTPOST, "ca", "init", "--cert", cert, "--key", key, "--name", "Bench interception CA"]
    note_command(argv)
    sh(argv)
    os.chmod(icpt, 0o755)
    os.chmod(key, 0o644)  # the scratch CA's key must be readable by Squid (user proxy)
    return {
        "origin_ca": os.path.join(origin, "ca.pem"),
        "origin_cert": os.path.join(origin, "origin.pem"),
        "origin_key": os.path.join(origin, "origin.key"),
        "ca": cert,
        "ca_key": key,
    }


def start_nginx(d, pki):
    root = os.path.join(d, "www")
    os.makedirs(root)  # d exists
    os.makedirs(os.path.join(d, "tmp"))
    with open(os.path.join(root, "1k"), "wb") as f:
        f.write(os.urandom(KIB))
    with open(os.path.join(root, "1m"), "wb") as f:
        f.write(os.urandom(MIB))
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(textwrap.dedent(f"""\
            daemon off; master_process on; worker_processes 2; user root;
            worker_rlimit_nofile 65536;
            pid {d}/nginx.pid; error_log {d}/error.log error;
            events {{ worker_connections 16384; }}
            http {{
              access_log off; sendfile on; tcp_nopush off; keepalive_requests 10000000; keepalive_timeout 600s;
              default_type application/octet-stream;
              client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
              uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
              server {{
                listen 127.0.0.1:{TLS_PORT} ssl reuseport backlog=8192;
                server_name origin.test splice.test;
                ssl_certificate {pki['origin_cert']};
                ssl_certificate_key {pki['origin_key']};
                ssl_protocols TLSv1.2 TLSv1.3;
                ssl_session_cache off; ssl_session_tickets off;
                root {root};
                location / {{ expires 1h; }}
              }}
              server {{
                listen 127.0.0.1:{HTTP_PORT} reuseport backlog=8192;
                root {root};
                location / {{ expires 1h; }}
              }}
              server {{
                listen 127.0.0.1:{STATUS_PORT};
                location = /status {{ stub_status; }}
              }}
            }}
            """))
    argv = ["nginx", "-c", conf, "-p", d]
    note_command(argv)
    p = Proc("nginx", argv, cwd=d)
    for port in (TLS_PORT, HTTP_PORT, STATUS_PORT):
        wait_port(port, proc=p)
    return p, conf


def nginx_counters():
    """(accepted connections, requests) of the origin nginx, from stub_status (this read
    itself counts one connection and one request)."""
    text = harness.direct_get(STATUS_PORT, "/status").decode()
    accepts, _handled, requests = (int(x) for x in text.splitlines()[2].split())
    return accepts, requests


def start_squid(d, pki):
    os.chmod(d, 0o755)
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 origin.test splice.test\n")
    db = os.path.join(d, "ssl_db")
    certgen = "/usr/lib/squid/security_file_certgen"
    argv = [certgen, "-c", "-s", db, "-M", "4MB"]
    note_command(argv)
    sh(argv)
    conf = os.path.join(d, "squid.conf")
    with open(conf, "w") as f:
        f.write(textwrap.dedent(f"""\
            http_port 127.0.0.1:{SQUID_PORT} ssl-bump generate-host-certificates=on dynamic_cert_mem_cache_size=16MB tls-cert={pki['ca']} tls-key={pki['ca_key']}
            sslcrtd_program {certgen} -s {db} -M 4MB
            sslcrtd_children 5
            acl step1 at_step SslBump1
            acl splice_names ssl::server_name splice.test
            ssl_bump peek step1
            ssl_bump splice splice_names
            ssl_bump bump all
            tls_outgoing_options cafile={pki['origin_ca']}
            hosts_file {hosts}
            acl localnet src 127.0.0.0/8
            acl bench_ports port {TLS_PORT} {HTTP_PORT}
            http_access deny !bench_ports
            http_access allow localnet
            http_access deny all
            cache_mem 256 MB
            maximum_object_size_in_memory 2 MB
            maximum_object_size 8 MB
            """) + peers.squid_common(d))
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            shutil.chown(os.path.join(root, name), "proxy", "proxy")
    shutil.chown(d, "proxy", "proxy")
    argv = ["squid", "-N", "-f", conf]
    note_command(argv)
    p = Proc("squid", argv, cwd=d)
    wait_port(SQUID_PORT, proc=p)
    return p, conf


def outpost_config(d, pki, intercept):
    hints = os.path.join(d, "root.hints")
    with open(hints, "w") as f:  # a fake root on loopback: nothing is resolved upstream
        f.write(". 3600000 NS a.root-servers.test.\na.root-servers.test. 3600000 A 127.0.0.2\n")
    zones = []
    for name in ("origin.test", "splice.test"):
        zone = os.path.join(d, f"{name}.zone")
        with open(zone, "w") as f:
            f.write(f"$ORIGIN {name}.\n@ 3600 IN SOA ns admin 1 3600 600 86400 60\n@ 3600 IN NS ns\n"
                    "ns 3600 IN A 127.0.0.1\n@ 3600 IN A 127.0.0.1\n")
        zones.append(f'{{ name = "{name}", file = "{zone}" }}')
    text = textwrap.dedent(f"""\
        [server]
        workers = 2
        shutdown_grace = 1
        [log]
        level = "warn"
        file = "{d}/outpost.log"
        access_log = ""
        [proxy]
        listen = ["127.0.0.1:{OUTPOST_PORT}"]
        idle_timeout = 600
        [dns]
        hints = "{hints}"
        listen = []
        local_zones = [{", ".join(zones)}]
        [cache]
        memory_size = {256 * MIB}
        disk_dir = ""
        max_object_size = {8 * MIB}
        [origin]
        ca_file = "{pki['origin_ca']}"
        [acl]
        allow_clients = ["127.0.0.0/8"]
        allow_hosts = ["*.test"]
        allow_networks = ["127.0.0.0/8"]
        connect_ports = [443, {TLS_PORT}]
        """)
    if intercept:
        text += textwrap.dedent(f"""\
            [intercept]
            ca_certificate = "{pki['ca']}"
            ca_key = "{pki['ca_key']}"
            bump = ["origin.test"]
            splice = ["splice.test"]
            """)
    conf = os.path.join(d, "outpost-intercept.toml" if intercept else "outpost-plain.toml")
    with open(conf, "w") as f:
        f.write(text)
    return conf


def start_outpost(d, pki):
    """Outpost with the [intercept] section; if this build refuses it, without (every CONNECT
    is then spliced and the bump rows say why they are n/a). Returns (proc, conf, note)."""
    note = None
    for intercept in (True, False):
        conf = outpost_config(d, pki, intercept)
        argv = [OUTPOST, "--config", conf]
        log_path = os.path.join(d, "outpost.stdout.log")
        if os.path.exists(log_path):
            os.remove(log_path)
        p = Proc("outpost", argv, cwd=d)
        try:
            wait_port(OUTPOST_PORT, proc=p, timeout=15)
            note_command(argv)
            return p, conf, note
        except RuntimeError:
            p.stop()
            with open(log_path, errors="replace") as f:
                err = f.read().strip()
            if not intercept:
                raise RuntimeError(f"outpost did not start: {err[-600:]}")
            note = "this build refused the [intercept] config: " + (err.splitlines()[-1] if err else "?")
            log(f"outpost: {note}; starting it without [intercept]")
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- preflight (Python ssl)

def _read_response(sock_file):
    status = sock_file.readline()
    headers = {}
    while True:
        line = sock_file.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        k, _, v = line.decode(errors="replace").partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    body = sock_file.read(length)
    return status.decode(errors="replace").strip(), headers, body


def preflight(proxy_port, target, path, cafile, tls=True, requests=2):
    """Two requests the way the load client makes them, checked with Python's ssl module:
    returns (None, info) when they worked, (error text, info) otherwise."""
    name = target.rsplit(":", 1)[0]
    info = {}
    try:
        s = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
        if tls:
            s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    return "proxy closed the connection after CONNECT", info
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode(errors="replace")
            if " 200" not in line:
                return f"CONNECT refused: {line}", info
            ctx = ssl.create_default_context(cafile=cafile)  # only this CA
            ctx.options |= ssl.OP_NO_TICKET
            s = ctx.wrap_socket(s, server_hostname=name)
            cert = s.getpeercert()
            info["tls"] = f"{s.version()} {s.cipher()[0]}"
            info["leaf_issuer"] = dict(x[0] for x in cert.get("issuer", ()))
            info["leaf_san"] = [v for _k, v in cert.get("subjectAltName", ())]
            bincert = s.getpeercert(binary_form=True)
            info["leaf_key"] = _key_type(bincert)
        f = s.makefile("rb")
        url = path if tls else f"http://{target}{path}"
        for i in range(requests):
            s.sendall(f"GET {url} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            status, headers, body = _read_response(f)
            info[f"response{i + 1}"] = {"status": status, "bytes": len(body),
                                        **{k: headers[k] for k in ("x-cache", "age", "cache-control", "via")
                                           if k in headers}}
            if " 200" not in status:
                return f"GET answered {status}", info
        s.close()
        return None, info
    except ssl.SSLError as e:
        return f"TLS handshake failed: {e.reason or e}" + (f" ({e.verify_message})" if getattr(e, "verify_message", None) else ""), info
    except OSError as e:
        return f"{type(e).__name__}: {e}", info


def _key_type(der):
    try:
        r = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-text"], input=der,
                           capture_output=True, timeout=10)
        m = re.search(rb"Public Key Algorithm: (\S+)", r.stdout)
        bits = re.search(rb"Public-Key: \((\d+) bit\)", r.stdout)
        return f"{m.group(1).decode()} {bits.group(1).decode()} bit" if m and bits else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


# ---------------------------------------------------------------- measuring

def proc_cpu_total():
    """(busy, total) jiffies of the whole machine (/proc/stat is not per namespace). Busy is
    user + nice + system: interrupt time is charged to no process (loopback traffic makes
    plenty of it), and steal is other virtual machines."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:9]]
    return vals[0] + vals[1] + vals[2], sum(vals)


def own_cpu_jiffies():
    """CPU jiffies of every process in this PID namespace (the benchmark's own: proxies,
    origin, client, this script), counted with their waited-for children."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        except (OSError, IndexError):
            pass
    return total


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


QUIET_CORES = 0.1  # CPU used by others (in cores) above which a run counts as disturbed


def wait_quiet(max_wait):
    """Waits (up to max_wait s) for one second in which the machine is idle but for this
    benchmark's idle servers; returns the seconds waited."""
    t0 = time.time()
    while time.time() - t0 < max_wait:
        busy0, total0 = proc_cpu_total()
        time.sleep(1)
        busy1, total1 = proc_cpu_total()
        cores = (busy1 - busy0) / ((total1 - total0) / (os.cpu_count() or 1) or 1)
        if cores < QUIET_CORES:
            break
    return time.time() - t0


def run_loadgen(args, seconds, server_proc, max_wait=0):
    argv = [LOADGEN, "tls", *args, "--warmup", "1", "--seconds", str(seconds)]
    note_command(argv)
    waited = wait_quiet(max_wait) if max_wait else 0
    la = loadavg()
    cpu0 = server_proc.cpu_seconds() if server_proc else 0
    o0 = nginx_counters()
    busy0, total0 = proc_cpu_total()
    own0 = own_cpu_jiffies()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    own1 = own_cpu_jiffies()
    busy1, total1 = proc_cpu_total()
    o1 = nginx_counters()
    cpu = (server_proc.cpu_seconds() - cpu0) if server_proc else None
    lines = r.stdout.strip().splitlines()
    if not lines:
        return {"error": f"loadgen failed ({r.returncode}): {r.stderr.strip()[-400:]}"}
    res = json.loads(lines[-1])
    ncpu = os.cpu_count() or 1
    wall = (total1 - total0) / ncpu  # jiffies per core over the run
    others = max(0, (busy1 - busy0) - (own1 - own0)) / wall if wall > 0 else 0.0
    res.update({
        "loadavg_before": la,
        "server_cpu_s": cpu,
        "origin_connections": o1[0] - o0[0] - 1,
        "origin_requests": o1[1] - o0[1] - 1,
        "others_cores": round(others, 3),  # CPU used outside the benchmark, in cores
        "waited_for_quiet_s": round(waited, 1),
    })
    if res.get("total_requests", 0) == 0 and not res.get("first_error"):
        res["first_error"] = r.stderr.strip()[-300:]
    return res


def run_wrk(seconds, server_proc, max_wait=0):
    if max_wait:
        wait_quiet(max_wait)
    argv = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "-s", os.path.join(HERE, "abs_url.lua"),
            f"http://127.0.0.1:{OUTPOST_PORT}", "--", f"http://origin.test:{HTTP_PORT}/1k"]
    note_command(argv)
    la = loadavg()
    cpu0 = server_proc.cpu_seconds()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    cpu = server_proc.cpu_seconds() - cpu0
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    n = re.search(r"(\d+) requests in", r.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    return {"rps": float(m.group(1)) if m else None, "total_requests": int(n.group(1)) if n else 0,
            "server_cpu_s": cpu, "loadavg_before": la, "non2xx": int(errors.group(1)) if errors else 0,
            "error": None if m else r.stdout + r.stderr}


# rows: key, label, unit, loadgen args (for a proxy port), figure field, per-unit for CPU
def rows(pki, port, via="proxy"):
    server = f"127.0.0.1:{port}"
    common = ["--server", server, "--via", via]
    return {
        "bump_new": common + ["--target", f"origin.test:{TLS_PORT}", "--path", "/1k", "--ca", pki["ca"],
                              "--connections", str(NEW_CONN_CLIENTS), "--requests-per-connection", "1"],
        "bump_ka": common + ["--target", f"origin.test:{TLS_PORT}", "--path", "/1k", "--ca", pki["ca"],
                             "--connections", str(CONNECTIONS)],
        "splice_mb": common + ["--target", f"splice.test:{TLS_PORT}", "--path", "/1m", "--ca", pki["origin_ca"],
                               "--connections", str(SPLICE_CONNECTIONS)],
        "splice_new": common + ["--target", f"splice.test:{TLS_PORT}", "--path", "/1k", "--ca", pki["origin_ca"],
                                "--connections", str(NEW_CONN_CLIENTS), "--requests-per-connection", "1"],
        "plain_ka": common + ["--tls", "off", "--target", f"origin.test:{HTTP_PORT}", "--path", "/1k",
                              "--connections", str(CONNECTIONS)],
    }


ROW_INFO = {
    # key: (label, figure field, unit, preflight (target, path, ca key, tls))
    "bump_new": ("1. bumped new connections/s (CONNECT + full handshake + 1 KiB hit)", "rps", "conn/s",
                 (f"origin.test:{TLS_PORT}", "/1k", "ca", True)),
    "bump_ka": (f"2. bumped keep-alive 1 KiB hits, {CONNECTIONS} conns", "rps", "req/s",
                (f"origin.test:{TLS_PORT}", "/1k", "ca", True)),
    "splice_mb": (f"3. spliced tunnel, 1 MiB GETs, {SPLICE_CONNECTIONS} conns", "mbytes_per_s", "MB/s",
                  (f"splice.test:{TLS_PORT}", "/1m", "origin_ca", True)),
    "splice_new": ("   spliced new connections/s (CONNECT + handshake with origin + 1 KiB)", "rps", "conn/s",
                   (f"splice.test:{TLS_PORT}", "/1k", "origin_ca", True)),
    "plain_ka": (f"4. plain-HTTP keep-alive 1 KiB hits, {CONNECTIONS} conns", "rps", "req/s",
                 (f"origin.test:{HTTP_PORT}", "/1k", None, False)),
}


def versions():
    def first(argv, pattern):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        m = re.search(pattern, r.stdout + r.stderr)
        return m.group(1) if m else "?"
    commit = first(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], r"(\S+)")
    status = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True).stdout.splitlines()
    dirty = [line for line in status if not line[3:].startswith("bench/")]
    outpost = first([OUTPOST, "--version"], r"(\S+)$")
    squid = first(["squid", "-v"], r"Version (\S+)")
    nginx = first(["nginx", "-v"], r"nginx/(\S+)")
    openssl = first(["openssl", "version"], r"(OpenSSL \S+)")
    return (f"Outpost {outpost} at {commit}{' + uncommitted changes' if dirty else ''} (Release); "
            f"Squid {squid} (squid-openssl); nginx {nginx}; {openssl}")


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if unit == "MB/s":
        return f"{v:,.0f}"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one 3 s run per figure")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--only", default="squid,outpost,direct")
    ap.add_argument("--out", default=None, help="write report.md, raw.json and the configs there")
    ap.add_argument("--max-wait", type=float, default=60,
                    help="before each run, wait up to this many seconds for the machine to be quiet")
    ap.add_argument("--retries", type=int, default=2,
                    help="run a figure again (up to this many times) when others used > 0.1 core during it")
    args = ap.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    seconds = args.seconds or (3 if args.quick else 8)
    which = args.only.split(",")

    if os.geteuid() != 0 or not harness.in_private_netns():
        raise SystemExit("run as root inside a private network namespace: "
                         "tests/integration/netns_run.sh python3 bench/tls_bump.py")
    for path in (OUTPOST, LOADGEN):
        if not os.access(path, os.X_OK):
            raise SystemExit(f"missing {path}: cmake --preset release && "
                             "cmake --build --preset release --target outpost outpost_loadgen")
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    work = tempfile.mkdtemp(prefix="tls-bump-")
    os.chmod(work, 0o755)
    procs = []
    raw = {"runs": runs, "seconds": seconds, "rows": {}, "preflight": {}, "notes": {},
           "versions": versions()}  # at the start: the tree may move during the run
    try:
        pki = make_pki(work)
        os.makedirs(os.path.join(work, "nginx"))
        nginx, nginx_conf = start_nginx(os.path.join(work, "nginx"), pki)
        procs.append(nginx)
        servers = {}
        configs = {"nginx.conf": nginx_conf}
        if "squid" in which:
            d = os.path.join(work, "squid")
            os.makedirs(d)
            p, conf = start_squid(d, pki)
            procs.append(p)
            servers["squid"] = (p, SQUID_PORT)
            configs["squid.conf"] = conf
        if "outpost" in which:
            d = os.path.join(work, "outpost")
            os.makedirs(d)
            p, conf, note = start_outpost(d, pki)
            procs.append(p)
            servers["outpost"] = (p, OUTPOST_PORT)
            configs[os.path.basename(conf)] = conf
            if note:
                raw["notes"]["outpost"] = note
                # Show the config the bump rows need too.
                configs["outpost-intercept.toml (refused)"] = os.path.join(d, "outpost-intercept.toml")

        # Preflight: each row once by hand (this also puts the objects in both caches).
        skip = {}
        for name, (p, port) in servers.items():
            for key, (_label, _f, _u, (target, path, ca, tls)) in ROW_INFO.items():
                err, info = preflight(port, target, path, pki[ca] if ca else None, tls)
                if err is None and key in ("bump_ka", "plain_ka"):
                    # The hit must be a hit: a third request may not reach the origin.
                    before = nginx_counters()[1]
                    err2, info2 = preflight(port, target, path, pki[ca] if ca else None, tls, requests=1)
                    origin_reqs = nginx_counters()[1] - before - 1
                    info["origin_requests_for_a_later_request"] = origin_reqs
                    if err2 is None and origin_reqs > 0:
                        info["warning"] = "not a cache hit"
                raw["preflight"][f"{name}/{key}"] = {"error": err, **info}
                log(f"preflight {name} {key}: {err or 'ok'} {json.dumps(info)}")
                if err:
                    skip[(name, key)] = err
        if "direct" in which:
            for key, (_l, _f, _u, (target, path, ca, tls)) in ROW_INFO.items():
                if key in ("bump_new", "bump_ka", "splice_mb"):
                    servers.setdefault("direct", (None, TLS_PORT))

        results = {}  # (server, key) -> [run dicts]
        for i in range(runs):
            for key in ROW_INFO:
                for name, (p, port) in servers.items():
                    if (name, key) in skip:
                        continue
                    if name == "direct":
                        if key not in ("bump_new", "bump_ka", "splice_mb"):
                            continue
                        argv = rows(pki, TLS_PORT, via="direct")[key]
                        if key == "bump_ka" or key == "bump_new":
                            argv = [a if a != pki["ca"] else pki["origin_ca"] for a in argv]
                    else:
                        argv = rows(pki, port)[key]
                    for attempt in range(1 + args.retries):
                        res = run_loadgen(argv, seconds, p if name != "direct" else nginx, args.max_wait)
                        res["attempt"] = attempt + 1
                        results.setdefault((name, key), []).append(res)
                        if res.get("others_cores", 0) <= QUIET_CORES:
                            break
                        log(f"run {i + 1}/{runs} {name} {key}: disturbed (others used "
                            f"{res['others_cores']:.2f} cores), again")
                    log(f"run {i + 1}/{runs} {name:8} {key:10} {ROW_INFO[key][1]}="
                        f"{res.get(ROW_INFO[key][1])} errors={res.get('errors')} "
                        f"origin_req={res.get('origin_requests')} origin_conn={res.get('origin_connections')} "
                        f"load={res.get('loadavg_before')} others={res.get('others_cores')} "
                        f"{res.get('first_error') or ''}")
            if "outpost" in servers:
                res = run_wrk(seconds, servers["outpost"][0], args.max_wait)
                results.setdefault(("outpost", "wrk_plain"), []).append(res)
                log(f"run {i + 1}/{runs} outpost  wrk_plain  rps={res['rps']} load={res['loadavg_before']}")
        raw["rows"] = {f"{k[0]}/{k[1]}": v for k, v in results.items()}
        raw["skipped"] = {f"{k[0]}/{k[1]}": v for k, v in skip.items()}
        report = render(raw, results, skip, servers, runs, seconds, configs)
        print(report)
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            with open(os.path.join(args.out, "report.md"), "w") as f:
                f.write(report)
            with open(os.path.join(args.out, "raw.json"), "w") as f:
                json.dump(raw, f, indent=1, sort_keys=True)
    finally:
        for p in reversed(procs):
            p.stop()
        if os.environ.get("KEEP_TMP"):
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def render(raw, results, skip, servers, runs, seconds, configs):
    out = []
    w = out.append
    w(f"# HTTPS interception: Squid vs Outpost ({time.strftime('%Y-%m-%d %H:%M')})\n")
    w(f"Median of {runs} run(s) of {seconds:g} s (after 1 s of warm-up), [min-max]; "
      "CPU = the server's user+system time (all its processes) per request (per connection in the new-connection rows), warm-up included.\n")

    def fig(name, key):
        runs_ = results.get((name, key))
        if not runs_:
            return None, None, None
        field = ROW_INFO[key][1] if key in ROW_INFO else "rps"
        ok = [r for r in runs_ if not r.get("error") and (r.get("total_requests") or 0) > 0]
        quiet = [r for r in ok if (r.get("others_cores") or 0) <= QUIET_CORES]
        runs_ = quiet or ok  # disturbed runs count only when no quiet one exists
        vals = [r.get(field) for r in runs_]
        cpus = [r["server_cpu_s"] / r["total_requests"] * 1e6 for r in runs_
                if r.get("server_cpu_s") is not None and r.get("total_requests")]
        return median(vals), (min(vals), max(vals)) if vals else None, median(cpus)

    def cell(name, key):
        if (name, key) in skip:
            return f"n/a ({skip[(name, key)]})"
        if name not in servers:
            return "—"
        m, rng, cpu = fig(name, key)
        if m is None:
            errs = [r.get("first_error") or r.get("error") for r in results.get((name, key), [])]
            return f"n/a ({next((e for e in errs if e), 'no runs')})"
        unit = ROW_INFO[key][2] if key in ROW_INFO else "req/s"
        s = fmt(m, unit)
        if runs > 1 and rng:
            s += f" [{fmt(rng[0], unit)}–{fmt(rng[1], unit)}]"
        if cpu is not None:
            s += f", CPU {cpu:,.0f} µs" if unit != "MB/s" else ""
        errors = sum(r.get("errors") or 0 for r in results.get((name, key), []))
        if errors:
            s += f", {errors} errors"
        done = results.get((name, key), [])
        quiet = sum(1 for r in done if (r.get("others_cores") or 0) <= QUIET_CORES and r.get("total_requests"))
        if quiet < runs:
            s += f" † ({quiet} quiet of {len(done)})"
        return s

    def ratio(key):
        a, _, _ = fig("outpost", key)
        b, _, _ = fig("squid", key)
        if a is None or b is None or b == 0 or ("outpost", key) in skip:
            return "n/a"
        return f"{a / b:.2f}x"

    targets = {"bump_new": "≥ 3x", "bump_ka": "≥ 2x", "splice_mb": "≥ 1x"}
    w("| row | unit | Squid 5.7 (ssl-bump) | Outpost | Outpost / Squid | target | nginx direct (ceiling) |")
    w("|---|---|---|---|---|---|---|")
    for key, (label, _field, unit, _pf) in ROW_INFO.items():
        direct = cell("direct", key) if key in ("bump_new", "bump_ka", "splice_mb") and "direct" in servers else "—"
        w(f"| {label} | {unit} | {cell('squid', key)} | {cell('outpost', key)} | {ratio(key)} | "
          f"{targets.get(key, '')} | {direct} |")
    w(f"| 4'. wrk -t2 -c{CONNECTIONS}, plain 1 KiB hits (cross-check) | req/s | — | {cell('outpost', 'wrk_plain')} | | | |")
    ka, _, _ = fig("outpost", "bump_ka")
    plain, _, _ = fig("outpost", "plain_ka")
    sq_ka, _, _ = fig("squid", "bump_ka")
    sq_plain, _, _ = fig("squid", "plain_ka")
    w("")
    w(f"- Outpost bumped keep-alive / plain keep-alive hits: "
      f"{'n/a' if not ka or not plain or ('outpost', 'bump_ka') in skip else f'{ka / plain:.2f}'} (target ≥ 0.7); "
      f"Squid: {'n/a' if not sq_ka or not sq_plain else f'{sq_ka / sq_plain:.2f}'}.")
    w("- Direct rows: the same client straight to nginx's TLS port (verifying the origin CA): handshakes/s, "
      "keep-alive 1 KiB req/s over TLS, 1 MiB MB/s.")
    # Origin traffic and the machine's state.
    w("- Origin traffic per client request (nginx stub_status, medians): " + "; ".join(
        f"{n} {k}: {median([r['origin_requests'] / r['total_requests'] for r in v if r.get('total_requests') and 'origin_requests' in r]) or 0:.3f} req, "
        f"{median([r['origin_connections'] / r['total_requests'] for r in v if r.get('total_requests') and 'origin_connections' in r]) or 0:.3f} conn"
        for (n, k), v in results.items() if n in ("squid", "outpost") and k in ("bump_new", "bump_ka", "plain_ka")))
    las = [r.get("loadavg_before") for v in results.values() for r in v if r.get("loadavg_before") is not None]
    others = [r.get("others_cores") for v in results.values() for r in v if r.get("others_cores") is not None]
    busy = sum(1 for o in others if o > 0.1)
    w(f"- Machine: {os.cpu_count()} cores; load average before the runs {min(las):.2f}–{max(las):.2f}; "
      f"CPU used outside the benchmark during the runs: median {median(others) or 0:.2f} cores, max "
      f"{max(others) if others else 0:.2f}; {busy} of {len(others)} runs had others above {QUIET_CORES} core"
      f"{' and were run again; a figure from fewer quiet runs than asked is marked †' if busy else ''}." if las else "- Machine: no runs.")
    w(f"- Versions: {raw['versions']}.")
    for name, note in raw["notes"].items():
        w(f"- {name}: {note}")
    for k, v in raw["preflight"].items():
        if "leaf_key" in v or v.get("warning"):
            w(f"- preflight {k}: {v.get('tls', '')}, leaf {v.get('leaf_key', '?')} issued by "
              f"{v.get('leaf_issuer', {}).get('commonName', '?')}"
              f"{', ' + v['warning'] if v.get('warning') else ''}")
    w("\n## Commands\n")
    w("```")
    w("tests/integration/netns_run.sh python3 bench/tls_bump.py " + " ".join(sys.argv[1:]))
    w("\n".join(COMMANDS))
    w("```")
    w("\n## Configs\n")
    for name, path in configs.items():
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        w(f"`{name}`:\n```\n{text.rstrip()}\n```")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
