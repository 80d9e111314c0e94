"""A TLS client driven line by line from a Rust test (tests/common/tls.rs): the test decides
every step, this process only holds the sockets and Python's ssl module, which the test crate
lacks. One command a line on stdin, one answer a line on stdout: `ok ...` or `err KIND: text`.

Connections have names; a name is a plain socket until `tls` wraps it.

  connect NAME PORT            plain TCP to 127.0.0.1:PORT
  listen NAME                  a listener on 127.0.0.1:0 -> ok PORT
  accept NAME LISTENER         accept one connection on LISTENER as NAME
  tls NAME FROM VER            TLS client handshake on NAME; FROM: a connection whose TLS
                               session to offer (resume), or -; VER: any, 1.2 or 1.3
                               -> ok VERSION REUSED(0|1) SHA256-OF-THE-PEER-CERTIFICATE
  line NAME TEXT               send TEXT + CRLF
  raw NAME HEX                 send bytes
  reply NAME                   read one FTP reply -> ok CODE<TAB>line<TAB>line...
  recv NAME                    read to the end -> ok LEN SHA256 END (END: close_notify, eof,
                               reset, timeout)
  recvn NAME COUNT             read exactly COUNT bytes -> ok COUNT
  recvfile NAME PATH           recv, the bytes written to PATH -> as recv
  send NAME LEN                send LEN bytes of a fixed pattern -> ok LEN SHA256
  sendfile NAME PATH           send a file's bytes -> ok LEN SHA256
  notify NAME                  send close_notify (no wait for the peer's) then close
  unwrap NAME                  full TLS shutdown: close_notify both ways -> ok clean | ok KIND
  close NAME                   close the socket (TCP FIN, no close_notify)
  rename NAME NEW              the connection NAME is called NEW from now on
  rst NAME                     SO_LINGER 0 then close (TCP RST)
  hello NAME                   a ClientHello as bytes (nothing sent) -> ok HEX
  timeout NAME SECS            the socket's timeout
  pending NAME MS              waits up to MS ms for bytes to arrive on NAME, reads none of
                               them -> ok COUNT (what is waiting, TLS records undecoded)
"""
import hashlib
import os
import select
import socket
import ssl
import struct
import sys

TIMEOUT = 10.0
CHUNK = 256 * 1024

conns = {}


def context(ver):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if ver == "1.2":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif ver == "1.3":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    return ctx


# One context per version: sessions are only resumable within the context that made them.
contexts = {v: context(v) for v in ("any", "1.2", "1.3")}
ctx_of = {}


def pattern(n):
    block = hashlib.sha256(b"leanftpd").digest() * (CHUNK // 32)
    while n > 0:
        piece = block[: min(n, len(block))]
        n -= len(piece)
        yield piece


def read_line(s, buf):
    while b"\n" not in buf[0]:
        got = s.recv(65536)
        if not got:
            raise EOFError("connection closed")
        buf[0] += got
    line, rest = buf[0].split(b"\n", 1)
    buf[0] = rest
    return line.rstrip(b"\r").decode("utf-8", "replace")


bufs = {}


def reply(name):
    s = conns[name]
    buf = bufs.setdefault(name, [b""])
    first = read_line(s, buf)
    lines = [first]
    if len(first) >= 4 and first[3] == "-":
        end = first[:3] + " "
        while True:
            line = read_line(s, buf)
            lines.append(line)
            if line.startswith(end):
                break
    return first[:3] + "\t" + "\t".join(lines)


def recv_all(name, sink=None):
    s = conns[name]
    h = hashlib.sha256()
    n = 0
    pending = bufs.pop(name, [b""])[0]
    if pending:
        h.update(pending)
        n += len(pending)
        if sink:
            sink.write(pending)
    end = "eof"
    try:
        while True:
            got = s.recv(CHUNK)
            if not got:
                # With suppress_ragged_eofs off, b"" from a TLS socket means close_notify.
                end = "close_notify" if isinstance(s, ssl.SSLSocket) else "eof"
                break
            h.update(got)
            n += len(got)
            if sink:
                sink.write(got)
    except ssl.SSLEOFError:
        end = "eof"
    except (ConnectionResetError, BrokenPipeError):
        end = "reset"
    except socket.timeout:
        end = "timeout"
    except ssl.SSLError as e:
        end = "ssl-error:" + e.__class__.__name__
    return "%d %s %s" % (n, h.hexdigest(), end)


def send_chunks(name, chunks):
    s = conns[name]
    h = hashlib.sha256()
    n = 0
    for piece in chunks:
        s.sendall(piece)
        h.update(piece)
        n += len(piece)
    return "%d %s" % (n, h.hexdigest())


def file_chunks(path):
    with open(path, "rb") as f:
        while True:
            piece = f.read(CHUNK)
            if not piece:
                return
            yield piece


def client_hello():
    ctx = contexts["any"]
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read().hex()


def run(words):
    cmd, args = words[0], words[1:]
    if cmd == "connect":
        s = socket.create_connection(("127.0.0.1", int(args[1])), timeout=TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns[args[0]] = s
        return ""
    if cmd == "listen":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        s.settimeout(TIMEOUT)
        conns[args[0]] = s
        return str(s.getsockname()[1])
    if cmd == "accept":
        s, _ = conns[args[1]].accept()
        s.settimeout(TIMEOUT)
        conns[args[0]] = s
        return ""
    if cmd == "tls":
        name, frm, ver = args
        if frm != "-":
            ctx = ctx_of[frm]
            session = conns[frm].session
        else:
            ctx = contexts[ver]
            session = None
        if name in bufs and bufs[name][0]:
            raise RuntimeError("bytes after the reply, before the handshake: %r" % bufs[name][0])
        s = ctx.wrap_socket(
            conns[name], server_hostname="localhost", session=session,
            suppress_ragged_eofs=False,
        )
        conns[name] = s
        ctx_of[name] = ctx
        peer = hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
        return "%s %d %s" % (s.version(), 1 if s.session_reused else 0, peer)
    if cmd == "line":
        conns[args[0]].sendall(" ".join(args[1:]).encode() + b"\r\n")
        return ""
    if cmd == "raw":
        conns[args[0]].sendall(bytes.fromhex(args[1]))
        return ""
    if cmd == "reply":
        return reply(args[0])
    if cmd == "recv":
        return recv_all(args[0])
    if cmd == "recvn":
        s, want = conns[args[0]], int(args[1])
        got = 0
        while got < want:
            piece = s.recv(min(CHUNK, want - got))
            if not piece:
                raise EOFError("closed after %d bytes" % got)
            got += len(piece)
        return str(got)
    if cmd == "recvfile":
        with open(args[1], "wb") as f:
            return recv_all(args[0], f)
    if cmd == "send":
        return send_chunks(args[0], pattern(int(args[1])))
    if cmd == "sendfile":
        return send_chunks(args[0], file_chunks(args[1]))
    if cmd == "notify":
        s = conns.pop(args[0])
        # SSL_shutdown once from a non-blocking socket: our close_notify goes out, we do not
        # wait for the peer's.
        s.setblocking(False)
        try:
            s.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        s.close()
        return ""
    if cmd == "unwrap":
        s = conns.pop(args[0])
        try:
            s.unwrap()
            how = "clean"
        except Exception as e:  # the peer's side of the shutdown is what is reported
            how = e.__class__.__name__
        s.close()
        return how
    if cmd == "rename":
        conns[args[1]] = conns.pop(args[0])
        ctx_of[args[1]] = ctx_of.pop(args[0], None)
        return ""
    if cmd == "close":
        conns.pop(args[0]).close()
        return ""
    if cmd == "rst":
        s = conns.pop(args[0])
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        return ""
    if cmd == "hello":
        return client_hello()
    if cmd == "pending":
        s = conns[args[0]]
        ready, _, _ = select.select([s], [], [], float(args[1]) / 1000)
        buffered = s.pending() if isinstance(s, ssl.SSLSocket) else 0
        if not ready:
            return str(buffered)
        raw = socket.socket(fileno=os.dup(s.fileno()))
        try:
            waiting = raw.recv(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        finally:
            raw.close()
        return str(buffered + len(waiting))
    if cmd == "timeout":
        conns[args[0]].settimeout(float(args[1]))
        return ""
    raise ValueError("unknown command %r" % cmd)


def main():
    for line in sys.stdin:
        words = line.rstrip("\n").split(" ")
        if words == ["exit"]:
            break
        try:
            out = "ok " + run(words)
        except Exception as e:
            out = "err %s: %s" % (e.__class__.__name__, str(e).replace("\n", " "))
        sys.stdout.write(out.rstrip(" ") + "\n")
        sys.stdout.flush()


main()
