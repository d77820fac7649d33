"""The servers of the benchmark suite, each on its own loopback port with its own config under the
run's work directory: Outpost, Squid, nginx (as origin / static ceiling, and as proxy_cache), and
the project's synthetic origin (bench/loadgen). Settings from ../shared/notes/peers-for-benchmarks.md."""
import json
import os
import shutil

from common import MIB, Proc, run, wait_port


class Server:
    """A started peer: its Proc, the port clients use, and how requests are addressed."""

    def __init__(self, name, proc, port, forward):
        self.name = name
        self.proc = proc
        self.port = port
        self.forward = forward  # True: absolute-form requests (forward proxy); False: origin-form

    def stop(self):
        self.proc.stop()


def outpost(ctx, port, workers=2, memory=256 * MIB, disk_dir="", disk_size=1024 * MIB,
            connect_ports=(443,), max_object=8 * MIB, cache=True, name="outpost", cpu=None, binary=None):
    d = ctx.dir(name)
    hints = os.path.join(d, "root.hints")
    with open(hints, "w") as f:  # a fake root on loopback: the bench never resolves real names
        f.write(". 3600000 NS a.root-servers.test.\na.root-servers.test. 3600000 A 127.0.0.2\n")
    conf = os.path.join(d, "outpost.toml")
    with open(conf, "w") as f:
        f.write(f"""[server]
workers = {workers}
shutdown_grace = 1
[log]
level = "warn"
file = "{d}/outpost.log"
access_log = ""
[proxy]
listen = ["127.0.0.1:{port}"]
idle_timeout = 600
[acl]
connect_ports = [{", ".join(str(p) for p in connect_ports)}]
[cache]
memory_size = {memory}
disk_dir = "{disk_dir}"
disk_size = {disk_size}
max_object_size = {max_object}
[http_cache]
enabled = {"true" if cache else "false"}
[dns]
hints = "{hints}"
listen = []
""")
    p = Proc(name, [binary or ctx.bin("app/outpost"), "--config", conf], cwd=d, cpu=cpu)
    wait_port(port, proc=p)
    return Server(name, p, port, True)


def squid_common(d):
    """What every benchmark Squid gets: no logs but its cache.log in `d`, one worker, many
    descriptors, idle client connections kept (the peers run the same way)."""
    return f"""access_log none
cache_store_log none
cache_log {d}/cache.log
pid_filename {d}/squid.pid
coredump_dir {d}
pinger_enable off
shutdown_lifetime 1 seconds
visible_hostname outpost-bench
max_filedescriptors 65536
client_idle_pconn_timeout 10 minutes
workers 1
"""


def squid(ctx, port, memory=256 * MIB, disk_dir=None, disk_size=1024 * MIB, max_object=8 * MIB,
          cache=True, name="squid", cpu=None):
    """Squid 5 in the foreground (-N), one worker (its SMP mode needs a shared rock store; the
    non-SMP memory cache is its fast path). Same memory budget and object size limit as Outpost."""
    d = ctx.dir(name)
    cache_lines = "cache deny all\ncache_mem 0 MB" if not cache else f"cache_mem {memory // MIB} MB"
    disk_line = ""
    if cache and disk_dir:
        os.makedirs(disk_dir, exist_ok=True)
        shutil.chown(disk_dir, "proxy", "proxy")
        disk_line = f"cache_dir ufs {disk_dir} {disk_size // MIB} 16 256"
    conf = os.path.join(d, "squid.conf")
    with open(conf, "w") as f:
        f.write(f"""http_port 127.0.0.1:{port}
acl localnet src 127.0.0.0/8
http_access allow localnet
http_access deny all
{cache_lines}
{disk_line}
maximum_object_size_in_memory {max_object // 1024} KB
maximum_object_size {max_object // 1024} KB
memory_replacement_policy heap GDSF
cache_replacement_policy heap LFUDA
{squid_common(d)}""")
    shutil.chown(d, "proxy", "proxy")
    if disk_line:
        run(["squid", "-N", "-z", "-f", conf], timeout=120)
    p = Proc(name, ["squid", "-N", "-f", conf], cwd=d, cpu=cpu)
    wait_port(port, proc=p)
    return Server(name, p, port, True)


def _nginx_conf(d, workers, http_body):
    return f"""daemon off; master_process on; worker_processes {workers}; user root;
worker_rlimit_nofile 65536;
pid {d}/nginx.pid; error_log {d}/error.log error;
events {{ worker_connections 16384; }}
http {{ access_log off; sendfile on; tcp_nopush off; keepalive_requests 10000000; keepalive_timeout 600s;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
{http_body}
}}
"""


def _nginx(ctx, name, port, workers, cpu, http_body):
    """Starts nginx NAME with its own config; HTTP_BODY(d) gives the http block's contents for
    the server's directory d."""
    d = ctx.dir(name)
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(_nginx_conf(d, workers, http_body(d)))
    p = Proc(name, ["nginx", "-c", conf, "-p", d], cwd=d, cpu=cpu)
    wait_port(port, proc=p)
    return Server(name, p, port, False)


def nginx_static(ctx, port, root, workers=1, name="nginx-static", cpu=None):
    """nginx serving ROOT: /<f> fresh for an hour (expires 1h, ETag), /nc/<f> no-store,
    /reval/<f> no-cache (validators only). The origin of the speed suite, and, on its own port,
    the ceiling (files served directly)."""
    return _nginx(ctx, name, port, workers, cpu, lambda d: f"""  server {{ listen 127.0.0.1:{port} reuseport backlog=8192; root {root};
    location / {{ expires 1h; }}
    location /nc/ {{ alias {root}/; add_header Cache-Control no-store; }}
    location /reval/ {{ alias {root}/; add_header Cache-Control no-cache; }}
    location = /nginx_status {{ stub_status; }}
  }}""")


def nginx_cache(ctx, port, origin_port, workers=2, memory=256 * MIB, name="nginx", cpu=None):
    """nginx as a caching reverse proxy (proxy_cache) in front of the origin, upstream keep-alive.
    Its cache lives in files (page cache); keys_zone plus max_size give it the same budget."""
    return _nginx(ctx, name, port, workers, cpu, lambda d: f"""  upstream origin {{ server 127.0.0.1:{origin_port}; keepalive 1024; keepalive_requests 10000000; }}
  proxy_cache_path {d}/cache levels=1:2 keys_zone=hot:64m max_size={memory // MIB}m inactive=1d use_temp_path=off;
  server {{ listen 127.0.0.1:{port} reuseport backlog=8192;
    location / {{ proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_cache hot; proxy_cache_revalidate on; add_header X-Cache $upstream_cache_status; }}
  }}""")


def loadgen_origin(ctx, port, blast_port=None, threads=1, cpu=None, name="loadgen-origin"):
    """The project's synthetic origin (bench/loadgen): /o/<id>/<size>/<kind>, /__stats, and a
    byte stream on BLAST_PORT for CONNECT tunnels."""
    d = ctx.dir(name)
    argv = [ctx.bin("bench/loadgen/loadgen"), "origin", "--listen", f"127.0.0.1:{port}", "--threads", str(threads)]
    if blast_port:
        argv += ["--blast", f"127.0.0.1:{blast_port}"]
    p = Proc(name, argv, cwd=d, cpu=cpu)
    wait_port(port, proc=p)
    if blast_port:
        wait_port(blast_port, proc=p)
    return Server(name, p, port, False)


def loadgen_replay(ctx, server, origin_port, spec, concurrency, warmup=0.0, timeout=3600):
    """`loadgen replay` of SPEC through SERVER to the loadgen origin; returns its JSON figures."""
    out = run([ctx.bin("bench/loadgen/loadgen"), "replay", "--proxy", f"127.0.0.1:{server.port}",
               "--origin", f"127.0.0.1:{origin_port}", "--trace", spec, "--concurrency", str(concurrency),
               "--warmup-fraction", str(warmup)], timeout=timeout).stdout
    return json.loads(out.strip().splitlines()[-1])
