//! Transfer pumps: move one file or listing between disk and a data connection.
