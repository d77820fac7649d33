"""Shared pieces of the benchmark suite (bench/run): the run context, processes started and
stopped by PID, what /proc says about them, statistics, Markdown tables and gnuplot plots.
Benchmarks print figures; nothing here asserts anything about speed."""
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402  (stdlib only: process and port helpers of the integration tests)

TCK = os.sysconf("SC_CLK_TCK")
MIB = 1 << 20


class Ctx:
    """What every suite gets: mode, directories, binaries, and the log."""

    def __init__(self, quick, out, work, build, trace=None, before=None):
        self.quick = quick
        self.before = before                   # another Outpost binary to compare with (hitrate)
        self.trace = trace                     # a public "timestamp key size" trace to replay too
        self.runs = 1 if quick else 3          # each figure: median of `runs`, with min and max
        self.out = out                         # bench/results/<date>[-quick]
        self.work = work                       # scratch, removed at the end
        self.build = build                     # build/release
        self.raw = {}                          # everything measured, written to raw.json
        self.started = time.time()

    def bin(self, rel):
        path = os.path.join(self.build, rel)
        if not os.access(path, os.X_OK):
            raise SystemExit(f"missing {path}: bench/run builds it; see bench/README.md")
        return path

    def dir(self, name):
        path = os.path.join(self.work, name)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o755)  # Squid drops to user proxy and must reach its files
        return path

    def log(self, msg):
        print(f"[{time.time() - self.started:7.1f}s] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

class Proc:
    """A server started by the suite. Stopped by its PID (and its direct children, e.g. an nginx
    master's workers), never by name."""

    def __init__(self, name, argv, cwd=None, cpu=None, stdout=None, stdin=None, env=None):
        self.name = name
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu)] + list(argv)
        self.logfile = None
        if stdout is None:
            self.logfile = open(os.path.join(cwd or "/tmp", f"{name}.stdout.log"), "ab")
            stdout = self.logfile
        self.p = subprocess.Popen(argv, cwd=cwd, stdout=stdout, stderr=subprocess.STDOUT if stdout is not subprocess.PIPE else None,
                                  stdin=stdin, env=env)
        self.pid = self.p.pid

    def pids(self):
        out = [self.pid]
        try:
            kids = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True).stdout.split()
            out += [int(k) for k in kids]
        except OSError:
            pass
        return out

    def cpu_seconds(self):
        """User + system seconds of the process and its children so far (all threads)."""
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime stime (fields 14, 15)
            except (OSError, IndexError):
                pass
        return total / TCK

    def _status_kib(self, key):
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    m = re.search(rf"^{key}:\s+(\d+) kB", f.read(), re.M)
                total += int(m.group(1)) if m else 0
            except OSError:
                pass
        return total

    def rss_kib(self):
        return self._status_kib("VmRSS")

    def peak_rss_kib(self):
        return self._status_kib("VmHWM")

    def reset_peak_rss(self):
        """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0)."""
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, grace=10):
        if self.p.poll() is None:
            kids = self.pids()[1:]
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait()
            for k in kids:
                try:
                    os.kill(k, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.logfile:
            self.logfile.close()
            self.logfile = None


def wait_port(port, host="127.0.0.1", timeout=30.0, proc=None):
    """The integration harness's wait_port, for a suite Proc (stops early if the server died)."""
    harness.wait_port(port, host, timeout, proc.p if proc is not None else None)


def run(argv, timeout=None, check=True, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed ({r.returncode}): {r.stderr.strip()[-800:]}")
    return r


# ---------------------------------------------------------------- statistics and formatting

def stat3(values):
    """(median, min, max) of the runs; None when nothing was measured."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def num(v, digits=None):
    if v is None:
        return "—"
    if digits is None:
        a = abs(v)
        digits = 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 1 else 3
    return f"{v:,.{digits}f}"


def cell(s, digits=None, spread=True):
    """'median [min–max]' of a stat3 tuple (the spread only when there were several runs)."""
    if s is None:
        return "—"
    med, lo, hi = s
    if not spread or lo == hi:
        return num(med, digits)
    return f"{num(med, digits)} [{num(lo, digits)}–{num(hi, digits)}]"


def ratio(ours, theirs, higher_is_better=True):
    """Outpost's figure over the peer's, e.g. '1.24x'. Marked with ↓ where Outpost is behind."""
    if ours is None or theirs is None or theirs == 0 or ours == 0:
        return "—"
    r = ours / theirs
    behind = r < 1 if higher_is_better else r > 1
    return f"{r:.2f}x" + (" ↓" if behind and abs(r - 1) > 0.02 else "")


def md_table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def plot(ctx, name, title, xlabel, ylabel, series, logx=False, logy=False, yrange=None):
    """Writes OUT/NAME.png with gnuplot (lines with points, one per series). series: list of
    (label, [(x, y), ...]). Returns the Markdown image line, or a note when gnuplot is missing."""
    if not shutil.which("gnuplot"):
        return f"(plot {name}.png not drawn: gnuplot is not installed)\n"
    data = os.path.join(ctx.work, name + ".dat")
    with open(data, "w") as f:
        for label, points in series:
            f.write(f"# {label}\n")
            for x, y in points:
                if y is not None:
                    f.write(f"{x} {y}\n")
            f.write("\n\n")
    png = os.path.join(ctx.out, name + ".png")
    cmds = [
        "set terminal pngcairo size 900,560 font 'sans,11'" if _has_cairo() else "set terminal png size 900,560",
        f"set output '{png}'",
        f"set title '{title}'", f"set xlabel '{xlabel}'", f"set ylabel '{ylabel}'",
        "set termoption noenhanced", "set grid", "set key top left" if not logy else "set key top right",
    ]
    if logx:
        xs = [float(x) for _, points in series for x, y in points if y is not None]
        cmds.append("set logscale x")
        if xs:
            cmds.append(f"set xrange [{min(xs) / 1.5}:{max(xs) * 1.5}]")
    if logy:
        cmds.append("set logscale y")
    if yrange:
        cmds.append(f"set yrange [{yrange[0]}:{yrange[1]}]")
    parts = [f"'{data}' index {i} with linespoints lw 2 pt 7 title '{label}'" for i, (label, _) in enumerate(series)]
    cmds.append("plot " + ", ".join(parts))
    subprocess.run(["gnuplot"], input="\n".join(cmds), text=True, check=True, capture_output=True)
    return f"![{title}]({name}.png)\n"


_cairo = None


def _has_cairo():
    global _cairo
    if _cairo is None:
        r = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
        _cairo = "pngcairo" in (r.stdout + r.stderr)
    return _cairo


# ---------------------------------------------------------------- machine and versions

def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
        model = m.group(1).strip() if m else model
    with open("/proc/meminfo") as f:
        mem = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1)) // 1024
    debian = open("/etc/debian_version").read().strip() if os.path.exists("/etc/debian_version") else "?"
    return {"cores": os.cpu_count(), "model": model, "memory_mib": mem,
            "kernel": platform.release(), "debian": debian}


def _first(argv, pattern, stderr=False):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    m = re.search(pattern, r.stderr + r.stdout if stderr else r.stdout + r.stderr)
    return m.group(1) if m else "?"


def dpkg_version(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "not installed"


def versions(ctx):
    outpost = run([ctx.bin("app/outpost"), "--version"]).stdout.strip()
    commit = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], check=False).stdout.strip()
    return {
        "outpost": f"{outpost} (commit {commit or '?'}, Release -O2)",
        "nginx": _first(["nginx", "-v"], r"nginx/(\S+)"),
        "squid": _first(["squid", "-v"], r"Version (\S+)"),
        "unbound": _first(["unbound", "-V"], r"Version (\S+)"),
        "nsd": dpkg_version("nsd"),
        "wrk": dpkg_version("wrk"),
        "dnsperf": dpkg_version("dnsperf"),
        "c-ares": dpkg_version("libc-ares2"),
        "gcc": _first(["gcc", "--version"], r"\) (\S+)"),
    }


def save_raw(ctx):
    with open(os.path.join(ctx.out, "raw.json"), "w") as f:
        json.dump(ctx.raw, f, indent=1, sort_keys=True)
