//! RFC 3659 times: the `YYYYMMDDHHMMSS[.sss]` UTC format of MDTM, MFMT and the MLSx `modify`
//! fact, printed and parsed in this one place, and the proleptic Gregorian calendar arithmetic
//! (days to civil dates and back) that the `ls -l` dates in `listing` use too.
//!
//! Must not touch: the clock (times are seconds handed in), time zones (everything is UTC, as
//! RFC 3659 asks), files. Read RFC 3659 section 2.3 (time-val), 3 (MDTM) and 7.5.3 (modify);
//! draft-somers-ftp-mfxx for MFMT; Howard Hinnant's "chrono-Compatible Low-Level Date
//! Algorithms" for `civil_from_days` and `days_from_civil`.

/// Appends `YYYYMMDDHHMMSS` (UTC) for MDTM and the modify fact.
pub fn push_timeval(out: &mut Vec<u8>, secs: i64) {
    // The format has room for four year digits: times outside 0000..=9999 are clamped to the
    // first or last second it can show rather than printed in a shape no client parses.
    let secs = secs.clamp(MIN_TIMEVAL_SECS, MAX_TIMEVAL_SECS);
    let (days, secs_of_day) = split_days(secs);
    let (year, month, day) = civil_from_days(days);
    let year = year.clamp(0, 9999) as u32;
    push_two_digits(out, year / 100);
    push_two_digits(out, year % 100);
    push_two_digits(out, month);
    push_two_digits(out, day);
    push_two_digits(out, secs_of_day / 3600);
    push_two_digits(out, secs_of_day / 60 % 60);
    push_two_digits(out, secs_of_day % 60);
}

/// 0000-01-01 00:00:00 UTC: days_from_civil(0, 1, 1) * 86400.
const MIN_TIMEVAL_SECS: i64 = -719_528 * SECS_PER_DAY;
/// 9999-12-31 23:59:59 UTC: days_from_civil(9999, 12, 31) * 86400 + 86399.
const MAX_TIMEVAL_SECS: i64 = 2_932_896 * SECS_PER_DAY + SECS_PER_DAY - 1;

/// RFC 3659 2.3 `time-val = 14DIGIT [ "." 1*DIGIT ]`, UTC, as seconds since the Unix epoch;
/// `None` for anything else. The one parser of this format (MFMT uses it; so may any later
/// verb that takes a time). Where the two older copies disagreed, the rule that wins and why:
///
/// - Exactly 14 ASCII digits, then optionally `.` and one or more ASCII digits, nothing else
///   (no sign, no spaces, no Unicode digits): the RFC's grammar.
/// - The fraction may have any number of digits (the RFC: "to whatever precision is
///   appropriate"), not only milliseconds; it is ignored, so a time is never rounded up.
/// - Month 01-12, a day that exists in that month (February 29 only in leap years of the
///   proleptic Gregorian calendar), hour 00-23, minute 00-59, second 00-60.
/// - Second 60 (the RFC allows it at a leap second) counts as the next minute's 00: the POSIX
///   "seconds since the epoch" formula taken as it stands, which is what `timegm(3)` gives and
///   what the kernel's clock reads during an inserted leap second.
/// - Years 0000-0999 are accepted although the RFC's range starts at 1000: the RFC says such
///   years "cannot be expressed", not that a server must refuse them, and `push_timeval`
///   clamps older times to 0000-01-01, so what MDTM printed, MFMT must take back.
pub fn parse_timeval(text: &[u8]) -> Option<i64> {
    let (digits, fraction) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], Some(&text[dot + 1..])),
        None => (text, None),
    };
    if let Some(fraction) = fraction {
        if fraction.is_empty() || !fraction.iter().all(u8::is_ascii_digit) {
            return None;
        }
    }
    if digits.len() != 14 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // All ASCII digits, so each field fits its type and no arithmetic below can overflow.
    let field = |from: usize, to: usize| {
        digits[from..to]
            .iter()
            .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'))
    };
    let (year, month, day) = (field(0, 4), field(4, 6), field(6, 8));
    let (hour, minute, second) = (field(8, 10), field(10, 12), field(12, 14));
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    Some(days * SECS_PER_DAY + i64::from(hour * 3600 + minute * 60 + second))
}

pub(super) const SECS_PER_DAY: i64 = 86_400;

/// Splits seconds since the epoch into whole days (rounded toward minus infinity, so
/// 1969-12-31 23:59:59 is day -1) and the second within that day.
pub(super) fn split_days(secs: i64) -> (i64, u32) {
    (
        secs.div_euclid(SECS_PER_DAY),
        secs.rem_euclid(SECS_PER_DAY) as u32,
    )
}

/// Howard Hinnant's `civil_from_days` (proleptic Gregorian): days since 1970-01-01 to
/// (year, month 1..=12, day 1..=31). Valid for every i64 day count a time in seconds can
/// produce (|days| < 1.1e14, so `z` and `era * 400` stay far from overflow).
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01, the start of a 400-year era
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year, 0..=365
    let mp = (5 * doy + 2) / 153; // month counted from March, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Howard Hinnant's `days_from_civil`, the inverse of `civil_from_days`. Callers pass a
/// validated month (1..=12) and day; years here come from 4 digits.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2); // the year starts in March, so February is last
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Appends a value below 100 as two digits.
pub(super) fn push_two_digits(out: &mut Vec<u8>, n: u32) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tue 2026-11-24 12:01:02 UTC.
    const NOW: i64 = 1_795_521_662;

    fn timeval(secs: i64) -> String {
        let mut out = Vec::new();
        push_timeval(&mut out, secs);
        String::from_utf8(out).unwrap()
    }

    /// Moved from command.rs (MFMT's parser) with its assertions; one changed, see below.
    #[test]
    fn time_values() {
        let mtime = |text: &[u8]| parse_timeval(text);
        assert_eq!(mtime(b"19700101000000"), Some(0));
        assert_eq!(mtime(b"20000229000000"), Some(951_782_400));
        assert_eq!(mtime(b"19691231235959"), Some(-1));
        assert_eq!(mtime(b"99991231235959"), Some(253_402_300_799));
        // RFC 3659 allows second 60 for a leap second; Unix time reads it as the next minute.
        assert_eq!(mtime(b"19700101000060"), Some(60));
        // 1900 and 2100 are not leap years, 2000 is.
        assert_eq!(mtime(b"19000229000000"), None);
        assert_eq!(mtime(b"21000229000000"), None);
        // Changed when the two parsers became one: years before 1000 are read (see
        // `the_rules_that_won`); MFMT's own parser refused them.
        assert_eq!(mtime(b"09991231000000"), Some(-30_610_310_400));
        assert_eq!(mtime(b"20241301000000"), None);
        assert_eq!(mtime(b"20240431000000"), None);
        assert_eq!(mtime(b"20240101240000"), None);
        assert_eq!(mtime(b"2024010112000a"), None);
    }

    /// Where MFMT's parser (command.rs) and the listing's (listing.rs) disagreed, this is the
    /// rule of the one parser left, and why (RFC 3659 2.3: `time-val = 14DIGIT [ "." 1*DIGIT ]`).
    #[test]
    fn the_rules_that_won() {
        let p = |s: &str| parse_timeval(s.as_bytes());
        // Fractions: the RFC's 1*DIGIT, any precision (the listing's parser took at most three
        // digits, MFMT's at most 19 because its number overflowed). Never rounded.
        assert_eq!(p("20230101000000.1234"), Some(1_672_531_200));
        assert_eq!(p("20230101000000.999999999"), Some(1_672_531_200));
        let long = format!("20230101000000.{}", "9".repeat(100));
        assert_eq!(p(&long), Some(1_672_531_200));
        // 1*DIGIT: at least one.
        assert_eq!(p("20230101000000."), None);
        // Second 60: the POSIX formula as it stands, the next minute's :00 (MFMT's rule; the
        // listing's parser folded it into :59). 2016-12-31 23:59:60 was a real leap second.
        assert_eq!(p("20230101000060"), Some(1_672_531_260));
        assert_eq!(p("20161231235960"), Some(1_483_228_800));
        assert_eq!(p("20161231235959"), Some(1_483_228_799));
        // Years 0000-0999: read (the listing's rule; MFMT's parser kept to the RFC's 1000-9999),
        // because `push_timeval` prints them for old times and MFMT must take back what MDTM
        // printed (clients that copy times do exactly that).
        assert_eq!(p("00000101000000"), Some(MIN_TIMEVAL_SECS));
        let mut printed = Vec::new();
        push_timeval(&mut printed, i64::MIN);
        assert_eq!(parse_timeval(&printed), Some(MIN_TIMEVAL_SECS));
    }

    #[test]
    fn timeval_formats() {
        assert_eq!(timeval(0), "19700101000000");
        assert_eq!(timeval(NOW), "20261124120102");
        assert_eq!(timeval(-1), "19691231235959");
        assert_eq!(timeval(951_782_400), "20000229000000");
        assert_eq!(timeval(1_709_251_199), "20240229235959");
        // Clamped to what four year digits can say.
        assert_eq!(timeval(-62_167_219_200), "00000101000000");
        assert_eq!(timeval(-62_167_219_201), "00000101000000");
        assert_eq!(timeval(i64::MIN), "00000101000000");
        assert_eq!(timeval(253_402_300_799), "99991231235959");
        assert_eq!(timeval(253_402_300_800), "99991231235959");
        assert_eq!(timeval(i64::MAX), "99991231235959");
    }

    #[test]
    fn timeval_parses() {
        let p = |s: &str| parse_timeval(s.as_bytes());
        assert_eq!(p("19700101000000"), Some(0));
        assert_eq!(p("20261124120102"), Some(NOW));
        assert_eq!(p("20240229235959"), Some(1_709_251_199)); // leap year
        assert_eq!(p("20000229000000"), Some(951_782_400)); // divisible by 400: leap
        assert_eq!(p("19691231235959"), Some(-1));
        assert_eq!(p("00000101000000"), Some(-62_167_219_200));
        assert_eq!(p("99991231235959"), Some(253_402_300_799));
        assert_eq!(p("20240229235959.5"), Some(1_709_251_199)); // fractions ignored
        assert_eq!(p("20240229235959.123"), Some(1_709_251_199));
        // Changed when the two parsers became one: a leap second is the next minute's :00 (see
        // `the_rules_that_won`), no longer folded into :59.
        assert_eq!(p("20230101000060"), p("20230101000100"));
        for bad in [
            "20230229000000",  // 2023 is not a leap year
            "19000229000000",  // divisible by 100, not by 400: not leap
            "20231131000000",  // November has 30 days
            "20230001000000",  // month 0
            "20231301000000",  // month 13
            "20230100000000",  // day 0
            "20230101240000",  // hour 24
            "20230101006000",  // minute 60
            "20230101000061",  // second 61
            "2023010100000",   // 13 digits
            "202301010000000", // 15 digits
            "20230101000000.", // dot without digits
            "20230101000000.a",
            "20230101000000.1.2",
            "+2023010100000",
            " 20230101000000",
            "20230101000000 ",
            "2023-01-01 00:00",
            "",
            "٢٠٢٣٠١٠١٠٠٠٠٠٠", // Arabic-Indic digits are not ASCII digits
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn timeval_round_trips() {
        for secs in [
            0,
            -1,
            NOW,
            951_782_400,
            1_709_251_199,
            -62_167_219_200,
            253_402_300_799,
            -2_203_891_201,
        ] {
            let text = timeval(secs);
            assert_eq!(parse_timeval(text.as_bytes()), Some(secs), "{text}");
        }
    }

    #[test]
    fn civil_days_are_inverse_over_the_four_digit_years() {
        // Every day of 0000-01-01..=9999-12-31 maps to a valid date and back, one day apart.
        let mut previous = (-1, 12, 31);
        for days in -719_528..=2_932_896 {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y as u32, m));
            assert_eq!(days_from_civil(y, m, d), days);
            let next_day = (y, m, d) == (previous.0, previous.1, previous.2 + 1);
            let next_month =
                d == 1 && ((y, m) == (previous.0, previous.1 + 1) || (y, m) == (previous.0 + 1, 1));
            assert!(next_day || next_month, "{previous:?} -> {:?}", (y, m, d));
            previous = (y, m, d);
        }
        assert_eq!(civil_from_days(-719_528), (0, 1, 1));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
    }
}
