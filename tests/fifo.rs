//! --upload-fifo (issue 13): the absolute on-disk path of each completed upload, one line to a
//! FIFO, end to end against the real binary. The readers are real: a thread that opens the
//! FIFO and reads lines as a script would, and the README's shell loop (with curl uploading).
//! No upload waits for a reader: lines queue, and arrive when one opens.
//!
//! "Exactly one line per upload" is checked with a sentinel: after the uploads under test, one
//! more upload; the line after the expected ones must be the sentinel's, so no extra line (and
//! no line of a failed upload) came in between.

#[macro_use]
mod common;

use common::*;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;

/// A FIFO (mode 0600) made by mkfifo(1) in `dir`, as the README tells an integrator to.
fn mkfifo(dir: &TempDir) -> PathBuf {
    let path = dir.join("uploads.fifo");
    run_ok(
        dir.path(),
        "mkfifo",
        &["-m", "600", &path.display().to_string()],
    );
    path
}

enum Event {
    Line(Vec<u8>),
    /// The reader read the lines it wanted and closed the FIFO.
    Closed,
}

/// A reader in a thread, as a script's `while read` is: it opens the FIFO (blocking until the
/// server opens its end) and reads lines, `limit` of them (then it closes the FIFO) or until
/// the server closes its end.
struct Reader {
    events: Receiver<Event>,
}

impl Reader {
    fn open(fifo: &Path, limit: Option<usize>) -> Reader {
        let (tx, events) = mpsc::channel();
        let fifo = fifo.to_path_buf();
        thread::spawn(move || {
            let mut reader = BufReader::new(File::open(&fifo).expect("open the FIFO to read"));
            let mut read = 0;
            while limit.is_none_or(|limit| read < limit) {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        read += 1;
                        if tx.send(Event::Line(line)).is_err() {
                            return;
                        }
                    }
                }
            }
            drop(reader);
            let _ = tx.send(Event::Closed);
        });
        Reader { events }
    }

    /// The next line, newline included; panics after IO_TIMEOUT.
    #[track_caller]
    fn line(&self) -> String {
        match self.events.recv_timeout(IO_TIMEOUT) {
            Ok(Event::Line(line)) => String::from_utf8(line).unwrap(),
            Ok(Event::Closed) => panic!("the reader saw the end of the FIFO, not a line"),
            Err(e) => panic!("no line from the upload FIFO within {IO_TIMEOUT:?}: {e}"),
        }
    }

    /// The next lines must be these paths (each a whole line).
    #[track_caller]
    fn expect(&self, paths: &[PathBuf]) {
        for path in paths {
            assert_eq!(self.line(), format!("{}\n", path.display()));
        }
    }

    #[track_caller]
    fn expect_closed(&self) {
        match self.events.recv_timeout(IO_TIMEOUT) {
            Ok(Event::Closed) => {}
            Ok(Event::Line(line)) => panic!("a line more: {:?}", String::from_utf8_lossy(&line)),
            Err(e) => panic!("the reader did not close: {e}"),
        }
    }
}

/// The status line SIGUSR1 logs must end with these upload FIFO counts (asked until it does:
/// the server writes queued lines at its retry timer).
#[track_caller]
fn expect_status(s: &Server, queued: usize, dropped: u64) {
    let want = format!(", upload fifo {queued} lines queued, {dropped} dropped");
    let mut asked = s.log_count("status: ");
    let seen = eventually(IO_TIMEOUT, || {
        asked += 1;
        s.signal(libc::SIGUSR1);
        s.wait_for_log("status: ", asked, IO_TIMEOUT);
        let lines = s.log_lines();
        let newest = lines.iter().rev().find(|line| line.contains("status: "));
        newest.is_some_and(|line| line.ends_with(&want))
    });
    assert!(seen, "no status line ending {want:?}:\n{}", s.log_text());
}

fn url(s: &Server, path: &str) -> String {
    format!("ftp://127.0.0.1:{}/{}", s.port(), path)
}

/// STOR, APPE, STOU (with and without a hint), into a subdirectory, with --atomic-uploads (the
/// line names the target, after the rename, never the temporary file): one line each, the
/// absolute path on disk. A failed upload gets none.
#[test]
fn every_completed_upload_writes_its_absolute_path() {
    let dir = TempDir::new("fifo");
    let fifo = mkfifo(&dir);
    let fifo_arg = fifo.display().to_string();
    let reader = Reader::open(&fifo, None);
    let s = Server::start(&[
        "-a",
        "-w",
        "--atomic-uploads",
        "--max-upload-size",
        "10",
        "--upload-fifo",
        &fifo_arg,
    ]);
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    c.try_stor(b"a.bin", b"stored").unwrap();
    reader.expect(&[s.path("a.bin")]);
    c.try_upload("APPE", b"a.bin", b"+").unwrap();
    reader.expect(&[s.path("a.bin")]);
    c.expect("MKD sub dir", 257);
    c.expect("CWD sub dir", 250);
    c.try_stor(b"b c.txt", b"x").unwrap();
    reader.expect(&[s.path("sub dir/b c.txt")]);
    let unique = |c: &mut Client, hint: &[u8]| {
        let first = c
            .try_put(Mode::Pasv, &[b"STOU ", hint].concat(), b"u")
            .unwrap();
        first.msg().rsplit("FILE: ").next().unwrap().to_string()
    };
    let name = unique(&mut c, b"");
    reader.expect(&[s.path(&format!("sub dir/{name}"))]);
    let name = unique(&mut c, b"b c.txt");
    assert_ne!(name, "b c.txt");
    reader.expect(&[s.path(&format!("sub dir/{name}"))]);
    // Past --max-upload-size: 552, nothing kept, no line.
    let refused = c.try_stor(b"big.bin", &[0; 100]).unwrap_err();
    assert_eq!(refused.code, 552);
    c.expect("CWD /", 250);
    c.try_stor(b"sentinel", b"s").unwrap();
    reader.expect(&[s.path("sentinel")]);
    assert!(s.path("a.bin").is_absolute());
    assert_eq!(std::fs::read(s.path("a.bin")).unwrap(), b"stored+");
}

/// A users-file user's uploads land in their home: the line is under it.
#[test]
fn a_users_file_users_path_is_under_their_home() {
    let dir = TempDir::new("fifo");
    let fifo = mkfifo(&dir);
    let fifo_arg = fifo.display().to_string();
    let users = Users::new(&[("alice", &hash_password("secret"), "alice", "rw")]);
    let reader = Reader::open(&fifo, None);
    let s = Server::start(&["-U", &users.file_arg(), "--upload-fifo", &fifo_arg]);
    let mut c = s.login("alice", "secret");
    c.expect("TYPE I", 200);
    c.try_stor(b"/x.bin", b"x").unwrap();
    reader.expect(&[users.home("alice").join("x.bin")]);
}

/// curl uploads, and the README's reader (a shell loop) gets the lines; the server's end
/// closing at exit ends the loop.
#[test]
fn curl_uploads_reach_the_readmes_shell_reader() {
    require("curl");
    let dir = TempDir::new("fifo");
    let fifo = mkfifo(&dir);
    let out = dir.join("landed.txt");
    let script = format!(
        "while read -r f; do printf '%s\\n' \"$f\" >> '{}'; done < '{}'",
        out.display(),
        fifo.display()
    );
    let mut shell = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let fifo_arg = fifo.display().to_string();
    let mut s = Server::start(&["-a", "-w", "--upload-fifo", &fifo_arg]);
    let tmp = TempDir::new("curl");
    tmp.write("up.bin", b"curl");
    for name in ["one.bin", "two%20words.bin"] {
        run_ok(
            tmp.path(),
            "curl",
            &["-sS", "--fail", "-T", "up.bin", &url(&s, name)],
        );
    }
    let want = format!(
        "{}\n{}\n",
        s.path("one.bin").display(),
        s.path("two words.bin").display()
    );
    let landed = eventually(IO_TIMEOUT, || {
        std::fs::read_to_string(&out).is_ok_and(|text| text == want)
    });
    assert!(
        landed,
        "the shell reader wrote {:?}, want {want:?}",
        std::fs::read_to_string(&out)
    );
    s.signal(libc::SIGTERM);
    assert!(s.wait_exit(IO_TIMEOUT).is_some_and(|st| st.success()));
    let ended = wait_child(&mut shell, IO_TIMEOUT);
    if ended.is_none() {
        let _ = shell.kill();
        let _ = shell.wait();
    }
    assert!(
        ended.is_some_and(|st| st.success()),
        "the server's exit ends the reader's loop (EOF)"
    );
}

/// No reader: uploads still succeed at once and the server answers; the lines wait, and a
/// reader that opens later gets them, in order.
#[test]
fn without_a_reader_uploads_go_on_and_lines_wait() {
    let dir = TempDir::new("fifo");
    let fifo = mkfifo(&dir);
    let fifo_arg = fifo.display().to_string();
    let s = Server::start(&["-a", "-w", "--upload-fifo", &fifo_arg]);
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    let names = ["1.bin", "2.bin", "3.bin"];
    for name in names {
        c.try_stor(name.as_bytes(), b"data").unwrap();
    }
    c.expect("NOOP", 200);
    let mut other = s.anonymous();
    other.expect("PWD", 257);
    expect_status(&s, 3, 0);
    let reader = Reader::open(&fifo, None);
    let paths: Vec<PathBuf> = names.iter().map(|n| s.path(n)).collect();
    reader.expect(&paths);
    expect_status(&s, 0, 0);
    c.try_stor(b"sentinel", b"s").unwrap();
    reader.expect(&[s.path("sentinel")]);
}

/// More lines than the queue holds, with no reader: the ones past it are dropped, counted in
/// the status line and warned about (naming the file); the queued ones still arrive.
#[test]
fn lines_past_the_queue_are_dropped_counted_and_logged() {
    let dir = TempDir::new("fifo");
    let fifo = mkfifo(&dir);
    let fifo_arg = fifo.display().to_string();
    let s = Server::start(&["-a", "-w", "--upload-fifo", &fifo_arg]);
    let name = |i: usize| format!("{i:03}-{}", "n".repeat(200));
    let line_len = s.path(&name(0)).as_os_str().len() + 1;
    // leanftpd's UPLOAD_FIFO_QUEUE_BYTES.
    let fits = 16 * 1024 / line_len;
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    for i in 0..fits + 2 {
        c.try_stor(name(i).as_bytes(), b"d").unwrap();
    }
    expect_status(&s, fits, 2);
    let first_dropped = s.path(&name(fits)).display().to_string();
    let warned = s.log_lines().into_iter().any(|line| {
        line.contains("WARN")
            && line.contains(&format!("upload fifo {fifo_arg}: queue full"))
            && line.contains(&first_dropped)
    });
    assert!(
        warned,
        "no warning naming {first_dropped}:\n{}",
        s.log_text()
    );
    let reader = Reader::open(&fifo, None);
    let kept: Vec<PathBuf> = (0..fits).map(|i| s.path(&name(i))).collect();
    reader.expect(&kept);
    c.try_stor(b"sentinel", b"s").unwrap();
    reader.expect(&[s.path("sentinel")]);
    expect_status(&s, 0, 2);
}

/// The reader closes the FIFO (EPIPE at the next write; SIGPIPE does not kill the server) and
/// a new one opens it: the line written meanwhile is not lost, and the server keeps serving.
#[test]
fn a_reader_that_closes_and_comes_back_loses_no_line() {
    let dir = TempDir::new("fifo");
    let fifo = mkfifo(&dir);
    let fifo_arg = fifo.display().to_string();
    let first = Reader::open(&fifo, Some(1));
    let mut s = Server::start(&["-a", "-w", "--upload-fifo", &fifo_arg]);
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    c.try_stor(b"1.bin", b"1").unwrap();
    first.expect(&[s.path("1.bin")]);
    first.expect_closed();
    c.try_stor(b"2.bin", b"2").unwrap();
    c.expect("NOOP", 200);
    assert!(s.is_running(), "SIGPIPE must not kill the server");
    let second = Reader::open(&fifo, None);
    second.expect(&[s.path("2.bin")]);
    c.try_stor(b"3.bin", b"3").unwrap();
    second.expect(&[s.path("3.bin")]);
    expect_status(&s, 0, 0);
}

/// --inetd: the one session's uploads reach the reader too.
#[test]
fn inetd_sessions_write_to_the_fifo() {
    let dir = TempDir::new("fifo");
    let fifo = mkfifo(&dir);
    let root = TempDir::new("root");
    let reader = Reader::open(&fifo, None);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let mut child = Command::new(BIN)
        .args(["--inetd", "-a", "-w", "-q", "--root"])
        .arg(root.path())
        .arg("--upload-fifo")
        .arg(&fifo)
        .stdin(Stdio::from(OwnedFd::from(accepted)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut c = Client::from_stream(client);
    assert_eq!(c.reply().code, 220);
    c.login_anonymous();
    c.expect("TYPE I", 200);
    c.try_stor(b"inetd.bin", b"i").unwrap();
    reader.expect(&[root.join("inetd.bin")]);
    c.expect("QUIT", 221);
    let status = wait_child(&mut child, IO_TIMEOUT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(status.is_some_and(|st| st.success()), "{status:?}");
    reader.expect_closed();
}

/// A PATH that is missing or not a FIFO: exit 2, one line.
#[test]
fn a_bad_fifo_path_is_refused_at_start() {
    let dir = TempDir::new("fifo");
    let missing = dir.join("missing").display().to_string();
    let listen = ["-a", "-l", "127.0.0.1:0", "--upload-fifo"];
    refuses(
        &[&listen[..], &[&missing]].concat(),
        &["--upload-fifo", &missing, "No such file"],
    );
    let file = dir.write("plain", b"").display().to_string();
    refuses(
        &[&listen[..], &[&file]].concat(),
        &["--upload-fifo", &file, "not a FIFO", "mkfifo"],
    );
}

/// The FIFO is opened again by name after privileges drop, so the --run-as user must be able
/// to: one it cannot open (mode 0600, root's) is refused at start, not found out at the first
/// reopen.
#[test]
fn a_fifo_the_run_as_user_cannot_open_is_refused() {
    assert!(
        is_root(),
        "this test needs root (the CI runs the suite as root)"
    );
    let dir = TempDir::new("fifo");
    let fifo = mkfifo(&dir).display().to_string();
    let root = dir.mkdir("root").display().to_string();
    let args = [
        "-a",
        "-l",
        "127.0.0.1:0",
        "--root",
        &root,
        "--run-as",
        "nobody",
        "--upload-fifo",
        &fifo,
    ];
    refuses(&args, &["--upload-fifo", &fifo, "Permission denied"]);
}
