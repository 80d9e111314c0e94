//! Fuzz target `parse`: the control connection's framing and command parsing, the first code
//! that sees a hostile peer's bytes.
//!
//! - `command::parse` on the raw input, as one line (it must take any bytes, even an LF).
//! - A `LineFramer` fed the input in chunks whose sizes come from the first byte, every line
//!   peeked, parsed and consumed as the session does, compared with a framer fed the same bytes
//!   at once: framing must not depend on how the socket split the stream (a Telnet sequence or
//!   a CRLF may straddle two reads).
//!
//! Never panics, and the lines obey the framer's contract: no LF inside, at most
//! `MAX_LINE_BYTES` long.

#![no_main]

use leanftpd::command::{self, LineFramer, LineTooLong};
use leanftpd::config::MAX_LINE_BYTES;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The whole input as one line; Debug is what the session logs, so it must not panic either.
    if let Ok(cmd) = command::parse(data) {
        let _ = format!("{cmd:?}");
    }

    // First byte: the chunk sizes (1..=16, cycling through a small pattern) so that small
    // inputs still split CRLF pairs and IAC sequences at every position.
    let Some((&shape, stream)) = data.split_first() else {
        return;
    };
    let whole = frame(stream, &[stream.len().max(1)]);
    let sizes = [
        usize::from(shape & 0x0f) + 1,
        usize::from(shape >> 4) + 1,
        1,
        usize::from(shape % 7) + 1,
    ];
    let chunked = frame(stream, &sizes);
    assert_eq!(
        whole, chunked,
        "framing depends on how the input is split (chunk sizes {sizes:?})"
    );
});

/// What a framer makes of `stream` pushed in chunks of `sizes` (cycled): every line, and whether
/// it ended with `LineTooLong` (after which the session closes, so nothing more is read).
fn frame(stream: &[u8], sizes: &[usize]) -> (Vec<Vec<u8>>, bool) {
    let mut framer = LineFramer::default();
    let mut lines = Vec::new();
    let mut rest = stream;
    let mut size = sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(size.next().unwrap_or(1).min(rest.len()));
        rest = tail;
        framer.push(chunk);
        loop {
            match framer.peek_line() {
                Ok(Some(line)) => {
                    assert!(!line.contains(&b'\n'), "a line holds an LF: {line:?}");
                    assert!(line.len() <= MAX_LINE_BYTES, "line of {} bytes", line.len());
                    if let Ok(cmd) = command::parse(line) {
                        let _ = format!("{cmd:?}");
                    }
                    // A second peek before consuming returns the same line (the session relies
                    // on it to hold a command during a transfer).
                    let line = line.to_vec();
                    assert_eq!(framer.peek_line(), Ok(Some(&line[..])));
                    assert!(framer.has_line());
                    lines.push(line);
                    framer.consume_line();
                    assert!(!framer.has_line());
                }
                Ok(None) => break,
                Err(LineTooLong) => return (lines, true),
            }
        }
    }
    (lines, false)
}
