//! The poll loop: the only module that touches sockets.
use crate::config::Config;

pub fn run(config: Config, auth: crate::session::Auth) -> std::io::Result<()> {
    let _ = (config, auth);
    todo!("server::run")
}
