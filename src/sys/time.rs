//! The local civil time of a moment: localtime_r(3), which reads TZ and /etc/localtime, as the
//! syslog timestamp and the xferlog's current-time field want it (glibc's syslog(3) and every
//! FTP server's xferlog use local time).

/// A moment broken down in the local time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilTime {
    pub year: i64,
    /// 1 to 12.
    pub month: u8,
    /// 1 to 31.
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// 0 (Sunday) to 6.
    pub weekday: u8,
}

/// `unix` (seconds since 1970) in local time; UTC when the zone cannot be read.
pub fn local_time(unix: i64) -> CivilTime {
    let time = unix as libc::time_t;
    // SAFETY: a zeroed `tm` is a valid value of a plain C struct of integers (and a null
    // tm_zone pointer, which localtime_r overwrites).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to our own live values; localtime_r is the thread-safe form
    // and writes only into `tm`.
    let ok = !unsafe { libc::localtime_r(&time, &mut tm) }.is_null()
        // SAFETY: as above, gmtime_r writes only into `tm`.
        || !unsafe { libc::gmtime_r(&time, &mut tm) }.is_null();
    if !ok {
        return CivilTime {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            weekday: 4,
        };
    }
    CivilTime {
        year: tm.tm_year as i64 + 1900,
        month: (tm.tm_mon + 1) as u8,
        day: tm.tm_mday as u8,
        hour: tm.tm_hour as u8,
        minute: tm.tm_min as u8,
        // A leap second (60) is shown as 59: both formats allow 00-59 only.
        second: tm.tm_sec.min(59) as u8,
        weekday: tm.tm_wday as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_moment_breaks_down_within_a_day_of_utc() {
        // 2026-12-02 16:59:07 UTC, a Wednesday; whatever TZ the test runs in, it is within
        // one day of that, and zones move whole minutes.
        let t = local_time(1_796_230_747);
        assert_eq!((t.year, t.month, t.second), (2026, 12, 7));
        assert!((1..=3).contains(&t.day), "{t:?}");
    }
}
