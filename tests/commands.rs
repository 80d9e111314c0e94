//! Commands on the control connection that need no data connection: replies and their
//! effects on disk, checked exactly.

#[macro_use]
mod common;

use common::*;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;

#[test]
fn syst_is_unix_type_l8() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    assert_eq!(c.expect("SYST", 215).lines, ["215 UNIX Type: L8"]);
}

#[test]
fn feat_lists_exactly_the_implemented_features_indented_by_one_space() {
    let s = Server::start(&["-a"]);
    let mut c = s.connect();
    let r = c.expect("FEAT", 211);
    assert!(r.lines.len() >= 3, "{:?}", r.lines);
    assert!(r.lines[0].starts_with("211-"), "{:?}", r.lines);
    assert_eq!(r.lines.last().unwrap(), "211 End");
    let mut feats: Vec<&str> = Vec::new();
    for l in &r.lines[1..r.lines.len() - 1] {
        assert!(
            l.starts_with(' ') && !l.starts_with("  "),
            "feature line must be indented by exactly one space: {l:?}"
        );
        feats.push(&l[1..]);
    }
    feats.sort();
    let mut want = vec![
        "CLNT",
        "EPRT",
        "EPSV",
        "HASH SHA-256*;SHA-512;SHA-1;MD5;CRC32",
        "MDTM",
        "MFMT",
        "MLST type*;size*;modify*;perm*;unix.mode*;",
        "PASV",
        "REST STREAM",
        "SIZE",
        "TVFS",
        "UTF8",
        "XCRC",
        "XMD5",
        "XSHA1",
        "XSHA256",
        "XSHA512",
    ];
    want.sort();
    assert_eq!(feats, want);
}

#[test]
fn noop_acct_allo_clnt() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    c.expect("NOOP", 200);
    c.expect("ACCT billing", 202);
    c.expect("ALLO 1000", 202);
    c.expect("ALLO 1000 R 10", 202);
    c.expect("CLNT curl 8.0", 200);
}

#[test]
fn help_and_site_help_reply_214() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    let h = c.expect("HELP", 214);
    let text = h.text();
    for verb in ["RETR", "STOR", "MLSD", "EPSV", "FEAT"] {
        assert!(text.contains(verb), "HELP should list {verb}: {text}");
    }
    c.expect("HELP RETR", 214);
    let sh = c.expect("SITE HELP", 214);
    assert!(sh.text().to_uppercase().contains("CHMOD"), "{:?}", sh.lines);
}

#[test]
fn unknown_verbs_get_500_or_502_and_the_session_goes_on() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    for cmd in ["XYZZY", "FOO bar", "SITE EXEC ls", "SMNT /", "REIN"] {
        let r = c.cmd(cmd);
        assert!(r.code == 500 || r.code == 502, "{cmd} -> {:?}", r.lines);
    }
    c.expect("NOOP", 200);
}

#[test]
fn commands_are_case_insensitive() {
    let s = Server::start(&["-a"]);
    let mut c = s.connect();
    c.expect("user anonymous", 331);
    c.expect("Pass x", 230);
    assert_eq!(c.expect("syst", 215).lines, ["215 UNIX Type: L8"]);
    c.expect("NoOp", 200);
    c.expect("type i", 200);
    c.expect("pwd", 257);
}

#[test]
fn bare_lf_and_trailing_space_are_accepted() {
    let s = Server::start(&["-a"]);
    let mut c = s.connect();
    c.send_raw(b"USER anonymous\n");
    c.reply().expect(331);
    c.send_raw(b"PASS x\n");
    c.reply().expect(230);
    c.send_raw(b"SYST \r\n");
    assert_eq!(c.reply().lines, ["215 UNIX Type: L8"]);
    c.send_raw(b"NOOP \n");
    c.reply().expect(200);
    c.send_raw(b"PWD \r\n");
    c.reply().expect(257);
    // Two commands in one segment get two replies in order.
    c.send_raw(b"NOOP\r\nSYST\n");
    c.reply().expect(200);
    c.reply().expect(215);
    // A command split over several writes.
    c.send_raw(b"SY");
    std::thread::sleep(std::time::Duration::from_millis(100));
    c.send_raw(b"ST\r");
    std::thread::sleep(std::time::Duration::from_millis(100));
    c.send_raw(b"\n");
    c.reply().expect(215);
}

#[test]
fn line_just_under_4096_bytes_is_accepted() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    // 4000 bytes of short path components (a single long name would be ENAMETOOLONG).
    let name = "d/".repeat(2000);
    c.expect(&format!("SIZE {name}"), 550);
    c.expect("NOOP", 200);
}

#[test]
fn line_over_4096_bytes_gets_500_and_the_connection_closes() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    let name = "n".repeat(5000);
    c.send(&format!("SIZE {name}"));
    let r = c.try_reply().expect("a 500 before the close");
    assert_eq!(r.code, 500, "{:?}", r.lines);
    assert!(c.wait_closed(IO_TIMEOUT).is_ok(), "connection must close");
    // The server still serves others.
    let mut d = s.anonymous();
    d.expect("NOOP", 200);
}

#[test]
fn endless_line_without_lf_gets_500_and_the_connection_closes() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    // 64 KiB with no line end: the server must not buffer it all.
    let junk = vec![b'A'; 64 * 1024];
    let _ = c.stream().write_all_ignoring_reset(&junk);
    let r = c.try_reply().expect("a 500 before the close");
    assert_eq!(r.code, 500, "{:?}", r.lines);
    assert!(c.wait_closed(IO_TIMEOUT).is_ok(), "connection must close");
}

trait WriteIgnoringReset {
    fn write_all_ignoring_reset(&mut self, b: &[u8]) -> std::io::Result<()>;
}

impl WriteIgnoringReset for &std::net::TcpStream {
    fn write_all_ignoring_reset(&mut self, b: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        // The server may close while we are still writing: that is fine here.
        match self.write_all(b) {
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionReset
                    || e.kind() == std::io::ErrorKind::BrokenPipe =>
            {
                Ok(())
            }
            r => r,
        }
    }
}

#[test]
fn pwd_cwd_cdup_and_their_x_aliases() {
    let s = Server::start(&["-a"]);
    fs::create_dir_all(s.path("a/b")).unwrap();
    let mut c = s.anonymous();
    assert_eq!(c.pwd(), "257 \"/\" is the current directory.");
    c.expect("CWD a", 250);
    assert_eq!(
        c.expect("XPWD", 257).lines,
        ["257 \"/a\" is the current directory."]
    );
    c.expect("XCWD b", 250);
    assert_eq!(c.pwd(), "257 \"/a/b\" is the current directory.");
    c.expect("CDUP", 250);
    assert_eq!(c.pwd(), "257 \"/a\" is the current directory.");
    c.expect("XCUP", 250);
    assert_eq!(c.pwd(), "257 \"/\" is the current directory.");
    c.expect("CWD /a/b", 250);
    c.expect("CWD ../..", 250);
    assert_eq!(c.pwd(), "257 \"/\" is the current directory.");
    c.expect("CWD /a/./b/../b", 250);
    assert_eq!(c.pwd(), "257 \"/a/b\" is the current directory.");
    c.expect("CWD /", 250);
    c.expect("CDUP", 250);
    assert_eq!(c.pwd(), "257 \"/\" is the current directory.");
}

#[test]
fn cwd_to_missing_or_file_is_550() {
    let s = Server::start(&["-a"]);
    s.put("file.txt", b"x");
    let mut c = s.anonymous();
    c.expect("CWD nope", 550);
    c.expect("XCWD nope", 550);
    c.expect("CWD file.txt", 550);
    assert_eq!(c.pwd(), "257 \"/\" is the current directory.");
}

#[test]
fn mkd_and_rmd_and_their_x_aliases() {
    let s = Server::start(&["-a", "-w"]);
    let mut c = s.anonymous();
    assert_eq!(c.expect("MKD x", 257).lines, ["257 \"/x\" created."]);
    assert!(s.path("x").is_dir());
    c.expect("CWD x", 250);
    assert_eq!(c.expect("XMKD y", 257).lines, ["257 \"/x/y\" created."]);
    assert_eq!(c.expect("MKD /z", 257).lines, ["257 \"/z\" created."]);
    c.expect("MKD y", 550);
    c.expect("MKD /nope/deeper", 550);
    c.expect("XRMD y", 250);
    assert!(!s.path("x/y").exists());
    c.expect("CWD /", 250);
    c.expect("RMD /z", 250);
    assert!(!s.path("z").exists());
    c.expect("RMD missing", 550);
    s.put("x/file", b"1");
    c.expect("RMD x", 550);
    assert!(s.path("x/file").exists());
    c.expect("RMD x/file", 550);
}

#[test]
fn quotes_in_directory_names_are_doubled() {
    let s = Server::start(&["-a", "-w"]);
    let mut c = s.anonymous();
    assert_eq!(
        c.expect("MKD say \"hi\"", 257).lines,
        ["257 \"/say \"\"hi\"\"\" created."]
    );
    assert!(s.path("say \"hi\"").is_dir());
    c.expect("CWD say \"hi\"", 250);
    assert_eq!(c.pwd(), "257 \"/say \"\"hi\"\"\" is the current directory.");
}

#[test]
fn names_with_spaces_keep_their_spaces() {
    let s = Server::start(&["-a", "-w"]);
    let mut c = s.anonymous();
    c.expect("MKD  lead and trail ", 257);
    assert!(
        s.path(" lead and trail ").is_dir(),
        "{:?}",
        fs::read_dir(s.root())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect::<Vec<_>>()
    );
}

#[test]
fn utf8_names_work() {
    let s = Server::start(&["-a", "-w"]);
    s.put("naïve-日本.txt", "contenu é\n".as_bytes());
    let mut c = s.anonymous();
    c.expect("OPTS UTF8 ON", 200);
    assert_eq!(c.expect("SIZE naïve-日本.txt", 213).lines, ["213 11"]);
    assert_eq!(
        c.retr(Mode::Pasv, "naïve-日本.txt"),
        "contenu é\n".as_bytes()
    );
    assert_eq!(
        c.expect("MKD répertoire", 257).lines,
        ["257 \"/répertoire\" created."]
    );
    assert!(s.path("répertoire").is_dir());
    let names = c.nlst(Mode::Pasv, "NLST");
    assert_eq!(names, ["naïve-日本.txt", "répertoire"]);
}

#[test]
fn opts_utf8_and_mlst_facts() {
    let s = Server::start(&["-a"]);
    s.put("f.txt", b"12345");
    let mut c = s.anonymous();
    c.expect("OPTS UTF8 ON", 200);
    c.expect("OPTS UTF-8 ON", 200);
    c.expect("OPTS utf8 on", 200);
    let r = c.expect("OPTS MLST type;size;", 200);
    assert!(r.msg().contains("type;size;"), "{:?}", r.lines);
    let m = c.expect("MLST f.txt", 250);
    assert_eq!(m.lines.len(), 3, "{:?}", m.lines);
    assert!(
        m.lines[1].starts_with(" type=file;size=5; ") && m.lines[1].ends_with("f.txt"),
        "only the selected facts: {:?}",
        m.lines
    );
    c.expect("OPTS BOGUS", 501);
}

#[test]
fn type_mode_stru() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    for ok in [
        "TYPE A", "TYPE A N", "TYPE I", "TYPE L 8", "type a", "TYPE a n",
    ] {
        c.expect(ok, 200);
    }
    c.expect("TYPE E", 504);
    c.expect("TYPE", 501);
    c.expect("MODE S", 200);
    c.expect("MODE B", 504);
    c.expect("MODE C", 504);
    c.expect("STRU F", 200);
    c.expect("STRU R", 504);
    c.expect("STRU P", 504);
}

#[test]
fn size_of_file_missing_and_directory() {
    let s = Server::start(&["-a"]);
    s.put("f.bin", &pattern(123_457, 1));
    fs::create_dir(s.path("d")).unwrap();
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    assert_eq!(c.expect("SIZE f.bin", 213).lines, ["213 123457"]);
    assert_eq!(c.expect("SIZE /f.bin", 213).lines, ["213 123457"]);
    c.expect("SIZE missing", 550);
    c.expect("SIZE d", 550);
    c.expect("SIZE", 501);
}

#[test]
fn mdtm_is_utc_yyyymmddhhmmss() {
    let s = Server::start(&["-a"]);
    let p = s.put("f.txt", b"x");
    set_mtime(&p, 1_614_834_367); // 2021-03-04 05:06:07 UTC
    let mut c = s.anonymous();
    assert_eq!(c.expect("MDTM f.txt", 213).lines, ["213 20210304050607"]);
    c.expect("MDTM missing", 550);
}

#[test]
fn mfmt_sets_modification_time() {
    let s = Server::start(&["-a", "-w"]);
    let p = s.put("f.txt", b"x");
    let mut c = s.anonymous();
    let r = c.expect("MFMT 20200102030405 f.txt", 213);
    assert!(
        r.lines[0].starts_with("213 Modify=20200102030405;"),
        "{:?}",
        r.lines
    );
    assert_eq!(mtime(&p), 1_577_934_245);
    assert_eq!(c.expect("MDTM f.txt", 213).lines, ["213 20200102030405"]);
    c.expect("MFMT 20200102030405 missing", 550);
    c.expect("MFMT 2020 f.txt", 501);
    c.expect("MFMT 20201302030405 f.txt", 501);
}

#[test]
fn rnfr_rnto_renames_files_and_directories() {
    let s = Server::start(&["-a", "-w"]);
    s.put("a.txt", b"A");
    fs::create_dir(s.path("dir")).unwrap();
    let mut c = s.anonymous();
    c.expect("RNFR a.txt", 350);
    c.expect("RNTO dir/b.txt", 250);
    assert!(!s.path("a.txt").exists());
    assert_eq!(fs::read(s.path("dir/b.txt")).unwrap(), b"A");
    c.expect("RNFR dir", 350);
    c.expect("RNTO dir2", 250);
    assert!(s.path("dir2/b.txt").is_file());
    c.expect("RNFR missing", 550);
    c.expect("RNTO x", 503);
}

#[test]
fn rnto_without_rnfr_is_503() {
    let s = Server::start(&["-a", "-w"]);
    let mut c = s.anonymous();
    c.expect("RNTO x", 503);
}

#[test]
fn dele_files_only() {
    let s = Server::start(&["-a", "-w"]);
    s.put("f", b"1");
    fs::create_dir(s.path("d")).unwrap();
    let mut c = s.anonymous();
    c.expect("DELE f", 250);
    assert!(!s.path("f").exists());
    c.expect("DELE f", 550);
    c.expect("DELE d", 550);
    assert!(s.path("d").is_dir());
}

#[test]
fn site_chmod() {
    let s = Server::start(&["-a", "-w"]);
    let p = s.put("f", b"1");
    let mut c = s.anonymous();
    c.expect("SITE CHMOD 644 f", 200);
    assert_eq!(mode_of(&p), 0o644);
    c.expect("site chmod 0600 f", 200);
    assert_eq!(mode_of(&p), 0o600);
    c.expect("SITE CHMOD 755 missing", 550);
    c.expect("SITE CHMOD 99z f", 501);
    c.expect("SITE CHMOD 644", 501);
    assert_eq!(mode_of(&p), 0o600);
}

#[test]
fn rest_takes_an_offset() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    c.expect("REST 0", 350);
    c.expect("REST 100", 350);
    c.expect("REST 4294967300", 350);
    c.expect("REST abc", 501);
    c.expect("REST -5", 501);
}

#[test]
fn stat_without_argument_is_211_multiline_status() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    let r = c.expect("STAT", 211);
    assert!(r.lines.len() >= 2, "multi-line: {:?}", r.lines);
    assert!(r.lines[0].starts_with("211-"), "{:?}", r.lines);
    assert!(r.lines.last().unwrap().starts_with("211 "), "{:?}", r.lines);
}

#[test]
fn stat_with_path_is_213_listing_over_control() {
    let s = Server::start(&["-a"]);
    s.put("dir/one.txt", b"1");
    s.put("dir/two.txt", b"22");
    let mut c = s.anonymous();
    let r = c.expect("STAT dir", 213);
    assert!(r.lines[0].starts_with("213-"), "{:?}", r.lines);
    assert!(r.lines.last().unwrap().starts_with("213 "), "{:?}", r.lines);
    let body = r.text();
    assert!(body.contains(" one.txt"), "{body}");
    assert!(body.contains(" two.txt"), "{body}");
    let line = r
        .lines
        .iter()
        .find(|l| l.ends_with(" two.txt"))
        .expect("two.txt line");
    assert!(line.trim_start().starts_with("-rw"), "{line:?}");
    c.expect("STAT missing", 550);
}

#[test]
fn epsv_variants_and_epsv_all() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    let r = c.expect("EPSV 1", 229);
    parse_229(&r.lines[0]);
    c.expect("EPSV 2", 522);
    c.expect("EPSV 3", 522);
    c.expect("EPSV ALL", 200);
    // RFC 2428 section 4: after EPSV ALL every other data-port command is refused (503, bad
    // sequence of commands).
    for refused in ["PASV", "PORT 127,0,0,1,200,10", "EPRT |1|127.0.0.1|51210|"] {
        let r = c.cmd(refused);
        assert_eq!(r.code, 503, "{refused} after EPSV ALL -> {:?}", r.lines);
    }
    // EPSV itself keeps working, and so do transfers through it.
    s.put("f", b"after epsv all");
    assert_eq!(c.retr(Mode::Epsv, "f"), b"after epsv all");
}

#[test]
fn port_and_eprt_syntax_errors() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    c.expect("PORT 1,2,3", 501);
    c.expect("PORT 127,0,0,1,300,1", 501);
    c.expect("PORT", 501);
    c.expect("EPRT |3|127.0.0.1|5000|", 522);
    c.expect("EPRT garbage", 501);
    c.expect("EPRT |1|127.0.0.1|notaport|", 501);
    c.expect("NOOP", 200);
}

#[test]
fn abor_with_no_transfer_is_225_or_226() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    let r = c.cmd("ABOR");
    assert!(r.code == 225 || r.code == 226, "{:?}", r.lines);
    c.expect("NOOP", 200);
}

#[test]
fn quit_is_answered_in_each_of_many_sessions_in_a_row() {
    let s = Server::start(&["-a"]);
    for i in 0..40 {
        let mut c = s.connect();
        c.expect("USER anonymous", 331);
        c.expect("PASS x", 230);
        c.expect("PWD", 257);
        c.send("QUIT");
        let r = c.try_reply();
        assert!(
            matches!(&r, Some(r) if r.code == 221),
            "session {i}: QUIT got {r:?}"
        );
        assert!(c.wait_closed(IO_TIMEOUT).is_ok(), "session {i} closed");
    }
}

#[test]
fn quit_replies_221_and_closes() {
    let s = Server::start(&["-a"]);
    let mut c = s.anonymous();
    c.expect("QUIT", 221);
    assert_eq!(c.wait_closed(IO_TIMEOUT).expect("closed"), b"");
}

#[test]
fn transfer_command_without_data_connection_setup_is_425_or_503() {
    let s = Server::start(&["-a"]);
    s.put("f", b"x");
    let mut c = s.anonymous();
    let r = c.cmd("RETR f");
    assert!(r.code == 425 || r.code == 503, "{:?}", r.lines);
    let r = c.cmd("LIST");
    assert!(r.code == 425 || r.code == 503, "{:?}", r.lines);
    c.expect("NOOP", 200);
}

/// RFC 959 and RFC 854: a 0xFF byte (Telnet IAC) in a reply goes out doubled, as the client
/// doubles it on the way in; on disk the name has it once.
#[test]
fn iac_in_a_name_goes_out_doubled_in_replies() {
    let s = Server::start(&["-a", "-w"]);
    let mut c = s.anonymous();
    c.send_line(b"MKD a\xff\xffb");
    assert_eq!(read_raw_reply(&mut c), b"257 \"/a\xff\xffb\" created.\r\n");
    assert!(s.path("").join(OsStr::from_bytes(b"a\xffb")).is_dir());
    c.send_line(b"CWD a\xff\xffb");
    assert_eq!(
        read_raw_reply(&mut c),
        b"250 Directory successfully changed.\r\n"
    );
    c.send_line(b"PWD");
    assert_eq!(
        read_raw_reply(&mut c),
        b"257 \"/a\xff\xffb\" is the current directory.\r\n"
    );
}

/// One single-line reply as the bytes that came (the Client's replies are lossy UTF-8).
fn read_raw_reply(c: &mut Client) -> Vec<u8> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match (&mut c.stream()).read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            other => panic!("reply cut short after {line:?}: {other:?}"),
        }
    }
    line
}

/// lftp and NcFTP send CLNT before USER: 200, and the session goes on to log in.
#[test]
fn clnt_runs_before_login() {
    let s = Server::start(&["-a"]);
    let mut c = s.connect();
    c.expect("CLNT lftp/4.9.2", 200);
    c.login_anonymous();
    c.expect("CLNT again", 200);
}
