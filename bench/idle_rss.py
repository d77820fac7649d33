"""Memory per idle keep-alive client connection: N clients each make one request through a
one-worker Outpost and stay connected; prints the RSS growth per connection. As root:
  tests/integration/netns_run.sh python3 bench/idle_rss.py [N]   (OUTPOST_BIN picks the build)"""
import os, socket, subprocess, sys, time, tempfile, resource
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import harness as h
N = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
tmp = tempfile.mkdtemp()
procs = h.Processes()
try:
    origin = h.TestOrigin(procs)
    op = h.Outpost(procs, tmp, extra_config='[server]\nworkers = 1\nname = "t"\n[log]\nlevel = "warn"\n').start()
    def one(s):
        s.sendall(b"GET http://127.0.0.1:8080/bytes?n=10 HTTP/1.1\r\nHost: x\r\n\r\n")
        d = b""
        while not h.complete_response(d):
            d += s.recv(65536)
    socks = []
    for i in range(200):
        s = socket.create_connection(("127.0.0.1", 3128)); one(s); socks.append(s)
    time.sleep(2)  # past Stream::kIdleMemoryDelayMs: idle connections have trimmed their buffers
    base = op.rss_kib()
    for i in range(N):
        s = socket.create_connection(("127.0.0.1", 3128)); one(s); socks.append(s)
    time.sleep(2)
    after = op.rss_kib()
    print(f"{N} idle keep-alive connections: RSS {base} -> {after} KiB, {(after-base)*1024/N:.0f} bytes each")
finally:
    procs.stop_all()
