//! LIST, NLST, MLSD: directory entries formatted into a small buffer as the connection drains,
//! so a listing never holds a whole directory.

use std::io;
use std::rc::Rc;

use super::{child_path, DataStream, Drained, Staged, Step, TransferError};
use crate::config::LIST_REFILL_BYTES;
use crate::fs::{DirStream, FileKind, Jail, Stat};
use crate::listing::{self, Facts};

/// Which listing a `ListSender` produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// LIST: `ls -l` lines.
    Long,
    /// NLST: bare names.
    Names,
    /// MLSD: RFC 3659 facts lines.
    Facts(Facts),
}

/// Where a listing's entries come from.
pub enum ListSource {
    /// A directory, read entry by entry as the socket drains.
    Dir(DirStream),
    /// LIST or NLST of a single file: its one line.
    Single {
        name: Vec<u8>,
        stat: Stat,
        link_target: Option<Vec<u8>>,
    },
}

/// LIST, NLST, MLSD: formats entries into a small buffer as the socket drains.
pub struct ListSender {
    source: Option<ListSource>,
    format: ListFormat,
    /// For MLSD: symlinks are reported with their target's facts, so the jail and the
    /// directory's jail path are kept to stat them.
    jail: Rc<Jail>,
    dir: Vec<u8>,
    writable: bool,
    now: i64,
    pub(super) out: Staged,
}

impl ListSender {
    pub fn new(
        source: ListSource,
        format: ListFormat,
        jail: Rc<Jail>,
        dir: Vec<u8>,
        writable: bool,
        now: i64,
    ) -> ListSender {
        ListSender {
            source: Some(source),
            format,
            jail,
            dir,
            writable,
            now,
            out: Staged::new(),
        }
    }

    pub(super) fn pump(
        &mut self,
        stream: &mut impl DataStream,
        budget: usize,
    ) -> Result<Step, TransferError> {
        let mut moved = 0;
        loop {
            match self.out.drain(stream, &mut moved, budget)? {
                Drained::Blocked => return Ok(Step::Blocked),
                Drained::Budget => return Ok(Step::Yield),
                Drained::Empty if self.source.is_none() => return Ok(Step::Done),
                Drained::Empty if moved >= budget => return Ok(Step::Yield),
                Drained::Empty => {}
            }
            self.refill().map_err(TransferError::Disk)?;
        }
    }

    /// Formats the next entries; drops the source when it is exhausted.
    fn refill(&mut self) -> io::Result<()> {
        match self.source.take() {
            Some(ListSource::Single {
                name,
                stat,
                link_target,
            }) => {
                self.push_entry(&name, &stat, link_target.as_deref());
            }
            Some(ListSource::Dir(mut dir)) => {
                while self.out.buf.len() < LIST_REFILL_BYTES {
                    match dir.next() {
                        Some(Ok(entry)) => {
                            self.push_entry(&entry.name, &entry.stat, entry.link_target.as_deref())
                        }
                        Some(Err(e)) => return Err(e),
                        None => return Ok(()),
                    }
                }
                self.source = Some(ListSource::Dir(dir));
            }
            None => {}
        }
        Ok(())
    }

    fn push_entry(&mut self, name: &[u8], stat: &Stat, link_target: Option<&[u8]>) {
        let out = &mut self.out.buf;
        match self.format {
            ListFormat::Long => listing::push_list_line(out, name, stat, link_target, self.now),
            ListFormat::Names => listing::push_nlst_line(out, name),
            ListFormat::Facts(facts) => {
                let followed = (stat.kind == FileKind::Symlink)
                    .then(|| self.jail.stat(&child_path(&self.dir, name)).ok())
                    .flatten();
                listing::push_facts_line(
                    out,
                    name,
                    followed.as_ref().unwrap_or(stat),
                    facts,
                    self.writable,
                )
            }
        }
    }
}
