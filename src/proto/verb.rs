//! The verb table: every verb this server runs is one row, holding its name, the grammar of its
//! argument (a function to a `Command`), whether it runs before login, whether it needs write
//! permission, whether HELP names it and the FEAT line it announces. The parser looks verbs up
//! here, the session's login and permission gates read the flags, and the HELP and FEAT replies
//! are made from the rows. A new verb is one row here, one `Command` variant and one handler.
//!
//! Must not touch: how a verb is carried out (the session's handlers), reply texts other than
//! the HELP and FEAT bodies, I/O. Read RFC 959 sections 4.1 and 5.3 (the verbs), RFC 2389
//! (FEAT: one feature a line, each after a space), RFC 3659 and RFC 2428 (the extensions
//! announced), RFC 2577 (what may run before login).

use super::command::{
    decimal, eprt, epsv, mfmt, one_letter, optional_path, path, port, required, site, site_chmod,
    transfer_type, trim, x_hash, Command, ParseError,
};
use super::hash::Algorithm;

/// How a verb's argument (the bytes after the verb's one space) becomes a `Command`.
pub type Parse = for<'a> fn(&'a [u8]) -> Result<Command<'a>, ParseError>;

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Verb {
    /// Upper case letters and digits, 3 to 7 of them (the parser upper-cases what the client
    /// sent).
    pub name: &'static str,
    /// The argument's grammar.
    pub parse: Parse,
    /// Runs before a successful login; every other verb gets 530 until then.
    pub before_login: bool,
    /// Changes the file system: a read-only user gets 550.
    pub write: bool,
    /// Named in the HELP reply.
    pub help: bool,
    /// What FEAT announces for it.
    pub feat: Feat,
}

/// A verb's FEAT line (RFC 2389 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feat {
    None,
    /// A fixed line, e.g. `SIZE` or `REST STREAM`.
    Line(&'static str),
    /// The MLST line, which names the session's selected facts (`Facts::feat_line`).
    Facts,
    /// A fixed line for FTPS (RFC 4217 6), only when the server has a certificate.
    Tls(&'static str),
    /// The HASH line, which marks the session's selected algorithm (`hash::feat_line`).
    Hash,
}

impl Verb {
    /// A row with the defaults: after login only, read only, in HELP, no FEAT line.
    const fn new(name: &'static str, parse: Parse) -> Verb {
        Verb {
            name,
            parse,
            before_login: false,
            write: false,
            help: true,
            feat: Feat::None,
        }
    }

    const fn before_login(self) -> Verb {
        Verb {
            before_login: true,
            ..self
        }
    }

    const fn write(self) -> Verb {
        Verb {
            write: true,
            ..self
        }
    }

    const fn feat(self, line: &'static str) -> Verb {
        Verb {
            feat: Feat::Line(line),
            ..self
        }
    }

    /// A FEAT line announced only when TLS is configured.
    const fn feat_tls(self, line: &'static str) -> Verb {
        Verb {
            feat: Feat::Tls(line),
            ..self
        }
    }

    const fn feat_hash(self) -> Verb {
        Verb {
            feat: Feat::Hash,
            ..self
        }
    }

    const fn feat_facts(self) -> Verb {
        Verb {
            feat: Feat::Facts,
            ..self
        }
    }

    const fn not_in_help(self) -> Verb {
        Verb {
            help: false,
            ..self
        }
    }
}

/// Every verb we run, in alphabetical order (the order HELP lists them in; a test checks it).
/// Argument-less verbs ignore whatever follows: some clients send "PWD " or "ALLO 1234". Path
/// arguments are taken verbatim (names may begin or end with spaces); keywords and numbers are
/// trimmed. The RFC 775 X-verbs (XPWD, XCWD, ...) that old Windows ftp.exe still sends share
/// their RFC 959 verb's `Command` and flags.
pub const VERBS: &[Verb] = &[
    Verb::new("ABOR", |_| Ok(Command::Abor)),
    Verb::new("ACCT", |_| Ok(Command::Acct)),
    Verb::new("ALLO", |_| Ok(Command::Allo)),
    Verb::new("APPE", |arg| Ok(Command::Appe(path(arg)?))).write(),
    // RFC 4217: AUTH, CCC, PBSZ and PROT run before login (the login is what they protect).
    Verb::new("AUTH", |arg| Ok(Command::Auth(required(trim(arg))?)))
        .before_login()
        .feat_tls("AUTH TLS"),
    Verb::new("CCC", |_| Ok(Command::Ccc)).before_login(),
    Verb::new("CDUP", |_| Ok(Command::Cdup)),
    // Informational and harmless: lftp and NcFTP send it before USER.
    Verb::new("CLNT", |arg| Ok(Command::Clnt(trim(arg))))
        .before_login()
        .feat("CLNT"),
    Verb::new("CWD", |arg| Ok(Command::Cwd(path(arg)?))),
    Verb::new("DELE", |arg| Ok(Command::Dele(path(arg)?))).write(),
    Verb::new("EPRT", |arg| Ok(Command::Eprt(eprt(trim(arg))?))).feat("EPRT"),
    Verb::new("EPSV", |arg| Ok(Command::Epsv(epsv(trim(arg))?))).feat("EPSV"),
    Verb::new("FEAT", |_| Ok(Command::Feat)).before_login(),
    // draft-bryan-ftpext-hash: the algorithm is the session's (OPTS HASH), the file whole.
    Verb::new("HASH", |arg| Ok(Command::Hash(path(arg)?))).feat_hash(),
    // HELP with an optional topic (may be empty).
    Verb::new("HELP", |arg| Ok(Command::Help(trim(arg)))).before_login(),
    // LIST keeps ls options such as `-la` in its argument: the session strips them.
    Verb::new("LIST", |arg| Ok(Command::List(optional_path(arg)?))),
    Verb::new("MDTM", |arg| Ok(Command::Mdtm(path(arg)?))).feat("MDTM"),
    Verb::new("MFMT", mfmt).write().feat("MFMT"),
    Verb::new("MKD", |arg| Ok(Command::Mkd(path(arg)?))).write(),
    Verb::new("MLSD", |arg| Ok(Command::Mlsd(optional_path(arg)?))),
    Verb::new("MLST", |arg| Ok(Command::Mlst(optional_path(arg)?))).feat_facts(),
    Verb::new("MODE", |arg| {
        one_letter(trim(arg), b'S', b"BC", Command::Mode)
    }),
    Verb::new("NLST", |arg| Ok(Command::Nlst(optional_path(arg)?))),
    Verb::new("NOOP", |_| Ok(Command::Noop)).before_login(),
    // RFC 2640: OPTS UTF8 ON is accepted, names are always UTF-8 (in fact any bytes).
    Verb::new("OPTS", |arg| Ok(Command::Opts(required(trim(arg))?)))
        .before_login()
        .feat("UTF8"),
    // An empty password is a valid password (anonymous clients often send none).
    Verb::new("PASS", |arg| Ok(Command::Pass(arg))).before_login(),
    Verb::new("PASV", |_| Ok(Command::Pasv)).feat("PASV"),
    Verb::new("PBSZ", |arg| {
        decimal(trim(arg)).ok_or(ParseError::Syntax)?;
        Ok(Command::Pbsz)
    })
    .before_login()
    .feat_tls("PBSZ"),
    Verb::new("PORT", |arg| Ok(Command::Port(port(trim(arg))?))),
    // One letter (C, S, E, P); the session answers each level.
    Verb::new("PROT", |arg| match required(trim(arg))? {
        [level] => Ok(Command::Prot(level.to_ascii_uppercase())),
        _ => Err(ParseError::Unsupported),
    })
    .before_login()
    .feat_tls("PROT"),
    Verb::new("PWD", |_| Ok(Command::Pwd)),
    Verb::new("QUIT", |_| Ok(Command::Quit)).before_login(),
    Verb::new("REST", |arg| {
        let offset = decimal(trim(arg)).ok_or(ParseError::Syntax)?;
        Ok(Command::Rest(offset))
    })
    .feat("REST STREAM"),
    Verb::new("RETR", |arg| Ok(Command::Retr(path(arg)?))),
    Verb::new("RMD", |arg| Ok(Command::Rmd(path(arg)?))).write(),
    Verb::new("RNFR", |arg| Ok(Command::Rnfr(path(arg)?))).write(),
    Verb::new("RNTO", |arg| Ok(Command::Rnto(path(arg)?))).write(),
    // The subcommand is looked up in `SITE_VERBS`, which says whether it writes.
    Verb::new("SITE", site),
    Verb::new("SIZE", |arg| Ok(Command::Size(path(arg)?))).feat("SIZE"),
    // STAT, and STOU below, take an optional argument: empty means "none" (server status).
    Verb::new("STAT", |arg| Ok(Command::Stat(optional_path(arg)?))),
    Verb::new("STOR", |arg| Ok(Command::Stor(path(arg)?))).write(),
    Verb::new("STOU", |arg| Ok(Command::Stou(optional_path(arg)?))).write(),
    Verb::new("STRU", |arg| {
        one_letter(trim(arg), b'F', b"RP", Command::Stru)
    }),
    Verb::new("SYST", |_| Ok(Command::Syst)).before_login(),
    Verb::new("TYPE", |arg| Ok(Command::Type(transfer_type(trim(arg))?))),
    Verb::new("USER", |arg| Ok(Command::User(required(trim(arg))?))).before_login(),
    // The older checksum verbs, one algorithm each (draft-bryan-ftpext-hash appendix B).
    Verb::new("XCRC", |arg| x_hash(arg, Algorithm::Crc32)).feat("XCRC"),
    Verb::new("XCUP", |_| Ok(Command::Cdup)),
    Verb::new("XCWD", |arg| Ok(Command::Cwd(path(arg)?))),
    Verb::new("XMD5", |arg| x_hash(arg, Algorithm::Md5)).feat("XMD5"),
    Verb::new("XMKD", |arg| Ok(Command::Mkd(path(arg)?))).write(),
    Verb::new("XPWD", |_| Ok(Command::Pwd)),
    Verb::new("XRMD", |arg| Ok(Command::Rmd(path(arg)?))).write(),
    Verb::new("XSHA1", |arg| x_hash(arg, Algorithm::Sha1)).feat("XSHA1"),
    Verb::new("XSHA256", |arg| x_hash(arg, Algorithm::Sha256)).feat("XSHA256"),
    Verb::new("XSHA512", |arg| x_hash(arg, Algorithm::Sha512)).feat("XSHA512"),
];

/// The SITE subcommands we run (the argument of `parse` is what follows the subcommand's name).
/// Not in HELP (SITE HELP lists them); the flags work as for `VERBS`.
#[cfg(not(feature = "sandbox-probe"))]
pub const SITE_VERBS: &[Verb] = &[SITE_CHMOD, SITE_HELP];
/// The test build (cargo feature `sandbox-probe`) adds the sandbox's probe.
#[cfg(feature = "sandbox-probe")]
pub const SITE_VERBS: &[Verb] = &[
    SITE_CHMOD,
    SITE_HELP,
    Verb::new("PROBE", super::command::site_probe).not_in_help(),
];
const SITE_CHMOD: Verb = Verb::new("CHMOD", site_chmod).write().not_in_help();
const SITE_HELP: Verb = Verb::new("HELP", |_| Ok(Command::SiteHelp)).not_in_help();

/// Verbs from RFC 959 and its extensions that this server knows of but does not run: 502 rather
/// than 500, so a client learns the verb exists.
pub const NOT_IMPLEMENTED: &[&str] = &[
    "ADAT", "CONF", "ENC", "HOST", "LANG", "LPRT", "LPSV", "MAIL", "MIC", "MLFL", "MRCP", "MRSQ",
    "MSAM", "MSND", "MSOM", "REIN", "SMNT", "XRCP", "XRSQ", "XSEM", "XSEN",
];

/// FEAT lines that belong to no verb: RFC 3659 6, path names are Unix-like and `/`-separated.
const FEATURES: &[&str] = &["TVFS"];

/// Longest verb or SITE subcommand name in the tables.
const MAX_NAME_BYTES: usize = 8;

/// The row for a verb name, in any case (old clients send lowercase). The name is uppercased
/// once, so each row costs a length check and a short compare (this runs for every command).
pub fn find(table: &'static [Verb], name: &[u8]) -> Option<&'static Verb> {
    let mut upper = [0u8; MAX_NAME_BYTES];
    let upper = uppercase(name, &mut upper)?;
    // The first byte rejects nearly every row before a full compare.
    table.iter().find(|verb| {
        let row = verb.name.as_bytes();
        row.first() == upper.first() && row == upper
    })
}

/// True for a verb we know of but do not run (502), in any case.
pub fn is_not_implemented(name: &[u8]) -> bool {
    let mut upper = [0u8; MAX_NAME_BYTES];
    uppercase(name, &mut upper).is_some_and(|upper| {
        NOT_IMPLEMENTED
            .iter()
            .any(|known| known.as_bytes() == upper)
    })
}

/// `name` in upper case in `buf`; None when it is longer than any name in the tables.
fn uppercase<'a>(name: &[u8], buf: &'a mut [u8; MAX_NAME_BYTES]) -> Option<&'a [u8]> {
    let upper = buf.get_mut(..name.len())?;
    for (to, from) in upper.iter_mut().zip(name) {
        *to = from.to_ascii_uppercase();
    }
    Some(upper)
}

/// The row for a name, at compile time: `const { named(VERBS, "PWD") }` does not build when
/// the table has no such row, so `Command::verb` cannot point at a missing one.
pub const fn named(table: &'static [Verb], name: &str) -> &'static Verb {
    let mut i = 0;
    while i < table.len() {
        if const_eq(table[i].name.as_bytes(), name.as_bytes()) {
            return &table[i];
        }
        i += 1;
    }
    panic!("no such verb in the table")
}

const fn const_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Names per HELP line, each padded to four columns.
const HELP_NAMES_PER_LINE: usize = 16;

/// The body of the HELP reply (RFC 959 HELP; RFC 2389 style, each line after a space): the
/// verbs HELP names, in table order, 16 a line, each padded to 4 columns.
pub fn help_lines() -> Vec<String> {
    let names: Vec<&str> = VERBS
        .iter()
        .filter(|verb| verb.help)
        .map(|verb| verb.name)
        .collect();
    names
        .chunks(HELP_NAMES_PER_LINE)
        .map(|chunk| {
            let mut line = String::new();
            for name in chunk {
                line.push_str(&format!(" {name:<4}"));
            }
            line.truncate(line.trim_end().len());
            line
        })
        .collect()
}

/// The body of the FEAT reply (RFC 2389 3.2): one feature a line, each after a space, sorted.
/// `mlst` and `hash` are the session's MLST and HASH lines (`Facts::feat_line`,
/// `hash::feat_line`, each with its own space); `tls` says whether the FTPS lines belong in it.
pub fn feat_lines(mlst: &str, hash: &str, tls: bool) -> Vec<String> {
    let mut lines: Vec<String> = VERBS
        .iter()
        .filter_map(|verb| match verb.feat {
            Feat::None => None,
            Feat::Tls(_) if !tls => None,
            Feat::Line(line) | Feat::Tls(line) => Some(format!(" {line}")),
            Feat::Facts => Some(mlst.to_string()),
            Feat::Hash => Some(hash.to_string()),
        })
        .chain(FEATURES.iter().map(|line| format!(" {line}")))
        .collect();
    lines.sort();
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::command::parse;

    #[test]
    fn tables_are_sorted_and_names_unique() {
        for table in [VERBS, SITE_VERBS] {
            for pair in table.windows(2) {
                assert!(pair[0].name < pair[1].name, "{pair:?}");
            }
            for verb in table {
                let upper_or_digit = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit();
                assert!(verb.name.len() <= MAX_NAME_BYTES && verb.name.bytes().all(upper_or_digit));
            }
        }
        for pair in NOT_IMPLEMENTED.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
        for name in NOT_IMPLEMENTED {
            assert!(find(VERBS, name.as_bytes()).is_none(), "{name} is in both");
        }
    }

    #[test]
    fn no_verb_that_writes_runs_before_login() {
        // The login gate comes before the permission gate in the session's dispatch; a verb
        // with both flags would reach its handler before anyone checked the user may write.
        for verb in VERBS.iter().chain(SITE_VERBS) {
            assert!(!(verb.before_login && verb.write), "{verb:?}");
        }
    }

    /// Sample arguments: every verb parses with at least one of them.
    const SAMPLES: &[&str] = &["", "I", "S", "F", "x", "1,2,3,4,5,6", "|1|1.2.3.4|5|", "5"];

    #[test]
    fn every_row_parses_to_a_command_that_points_back_at_its_flags() {
        // X-verbs share their RFC 959 verb's Command, so `Command::verb` returns that verb's
        // row: the flags must agree, or XMKD would escape the permission gate that MKD meets.
        for verb in VERBS {
            let lines: Vec<String> = SAMPLES
                .iter()
                .chain(&["20200101000000 f", "HELP"])
                .map(|arg| format!("{} {arg}", verb.name))
                .collect();
            let Some(command) = lines.iter().find_map(|line| parse(line.as_bytes()).ok()) else {
                panic!("{} parses with no sample argument", verb.name);
            };
            let row = command.verb();
            assert_eq!(
                (row.before_login, row.write),
                (verb.before_login, verb.write),
                "{} parsed as {command:?}",
                verb.name
            );
        }
        let chmod = parse(b"SITE CHMOD 644 f").unwrap();
        assert!(chmod.verb().write);
        assert!(!parse(b"SITE HELP").unwrap().verb().write);
    }

    #[test]
    fn the_gates_flags() {
        let before_login: Vec<&str> = VERBS
            .iter()
            .filter(|v| v.before_login)
            .map(|v| v.name)
            .collect();
        // RFC 2577 and the README: only what a client needs to log in and to learn the server.
        assert_eq!(
            before_login,
            [
                "AUTH", "CCC", "CLNT", "FEAT", "HELP", "NOOP", "OPTS", "PASS", "PBSZ", "PROT",
                "QUIT", "SYST", "USER"
            ]
        );
        let write: Vec<&str> = VERBS.iter().filter(|v| v.write).map(|v| v.name).collect();
        assert_eq!(
            write,
            [
                "APPE", "DELE", "MFMT", "MKD", "RMD", "RNFR", "RNTO", "STOR", "STOU", "XMKD",
                "XRMD"
            ]
        );
    }

    #[test]
    fn help_and_feat_bodies() {
        assert_eq!(
            help_lines(),
            [
                " ABOR ACCT ALLO APPE AUTH CCC  CDUP CLNT CWD  DELE EPRT EPSV FEAT HASH HELP LIST",
                " MDTM MFMT MKD  MLSD MLST MODE NLST NOOP OPTS PASS PASV PBSZ PORT PROT PWD  QUIT",
                " REST RETR RMD  RNFR RNTO SITE SIZE STAT STOR STOU STRU SYST TYPE USER XCRC XCUP",
                " XCWD XMD5 XMKD XPWD XRMD XSHA1 XSHA256 XSHA512",
            ]
        );
        let plain = feat_lines(" MLST type*;size;", " HASH SHA-256*;MD5", false);
        assert_eq!(
            plain,
            [
                " CLNT",
                " EPRT",
                " EPSV",
                " HASH SHA-256*;MD5",
                " MDTM",
                " MFMT",
                " MLST type*;size;",
                " PASV",
                " REST STREAM",
                " SIZE",
                " TVFS",
                " UTF8",
                " XCRC",
                " XMD5",
                " XSHA1",
                " XSHA256",
                " XSHA512",
            ]
        );
        // RFC 4217 6: with a certificate, FEAT announces AUTH TLS, PBSZ and PROT too.
        let mut tls = feat_lines(" MLST type*;size;", " HASH SHA-256*;MD5", true);
        tls.retain(|line| !plain.contains(line));
        assert_eq!(tls, [" AUTH TLS", " PBSZ", " PROT"]);
    }
}
