//! Listing formats: LIST (`ls -l` lines), NLST (bare names), MLSD/MLST facts (RFC 3659 section 7),
//! and the time formats of MDTM, MFMT and MLSx. Each function appends one entry to a buffer, so
//! a listing is produced entry by entry as the data socket drains. `now` is passed in: no clock here.

use crate::fs::Stat;

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
        Facts { kind: true, size: true, modify: true, perm: true, unix_mode: true }
    }
}

impl Facts {
    /// Parses the argument of `OPTS MLST` (`type;size;` ...; unknown names ignored, empty = none).
    pub fn parse(arg: &[u8]) -> Facts {
        let _ = arg;
        todo!("Facts::parse")
    }

    /// The FEAT line: ` MLST type*;size*;modify*;perm*;unix.mode*;` with `*` on the selected ones.
    pub fn feat_line(&self) -> String {
        todo!("Facts::feat_line")
    }

    /// The reply to `OPTS MLST`: `MLST OPTS type;size;...;` naming the selected facts.
    pub fn opts_reply(&self) -> String {
        todo!("Facts::opts_reply")
    }
}

/// Removes leading ls-style options (`-a`, `-l`, `-la`, `-1`, `-R`, ...) from a LIST or NLST
/// argument and returns the path that remains (possibly empty). `-R` is ignored like the rest:
/// listings are never recursive.
pub fn strip_ls_options(arg: &[u8]) -> &[u8] {
    let _ = arg;
    todo!("strip_ls_options")
}

/// Appends one `ls -l` line:
/// `-rw-r--r--    1 1000     1000         4096 Nov 24 12:01 name\r\n`; dates older than six
/// months (or in the future by more than an hour) show the year instead of the time;
/// symlinks end with ` -> target`. Owner and group are numeric. Times are UTC.
pub fn push_list_line(out: &mut Vec<u8>, name: &[u8], stat: &Stat, link_target: Option<&[u8]>, now: i64) {
    let _ = (out, name, stat, link_target, now);
    todo!("push_list_line")
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
    let _ = (out, name, stat, facts, writable);
    todo!("push_facts_line")
}

/// Appends `YYYYMMDDHHMMSS` (UTC) for MDTM and the modify fact.
pub fn push_timeval(out: &mut Vec<u8>, secs: i64) {
    let _ = (out, secs);
    todo!("push_timeval")
}

/// Parses `YYYYMMDDHHMMSS` (optionally `.sss` fractions, ignored) as UTC seconds since the epoch.
pub fn parse_timeval(text: &[u8]) -> Option<i64> {
    let _ = text;
    todo!("parse_timeval")
}
