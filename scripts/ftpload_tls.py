#!/usr/bin/env python3
"""ftpload_tls: the FTPS load client of scripts/bench (Python 3 standard library only).

Usage: ftpload_tls.py MODE HOST:PORT [--option value ...]

Every session is explicit FTPS (RFC 4217): connect, read 220, AUTH TLS, TLS handshake, USER/PASS
over TLS. A data connection is wrapped with session=<the control connection's session>, so that it
resumes the control connection's TLS session (what vsftpd's require_ssl_reuse and leanftpd's
--tls-session-reuse required demand); a data handshake that did not resume is an error. The
certificate is not verified (the bench's certificate is self-signed; curl -k does the same).
Data connections follow ftplib's order: connect to the EPSV port, send RETR, read 150, then the
TLS handshake (vsftpd starts its handshake only after the 150).

Modes (each prints one `key=value ...` line on stdout, errors on stderr, exit 1 on any error):
  ping      one session: AUTH TLS, login, QUIT (used to wait for a server to be up).
  sessions  --clients C concurrent clients share --total S sessions of (connect, AUTH TLS, login,
            PBSZ 0, PROT P, EPSV, RETR --path over a TLS data connection that resumes the control
            session, QUIT). The clients are C threads spread over --procs P processes (default:
            the number of CPUs) so that Python's interpreter lock does not serialise them (the
            TLS work itself runs without it). Reports sessions/s (sessions / time from the common
            start to the last session's end), p50/p99/max of one whole session (ms), and the CPU
            seconds the client used (client_cpu_s), to show whether the client was the bottleneck.
  idle      open --clients N sessions (AUTH TLS + login) with 16 threads, print `ready sessions=N`,
            and hold them until stdin reaches EOF (or a signal ends the process).

Other options: --user (anonymous), --pass (bench@), --timeout seconds for every socket operation
(30), --expect bytes every RETR must deliver (checked when given).
"""

import multiprocessing
import os
import resource
import socket
import ssl
import sys
import threading
import time

MAX_LINE = 8192
MAX_REPLY_LINES = 10_000


class Fail(Exception):
    pass


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Session:
    """One control connection; replies are read through a bounded line reader."""

    def __init__(self, opts, ctx):
        self.opts, self.ctx = opts, ctx
        self.sock = socket.create_connection(opts["addr"], timeout=opts["timeout"])
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.expect((220,), "greeting")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def line(self):
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE:
                raise Fail("reply line over %d bytes" % MAX_LINE)
            chunk = self.sock.recv(MAX_LINE)
            if not chunk:
                raise Fail("control connection closed by the server")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        first = self.line()
        if len(first) < 3 or not first[:3].isdigit():
            raise Fail("malformed reply %r" % first)
        code = int(first[:3])
        if first[3:4] == "-":
            end = "%d " % code
            for _ in range(MAX_REPLY_LINES):
                if self.line().startswith(end):
                    return code, first
            raise Fail("multi-line reply %d too long" % code)
        return code, first

    def expect(self, codes, what):
        code, text = self.reply()
        if code not in codes:
            raise Fail("%s: expected %s, got %r" % (what, list(codes), text))
        return text

    def cmd(self, line, codes):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.expect(codes, "PASS" if line.startswith("PASS") else line)

    def auth_login(self):
        self.cmd("AUTH TLS", (234,))
        if self.buf:
            raise Fail("bytes after 234 before the handshake")
        self.sock = self.ctx.wrap_socket(self.sock)
        self.sock.sendall(("USER %s\r\n" % self.opts["user"]).encode())
        code, text = self.reply()
        if code == 331:
            self.cmd("PASS %s" % self.opts["pass"], (230,))
        elif code != 230:
            raise Fail("USER %s: %r" % (self.opts["user"], text))

    def retr_tls(self, path):
        """EPSV, RETR over a TLS data connection that resumes this session; returns the bytes."""
        text = self.cmd("EPSV", (229,))
        try:
            inner = text[text.index("(") + 1:]
            port = int(inner.split(inner[0])[3])
        except (ValueError, IndexError):
            raise Fail("cannot parse EPSV reply %r" % text)
        raw = socket.create_connection((self.opts["addr"][0], port), timeout=self.opts["timeout"])
        try:
            self.cmd("RETR " + path, (125, 150))
            data = self.ctx.wrap_socket(raw, session=self.sock.session)
            if not data.session_reused:
                raise Fail("the data connection's TLS handshake did not resume the control session")
            n = 0
            while True:
                chunk = data.recv(65536)
                if not chunk:
                    break
                n += len(chunk)
            data.close()
        finally:
            raw.close()
        self.expect((226, 250), "end of RETR")
        want = self.opts["expect"]
        if want is not None and n != want:
            raise Fail("RETR %s: got %d bytes, expected %d" % (path, n, want))
        return n


def one_session(opts, ctx):
    s = Session(opts, ctx)
    try:
        s.auth_login()
        s.cmd("PBSZ 0", (200,))
        s.cmd("PROT P", (200,))
        s.retr_tls(opts["path"])
        s.cmd("QUIT", (221,))
    finally:
        s.close()


def percentile(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    rank = -(-p * len(sorted_vals) // 100)  # nearest rank, as ftpload.rs
    return sorted_vals[min(max(int(rank), 1), len(sorted_vals)) - 1]


def sessions_worker(opts, threads, counter, go, out):
    ctx = client_context()
    lat, errors, ends = [], [], []

    def client():
        go.wait()
        while True:
            with counter.get_lock():
                k = counter.value
                counter.value += 1
            if k >= opts["total"]:
                return
            t = time.monotonic()
            try:
                one_session(opts, ctx)
                now = time.monotonic()
                lat.append((now - t) * 1000.0)
                ends.append(now)
            except (OSError, ssl.SSLError, Fail) as e:
                errors.append("%s: %s" % (type(e).__name__, e))

    ts = [threading.Thread(target=client) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.send((lat, errors, max(ends) if ends else 0.0))
    out.close()


def mode_sessions(opts):
    clients = opts["clients"]
    procs = max(1, min(opts["procs"], clients))
    ctx = multiprocessing.get_context("fork")
    counter, go = ctx.Value("q", 0), ctx.Event()
    workers = []
    for i in range(procs):
        threads = clients // procs + (1 if i < clients % procs else 0)
        r, w = ctx.Pipe(duplex=False)
        p = ctx.Process(target=sessions_worker, args=(opts, threads, counter, go, w))
        p.start()
        w.close()
        workers.append((p, r))
    time.sleep(0.2)  # let every thread reach go.wait()
    start = time.monotonic()
    go.set()
    lat, errors, last = [], [], start
    for p, r in workers:
        try:
            l, e, end = r.recv()
        except EOFError:
            l, e, end = [], ["client process died"], 0.0
        lat += l
        errors += e
        last = max(last, end)
        p.join()
    secs = last - start
    if errors:
        raise Fail("%d of %d sessions failed, first: %s" % (len(errors), opts["total"], errors[0]))
    lat.sort()
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    return ("mode=sessions clients=%d procs=%d sessions=%d secs=%.4f rate=%.1f p50_ms=%.2f "
            "p99_ms=%.2f max_ms=%.2f client_cpu_s=%.2f" % (
                clients, procs, len(lat), secs, len(lat) / secs if secs > 0 else 0.0,
                percentile(lat, 50), percentile(lat, 99), lat[-1] if lat else float("nan"), cpu))


def mode_idle(opts):
    ctx = client_context()
    held, errors, lock = [], [], threading.Lock()
    left = [opts["clients"]]

    def opener():
        while True:
            with lock:
                if left[0] == 0 or errors:
                    return
                left[0] -= 1
            try:
                s = Session(opts, ctx)
                s.auth_login()
                with lock:
                    held.append(s)
            except (OSError, ssl.SSLError, Fail) as e:
                with lock:
                    errors.append("%s: %s" % (type(e).__name__, e))

    ts = [threading.Thread(target=opener) for _ in range(min(16, opts["clients"]))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise Fail("%d session(s) failed, first: %s" % (len(errors), errors[0]))
    print("ready sessions=%d" % len(held), flush=True)
    while os.read(0, 256):
        pass
    for s in held:
        s.close()
    return "mode=idle sessions=%d closed" % len(held)


def mode_ping(opts):
    s = Session(opts, client_context())
    try:
        s.auth_login()
        s.cmd("QUIT", (221,))
    finally:
        s.close()
    return "mode=ping ok"


def parse_args(argv):
    if len(argv) < 2 or len(argv) % 2:
        raise Fail("usage: ftpload_tls.py MODE HOST:PORT [--option value ...] (see the header)")
    host, _, port = argv[1].rpartition(":")
    kv = {}
    for k, v in zip(argv[2::2], argv[3::2]):
        if not k.startswith("--"):
            raise Fail("expected --option, got %r" % k)
        kv[k[2:]] = v
    known = {"user", "pass", "timeout", "path", "clients", "total", "procs", "expect"}
    unknown = set(kv) - known
    if unknown:
        raise Fail("unknown option --%s" % sorted(unknown)[0])

    def num(k, d):
        try:
            return int(kv.get(k, d))
        except ValueError:
            raise Fail("--%s: not a number: %r" % (k, kv[k]))

    opts = {
        "addr": (host, int(port)),
        "user": kv.get("user", "anonymous"),
        "pass": kv.get("pass", "bench@"),
        "timeout": max(1, num("timeout", 30)),
        "path": kv.get("path", "/"),
        "clients": max(1, num("clients", 1)),
        "total": num("total", 100),
        "procs": max(1, num("procs", os.cpu_count() or 1)),
        "expect": num("expect", 0) if "expect" in kv else None,
    }
    return argv[0], opts


def main():
    try:
        mode, opts = parse_args(sys.argv[1:])
        fn = {"ping": mode_ping, "sessions": mode_sessions, "idle": mode_idle}.get(mode)
        if fn is None:
            raise Fail("unknown mode %r" % mode)
        print(fn(opts), flush=True)
    except (Fail, OSError, ssl.SSLError, ValueError) as e:
        print("ftpload_tls: %s" % e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
