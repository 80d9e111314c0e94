//! USER, PASS and QUIT (RFC 959 5.4), the failed-login delay, the loop's admission of a
//! users-file login (its sessions across addresses), and who is logged in.

use super::*;

impl Session {
    // ---- login --------------------------------------------------------------------------

    /// RFC 959 QUIT: during an upload the server finishes it, sends its 226, then the 221;
    /// a download or listing is simply cut short.
    pub(super) fn quit(&mut self) {
        if self.upload_running() {
            self.set_lifecycle(Lifecycle::Draining {
                farewell: Farewell::Goodbye,
                until: None,
            });
        } else {
            self.reply(reply::GOODBYE, "Goodbye.");
            self.finish();
        }
    }

    pub(super) fn user(&mut self, name: &[u8]) {
        if matches!(self.login, Login::LoggedIn(_)) {
            self.reply(reply::NOT_LOGGED_IN, "Already logged in.");
            return;
        }
        let anonymous = auth::is_anonymous_name(name) && self.shared.anonymous_jail.is_some();
        if self.login_needs_tls(anonymous) {
            return;
        }
        self.set_login_state(Login::AwaitPass { user: name.into() });
        if anonymous {
            self.reply(
                reply::NEED_PASSWORD,
                "Anonymous login ok, send your e-mail address as password.",
            );
        } else {
            // The same answer for every name: USER does not tell which users exist.
            self.reply(reply::NEED_PASSWORD, "Please specify the password.");
        }
    }

    pub(super) fn pass(&mut self, password: &[u8], now: Instant) {
        let user = match &self.login {
            Login::AwaitPass { user } => user.clone(),
            Login::LoggedIn(_) => return self.reply(reply::BAD_SEQUENCE, "Already logged in."),
            // Not reached: no command runs while the loop decides.
            Login::Admitting(_) => return,
            Login::AwaitUser => return self.reply(reply::BAD_SEQUENCE, "Login with USER first."),
        };
        let config = &self.shared.config;
        match &self.shared.anonymous_jail {
            // Anonymous runs under the flags; its sessions are bounded by --max-clients and
            // --max-per-ip, not counted per user (it is everybody's account).
            Some(jail) if auth::is_anonymous_name(&user) => {
                let user = User {
                    account: Rc::clone(&self.shared.anonymous_account),
                    jail: jail.clone(),
                    limits: auth::Settings::default().limits(config),
                };
                self.logged_in(user);
            }
            _ => match self.login_user(&user, password) {
                Some(user) => {
                    // The loop counts the account's sessions; `handle_admission` goes on.
                    let name = user.account.name.as_str().into();
                    let limits = user.limits;
                    self.set_login_state(Login::Admitting(user));
                    self.actions.push_back(Action::AdmitUser { name, limits });
                }
                None => self.login_failed(&user, now),
            },
        }
    }

    /// The loop's answer to `Action::AdmitUser`.
    pub fn handle_admission(&mut self, admission: Admission, now: Instant) {
        let Login::Admitting(_) = &self.login else {
            return;
        };
        if self.lifecycle != Lifecycle::Open {
            // The client hung up (or the login timed out) while the loop decided: nobody is
            // left to tell, and a closed session says nothing more.
            self.set_login_state(Login::AwaitUser);
            return;
        }
        let Login::Admitting(user) = std::mem::replace(&mut self.login, Login::AwaitUser) else {
            unreachable!("matched above");
        };
        match admission {
            Admission::Admitted => {
                self.logged_in(user);
                // Commands pipelined behind PASS waited for this answer.
                self.run_commands(now);
            }
            Admission::TooMany { limit } => {
                info!(
                    "[#{}] {} refused from {}: already {limit} sessions (max_sessions)",
                    self.id,
                    user.account.name,
                    self.peer.ip()
                );
                self.set_login_state(Login::AwaitUser);
                // 421, as for --max-clients and --max-per-ip (and Pure-FTPd's per-user limit):
                // the session ends here; a 530 would read as a wrong password to clients.
                let text = format!("Too many sessions for this user ({limit}), try again later.");
                self.reply(reply::SERVICE_NOT_AVAILABLE, &text);
                self.close();
            }
        }
    }

    fn logged_in(&mut self, user: User) {
        let client = match &self.client {
            Some(name) => format!(", client {name}"),
            None => String::new(),
        };
        info!(
            "[#{}] {} logged in from {} ({}{client})",
            self.id,
            user.account.name,
            self.peer.ip(),
            if user.account.writable {
                "read-write"
            } else {
                "read-only"
            }
        );
        self.set_login_state(Login::LoggedIn(user));
        self.cwd = b"/".to_vec();
        self.reply(reply::LOGGED_IN, "Login successful.");
    }

    fn login_failed(&mut self, user: &[u8], now: Instant) {
        info!(
            "[#{}] failed login as {:?} from {}",
            self.id,
            String::from_utf8_lossy(user),
            self.peer.ip()
        );
        self.set_login_state(Login::AwaitUser);
        // SECURITY: the 530 comes after a delay that doubles with each failure (a timer
        // in the loop, never a sleep); the session closes after the last one allowed.
        self.failed_logins = self.failed_logins.saturating_add(1);
        let delay = LOGIN_FAILURE_DELAY_MS << (self.failed_logins - 1).min(8);
        self.login_delay = Some(now + Duration::from_millis(delay));
    }

    pub(super) fn login_user(&self, name: &[u8], password: &[u8]) -> Option<User> {
        let account = self.shared.users.borrow().verify(name, password)?;
        if !self.home_in_sandbox(&account) {
            return None;
        }
        match Jail::open(&account.home) {
            Ok(jail) => Some(User {
                limits: account.settings.limits(&self.shared.config),
                account,
                jail: Rc::new(jail),
            }),
            Err(e) => {
                warn!(
                    "[#{}] home {} of {} unusable: {e}",
                    self.id,
                    account.home.display(),
                    account.name
                );
                None
            }
        }
    }

    /// A home the users file gained at SIGHUP may lie where the sandbox (Landlock) reaches
    /// nothing: the jail would answer EACCES to every command, so the login is refused, and
    /// said so once.
    fn home_in_sandbox(&self, account: &Account) -> bool {
        let Some(trees) = self.shared.sandbox.get() else {
            return true;
        };
        let home = std::fs::canonicalize(&account.home).unwrap_or_else(|_| account.home.clone());
        if trees.admits(&home, account.writable) {
            return true;
        }
        let mode = if account.writable {
            "read-write"
        } else {
            "read-only"
        };
        warn!(
            "[#{}] login of {} refused: home {} lies outside what the sandbox allows {mode} \
             (added since start: restart, or give --sandbox-root a tree holding it)",
            self.id,
            account.name,
            account.home.display()
        );
        false
    }

    pub(super) fn set_login_state(&mut self, login: Login) {
        debug!(
            "[#{}] login: {} => {}",
            self.id,
            login_name(&self.login),
            login_name(&login)
        );
        self.login = login;
    }

    pub(super) fn is_logged_in(&self) -> bool {
        matches!(self.login, Login::LoggedIn(_))
    }

    /// Logged in anonymously: the users file cannot hold the name "anonymous" (auth.rs), so
    /// the account name tells.
    pub(super) fn is_anonymous(&self) -> bool {
        self.user_ref()
            .is_some_and(|user| user.account.name == "anonymous")
    }

    pub(super) fn user_ref(&self) -> Option<&User> {
        match &self.login {
            Login::LoggedIn(user) => Some(user),
            _ => None,
        }
    }

    /// The limits of this session: its user's, or the flags' before login.
    pub(super) fn limits(&self) -> Limits {
        match self.user_ref() {
            Some(user) => user.limits,
            None => auth::Settings::default().limits(&self.shared.config),
        }
    }

    pub(super) fn writable(&self) -> bool {
        self.user_ref().is_some_and(|user| user.account.writable)
    }

    /// The logged-in user's jail; dispatch only calls handlers that need it after the login gate.
    pub(super) fn jail(&self) -> Rc<Jail> {
        match &self.login {
            Login::LoggedIn(user) => user.jail.clone(),
            _ => unreachable!("the login gate runs before every file command"),
        }
    }
}

fn login_name(login: &Login) -> &'static str {
    match login {
        Login::AwaitUser => "await-user",
        Login::AwaitPass { .. } => "await-pass",
        Login::Admitting(_) => "admitting",
        Login::LoggedIn(_) => "logged-in",
    }
}
