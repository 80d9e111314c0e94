//! Directory listings over the data connection in every mode: LIST (`ls -l` form), NLST (bare
//! names), MLSD and MLST facts; ls-style options ignored; big directories stream completely.

#[macro_use]
mod common;

use common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;

const OLD: u64 = 1_614_834_367; // 2021-03-04 05:06:07 UTC

/// Root: f.txt (5 bytes, 0644, old), "two words.txt" (recent), sub/ (0755) with inner.txt,
/// link -> f.txt.
fn tree(s: &Server) -> u64 {
    use std::os::unix::fs::PermissionsExt;
    let f = s.put("f.txt", b"12345");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
    set_mtime(&f, OLD);
    let recent = now_secs() - 3600;
    let r = s.put("two words.txt", b"");
    fs::set_permissions(&r, fs::Permissions::from_mode(0o600)).unwrap();
    set_mtime(&r, recent);
    s.put("sub/inner.txt", b"inner");
    fs::set_permissions(s.path("sub"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("f.txt", s.path("link")).unwrap();
    recent
}

fn fields(line: &str) -> Vec<&str> {
    let mut v = Vec::new();
    let mut rest = line;
    for _ in 0..8 {
        let t = rest.trim_start();
        let end = t.find(' ').unwrap_or(t.len());
        v.push(&t[..end]);
        rest = &t[end..];
    }
    // The name: after exactly one space following the date/time column.
    v.push(rest.strip_prefix(' ').unwrap_or(rest));
    v
}

#[track_caller]
fn check_list(lines: &[String], s: &Server, recent: u64) {
    let mut names: Vec<&str> = Vec::new();
    for l in lines {
        let f = fields(l);
        names.push(f[8]);
        match f[8] {
            "f.txt" => {
                let m = fs::metadata(s.path("f.txt")).unwrap();
                assert_eq!(
                    &f[..8],
                    &[
                        "-rw-r--r--",
                        "1",
                        &m.uid().to_string(),
                        &m.gid().to_string(),
                        "5",
                        "Mar",
                        "4",
                        "2021"
                    ],
                    "{l:?}"
                );
            }
            "two words.txt" => {
                let (_, mon, day) = civil_from_days((recent / 86400) as i64);
                let hm = format!("{:02}:{:02}", (recent % 86400) / 3600, (recent % 3600) / 60);
                assert_eq!(f[0], "-rw-------", "{l:?}");
                assert_eq!(f[4], "0", "{l:?}");
                assert_eq!(
                    &f[5..8],
                    &[MONTHS[mon as usize - 1], &day.to_string(), &hm],
                    "recent files show the UTC time: {l:?}"
                );
            }
            "sub" => {
                assert_eq!(f[0], "drwxr-xr-x", "{l:?}");
            }
            "link -> f.txt" => {
                assert_eq!(f[0], "lrwxrwxrwx", "{l:?}");
            }
            other => panic!("unexpected entry {other:?} in {lines:?}"),
        }
    }
    names.sort();
    assert_eq!(
        names,
        ["f.txt", "link -> f.txt", "sub", "two words.txt"],
        "{lines:?}"
    );
}

in_every_mode!(list_is_ls_l_with_numeric_owner_and_utc_dates, |mode| {
    let s = Server::start(&["-a"]);
    let recent = tree(&s);
    let mut c = s.anonymous();
    let lines = c.lines(mode, "LIST");
    check_list(&lines, &s, recent);
    // ls options are ignored.
    for opt in ["LIST -l", "LIST -a", "LIST -la", "LIST -al", "LIST -aL"] {
        let mut again = c.lines(mode, opt);
        let mut base = lines.clone();
        again.sort();
        base.sort();
        assert_eq!(again, base, "{opt}");
    }
    // A directory argument lists that directory; a file argument lists the file.
    let sub = c.lines(mode, "LIST sub");
    assert_eq!(sub.len(), 1, "{sub:?}");
    assert!(
        sub[0].starts_with("-") && sub[0].ends_with(" inner.txt"),
        "{sub:?}"
    );
    let sub2 = c.lines(mode, "LIST -la sub");
    assert_eq!(sub2, sub);
    let one = c.lines(mode, "LIST f.txt");
    assert_eq!(one.len(), 1, "{one:?}");
    assert!(
        one[0].ends_with(" f.txt") && one[0].starts_with("-rw-r--r--"),
        "{one:?}"
    );
    c.expect("CWD sub", 250);
    let here = c.lines(mode, "LIST");
    assert_eq!(here, sub);
});

in_every_mode!(nlst_gives_bare_names, |mode| {
    let s = Server::start(&["-a"]);
    tree(&s);
    let mut c = s.anonymous();
    let want = ["f.txt", "link", "sub", "two words.txt"];
    assert_eq!(c.nlst(mode, "NLST"), want);
    assert_eq!(c.nlst(mode, "NLST -1"), want);
    assert_eq!(c.nlst(mode, "NLST -la"), want);
    let sub = c.nlst(mode, "NLST sub");
    assert_eq!(sub.len(), 1, "{sub:?}");
    assert!(
        sub[0] == "inner.txt" || sub[0] == "sub/inner.txt",
        "{sub:?}"
    );
});

in_every_mode!(mlsd_gives_facts_for_each_entry, |mode| {
    let s = Server::start(&["-a"]);
    tree(&s);
    let mut c = s.anonymous();
    let lines = c.lines(mode, "MLSD");
    let mut names = Vec::new();
    for l in &lines {
        let (facts, name) = l.split_once(' ').expect("facts SP name");
        assert!(facts.ends_with(';'), "{l:?}");
        let kv: Vec<(&str, &str)> = facts
            .trim_end_matches(';')
            .split(';')
            .map(|f| f.split_once('=').expect("fact=value"))
            .collect();
        let keys: Vec<String> = kv.iter().map(|(k, _)| k.to_lowercase()).collect();
        let ty = kv
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("type"))
            .unwrap()
            .1;
        if ty == "cdir" || ty == "pdir" {
            continue;
        }
        names.push(name.to_string());
        if ty == "file" {
            assert_eq!(
                keys,
                ["type", "size", "modify", "perm", "unix.mode"],
                "{l:?}"
            );
        } else {
            for k in ["type", "modify", "perm", "unix.mode"] {
                assert!(keys.iter().any(|x| x == k), "{k} missing: {l:?}");
            }
        }
        let get = |k: &str| {
            kv.iter()
                .find(|(kk, _)| kk.eq_ignore_ascii_case(k))
                .unwrap()
                .1
        };
        match name {
            "f.txt" => {
                assert_eq!(get("type"), "file");
                assert_eq!(get("size"), "5");
                assert_eq!(get("modify"), "20210304050607");
                assert_eq!(get("unix.mode"), "0644");
                let perm = get("perm");
                assert!(perm.contains('r'), "{l:?}");
                assert!(
                    !perm.contains('w')
                        && !perm.contains('d')
                        && !perm.contains('a')
                        && !perm.contains('f'),
                    "read-only anonymous may not write: {l:?}"
                );
            }
            "sub" => {
                assert_eq!(get("type"), "dir");
                assert_eq!(get("unix.mode"), "0755");
                let perm = get("perm");
                assert!(perm.contains('e') && perm.contains('l'), "{l:?}");
                assert!(!perm.contains('c') && !perm.contains('m'), "{l:?}");
            }
            _ => {}
        }
    }
    names.sort();
    // The symlink is reported as what it points to (or as a link): its name is there.
    assert_eq!(
        names,
        ["f.txt", "link", "sub", "two words.txt"],
        "{lines:?}"
    );
    let sub = c.lines(mode, "MLSD sub");
    let files: Vec<&String> = sub.iter().filter(|l| l.contains("type=file;")).collect();
    assert_eq!(files.len(), 1, "{sub:?}");
    assert!(
        files[0].starts_with("type=file;size=5;") && files[0].ends_with("; inner.txt"),
        "{sub:?}"
    );
});

#[test]
fn mlsd_perm_shows_writes_when_writable() {
    let s = Server::start(&["-a", "-w"]);
    tree(&s);
    let mut c = s.anonymous();
    let lines = c.lines(Mode::Pasv, "MLSD");
    let f = lines.iter().find(|l| l.ends_with("; f.txt")).unwrap();
    let perm = f.split(';').find(|x| x.starts_with("perm=")).unwrap();
    assert!(perm.contains('w') && perm.contains('r'), "{f:?}");
}

#[test]
fn mlst_gives_one_facts_line_on_the_control_connection() {
    let s = Server::start(&["-a"]);
    tree(&s);
    let mut c = s.anonymous();
    let r = c.expect("MLST f.txt", 250);
    assert!(r.lines[0].starts_with("250-"), "{:?}", r.lines);
    assert_eq!(r.lines.len(), 3, "{:?}", r.lines);
    assert!(r.lines[2].starts_with("250 "), "{:?}", r.lines);
    let l = &r.lines[1];
    assert!(
        l.starts_with(" type=file;size=5;modify=20210304050607;perm="),
        "{l:?}"
    );
    assert!(l.contains(";unix.mode=0644; "), "{l:?}");
    assert!(l.ends_with("f.txt"), "{l:?}");
    let d = c.expect("MLST sub", 250);
    assert!(d.lines[1].starts_with(" type=dir;"), "{:?}", d.lines);
    let here = c.expect("MLST", 250);
    assert!(
        here.lines[1].starts_with(" type=cdir;") || here.lines[1].starts_with(" type=dir;"),
        "{:?}",
        here.lines
    );
    c.expect("MLST missing", 550);
}

#[test]
fn list_r_is_not_recursive() {
    let s = Server::start(&["-a"]);
    tree(&s);
    let mut c = s.anonymous();
    let lines = c.lines(Mode::Pasv, "LIST -R");
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("inner.txt")), "{lines:?}");
}

#[test]
fn empty_directory_lists_nothing() {
    let s = Server::start(&["-a"]);
    fs::create_dir(s.path("empty")).unwrap();
    let mut c = s.anonymous();
    assert!(c.lines(Mode::Pasv, "LIST empty").is_empty());
    assert!(c.nlst(Mode::Pasv, "NLST empty").is_empty());
    let m = c.lines(Mode::Pasv, "MLSD empty");
    assert!(
        m.iter()
            .all(|l| l.contains("type=cdir;") || l.contains("type=pdir;")),
        "{m:?}"
    );
}

#[test]
fn big_directory_streams_every_entry() {
    let s = Server::start(&["-a"]);
    fs::create_dir(s.path("many")).unwrap();
    let n = 5000;
    for i in 0..n {
        fs::write(
            s.path(&format!("many/file-{i:05}-with-a-rather-long-name.dat")),
            b"",
        )
        .unwrap();
    }
    let mut c = s.anonymous();
    let names = c.nlst(Mode::Pasv, "NLST many");
    assert_eq!(names.len(), n);
    let list = c.lines(Mode::Epsv, "LIST many");
    assert_eq!(list.len(), n);
    let mlsd: Vec<String> = c
        .lines(Mode::Port, "MLSD many")
        .into_iter()
        .filter(|l| l.contains("type=file;"))
        .collect();
    assert_eq!(mlsd.len(), n);
    for i in [0, 1234, n - 1] {
        let name = format!("file-{i:05}-with-a-rather-long-name.dat");
        assert!(names.iter().any(|x| x.ends_with(&name)), "{name}");
    }
}

#[test]
fn listings_are_the_same_in_type_a_and_type_i() {
    let s = Server::start(&["-a"]);
    tree(&s);
    let mut c = s.anonymous();
    c.expect("TYPE I", 200);
    let a = c.lines(Mode::Pasv, "NLST");
    c.expect("TYPE A", 200);
    let b = c.lines(Mode::Pasv, "NLST");
    assert_eq!(a, b);
}

#[test]
fn list_dates_follow_the_six_month_rule() {
    let s = Server::start(&["-a"]);
    let now = now_secs();
    let five = now - 150 * 86400;
    let seven = now - 210 * 86400;
    set_mtime(&s.put("five-months.txt", b""), five);
    set_mtime(&s.put("seven-months.txt", b""), seven);
    let mut c = s.anonymous();
    let lines = c.lines(Mode::Pasv, "LIST");
    let date = |name: &str| -> Vec<String> {
        let l = lines
            .iter()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("{name} in {lines:?}"));
        fields(l)[5..8].iter().map(|x| x.to_string()).collect()
    };
    let (_, m5, d5) = civil_from_days((five / 86400) as i64);
    let hm = format!("{:02}:{:02}", (five % 86400) / 3600, (five % 3600) / 60);
    assert_eq!(
        date("five-months.txt"),
        [MONTHS[m5 as usize - 1].to_string(), d5.to_string(), hm]
    );
    let (y7, m7, d7) = civil_from_days((seven / 86400) as i64);
    assert_eq!(
        date("seven-months.txt"),
        [
            MONTHS[m7 as usize - 1].to_string(),
            d7.to_string(),
            y7.to_string()
        ]
    );
}
