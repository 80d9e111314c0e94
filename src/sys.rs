//! The thin unsafe layer: every libc call the server needs and mio lacks.
