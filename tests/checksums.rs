//! The checksum commands against the real binary: HASH (draft-bryan-ftpext-hash) and the older
//! XCRC, XMD5, XSHA1, XSHA256, XSHA512, compared with `sha256sum`, `sha512sum`, `sha1sum`,
//! `md5sum` and Python's `zlib.crc32` on files of many 1 MiB slices, with and without ranges;
//! a file that grows or shrinks while it is hashed; ABOR; and another session's NOOPs while a
//! large hash runs.

mod common;

use common::*;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::thread;
use std::time::{Duration, Instant};

/// 5 MiB and a bit: six slices, the last one partial.
const MANY_SLICES: usize = 5 * 1024 * 1024 + 4321;

/// The tool's hex digest of `bytes` (given on stdin).
fn tool_digest(algorithm: &str, bytes: &[u8]) -> String {
    let (prog, args): (&str, &[&str]) = match algorithm {
        "SHA-256" => ("sha256sum", &[]),
        "SHA-512" => ("sha512sum", &[]),
        "SHA-1" => ("sha1sum", &[]),
        "MD5" => ("md5sum", &[]),
        "CRC32" => (
            "python3",
            &[
                "-c",
                "import sys, zlib; print('%08x' % zlib.crc32(sys.stdin.buffer.read()))",
            ],
        ),
        other => panic!("no tool for {other}"),
    };
    let out = run_cmd(prog, args, bytes, IO_TIMEOUT);
    assert_eq!(out.status.code(), Some(0), "{prog}: {}", out.stderr);
    out.stdout
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

/// SHA-256 of `len` zero bytes (sparse test files read as zeros).
fn sha256_of_zeros(len: u64) -> String {
    let script = format!(
        "import hashlib\nh = hashlib.sha256()\nz = bytes(1 << 20)\nn = {len}\n\
         while n:\n    k = min(n, len(z))\n    h.update(z[:k])\n    n -= k\nprint(h.hexdigest())"
    );
    let out = run_cmd("python3", &["-c", &script], b"", IO_TIMEOUT);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    out.stdout.trim().to_string()
}

/// A sparse file of `len` bytes under the server's root: no disk, but every byte is read and
/// hashed like any other.
fn sparse(s: &Server, name: &str, len: u64) -> File {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(s.path(name))
        .unwrap();
    file.set_len(len).unwrap();
    file
}

const ALGORITHMS: [&str; 5] = ["SHA-256", "SHA-512", "SHA-1", "MD5", "CRC32"];
const X_VERBS: [(&str, &str); 5] = [
    ("XSHA256", "SHA-256"),
    ("XSHA512", "SHA-512"),
    ("XSHA1", "SHA-1"),
    ("XMD5", "MD5"),
    ("XCRC", "CRC32"),
];

#[test]
fn hash_with_every_algorithm_matches_the_tools() {
    require("sha512sum");
    let s = Server::start(&["-a"]);
    let data = pattern(MANY_SLICES, 11);
    s.put("dir/big file.bin", &data);
    let mut c = s.anonymous();
    // The default is SHA-256 (the draft: nothing weaker than SHA-1 by default).
    assert_eq!(c.expect("OPTS HASH", 200).lines, ["200 SHA-256"]);
    for algorithm in ALGORITHMS {
        let r = c.expect(&format!("OPTS HASH {}", algorithm.to_lowercase()), 200);
        assert_eq!(r.lines, [format!("200 {algorithm}")]);
        let want = tool_digest(algorithm, &data);
        let r = c.expect("HASH dir/big file.bin", 213);
        assert_eq!(
            r.lines,
            [format!(
                "213 {algorithm} 0-{MANY_SLICES} {want} dir/big file.bin"
            )]
        );
    }
    // An empty file has a hash too.
    s.put("empty", b"");
    c.expect("OPTS HASH MD5", 200);
    assert_eq!(
        c.expect("HASH /empty", 213).lines,
        ["213 MD5 0-0 d41d8cd98f00b204e9800998ecf8427e /empty"]
    );
}

#[test]
fn the_x_verbs_match_the_tools_whole_and_in_ranges() {
    let s = Server::start(&["-a"]);
    let data = pattern(MANY_SLICES, 12);
    s.put("clip 01.mp4", &data);
    let mut c = s.anonymous();
    // Ranges: START..END, END exclusive; across slice boundaries, and to the very end.
    let ranges = [(0, 1), (1_048_575, 3_145_729), (123, MANY_SLICES)];
    for (verb, algorithm) in X_VERBS {
        let want = tool_digest(algorithm, &data);
        // Quoted and unquoted names (this one ends in a number, which stays part of it).
        assert_eq!(
            c.expect(&format!("{verb} \"clip 01.mp4\""), 213).lines,
            [format!("213 {want}")]
        );
        assert_eq!(
            c.expect(&format!("{verb} clip 01.mp4"), 213).lines,
            [format!("213 {want}")]
        );
        for (start, end) in ranges {
            let want = tool_digest(algorithm, &data[start..end]);
            for line in [
                format!("{verb} \"clip 01.mp4\" {start} {end}"),
                format!("{verb} clip 01.mp4 {start} {end}"),
            ] {
                assert_eq!(
                    c.expect(&line, 213).lines,
                    [format!("213 {want}")],
                    "{line}"
                );
            }
        }
        // END alone (quoted name): from the start.
        let want = tool_digest(algorithm, &data[..4096]);
        assert_eq!(
            c.expect(&format!("{verb} \"clip 01.mp4\" 4096"), 213).lines,
            [format!("213 {want}")]
        );
    }
}

#[test]
fn checksum_errors_have_exact_codes() {
    let s = Server::start(&["-a"]);
    s.put("f", b"0123456789");
    s.put("d/inner", b"x");
    let mut c = s.connect();
    // The login gate (the verb table: none of these run before login).
    for line in [
        "HASH f",
        "XCRC f",
        "XMD5 f",
        "XSHA1 f",
        "XSHA256 f",
        "XSHA512 f",
    ] {
        c.expect(line, 530);
    }
    c.login_anonymous();
    assert_eq!(
        c.expect("HASH missing", 550).lines,
        ["550 No such file or directory."]
    );
    assert_eq!(c.expect("HASH d", 550).lines, ["550 Is a directory."]);
    assert_eq!(
        c.expect("XSHA256 \"d\"", 550).lines,
        ["550 Is a directory."]
    );
    assert_eq!(
        c.expect("XMD5 ../../../etc/passwd", 550).lines,
        ["550 No such file or directory."]
    );
    c.expect("HASH", 501);
    c.expect("XCRC f 5 5", 501);
    c.expect("XCRC f 6 5", 501);
    c.expect("XCRC \"f\" 1 2 3", 501);
    c.expect("XCRC \"f", 501);
    assert_eq!(
        c.expect("XSHA1 f 0 11", 501).lines,
        ["501 The range ends past the end of the file (10 bytes)."]
    );
    // OPTS HASH with an unknown algorithm: 501, the selection stays (draft section 3.2).
    assert_eq!(
        c.expect("OPTS HASH CRC-37", 501).lines,
        ["501 Unknown algorithm, current selection not changed."]
    );
    assert_eq!(c.expect("OPTS HASH", 200).lines, ["200 SHA-256"]);
    // The session goes on.
    c.expect("XCRC f 0 10", 213);
}

#[test]
fn feat_marks_the_selected_algorithm_and_help_lists_the_verbs() {
    let s = Server::start(&["-a"]);
    let mut c = s.connect();
    let feat = c.expect("FEAT", 211);
    assert!(
        feat.lines
            .contains(&" HASH SHA-256*;SHA-512;SHA-1;MD5;CRC32".to_string()),
        "{:?}",
        feat.lines
    );
    c.expect("OPTS HASH SHA-1", 200);
    let feat = c.expect("FEAT", 211);
    assert!(
        feat.lines
            .contains(&" HASH SHA-256;SHA-512;SHA-1*;MD5;CRC32".to_string()),
        "{:?}",
        feat.lines
    );
    let help = c.expect("HELP", 214).text();
    for verb in ["HASH", "XCRC", "XMD5", "XSHA1", "XSHA256", "XSHA512"] {
        assert!(
            help.contains(&format!(" {verb}")),
            "HELP lists {verb}: {help}"
        );
    }
}

/// HASH, then NOOP (which runs during a checksum): the NOOP's 200 comes first exactly when the
/// checksum was still running when it was read.
#[track_caller]
fn hash_is_running(c: &mut Client, line: &str) {
    c.send(line);
    c.send("NOOP");
    let first = c.reply();
    assert_eq!(
        first.lines,
        ["200 NOOP ok."],
        "the checksum ended before the NOOP was read: use a larger file"
    );
}

#[test]
fn bytes_appended_during_the_hash_are_not_hashed() {
    let s = Server::start(&["-a"]);
    let len: u64 = 256 << 20;
    let file = sparse(&s, "growing.bin", len);
    let want = sha256_of_zeros(len);
    let mut c = s.anonymous();
    hash_is_running(&mut c, "HASH growing.bin");
    // A camera still writing: the file grows while it is hashed.
    file.write_all_at(&[0xAB; 4096], len).unwrap();
    let r = c.reply();
    assert_eq!(r.lines, [format!("213 SHA-256 0-{len} {want} growing.bin")]);
}

#[test]
fn a_file_that_shrinks_during_the_hash_gets_451() {
    let s = Server::start(&["-a"]);
    let file = sparse(&s, "shrinking.bin", 256 << 20);
    let mut c = s.anonymous();
    hash_is_running(&mut c, "XSHA512 shrinking.bin");
    file.set_len(1 << 20).unwrap();
    assert_eq!(
        c.reply().lines,
        ["451 The file shrank during the checksum."]
    );
    c.expect("NOOP", 200);
}

#[test]
fn abor_cancels_a_large_hash() {
    let s = Server::start(&["-a"]);
    // 16 GiB: minutes of hashing, unless ABOR ends it.
    sparse(&s, "huge.bin", 16 << 30);
    s.put("small", b"abc");
    let mut c = s.anonymous();
    hash_is_running(&mut c, "HASH huge.bin");
    let started = Instant::now();
    c.send("ABOR");
    assert_eq!(c.reply().lines, ["426 Checksum aborted."]);
    assert_eq!(c.reply().lines, ["226 ABOR successful."]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "ABOR took {took:?}");
    // The next checksum runs at once: the cancelled one no longer holds the session.
    assert_eq!(
        c.expect("XMD5 small", 213).lines,
        ["213 900150983cd24fb0d6963f7d28e17f72"]
    );
    // And the server is idle again: no task keeps hashing behind the session's back. (A
    // measurement window, not a synchronisation: there is no event for "nothing happens".
    // Hashing takes a whole core; an idle loop takes nothing.)
    let cpu = s.cpu_seconds();
    thread::sleep(Duration::from_millis(500));
    let used = s.cpu_seconds() - cpu;
    assert!(used < 0.1, "{used} s of CPU in 0.5 s after ABOR");
}

#[test]
fn another_sessions_noops_answer_quickly_while_a_large_hash_runs() {
    let s = Server::start(&["-a"]);
    let len: u64 = 256 << 20;
    sparse(&s, "large.bin", len);
    let want = sha256_of_zeros(len);
    let mut bystander = s.anonymous();
    let mut hasher = s.anonymous();
    let started = Instant::now();
    hash_is_running(&mut hasher, "HASH large.bin");
    let waiter = thread::spawn(move || {
        let r = hasher.reply();
        (r, Instant::now())
    });
    let mut latencies = Vec::new();
    while !waiter.is_finished() {
        let sent = Instant::now();
        bystander.expect("NOOP", 200);
        latencies.push(sent.elapsed());
    }
    let (r, done) = waiter.join().unwrap();
    assert_eq!(r.lines, [format!("213 SHA-256 0-{len} {want} large.bin")]);
    latencies.sort();
    let worst = *latencies.last().expect("at least one NOOP");
    let at = |q: usize| latencies[(latencies.len() - 1) * q / 100];
    eprintln!(
        "{} NOOPs during a {} MiB HASH of {:?}: median {:?}, p99 {:?}, worst {worst:?}",
        latencies.len(),
        len >> 20,
        done - started,
        at(50),
        at(99),
    );
    // One 1 MiB slice per turn: a NOOP waits for at most a slice or two, even on a loaded
    // 2-core machine in a debug build.
    assert!(worst < Duration::from_millis(500), "worst NOOP {worst:?}");
}
