//! Listing formats: LIST (`ls -l` lines), NLST (bare names), MLSD/MLST facts and the `OPTS MLST`
//! fact selection, and the ls options LIST and NLST ignore. Each function appends one entry to a
//! buffer, so a listing is produced entry by entry as the data socket drains.
//!
//! Must not touch: the clock (`now` is passed in), the file system (a `Stat` is handed in: fs/
//! reads it), the RFC 3659 time format itself (`time` owns it; `push_timeval` is re-exported
//! here for the callers that knew it as `listing::push_timeval`). Read RFC 959 4.1.3 (LIST,
//! NLST), RFC 3659 section 7 (MLST, MLSD, facts, OPTS MLST), GNU ls's `-l` format.

use super::time::{civil_from_days, push_two_digits, split_days, SECS_PER_DAY};
use crate::fs::{FileKind, Stat};

pub use super::time::push_timeval;

/// The MLST facts a client selected with `OPTS MLST` (all on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub kind: bool,
    pub size: bool,
    pub modify: bool,
    pub perm: bool,
    pub unix_mode: bool,
}

impl Default for Facts {
    fn default() -> Facts {
        Facts {
            kind: true,
            size: true,
            modify: true,
            perm: true,
            unix_mode: true,
        }
    }
}

impl Facts {
    /// The facts in the order every listing, FEAT and OPTS reply names them.
    fn table(&self) -> [(&'static str, bool); 5] {
        [
            ("type", self.kind),
            ("size", self.size),
            ("modify", self.modify),
            ("perm", self.perm),
            ("unix.mode", self.unix_mode),
        ]
    }

    /// Parses the argument of `OPTS MLST` (`type;size;` ...; unknown names ignored, empty = none).
    pub fn parse(arg: &[u8]) -> Facts {
        let mut facts = Facts {
            kind: false,
            size: false,
            modify: false,
            perm: false,
            unix_mode: false,
        };
        // RFC 3659 7.9: fact names are case-insensitive; names the server does not know are
        // dropped silently, and the reply says which facts are now in effect.
        for name in arg.split(|&b| b == b';').map(|n| n.trim_ascii()) {
            let is = |known: &str| name.eq_ignore_ascii_case(known.as_bytes());
            if is("type") {
                facts.kind = true;
            } else if is("size") {
                facts.size = true;
            } else if is("modify") {
                facts.modify = true;
            } else if is("perm") {
                facts.perm = true;
            } else if is("unix.mode") {
                facts.unix_mode = true;
            }
        }
        facts
    }

    /// The FEAT line: ` MLST type*;size*;modify*;perm*;unix.mode*;` with `*` on the selected ones.
    pub fn feat_line(&self) -> String {
        let mut line = String::from(" MLST ");
        for (name, on) in self.table() {
            line.push_str(name);
            if on {
                line.push('*');
            }
            line.push(';');
        }
        line
    }

    /// The reply to `OPTS MLST`: `MLST OPTS type;size;...;` naming the selected facts.
    pub fn opts_reply(&self) -> String {
        // RFC 3659 7.9: with no fact selected the reply is `MLST OPTS` without a trailing space.
        let mut line = String::from("MLST OPTS");
        let mut first = true;
        for (name, _) in self.table().into_iter().filter(|&(_, on)| on) {
            if first {
                line.push(' ');
                first = false;
            }
            line.push_str(name);
            line.push(';');
        }
        line
    }
}

/// Removes leading ls-style options (`-a`, `-l`, `-la`, `-1`, `-R`, ...) from a LIST or NLST
/// argument and returns the path that remains (possibly empty). `-R` is ignored like the rest:
/// listings are never recursive.
pub fn strip_ls_options(arg: &[u8]) -> &[u8] {
    // Clients (and people typing `ls -la` into command-line clients) send ls flags that
    // RFC 959 knows nothing about. Only a token shaped exactly like a flag group (`-` then one or
    // more ASCII letters or digits, ended by a space or the end) is taken as options, so a path
    // such as `-`, `-foo.txt` or `-a/b` survives. `--` ends the options, as it does for ls, so
    // `-- -la` names the file `-la`.
    let mut rest = arg;
    loop {
        let token_len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let token = &rest[..token_len];
        let is_flags = token.len() >= 2
            && token[0] == b'-'
            && token[1..].iter().all(u8::is_ascii_alphanumeric);
        let is_end = token == b"--";
        if !is_flags && !is_end {
            return rest;
        }
        rest = skip_spaces(&rest[token_len..]);
        if is_end {
            return rest;
        }
    }
}

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ').count();
    &s[n..]
}

/// Dates up to this old (exclusive) show `HH:MM`, older ones the year: GNU ls's six months.
const RECENT_PAST_SECS: i64 = 183 * SECS_PER_DAY;
/// Dates at most this far in the future still show `HH:MM` (clock skew between machines).
const RECENT_FUTURE_SECS: i64 = 3600;

/// Column widths of the `ls -l` line, the ones vsftpd prints (`ls.c`: link count padded to 4,
/// owner and group to 8, size to 8). Wider values push the line out rather than being cut,
/// and every client we care about splits the line on runs of spaces, so alignment is cosmetic.
const NLINK_WIDTH: usize = 4;
const ID_WIDTH: usize = 8;
const SIZE_WIDTH: usize = 8;

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Appends one `ls -l` line:
/// `-rw-r--r--    1 1000     1000         4096 Nov 24 12:01 name\r\n`; dates older than six
/// months (or in the future by more than an hour) show the year instead of the time;
/// symlinks end with ` -> target`. Owner and group are numeric. Times are UTC.
pub fn push_list_line(
    out: &mut Vec<u8>,
    name: &[u8],
    stat: &Stat,
    link_target: Option<&[u8]>,
    now: i64,
) {
    // Other (fifo, socket, device: fs/ does not say which) shows as `-`, not ls's letters or
    // `?`: curl's wildcard parser and others reject a line with an unknown type letter, and an
    // unparsable line can fail a whole listing; the server refuses to RETR such a file anyway.
    out.push(match stat.kind {
        FileKind::Dir => b'd',
        FileKind::Symlink => b'l',
        FileKind::File | FileKind::Other => b'-',
    });
    push_mode_letters(out, stat.mode);

    let mut buf = [0u8; 20];
    out.push(b' ');
    push_padded(out, fmt_u64(&mut buf, stat.nlink), NLINK_WIDTH, true);
    out.push(b' ');
    push_padded(out, fmt_u64(&mut buf, stat.uid.into()), ID_WIDTH, false);
    out.push(b' ');
    push_padded(out, fmt_u64(&mut buf, stat.gid.into()), ID_WIDTH, false);
    out.push(b' ');
    push_padded(out, fmt_u64(&mut buf, stat.size), SIZE_WIDTH, true);

    // `Mon DD HH:MM` or `Mon DD  YYYY`: GNU ls's `%b %e %H:%M` and `%b %e  %Y`, so both forms are
    // 12 columns wide for 4-digit years and clients recognise them by shape.
    let (date, secs_of_day) = split_days(stat.mtime);
    let (year, month, day) = civil_from_days(date);
    out.push(b' ');
    out.extend_from_slice(MONTHS[month as usize - 1]);
    out.push(b' ');
    push_padded(out, fmt_u64(&mut buf, day.into()), 2, true);
    out.push(b' ');
    let age = now.saturating_sub(stat.mtime);
    if (-RECENT_FUTURE_SECS..RECENT_PAST_SECS).contains(&age) {
        push_two_digits(out, secs_of_day / 3600);
        out.push(b':');
        push_two_digits(out, secs_of_day / 60 % 60);
    } else {
        let digits = fmt_u64(&mut buf, year.unsigned_abs());
        let sign = usize::from(year < 0);
        // One space, then the year right-aligned in 5 columns (`  2024`), like `%e  %Y`.
        out.resize(out.len() + 5usize.saturating_sub(digits.len() + sign), b' ');
        if year < 0 {
            out.push(b'-');
        }
        out.extend_from_slice(digits);
    }

    out.push(b' ');
    out.extend_from_slice(name);
    if let (FileKind::Symlink, Some(target)) = (stat.kind, link_target) {
        out.extend_from_slice(b" -> ");
        out.extend_from_slice(target);
    }
    out.extend_from_slice(b"\r\n");
}

/// The nine `rwx` letters with setuid/setgid/sticky folded into the execute positions as ls
/// shows them: lower case when the execute bit is also set, upper case when it is not.
fn push_mode_letters(out: &mut Vec<u8>, mode: u32) {
    // (read, write, execute, special bit, special letter) for user, group, other.
    let classes = [
        (0o400, 0o200, 0o100, 0o4000, b's'),
        (0o40, 0o20, 0o10, 0o2000, b's'),
        (0o4, 0o2, 0o1, 0o1000, b't'),
    ];
    for (r, w, x, special, letter) in classes {
        out.push(if mode & r != 0 { b'r' } else { b'-' });
        out.push(if mode & w != 0 { b'w' } else { b'-' });
        out.push(match (mode & x != 0, mode & special != 0) {
            (true, true) => letter,
            (false, true) => letter.to_ascii_uppercase(),
            (true, false) => b'x',
            (false, false) => b'-',
        });
    }
}

/// Appends `name\r\n` (NLST).
pub fn push_nlst_line(out: &mut Vec<u8>, name: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b"\r\n");
}

/// Appends `fact=value;...; name\r\n` for MLSD (the name is the entry name) and, with a leading
/// space added by the caller, for MLST (the name is the path asked for). Facts: type
/// (file/dir/cdir/pdir, os.unix=symlink for symlinks... use `file`/`dir` of the target when
/// following), size, modify (YYYYMMDDHHMMSS UTC), perm (RFC 3659 7.5.5: files `r` plus `adfw` when
/// writable; dirs `el` plus `cdfmp` when writable), unix.mode (octal, e.g. 0644).
pub fn push_facts_line(out: &mut Vec<u8>, name: &[u8], stat: &Stat, facts: Facts, writable: bool) {
    if facts.kind {
        // Symlinks are `OS.unix=symlink`, the form RFC 3659's grammar allows (erratum 1500;
        // ProFTPD's default, pure-ftpd's when the target cannot be shown). The
        // `OS.unix=slink:target` form of the RFC's example would let FileZilla show the target,
        // but we are not given it here and a target holding `;` or CR/LF would break the line.
        // Parsers that know the erratum (FluentFTP, Go's jlaffaye/ftp, ...) take it as a link;
        // the rest see an unknown type, Python's ftplib just hands the string over, and RETR
        // follows the link anyway. Other inodes use the RFC's `OS.unix=` escape with a generic
        // name because fs/ does not tell which kind they are.
        out.extend_from_slice(match stat.kind {
            FileKind::File => b"type=file;".as_slice(),
            FileKind::Dir => b"type=dir;",
            FileKind::Symlink => b"type=OS.unix=symlink;",
            FileKind::Other => b"type=OS.unix=special;",
        });
    }
    // Size only for regular files: a directory's st_size is a file system detail that clients
    // would show as a byte count (pure-ftpd sends a separate `sizd` fact for it), and a
    // symlink's is the length of its target path, not of anything RETR would send.
    if facts.size && stat.kind == FileKind::File {
        out.extend_from_slice(b"size=");
        out.extend_from_slice(fmt_u64(&mut [0u8; 20], stat.size));
        out.push(b';');
    }
    if facts.modify {
        out.extend_from_slice(b"modify=");
        push_timeval(out, stat.mtime);
        out.push(b';');
    }
    if facts.perm {
        // RFC 3659 7.5.5 letters. Directories: e (enter), l (list), and when writable c (create
        // files), d (delete), f (rename), m (make dirs), p (purge contents). Files and symlinks:
        // r (retrieve), and when writable a (append), d, f, w (store). Special files cannot be
        // retrieved, only deleted or renamed.
        out.extend_from_slice(b"perm=");
        out.extend_from_slice(match (stat.kind, writable) {
            (FileKind::Dir, false) => b"el".as_slice(),
            (FileKind::Dir, true) => b"elcdfmp",
            (FileKind::Other, false) => b"",
            (FileKind::Other, true) => b"df",
            (_, false) => b"r",
            (_, true) => b"radfw",
        });
        out.push(b';');
    }
    if facts.unix_mode {
        // Octal with a leading 0 and at least three permission digits: 0644, 0000, 04755.
        out.extend_from_slice(b"unix.mode=0");
        let mode = stat.mode & 0o7777;
        let mut digits = [0u8; 4];
        let mut n = 0;
        for shift in [9, 6, 3, 0] {
            let digit = (mode >> shift) & 7;
            if n > 0 || digit != 0 || shift < 9 {
                digits[n] = b'0' + digit as u8;
                n += 1;
            }
        }
        out.extend_from_slice(&digits[..n]);
        out.push(b';');
    }
    out.push(b' ');
    out.extend_from_slice(name);
    out.extend_from_slice(b"\r\n");
}

/// Writes `n` in decimal into the end of `buf` and returns the digits: no allocation.
fn fmt_u64(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[start..];
        }
    }
}

/// Appends `s` padded with spaces to `width` (right-aligned or left-aligned); never truncates.
fn push_padded(out: &mut Vec<u8>, s: &[u8], width: usize, right: bool) {
    let pad = width.saturating_sub(s.len());
    if right {
        out.resize(out.len() + pad, b' ');
    }
    out.extend_from_slice(s);
    if !right {
        out.resize(out.len() + pad, b' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tue 2026-11-24 12:01:02 UTC, the "now" of every list line below.
    const NOW: i64 = 1_795_521_662;

    fn stat(kind: FileKind, mode: u32, nlink: u64, size: u64, mtime: i64) -> Stat {
        Stat {
            kind,
            mode,
            nlink,
            uid: 1000,
            gid: 1000,
            size,
            mtime,
        }
    }

    fn list(name: &str, stat: &Stat, target: Option<&str>, now: i64) -> String {
        let mut out = Vec::new();
        push_list_line(
            &mut out,
            name.as_bytes(),
            stat,
            target.map(str::as_bytes),
            now,
        );
        String::from_utf8(out).unwrap()
    }

    fn facts(name: &str, stat: &Stat, facts: Facts, writable: bool) -> String {
        let mut out = Vec::new();
        push_facts_line(&mut out, name.as_bytes(), stat, facts, writable);
        String::from_utf8(out).unwrap()
    }

    // The expected lines were checked against GNU ls 9.1 on files made with chmod/touch -d:
    // `TZ=UTC ls -ln --time-style=$'+%b %e  %Y\n%b %e %H:%M'` prints the same permission
    // letters and date columns (`-rwSr-S---`, `drwxrwx--T`, `Feb 29  2000`, `Dec 31  1969`,
    // `Nov  4 09:05`). GNU ls sizes its number columns to the widest entry of the listing, so
    // the padding between columns is vsftpd's fixed widths instead (links 4, ids 8, size 8).

    #[test]
    fn list_file_recent_matches_the_documented_example() {
        let s = stat(FileKind::File, 0o644, 1, 4096, NOW - 2);
        assert_eq!(
            list("name", &s, None, NOW),
            "-rw-r--r--    1 1000     1000         4096 Nov 24 12:01 name\r\n"
        );
    }

    #[test]
    fn list_dir_from_1970_shows_the_year() {
        let s = Stat {
            kind: FileKind::Dir,
            mode: 0o755,
            nlink: 2,
            uid: 0,
            gid: 0,
            size: 4096,
            mtime: 0,
        };
        assert_eq!(
            list("pub", &s, None, NOW),
            "drwxr-xr-x    2 0        0            4096 Jan  1  1970 pub\r\n"
        );
    }

    #[test]
    fn list_symlink_shows_its_target_only_when_known() {
        let s = stat(FileKind::Symlink, 0o777, 1, 5, NOW);
        assert_eq!(
            list("latest", &s, Some("a.txt"), NOW),
            "lrwxrwxrwx    1 1000     1000            5 Nov 24 12:01 latest -> a.txt\r\n"
        );
        assert_eq!(
            list("latest", &s, None, NOW),
            "lrwxrwxrwx    1 1000     1000            5 Nov 24 12:01 latest\r\n"
        );
        // A target handed in for something that is not a symlink is not shown.
        let f = stat(FileKind::File, 0o644, 1, 5, NOW);
        assert_eq!(
            list("a", &f, Some("b"), NOW),
            "-rw-r--r--    1 1000     1000            5 Nov 24 12:01 a\r\n"
        );
    }

    #[test]
    fn list_special_bits_fold_into_execute_letters_like_ls() {
        let letters =
            |kind, mode| list("x", &stat(kind, mode, 1, 0, NOW), None, NOW)[..10].to_string();
        assert_eq!(letters(FileKind::File, 0o4755), "-rwsr-xr-x"); // setuid + x: s
        assert_eq!(letters(FileKind::File, 0o6640), "-rwSr-S---"); // setuid/setgid without x: S
        assert_eq!(letters(FileKind::File, 0o2755), "-rwxr-sr-x");
        assert_eq!(letters(FileKind::Dir, 0o1777), "drwxrwxrwt"); // /tmp
        assert_eq!(letters(FileKind::Dir, 0o1770), "drwxrwx--T"); // sticky without o+x: T
        assert_eq!(letters(FileKind::File, 0o7777), "-rwsrwsrwt");
        assert_eq!(letters(FileKind::File, 0), "----------");
        // Bits above 0o7777 (a file type someone left in) change nothing.
        assert_eq!(letters(FileKind::File, 0o100644), "-rw-r--r--");
        // Special files show as plain files: see push_list_line.
        assert_eq!(letters(FileKind::Other, 0o600), "-rw-------");
    }

    #[test]
    fn list_day_of_month_is_space_padded() {
        // 2026-11-04 09:05:00, twenty days old: `%e` pads with a space, not a zero.
        let s = stat(FileKind::File, 0o644, 1, 0, 1_793_783_100);
        assert_eq!(
            list("n", &s, None, NOW),
            "-rw-r--r--    1 1000     1000            0 Nov  4 09:05 n\r\n"
        );
    }

    #[test]
    fn list_six_month_boundary() {
        let date = |mtime| {
            list("x", &stat(FileKind::File, 0o644, 1, 0, mtime), None, NOW)[43..55].to_string()
        };
        // Exactly 183 days old (2026-05-25 12:01:02) is old, as in GNU ls (`six_months_ago < t`);
        // one second younger is recent.
        assert_eq!(date(NOW - 183 * 86_400), "May 25  2026");
        assert_eq!(date(NOW - 183 * 86_400 + 1), "May 25 12:01");
        // Up to one hour ahead (clock skew) still shows the time; more shows the year.
        assert_eq!(date(NOW + 3600), "Nov 24 13:01");
        assert_eq!(date(NOW + 3601), "Nov 24  2026");
        assert_eq!(date(NOW + 365 * 86_400), "Nov 24  2027");
        // 2000-02-29 and 2024-02-29 12:01, leap days in old entries.
        assert_eq!(date(951_782_400), "Feb 29  2000");
        assert_eq!(date(1_709_208_060), "Feb 29  2024");
    }

    #[test]
    fn list_negative_mtime_is_before_1970() {
        let date = |mtime| {
            list("x", &stat(FileKind::File, 0o644, 1, 0, mtime), None, NOW)[43..55].to_string()
        };
        assert_eq!(date(-1), "Dec 31  1969");
        assert_eq!(date(-86_401), "Dec 30  1969");
        // 1900 is not a leap year: 1900-03-01 follows 1900-02-28.
        assert_eq!(date(-2_203_891_200), "Mar  1  1900");
        assert_eq!(date(-2_203_891_201), "Feb 28  1900");
    }

    #[test]
    fn list_wide_values_widen_their_column_instead_of_being_cut() {
        let s = Stat {
            kind: FileKind::File,
            mode: 0o644,
            nlink: 12_345,
            uid: u32::MAX,
            gid: 7,
            size: u64::MAX,
            mtime: NOW,
        };
        assert_eq!(
            list("big", &s, None, NOW),
            "-rw-r--r-- 12345 4294967295 7        18446744073709551615 Nov 24 12:01 big\r\n"
        );
    }

    #[test]
    fn list_extreme_times_do_not_panic() {
        // i64::MIN and i64::MAX seconds are years -292277022657 and 292277026596 (the values
        // every 64-bit time_t implementation agrees on); `now` at either end must not overflow.
        let old = stat(FileKind::File, 0o644, 1, 0, i64::MIN);
        assert_eq!(
            list("x", &old, None, NOW),
            "-rw-r--r--    1 1000     1000            0 Jan 27 -292277022657 x\r\n"
        );
        let future = stat(FileKind::File, 0o644, 1, 0, i64::MAX);
        assert_eq!(
            list("x", &future, None, NOW),
            "-rw-r--r--    1 1000     1000            0 Dec  4 292277026596 x\r\n"
        );
        for now in [i64::MIN, -1, 0, i64::MAX] {
            for mtime in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
                let line = list(
                    "x",
                    &stat(FileKind::Dir, u32::MAX, u64::MAX, u64::MAX, mtime),
                    None,
                    now,
                );
                assert!(line.ends_with(" x\r\n"));
            }
        }
    }

    #[test]
    fn nlst_line_is_the_name() {
        let mut out = Vec::new();
        push_nlst_line(&mut out, b"a b.txt");
        assert_eq!(out, b"a b.txt\r\n");
    }

    #[test]
    fn facts_line_with_all_facts() {
        let file = stat(FileKind::File, 0o644, 1, 123, NOW);
        let all = Facts::default();
        assert_eq!(
            facts("a.txt", &file, all, false),
            "type=file;size=123;modify=20261124120102;perm=r;unix.mode=0644; a.txt\r\n"
        );
        assert_eq!(
            facts("a.txt", &file, all, true),
            "type=file;size=123;modify=20261124120102;perm=radfw;unix.mode=0644; a.txt\r\n"
        );
        // Directories have no size fact.
        let dir = stat(FileKind::Dir, 0o755, 2, 4096, 0);
        assert_eq!(
            facts("pub", &dir, all, false),
            "type=dir;modify=19700101000000;perm=el;unix.mode=0755; pub\r\n"
        );
        assert_eq!(
            facts("pub", &dir, all, true),
            "type=dir;modify=19700101000000;perm=elcdfmp;unix.mode=0755; pub\r\n"
        );
        let link = stat(FileKind::Symlink, 0o777, 1, 5, NOW);
        assert_eq!(
            facts("latest", &link, all, false),
            "type=OS.unix=symlink;modify=20261124120102;perm=r;unix.mode=0777; latest\r\n"
        );
        let fifo = stat(FileKind::Other, 0o600, 1, 0, NOW);
        assert_eq!(
            facts("fifo", &fifo, all, false),
            "type=OS.unix=special;modify=20261124120102;perm=;unix.mode=0600; fifo\r\n"
        );
        assert_eq!(
            facts("fifo", &fifo, all, true),
            "type=OS.unix=special;modify=20261124120102;perm=df;unix.mode=0600; fifo\r\n"
        );
    }

    #[test]
    fn facts_line_with_subsets() {
        let file = stat(FileKind::File, 0o4755, 1, u64::MAX, -1);
        assert_eq!(
            facts("a", &file, Facts::parse(b"type;size;"), false),
            "type=file;size=18446744073709551615; a\r\n"
        );
        // Order is always the canonical one, whatever order OPTS named them in.
        assert_eq!(
            facts("a", &file, Facts::parse(b"unix.mode;modify;"), false),
            "modify=19691231235959;unix.mode=04755; a\r\n"
        );
        assert_eq!(
            facts("a", &file, Facts::parse(b"perm;"), true),
            "perm=radfw; a\r\n"
        );
        // No facts: RFC 3659's `[facts] SP pathname` leaves just the space.
        assert_eq!(facts("a", &file, Facts::parse(b""), false), " a\r\n");
        let mode = |mode| {
            facts(
                "a",
                &stat(FileKind::File, mode, 1, 0, 0),
                Facts::parse(b"unix.mode"),
                false,
            )
        };
        assert_eq!(mode(0), "unix.mode=0000; a\r\n");
        assert_eq!(mode(0o7777), "unix.mode=07777; a\r\n");
        assert_eq!(mode(0o1777), "unix.mode=01777; a\r\n");
        assert_eq!(mode(0o100644), "unix.mode=0644; a\r\n");
    }

    #[test]
    fn facts_parse_feat_and_opts() {
        let none = Facts {
            kind: false,
            size: false,
            modify: false,
            perm: false,
            unix_mode: false,
        };
        assert_eq!(Facts::parse(b""), none);
        assert_eq!(Facts::parse(b";;"), none);
        assert_eq!(Facts::parse(b"bogus;sizd;"), none); // unknown names are ignored
        assert_eq!(
            Facts::parse(b"type;size;"),
            Facts {
                kind: true,
                size: true,
                ..none
            }
        );
        // Case-insensitive (RFC 3659 7.1), and a missing final `;` is forgiven.
        assert_eq!(
            Facts::parse(b"TYPE;Unix.Mode;Modify"),
            Facts {
                kind: true,
                modify: true,
                unix_mode: true,
                ..none
            }
        );
        assert_eq!(
            Facts::parse(b"type;size;modify;perm;unix.mode;"),
            Facts::default()
        );

        assert_eq!(
            Facts::default().feat_line(),
            " MLST type*;size*;modify*;perm*;unix.mode*;"
        );
        assert_eq!(
            Facts::parse(b"size;perm;").feat_line(),
            " MLST type;size*;modify;perm*;unix.mode;"
        );
        assert_eq!(none.feat_line(), " MLST type;size;modify;perm;unix.mode;");

        assert_eq!(
            Facts::default().opts_reply(),
            "MLST OPTS type;size;modify;perm;unix.mode;"
        );
        assert_eq!(
            Facts::parse(b"perm;SIZE;").opts_reply(),
            "MLST OPTS size;perm;"
        );
        assert_eq!(none.opts_reply(), "MLST OPTS");
    }

    #[test]
    fn strip_ls_options_table() {
        let table: &[(&str, &str)] = &[
            ("-la", ""),
            ("-la /pub", "/pub"),
            ("-a -l dir", "dir"),
            ("-la  /pub", "/pub"), // several spaces after an option
            ("-la ", ""),
            ("-R", ""), // accepted and ignored: never recursive
            ("-1", ""),
            ("dir", "dir"),
            ("", ""),
            ("my file -l", "my file -l"), // only leading options
            ("-l my file", "my file"),    // spaces inside the path stay
            ("-", "-"),                   // `-` alone is a name
            ("-.hidden", "-.hidden"),     // not letters or digits: a name
            ("-a/b", "-a/b"),             // a path, not a flag group
            ("-l -x.txt", "-x.txt"),
            ("---", "---"),
            ("--", ""),           // end of options, nothing after
            ("-l -- -la", "-la"), // `--` ends options: `-la` is a file name
            (" -la", " -la"),     // the path is taken as given after the verb's one space
        ];
        for &(arg, rest) in table {
            assert_eq!(strip_ls_options(arg.as_bytes()), rest.as_bytes(), "{arg:?}");
        }
    }
}
