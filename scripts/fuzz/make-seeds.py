#!/usr/bin/env python3
"""Writes the hand-made seed corpus: scripts/fuzz/corpus/<target>/seed-<name>.

The seeds are committed; rerun this after changing them here. Session seeds use the event
escapes documented at the top of fuzz_targets/session.rs (NUL starts an event, NUL NUL is a
literal NUL); byte 0 of each input chooses the scene (session) or the chunk sizes (parse).
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))

LOGIN = b"USER anonymous\r\nPASS guest@example.com\r\n"

# Events of the session target.
CONNECT = b"\0c"
CONNECT_FAILS = b"\0C"
PUMP_ALL = b"\0P"
EOF_ = b"\0e"
BREAK = b"\0x"
NEXT_DEADLINE = b"\0T"


def pump(n):
    return b"\0p" + bytes([n])


def upload(data):
    return b"\0d" + bytes([len(data)]) + data


def chunk(n):
    return b"\0b" + bytes([n])


def wait(n):
    return b"\0t" + bytes([n])


def step_task(n):
    return b"\0h" + bytes([n])


TASK_ALL = b"\0H"


SESSION = {
    # byte 0: 0 = IPv4 writable, 1 = IPv6, 2 = IPv4-mapped, 4 = read-only, 8 = PASV address.
    "login-pasv-retr": b"\x00" + LOGIN
    + b"SYST\r\nFEAT\r\nPWD\r\nTYPE I\r\nPASV\r\nRETR hello.txt\r\n" + CONNECT + PUMP_ALL
    + b"QUIT\r\n",
    "epsv-stor-appe": b"\x00" + LOGIN
    + b"EPSV\r\nSTOR up.txt\r\n" + CONNECT + upload(b"hello\r\nworld\r\n") + EOF_ + PUMP_ALL
    + b"SIZE up.txt\r\nTYPE A\r\nEPSV\r\nAPPE up.txt\r\n" + CONNECT + upload(b"more\r") + EOF_
    + PUMP_ALL + b"STOU\r\nMDTM up.txt\r\n",
    "list-nlst-mlsd-stat": b"\x08" + LOGIN
    + b"PASV\r\nLIST -la\r\n" + CONNECT + PUMP_ALL + b"PASV\r\nNLST pub\r\n" + CONNECT
    + PUMP_ALL + b"OPTS MLST type;size;modify;perm;\r\nEPSV\r\nMLSD /pub\r\n" + CONNECT
    + PUMP_ALL + b"MLST link-dir\r\nSTAT /\r\nSTAT link-out\r\nSTAT\r\nLIST\r\n",
    "abor-during-retr": b"\x00" + LOGIN
    + b"TYPE A\r\nREST 3\r\nPASV\r\nRETR pub/data.bin\r\n" + chunk(1) + CONNECT + pump(0)
    + b"STAT\r\nNOOP\r\nPWD\r\n\xff\xf4\xff\xf2ABOR\r\n" + PUMP_ALL + b"ABOR\r\n",
    "telnet-and-line-endings": b"\x00"
    + b"\xff\xfb\x01\xff\xfd\x03us\xff\xffER anonymous\n"
    + b"PASS \r\0\0x\r\n" + b"\xff\xf1NOOP\r\n\xf2\xf2PWD\r\n" + b"cwd pub\r\nXCUP \r\n\r\n"
    + b"\xff\r\n",
    "long-line": b"\x00" + LOGIN + b"NOOP " + b"x" * 4200 + b"\r\n",
    "checksums": b"\x00" + b"HASH hello.txt\r\nOPTS HASH md5\r\n" + LOGIN
    + b"HASH pub/data.bin\r\nNOOP\r\nSTAT\r\nPWD\r\n" + step_task(3) + TASK_ALL
    + b"XCRC \"pub/data.bin\" 10 700\r\n" + step_task(0) + b"ABOR\r\nPWD\r\n"
    + b"XSHA512 hello.txt 0 99\r\nXSHA256 pub\r\nXSHA1 link-in\r\nXMD5 link-out\r\n"
    + TASK_ALL + b"OPTS HASH CRC-37\r\nFEAT\r\nHASH empty\r\nQUIT\r\n",
    "port-eprt": b"\x00" + LOGIN
    + b"PORT 127,0,0,1,200,10\r\nLIST\r\n" + CONNECT + PUMP_ALL
    + b"PORT 10,0,0,1,200,10\r\nPORT 127,0,0,1,0,21\r\nEPRT |1|127.0.0.1|5000|\r\n"
    + b"RETR link-in\r\n" + CONNECT_FAILS + b"EPSV ALL\r\nPASV\r\nPORT 127,0,0,1,4,1\r\n",
    "timeouts": b"\x00" + LOGIN
    + b"PASV\r\n" + NEXT_DEADLINE + b"RETR hello.txt\r\nEPSV\r\nRETR hello.txt\r\n"
    + CONNECT + chunk(4) + pump(1) + wait(7) + b"NOOP\r\n" + wait(255),
    "write-commands": b"\x00" + LOGIN
    + b"MKD new dir\r\nCWD new dir\r\nMKD \"q\"\r\nRMD \"q\"\r\nCDUP\r\n"
    + b"RNFR hello.txt\r\nRNTO new dir/moved\r\nRNFR link-out\r\nRNTO ../x\r\n"
    + b"MFMT 20200102030405 empty\r\nSITE CHMOD 600 empty\r\nSITE CHMOD 777 link-out\r\n"
    + b"SITE HELP\r\nDELE new dir/moved\r\nRMD new dir\r\nDELE link-loop\r\nRMD /\r\n",
    "ipv6-epsv-eprt": b"\x01" + LOGIN
    + b"PASV\r\nEPSV 1\r\nEPSV 2\r\nLIST\r\n" + CONNECT + PUMP_ALL
    + b"EPRT |2|::1|5282|\r\nRETR pub/deeper/notes.txt\r\n" + CONNECT + BREAK + PUMP_ALL,
    "alice-and-bad-logins": b"\x02"
    + b"PWD\r\nPASS x\r\nUSER bob\r\nPASS nope\r\nUSER alice\r\nPASS secret\r\nUSER alice\r\n"
    + b"PWD\r\nCWD ..\r\nCWD /deeper\r\nSIZE notes.txt\r\nSTAT .\r\nHELP\r\nCLNT x\r\n",
    # bit 7 of byte 0: the loop refuses alice's login (she is at her session limit): 421.
    "user-over-limit": b"\x80"
    + b"USER alice\r\nPASS secret\r\nPWD\r\nQUIT\r\n",
    # Commands pipelined behind a users-file PASS wait for the loop's admission, then run.
    "user-admitted-pipelined": b"\x00"
    + b"USER alice\r\nPASS secret\r\nPWD\r\nTYPE I\r\nEPSV\r\nSTOR up\r\n"
    + CONNECT + upload(b"abc") + EOF_ + PUMP_ALL + b"SIZE up\r\nMKD d\r\n",
    "read-only": b"\x04" + LOGIN
    + b"STOR x\r\nDELE hello.txt\r\nRETR ../../etc/passwd\r\nRETR link-abs/secret.txt\r\n"
    + b"CWD link-abs\r\nSIZE link-out\r\nMODE B\r\nSTRU R\r\nTYPE E\r\nALLO 10\r\nACCT x\r\n"
    + b"REST 99999\r\nRETR empty\r\nGET / HTTP/1.0\r\nQUIT\r\n",
    # Regression seeds: findings of the first runs (see the fuzz report in the issue).
    # A passive listener opened for a session that QUIT in the same read: 229 after the 221.
    "regress-reply-after-close": b"\x00" + LOGIN + b"EPSV\r\nQUIT\r\n",
    # STAT lists a name holding a CR verbatim: a bare CR inside the 213 reply.
    # A failed login's delay holds everything behind it until the end of the input; then a
    # checksum's result runs the next held checksum (the driver must step tasks there too).
    "regress-task-after-deadline": b"\x00" + b"USER alice\r\nPASS wrong\r\n" + LOGIN
    + b"HASH hello.txt\r\nXMD5 hello.txt\r\nXCRC pub/data.bin\r\n",
    "regress-stat-bare-cr": b"\x00" + LOGIN + b"MKD c\rd\r\nSTAT /\r\n",
    # A failed login's delay and the login timeout fall due in one handle_timeout: the delay
    # runs the pipelined USER/PASS (the loop is asked to admit alice), then the timeout closes the
    # session; the loop's answer must not write 230 (or 421) after the close.
    "regress-admission-after-close": b"\x00" + b"USER bob\r\nPASS nope\r\nUSER alice\r\n"
    + b"PASS secret\r\n" + wait(64),
}

PARSE = {
    "login": b"\x21" + LOGIN + b"SYST\r\nQUIT\r\n",
    "telnet": b"\x00" + b"\xff\xf4\xff\xf2ABOR\r\n\xff\xfb\x18NO\xff\xffOP\r\nPASS a\r\0b\r\n\xff",
    "addresses": b"\x13"
    + b"PORT 127,0,0,1,4,1\r\nEPRT |2|::1|5282|\r\nEPRT |1|10.0.0.1|65535|\r\n"
    + b"EPSV ALL\r\nEPSV 2\r\nPORT 256,0,0,1,1,1\r\n",
    "arguments": b"\x35"
    + b"MFMT 20240229235959 a b\r\nSITE CHMOD 0755 x\r\nREST 18446744073709551616\r\n"
    + b"TYPE L 8\r\nTYPE A N\r\nMODE S\r\nSTRU F\r\nOPTS UTF8 ON\r\nLIST -la /pub\r\n",
    "odd-lines": b"\xf7" + b"\r\n\n \r\nX\r\nRETR\r\nRETR \r\nCWD \0\r\nAUTH TLS\r\n"
    + b"get / HTTP/1.1\r\n",
    "long-line": b"\x01" + b"STOR " + b"y" * 4100 + b"\r\nNOOP\r\n",
}


def write(target, seeds):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(directory, "seed-" + name), "wb") as f:
            f.write(data)


write("session", SESSION)
write("parse", PARSE)
