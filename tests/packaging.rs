//! Packaging (issue 12): the man page against `--help` and groff, the systemd units against
//! `systemd-analyze verify`, the init scripts against `sh -n`, and `scripts/install` into a
//! temporary DESTDIR.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Installing strips a debug binary of some tens of MiB: more than the harness's 10 s.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The systemd units in scripts/, in the order scripts/install installs them.
const UNITS: [&str; 5] = [
    "leanftpd.service",
    "leanftpd.socket",
    "leanftpd-ftps.socket",
    "leanftpd-inetd.socket",
    "leanftpd-inetd@.service",
];

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A flag as a word starts it: `--syslog[=SOCKET]` -> `--syslog`, `-r,` -> `-r`.
fn flag_of(word: &str) -> Option<String> {
    let dashes = if word.starts_with("--") {
        2
    } else if word.starts_with('-') {
        1
    } else {
        return None;
    };
    let name: String = word[dashes..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let short = dashes == 1 && name.len() == 1;
    let long = dashes == 2 && !name.is_empty();
    (short || long).then(|| format!("{}{name}", &word[..dashes]))
}

/// Every flag `leanftpd --help` prints, long and short. Option lines are indented less than
/// their wrapped descriptions (which may start with a flag too).
fn help_flags() -> BTreeSet<String> {
    let out = run_bin(&["--help"], b"");
    assert_eq!(out.status.code(), Some(0), "--help: {}", out.stderr);
    let mut flags = BTreeSet::new();
    for line in out.stdout.lines() {
        let text = line.trim_start();
        if line.len() - text.len() >= 10 || !text.starts_with('-') {
            continue;
        }
        for word in text.split_whitespace() {
            match flag_of(word) {
                Some(flag) => flags.insert(flag),
                None => break,
            };
        }
    }
    assert!(
        flags.contains("--root"),
        "no flags parsed from {}",
        out.stdout
    );
    flags
}

/// The flags that head an entry (the line after `.TP`) in the man page's OPTIONS section.
fn man_option_flags() -> BTreeSet<String> {
    let page = read(&script("leanftpd.8"));
    let section = page
        .split("\n.SH OPTIONS\n")
        .nth(1)
        .expect("an OPTIONS section")
        .split("\n.SH ")
        .next()
        .unwrap();
    let lines: Vec<&str> = section.lines().collect();
    let mut flags = BTreeSet::new();
    for pair in lines.windows(2) {
        if pair[0] == ".TP" {
            let tag = pair[1].replace("\\-", "-");
            flags.extend(tag.split_whitespace().filter_map(flag_of));
        }
    }
    flags
}

/// The `--flags` an init file passes to leanftpd: in its non-comment lines.
fn flags_in(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split_whitespace())
        .map(|w| w.trim_matches('"'))
        .filter(|w| w.starts_with("--"))
        .filter_map(flag_of)
        .collect()
}

/// Runs `prog args`; asserts exit 0 and nothing on stderr, and returns stdout.
#[track_caller]
fn succeeds(prog: &str, args: &[&str], timeout: Duration) -> String {
    let out = run_cmd(prog, args, b"", timeout);
    assert_eq!(
        (out.status.code(), out.stderr.as_str()),
        (Some(0), ""),
        "{prog} {args:?}\nstdout: {}",
        out.stdout
    );
    out.stdout
}

/// The flags the binary knows: exactly what `--help` prints.
fn known_flags() -> BTreeSet<String> {
    help_flags()
}

#[test]
fn every_flag_of_help_has_an_entry_in_the_man_page_and_no_entry_is_unknown() {
    let help = help_flags();
    let man = man_option_flags();
    let missing: Vec<&String> = help.difference(&man).collect();
    assert_eq!(
        missing,
        Vec::<&String>::new(),
        "flags of --help the man page lacks"
    );
    let known = known_flags();
    let unknown: Vec<&String> = man.difference(&known).collect();
    assert_eq!(
        unknown,
        Vec::<&String>::new(),
        "man page entries leanftpd lacks"
    );
}

#[test]
fn the_man_page_renders_without_a_warning() {
    require("groff");
    require("man");
    let page = script("leanftpd.8");
    let page = page.to_str().unwrap();
    let groff = succeeds("groff", &["-man", "-ww", "-z", page], IO_TIMEOUT);
    assert_eq!(groff, "");
    let man = [
        "MANWIDTH=80",
        "man",
        "--warnings",
        "-E",
        "UTF-8",
        "-l",
        page,
    ];
    let text = succeeds("env", &man, IO_TIMEOUT);
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "USERS FILE",
        "FTPS",
        "SIGNALS",
        "FILES",
        "EXIT STATUS",
        "ENVIRONMENT",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(
            text.lines().any(|l| l == section),
            "no {section} section in\n{text}"
        );
    }
}

/// Runs scripts/install with `args`; asserts exit 0 and no stderr, and returns its stdout.
fn install(args: &[&str]) -> String {
    succeeds(script("install").to_str().unwrap(), args, INSTALL_TIMEOUT)
}

#[test]
fn systemd_analyze_verify_accepts_the_installed_units() {
    require("systemd-analyze");
    require("man");
    // Installed for real (no DESTDIR) under a temporary PREFIX, so that ExecStart names an
    // executable and Documentation=man:leanftpd(8) a page that man finds through MANPATH.
    let tmp = TempDir::new("pkg-verify");
    let prefix = tmp.join("usr");
    let prefix = prefix.to_str().unwrap();
    install(&[&format!("PREFIX={prefix}"), &format!("BIN={BIN}")]);
    let units: Vec<String> = UNITS
        .iter()
        .map(|u| format!("{prefix}/lib/systemd/system/{u}"))
        .collect();
    let manpath = format!("MANPATH={prefix}/share/man");
    let mut args = vec![manpath.as_str(), "systemd-analyze", "verify"];
    args.extend(units.iter().map(String::as_str));
    // Unknown keys and the like are warnings with status 0: any output is a failure.
    assert_eq!(succeeds("env", &args, INSTALL_TIMEOUT), "");
}

#[test]
fn the_init_scripts_parse_and_pass_only_flags_leanftpd_has() {
    require("busybox");
    for name in ["leanftpd.init", "install"] {
        let path = script(name);
        let path = path.to_str().unwrap();
        for (prog, args) in [
            ("sh", vec!["-n", path]),
            ("busybox", vec!["sh", "-n", path]),
        ] {
            let out = run_cmd(prog, &args, b"", IO_TIMEOUT);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{prog} {args:?}: {}",
                out.stderr
            );
            assert_eq!(out.stderr, "", "{prog} {args:?}");
        }
    }
    let known = known_flags();
    let services = UNITS.iter().filter(|u| u.ends_with(".service"));
    let files = ["leanftpd.init", "inittab.example", "inetd.conf.example"];
    for name in files.iter().chain(services) {
        let text = read(&script(name));
        let flags = flags_in(&text);
        assert!(
            flags.contains("--users"),
            "{name}: no leanftpd command line found"
        );
        let unknown: Vec<&String> = flags.difference(&known).collect();
        assert_eq!(
            unknown,
            Vec::<&String>::new(),
            "{name}: flags leanftpd lacks"
        );
    }
}

/// A path under an install root, its kind ('d', 'f') and its permission bits.
type Entry = (String, char, u32);

/// Every path under `root` (relative) with its kind and permission bits.
fn tree(root: &Path) -> Vec<Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<Entry>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let kind = if meta.is_dir() {
                'd'
            } else if meta.is_file() {
                'f'
            } else {
                '?'
            };
            out.push((rel, kind, meta.permissions().mode() & 0o7777));
            if meta.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// True when the ELF file has a symbol table (readelf lists a `.symtab` section).
fn has_symtab(path: &Path) -> bool {
    let out = run_cmd(
        "readelf",
        &["-S", "--wide", path.to_str().unwrap()],
        b"",
        IO_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(0), "readelf: {}", out.stderr);
    out.stdout.contains(" .symtab ")
}

#[test]
fn install_puts_exactly_the_binary_the_man_page_and_the_init_files_in_destdir() {
    require("readelf");
    assert!(
        has_symtab(Path::new(BIN)),
        "the test binary is already stripped"
    );
    let dirs = |paths: &[&str]| -> Vec<Entry> {
        paths.iter().map(|p| (p.to_string(), 'd', 0o755)).collect()
    };
    let common_dirs = [
        "usr",
        "usr/sbin",
        "usr/share",
        "usr/share/man",
        "usr/share/man/man8",
    ];
    let systemd = "usr/lib/systemd/system";
    let cases: [(&str, Vec<Entry>); 3] = [
        (
            "--init=systemd",
            [
                dirs(&common_dirs),
                dirs(&["usr/lib", "usr/lib/systemd", systemd]),
                UNITS
                    .iter()
                    .map(|u| (format!("{systemd}/{u}"), 'f', 0o644))
                    .collect(),
            ]
            .concat(),
        ),
        (
            "--init=openwrt",
            [
                dirs(&common_dirs),
                dirs(&["etc", "etc/init.d"]),
                vec![("etc/init.d/leanftpd".to_string(), 'f', 0o755)],
            ]
            .concat(),
        ),
        ("--init=none", dirs(&common_dirs)),
    ];
    for (init, mut want) in cases {
        let tmp = TempDir::new("pkg-install");
        let destdir = tmp.join("stage");
        let d = destdir.to_str().unwrap();
        let stdout = install(&[
            init,
            &format!("DESTDIR={d}"),
            "PREFIX=/usr",
            &format!("BIN={BIN}"),
        ]);

        want.push(("usr/sbin/leanftpd".to_string(), 'f', 0o755));
        want.push(("usr/share/man/man8/leanftpd.8".to_string(), 'f', 0o644));
        want.sort();
        assert_eq!(tree(&destdir), want, "{init}: the installed tree");

        // One line per file, in the order installed.
        let mut files: Vec<&str> = vec!["usr/sbin/leanftpd", "usr/share/man/man8/leanftpd.8"];
        let units: Vec<String> = UNITS.iter().map(|u| format!("{systemd}/{u}")).collect();
        match init {
            "--init=systemd" => files.extend(units.iter().map(String::as_str)),
            "--init=openwrt" => files.push("etc/init.d/leanftpd"),
            _ => {}
        }
        let lines: Vec<String> = files
            .iter()
            .map(|f| format!("installed {d}/{f}\n"))
            .collect();
        assert_eq!(stdout, lines.concat(), "{init}: what it printed");

        let bin = destdir.join("usr/sbin/leanftpd");
        assert!(
            !has_symtab(&bin),
            "{init}: the installed binary is not stripped"
        );
        let out = run_cmd(bin.to_str().unwrap(), &["--version"], b"", IO_TIMEOUT);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{init}: --version: {}",
            out.stderr
        );
        assert_eq!(
            out.stdout,
            format!("leanftpd {}\n", env!("CARGO_PKG_VERSION"))
        );

        assert_eq!(
            read(&destdir.join("usr/share/man/man8/leanftpd.8")),
            read(&script("leanftpd.8"))
        );
        // The init files name the installed binary, and are otherwise the ones in scripts/.
        match init {
            "--init=systemd" => {
                for unit in UNITS {
                    let source = read(&script(unit));
                    if unit.ends_with(".service") {
                        assert!(source.contains("\nExecStart=/usr/local/sbin/leanftpd --"));
                    }
                    assert_eq!(
                        read(&destdir.join(systemd).join(unit)),
                        source.replace("/usr/local/sbin/leanftpd", "/usr/sbin/leanftpd"),
                        "{unit}"
                    );
                }
            }
            "--init=openwrt" => {
                let source = read(&script("leanftpd.init"));
                let installed = read(&destdir.join("etc/init.d/leanftpd"));
                assert!(source.contains("\nPROG=/usr/sbin/leanftpd\n"));
                assert_eq!(installed, source, "PREFIX=/usr keeps PROG as it is");
            }
            _ => {}
        }
    }
}

#[test]
fn install_rewrites_the_binary_path_for_another_prefix_and_explains_itself() {
    let tmp = TempDir::new("pkg-prefix");
    let d = tmp.join("stage");
    let d = d.to_str().unwrap();
    for init in ["--init=systemd", "--init=openwrt"] {
        install(&[
            init,
            &format!("DESTDIR={d}"),
            "PREFIX=/opt/lean&ftp",
            &format!("BIN={BIN}"),
            "STRIP=true",
        ]);
    }
    let service = read(&Path::new(d).join("opt/lean&ftp/lib/systemd/system/leanftpd.service"));
    let exec: Vec<&str> = service
        .lines()
        .filter(|l| l.starts_with("ExecStart="))
        .collect();
    assert_eq!(exec.len(), 1, "{service}");
    assert!(
        exec[0].starts_with("ExecStart=/opt/lean&ftp/sbin/leanftpd --users "),
        "{}",
        exec[0]
    );
    let init = read(&Path::new(d).join("etc/init.d/leanftpd"));
    let prog: Vec<&str> = init.lines().filter(|l| l.starts_with("PROG=")).collect();
    assert_eq!(prog, ["PROG=/opt/lean&ftp/sbin/leanftpd"]);

    let out = run_cmd(
        script("install").to_str().unwrap(),
        &["--help"],
        b"",
        IO_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(0), "--help: {}", out.stderr);
    assert!(
        out.stdout
            .starts_with("Usage: scripts/install [--init=systemd|openwrt|none] [NAME=VALUE...]\n"),
        "{}",
        out.stdout
    );
    let out = run_cmd(
        script("install").to_str().unwrap(),
        &["--bogus"],
        b"",
        IO_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        out.stderr,
        "scripts/install: unknown argument '--bogus' (see --help)\n"
    );
}
