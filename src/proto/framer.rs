//! The control connection's framing: bytes as they arrive from the socket, in any split, into
//! command lines. Line ends (CRLF, and bare LF as netcat and scripts send), the Telnet layer
//! FTP sits on (IAC sequences, CR NUL, the urgent DM before ABOR) and the 4 KiB line limit.
//! No parsing: a line goes to `command::parse`.
//!
//! Must not touch: the meaning of a line (the parser's), sockets (the caller pushes bytes),
//! session state. Read RFC 959 4.1.3 (ABOR and Telnet IP/Synch), RFC 854 (Telnet commands and
//! option negotiation, CR NUL), RFC 1123 4.1.2.12 (Telnet on the control connection).

use crate::config::MAX_LINE_BYTES;

/// A command line longer than `config::MAX_LINE_BYTES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

// RFC 854 Telnet command bytes that FTP clients send on the control connection.
const IAC: u8 = 0xFF;
const DM: u8 = 0xF2;
const WILL: u8 = 0xFB;
const DONT: u8 = 0xFE;
/// Lowest Telnet command byte (SE); IAC followed by anything lower is not a Telnet command.
const FIRST_COMMAND: u8 = 0xF0;

/// Where the framer is inside a Telnet sequence; kept across pushes since a sequence may be split.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Telnet {
    #[default]
    Data,
    /// After IAC.
    Iac,
    /// After IAC WILL/WONT/DO/DONT: the next byte is the option code.
    Option,
}

/// Frames the control connection's byte stream into lines. Holds bytes only while a partial
/// line (or lines the session has not taken yet) waits; an idle session holds no buffer.
///
/// The current line is always at the front of `buf`. It is cleaned in place as bytes arrive:
/// `buf[..cleaned]` is the cleaned text so far, `buf[scanned..]` is raw input not yet looked at
/// (cleaning only ever drops bytes, so the write position never overtakes the read position).
/// Each byte is looked at once, however the input is split across pushes.
#[derive(Debug, Default)]
pub struct LineFramer {
    buf: Vec<u8>,
    /// Raw bytes of the current line already cleaned.
    scanned: usize,
    /// Length of the cleaned text at the front of `buf`.
    cleaned: usize,
    telnet: Telnet,
    /// Set once the LF arrived: (cleaned length, raw length including the LF).
    line: Option<(usize, usize)>,
}

impl LineFramer {
    /// Appends bytes read from the socket.
    pub fn push(&mut self, input: &[u8]) {
        self.buf.extend_from_slice(input);
    }

    /// The next complete line, cleaned in place: ends at LF, a CR before it removed, Telnet
    /// sequences removed (IAC IAC is a literal 0xFF; IAC IP, IAC DM and other IAC x pairs vanish,
    /// IAC WILL/WONT/DO/DONT x triples too; IAC before a non-command byte is kept as it is), a DM
    /// byte before the verb dropped (left behind when urgent data took its IAC), CR NUL read as
    /// CR. `Ok(None)` while no LF has arrived; `Err(LineTooLong)` when a line, or buffered bytes
    /// without LF, exceed `MAX_LINE_BYTES`. Does not consume: call `consume_line` once the line
    /// was handled. Calling it again before that returns the same line.
    pub fn peek_line(&mut self) -> Result<Option<&[u8]>, LineTooLong> {
        if self.line.is_none() {
            self.scan()?;
        }
        Ok(self
            .line
            .map(|(cleaned, _)| self.buf.get(..cleaned).unwrap_or_default()))
    }

    /// Drops the line last returned by `peek_line`; frees the buffer once it is empty.
    pub fn consume_line(&mut self) {
        let Some((_, raw)) = self.line.take() else {
            return;
        };
        self.buf.drain(..raw.min(self.buf.len()));
        if self.buf.is_empty() {
            // Give the memory back: an idle session should hold no heap.
            self.buf = Vec::new();
        }
        self.scanned = 0;
        self.cleaned = 0;
        self.telnet = Telnet::Data;
    }

    /// True when bytes are buffered (a partial line or lines not yet taken).
    pub fn has_pending(&self) -> bool {
        !self.buf.is_empty()
    }

    /// True when `peek_line` returned a line that was not consumed yet (the session holds a
    /// command until a transfer ends).
    pub fn has_line(&self) -> bool {
        self.line.is_some()
    }

    /// Cleans raw bytes until a line is complete or the input runs out.
    fn scan(&mut self) -> Result<(), LineTooLong> {
        while let Some(&byte) = self.buf.get(self.scanned) {
            // MAX_LINE_BYTES counts the raw line with its CRLF.
            if self.scanned >= MAX_LINE_BYTES {
                return Err(LineTooLong);
            }
            self.scanned += 1;
            match self.telnet {
                Telnet::Data => self.data(byte),
                Telnet::Iac => {
                    self.telnet = Telnet::Data;
                    match byte {
                        IAC => self.write(IAC),
                        WILL..=DONT => self.telnet = Telnet::Option,
                        // IP, AO, AYT, DM, NOP...: nothing to do for a server that runs
                        // commands in order (ABOR follows on the same line stream).
                        FIRST_COMMAND.. => {}
                        // Not Telnet: a client sending a raw 0xFF in a name. Keep both bytes.
                        _ => {
                            self.write(IAC);
                            self.data(byte);
                        }
                    }
                }
                Telnet::Option => self.telnet = Telnet::Data,
            }
            if self.line.is_some() {
                break;
            }
        }
        Ok(())
    }

    /// One byte outside any Telnet sequence.
    fn data(&mut self, byte: u8) {
        let after_cr = self.cleaned > 0 && self.buf.get(self.cleaned - 1) == Some(&b'\r');
        match byte {
            b'\n' => {
                // CRLF or bare LF (netcat, some scripts): one CR before the LF is not content.
                let end = if after_cr {
                    self.cleaned - 1
                } else {
                    self.cleaned
                };
                self.line = Some((end, self.scanned));
            }
            IAC => self.telnet = Telnet::Iac,
            // RFC 854: CR NUL is a bare CR.
            0 if after_cr => {}
            // BSD ftp sends IAC IP IAC(urgent) DM "ABOR": without SO_OOBINLINE the kernel takes
            // the urgent IAC away and the DM lands before the verb. Inside a line it may be part
            // of a name, so only drop it there.
            DM if self.cleaned == 0 => {}
            _ => self.write(byte),
        }
    }

    fn write(&mut self, byte: u8) {
        if let Some(slot) = self.buf.get_mut(self.cleaned) {
            *slot = byte;
            self.cleaned += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Lines = Result<Vec<Vec<u8>>, LineTooLong>;

    /// Pushes `input` in pieces of `step` bytes, taking every line as soon as it is complete.
    fn frame(input: &[u8], step: usize) -> Lines {
        let mut framer = LineFramer::default();
        let mut lines = Vec::new();
        for chunk in input.chunks(step) {
            framer.push(chunk);
            while let Some(line) = framer.peek_line()? {
                lines.push(line.to_vec());
                framer.consume_line();
            }
        }
        Ok(lines)
    }

    fn lines(list: &[&[u8]]) -> Lines {
        Ok(list.iter().map(|line| line.to_vec()).collect())
    }

    #[test]
    fn framing_table() {
        let cases: &[(&[u8], Lines)] = &[
            // CRLF per RFC 959, bare LF from netcat and scripts.
            (b"USER a\r\nPASS b\n", lines(&[b"USER a", b"PASS b"])),
            // No LF yet: nothing to run.
            (b"NOOP\r", lines(&[])),
            // Only one CR before LF is line ending; a second one is content.
            (b"RETR a\r\r\n", lines(&[b"RETR a\r"])),
            // Telnet CR NUL is a bare CR; CR NUL LF still ends the line.
            (b"RETR a\r\0b\r\0\n", lines(&[b"RETR a\rb"])),
            // A NUL that does not follow CR stays (and the parser rejects it in a path).
            (b"RETR a\0b\n", lines(&[b"RETR a\0b"])),
            // IAC IAC is one literal 0xFF (a Latin-1 'y with diaeresis' in a name).
            (b"RETR \xff\xffa\r\n", lines(&[b"RETR \xffa"])),
            // RFC 959 4.1.3 abort as BSD ftp and lftp send it: IAC IP, IAC DM, then ABOR.
            (b"\xff\xf4\xff\xf2ABOR\r\n", lines(&[b"ABOR"])),
            // BSD ftp without SO_OOBINLINE: the urgent IAC was taken, a bare DM is left.
            (b"\xff\xf4\xf2ABOR\r\n", lines(&[b"ABOR"])),
            // A DM byte inside a line may be part of a name: kept.
            (b"RETR a\xf2b\r\n", lines(&[b"RETR a\xf2b"])),
            // IAC DO <option> is three bytes, even when the option byte is 0x0A.
            (b"\xff\xfd\nNOOP\r\n", lines(&[b"NOOP"])),
            (b"\xff\xfb\x01NOOP\r\n", lines(&[b"NOOP"])),
            // IAC before a non-command byte is not Telnet: both bytes kept.
            (b"RETR \xffa\r\n", lines(&[b"RETR \xffa"])),
            (b"RETR \xff\n", lines(&[b"RETR \xff"])),
            (b"\n\r\n", lines(&[b"", b""])),
        ];
        for (input, expected) in cases {
            for step in [1, 2, 3, input.len()] {
                assert_eq!(
                    frame(input, step),
                    *expected,
                    "input {:?} step {step}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn peek_twice_returns_the_same_line() {
        let mut framer = LineFramer::default();
        framer.push(b"CWD \xff\xffx\r\0\r\nPWD");
        assert_eq!(framer.peek_line(), Ok(Some(&b"CWD \xffx\r"[..])));
        assert_eq!(framer.peek_line(), Ok(Some(&b"CWD \xffx\r"[..])));
        // More input after a complete line does not change it.
        framer.push(b"\r\n");
        assert_eq!(framer.peek_line(), Ok(Some(&b"CWD \xffx\r"[..])));
        framer.consume_line();
        assert_eq!(framer.peek_line(), Ok(Some(&b"PWD"[..])));
        framer.consume_line();
        assert_eq!(framer.peek_line(), Ok(None));
    }

    #[test]
    fn consume_without_a_line_keeps_the_partial_line() {
        let mut framer = LineFramer::default();
        framer.push(b"NO");
        assert_eq!(framer.peek_line(), Ok(None));
        framer.consume_line();
        framer.push(b"OP\n");
        assert_eq!(framer.peek_line(), Ok(Some(&b"NOOP"[..])));
    }

    #[test]
    fn buffer_is_freed_when_empty() {
        let mut framer = LineFramer::default();
        assert!(!framer.has_pending());
        framer.push(b"NOOP\r\nNO");
        assert!(framer.has_pending());
        assert_eq!(framer.peek_line(), Ok(Some(&b"NOOP"[..])));
        framer.consume_line();
        // A partial line is still waiting.
        assert!(framer.has_pending());
        framer.push(b"OP\r\n");
        assert_eq!(framer.peek_line(), Ok(Some(&b"NOOP"[..])));
        framer.consume_line();
        assert!(!framer.has_pending());
        assert_eq!(framer.buf.capacity(), 0);
    }

    #[test]
    fn line_length_limit() {
        // A line of exactly MAX_LINE_BYTES, CRLF included, is accepted.
        let mut line = vec![b'a'; MAX_LINE_BYTES - 2];
        line.extend_from_slice(b"\r\n");
        assert_eq!(frame(&line, 1000).map(|l| l.len()), Ok(1));
        // One byte more is refused, whether the LF came or not.
        let mut long = vec![b'a'; MAX_LINE_BYTES - 1];
        long.extend_from_slice(b"\r\n");
        assert_eq!(frame(&long, 1000), Err(LineTooLong));
        assert_eq!(frame(&long, long.len()), Err(LineTooLong));
        let mut framer = LineFramer::default();
        framer.push(&vec![b'a'; MAX_LINE_BYTES]);
        assert_eq!(framer.peek_line(), Ok(None));
        framer.push(b"a");
        assert_eq!(framer.peek_line(), Err(LineTooLong));
        // And it stays refused: the session closes, it must not see a line from the tail.
        framer.push(b"\r\n");
        assert_eq!(framer.peek_line(), Err(LineTooLong));
        // A short line followed by an over-long one: the short one still runs first.
        let mut framer = LineFramer::default();
        framer.push(b"NOOP\r\n");
        framer.push(&vec![b'a'; MAX_LINE_BYTES + 1]);
        assert_eq!(framer.peek_line(), Ok(Some(&b"NOOP"[..])));
        framer.consume_line();
        assert_eq!(framer.peek_line(), Err(LineTooLong));
    }
}
