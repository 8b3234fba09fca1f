#!/usr/bin/env bash
# The measurement behind the choice of uplink for --network on (issue 13): pasta (passt) and slirp4netns, each run
# the way ConTree would run it (rootless, as a uid of its own, in a user namespace of its own that owns the
# sandbox's network namespace, with a private /dev/net/tun node), compared on set-up time, resident memory,
# tear-down, a 100 MiB HTTP download from a test-made remote host (a namespace on this machine, via a veth pair) and
# how a refused connection looks from inside. veth + nftables NAT is not measured: it needs net.ipv4.ip_forward=1
# on the host (0 here) and routes every sandbox packet through the host's own stack (docs/security.md).
# Usage: bench/network-uplinks.sh   (root; passt, slirp4netns, python3, iproute2, curl)
# Output: bench/results/<date>-network-uplinks.txt
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in pasta slirp4netns python3 ip curl setpriv nsenter; do command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }; done
out="bench/results/$(date +%F)-network-uplinks.txt"
python3 - "$@" <<'PY' | tee "$out"
import os, subprocess, sys, time, tempfile, statistics, shutil
N, DL = 20, 5
UID0 = 2080374784 + 0xFF00          # uids in the range ConTree reserves for uplinks, away from any server's block
work = tempfile.mkdtemp(prefix="uplinks-")
os.chmod(work, 0o755)
blob = os.path.join(work, "blob")
with open(blob, "wb") as f: f.write(os.urandom(100 << 20))
resolv = os.path.join(work, "resolv.conf")
open(resolv, "w").write("nameserver 10.231.46.2\n")
me = os.readlink("/proc/self/ns/net")

def sh(*c): subprocess.run(c, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
# the remote: a namespace held by its HTTP server, a veth pair to the host
srv = subprocess.Popen(["unshare", "--net", "--", "python3", "-c",
    "import http.server,functools,time\n"
    "while True:\n"
    "  try: s=http.server.ThreadingHTTPServer(('10.231.46.2',8000),functools.partial(http.server.SimpleHTTPRequestHandler,directory='%s')); break\n"
    "  except OSError: time.sleep(0.05)\n"
    "s.RequestHandlerClass.log_message=lambda *a: None\n"
    "s.serve_forever()" % work], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while os.readlink(f"/proc/{srv.pid}/ns/net") == me: time.sleep(0.005)
ns = f"--net=/proc/{srv.pid}/ns/net"
subprocess.run(["ip", "link", "del", "ctu46h"], stderr=subprocess.DEVNULL)
sh("ip", "link", "add", "ctu46h", "type", "veth", "peer", "name", "ctu46r", "netns", str(srv.pid))
sh("ip", "addr", "add", "10.231.46.1/24", "dev", "ctu46h"); sh("ip", "link", "set", "ctu46h", "up")
sh("nsenter", ns, "ip", "addr", "add", "10.231.46.2/24", "dev", "ctu46r"); sh("nsenter", ns, "ip", "link", "set", "ctu46r", "up")
sh("nsenter", ns, "ip", "link", "set", "lo", "up")
url = "http://10.231.46.2:8000/blob"
for _ in range(50):
    if subprocess.run(["curl", "-s", "-o", "/dev/null", url]).returncode == 0: break
    time.sleep(0.1)

TUN = 'mount -t tmpfs -o mode=0755,size=16k tmpfs /dev/net && mknod -m 0600 /dev/net/tun c 10 200 && chown "$1:$1" /dev/net/tun'
def drop(uid): return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--"]

def start_slirp(uid):
    h = subprocess.Popen(drop(uid) + ["unshare", "--user", "--map-root-user", "--net", "--", "cat"], stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    script = TUN + ' && mount --bind "$3" /etc/resolv.conf && read -r go && exec ' + " ".join(drop("$1")) + \
        ' nsenter --preserve-credentials --user=/proc/$2/ns/user -- slirp4netns --configure --mtu=65520 --disable-host-loopback' \
        ' --enable-sandbox --enable-seccomp --exit-fd=0 --ready-fd=3 --netns-type=path /proc/$2/ns/net eth0 3>&1 1>&2'
    s = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", str(uid), str(h.pid), resolv],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    while True:
        try:
            if os.readlink(f"/proc/{h.pid}/ns/net") != me: break
        except FileNotFoundError: pass
        time.sleep(0.0002)
    s.stdin.write(b"\n"); s.stdin.flush()
    assert s.stdout.read(1) == b"1"
    return s, h, h.pid

def start_pasta(uid):
    script = TUN + ' && u=$1 && shift && exec ' + " ".join(drop("$u")) + ' pasta "$@"'
    p = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", str(uid),
                          "-f", "-q", "-4", "-t", "none", "-u", "none", "-T", "none", "-U", "none", "--no-map-gw", "--config-net",
                          "-a", "10.0.2.100", "-n", "24", "-g", "10.0.2.2", "--dns-forward", "10.0.2.3", "-D", "10.231.46.2",
                          "-I", "eth0", "--no-dhcp", "--", "cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child = None
    while True:
        if child is None:
            try:
                for c in open(f"/proc/{p.pid}/task/{p.pid}/children").read().split():
                    if open(f"/proc/{c}/comm").read().strip() == "cat": child = c
            except OSError: pass  # pasta's short-lived helpers come and go
        if child:
            try:
                if any(l.split("\t")[1] == "00000000" for l in open(f"/proc/{child}/net/route").read().splitlines()[1:]): break
            except (OSError, IndexError): pass
        time.sleep(0.0002)
    return p, None, int(child)

def rss(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1])

def stop(main, holder):
    for p in (main, holder):
        if p and p.stdin: p.stdin.close()
    main.kill(); main.wait()
    if holder: holder.wait()

def inside(pid, *cmd): return subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", *cmd], capture_output=True, text=True)

print(f"# uplinks compared {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, {os.cpu_count()} cores, kernel {os.uname().release}")
print("# " + subprocess.run(["slirp4netns", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
      + "; pasta from Debian passt " + subprocess.run(["dpkg-query", "-W", "-f=${Version}", "passt"], capture_output=True, text=True).stdout)
host = []
for _ in range(DL + 1):
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", url], capture_output=True, text=True)
    host.append(float(r.stdout))
host = host[1:]
print(f"host itself, curl of 100 MiB: median {statistics.median(host):.3f} s = {100 / statistics.median(host):.0f} MiB/s")
for name, start in (("slirp4netns", start_slirp), ("pasta", start_pasta)):
    ups, downs, dl, refused, mem = [], [], [], [], None
    for i in range(N + 3):
        t0 = time.perf_counter(); main, holder, pid = start(UID0 + i); up = (time.perf_counter() - t0) * 1000
        if i == N + 2:
            for _ in range(DL + 1):
                r = inside(pid, "curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", url)
                dl.append(float(r.stdout))
            dl = dl[1:]
            mem = (rss(main.pid), rss(pid))
            for _ in range(3):
                r = inside(pid, "curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{time_total}", "http://10.231.46.2:9/")
                refused.append((r.returncode, float(r.stdout or 0)))
        t0 = time.perf_counter(); stop(main, holder); down = (time.perf_counter() - t0) * 1000
        if 1 <= i <= N: ups.append(up); downs.append(down)
    ups.sort(); downs.sort()
    print(f"\n== {name} ({N} set-ups after one warm-up)")
    print(f"  ready after: median {statistics.median(ups):.1f} ms, p90 {ups[int(N * 0.9) - 1]:.1f} ms")
    print(f"  torn down (killed and reaped): median {statistics.median(downs):.1f} ms")
    print(f"  resident: uplink {mem[0]} KiB, namespace holder {mem[1]} KiB (after a 100 MiB download)")
    print(f"  100 MiB download through it (curl inside the namespace, {DL} runs): median {statistics.median(dl):.3f} s = "
          f"{100 / statistics.median(dl):.0f} MiB/s, {statistics.median(host) / statistics.median(dl):.2f}x the host; runs {[round(x, 3) for x in dl]}")
    print(f"  connection to a closed port of the remote (curl -m 5): {['exit %d after %.3f s' % r for r in refused]}")

srv.kill(); srv.wait()
subprocess.run(["ip", "link", "del", "ctu46h"], stderr=subprocess.DEVNULL)
shutil.rmtree(work)
PY
echo "raw output: $out"
