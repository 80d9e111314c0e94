//! --workers N: sessions spread over worker processes, limits exact over all of them, a worker's
//! crash loses only its own sessions, signals reach every worker, and the supervisor's
//! descriptors do not grow as workers are restarted.

#[macro_use]
mod common;

use common::*;
use std::net::Ipv4Addr;
use std::path::Path;

/// Starts `--workers n` with `args` and waits until every worker serves.
fn start(n: usize, args: &[&str]) -> Server {
    let count = n.to_string();
    let mut all = vec!["--workers", count.as_str()];
    all.extend_from_slice(args);
    let s = Server::start(&all);
    assert!(
        s.wait_for_log("] serving (pid ", n, START_TIMEOUT),
        "{n} workers serving:\n{}",
        s.log_text()
    );
    s
}

/// The pid of worker `id` as it logged it last ("[w1] serving (pid 123)").
fn worker_pid(s: &Server, id: usize) -> i32 {
    let prefix = format!("[w{id}] serving (pid ");
    s.log_lines()
        .iter()
        .rev()
        .find_map(|line| {
            let rest = &line[line.find(&prefix)? + prefix.len()..];
            rest[..rest.find(')')?].parse().ok()
        })
        .unwrap_or_else(|| panic!("no start of worker {id}:\n{}", s.log_text()))
}

/// Worker `id`'s sessions as the log shows them ("[w1] [#0] connection from").
fn connections_of(s: &Server, id: usize) -> usize {
    let tag = format!("[w{id}] [#");
    s.log_count_where(|line| line.contains(&tag) && line.contains("connection from"))
}

/// Waits until worker `id`'s log shows `n` sessions, and not more.
#[track_caller]
fn wait_connections(s: &Server, id: usize, n: usize) {
    eventually(IO_TIMEOUT, || connections_of(s, id) >= n);
    assert_eq!(connections_of(s, id), n, "worker {id}:\n{}", s.log_text());
}

fn kill(pid: i32, signal: i32) {
    // SAFETY: kill(2) on a worker of the server this test started.
    assert_eq!(
        unsafe { libc::kill(pid, signal) },
        0,
        "kill({pid}, {signal})"
    );
}

/// Waits until worker `id` has been started `n` times.
#[track_caller]
fn wait_started(s: &Server, id: usize, n: usize) {
    let prefix = format!("worker {id} (pid ");
    let started = || s.log_count_where(|l| l.contains(&prefix) && l.ends_with(") started"));
    assert!(
        eventually(IO_TIMEOUT, || started() >= n),
        "{}",
        s.log_text()
    );
    let serving = format!("[w{id}] serving (pid ");
    assert!(s.wait_for_log(&serving, n, IO_TIMEOUT), "{}", s.log_text());
}

fn is_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie has exited; its parent reaps it.
        Ok(stat) => stat.rsplit(") ").next().is_some_and(|f| f.starts_with('Z')),
    }
}

#[test]
fn sessions_go_to_the_least_loaded_worker() {
    let s = start(2, &["-a"]);
    s.put("f.txt", b"hello");
    let mut clients: Vec<Client> = (0..4).map(|_| s.anonymous()).collect();
    for c in &mut clients {
        assert_eq!(c.retr(Mode::Pasv, "f.txt"), b"hello");
    }
    wait_connections(&s, 1, 2);
    wait_connections(&s, 2, 2);
    // A session's transfer lines carry its worker too.
    assert!(s.wait_for_log("RETR /f.txt 5 bytes: 226", 4, IO_TIMEOUT));
    assert_eq!(
        s.log_count_where(|l| l.contains("[w") && l.contains("RETR /f.txt")),
        4
    );
}

/// --max-clients N+1 and --max-per-ip N+1 with N workers: the session past the limit is refused
/// whichever worker it would have gone to, and a slot freed on any worker is free for all.
fn limits_hold_exactly(n: usize) {
    let limit = (n + 1).to_string();
    let s = start(n, &["-a", "--max-clients", &limit]);
    let mut held: Vec<Client> = (0..=n).map(|_| s.anonymous()).collect();
    for _ in 0..2 {
        refused_with_421(&mut Client::connect_raw(s.addr()));
    }
    let other = tcp_connect_from(Ipv4Addr::new(127, 0, 0, 2), s.addr()).unwrap();
    refused_with_421(&mut Client::from_stream(other));
    for id in 1..=n {
        let served = eventually(IO_TIMEOUT, || connections_of(&s, id) >= 1);
        assert!(served, "worker {id} serves:\n{}", s.log_text());
    }
    // One leaves (from the last worker to have taken one): exactly one more is let in.
    let mut gone = held.pop().unwrap();
    gone.expect("QUIT", 221);
    let _ = gone.wait_closed(IO_TIMEOUT);
    let back = eventually(IO_TIMEOUT, || {
        let mut c = Client::connect_raw(s.addr());
        match c.try_reply() {
            Some(r) if r.code == 220 => {
                held.push(c);
                true
            }
            _ => false,
        }
    });
    assert!(back, "a freed slot is taken again");
    refused_with_421(&mut Client::connect_raw(s.addr()));
    for c in &mut held {
        c.expect("NOOP", 200);
    }
    drop(held);
    drop(s);

    let s = start(n, &["-a", "--max-per-ip", &limit]);
    let mut held: Vec<Client> = (0..=n).map(|_| s.anonymous()).collect();
    refused_with_421(&mut Client::connect_raw(s.addr()));
    // Another address has its own count.
    for last in 2..=3 {
        let other = tcp_connect_from(Ipv4Addr::new(127, 0, 0, last), s.addr()).unwrap();
        let mut c = Client::from_stream(other);
        c.reply().expect(220);
        c.login_anonymous();
        held.push(c);
    }
    refused_with_421(&mut Client::connect_raw(s.addr()));
    for c in &mut held {
        c.expect("NOOP", 200);
    }
}

#[test]
fn limits_count_every_session_of_2_workers() {
    limits_hold_exactly(2);
}

#[test]
fn limits_count_every_session_of_4_workers() {
    limits_hold_exactly(4);
}

/// The sandbox goes on in the supervisor before its first fork, so every worker (a restarted
/// one too) runs under it: no_new_privs and both seccomp filters, and a worker forked under
/// the filter still serves.
#[test]
fn the_supervisor_and_every_worker_are_sandboxed_also_after_a_restart() {
    let s = start(2, &["-a"]);
    s.put("f.txt", b"confined");
    let sandboxed = |pid: i32| {
        assert_eq!(status_field(pid, "NoNewPrivs"), "1", "pid {pid}");
        assert_eq!(status_field(pid, "Seccomp"), "2", "pid {pid}");
    };
    sandboxed(s.pid());
    sandboxed(worker_pid(&s, 1));
    sandboxed(worker_pid(&s, 2));
    let first = worker_pid(&s, 1);
    kill(first, libc::SIGKILL);
    wait_started(&s, 1, 2);
    let restarted = worker_pid(&s, 1);
    assert_ne!(restarted, first);
    sandboxed(restarted);
    // Two clients at once: one on each worker, the restarted one included.
    let mut a = s.anonymous();
    let mut b = s.anonymous();
    assert_eq!(a.retr(Mode::Pasv, "f.txt"), b"confined");
    assert_eq!(b.retr(Mode::Pasv, "f.txt"), b"confined");
    wait_connections(&s, 1, 1);
}

#[test]
fn a_killed_worker_loses_only_its_sessions_and_is_replaced() {
    let s = start(2, &["-a", "--max-clients", "2"]);
    s.put("f.txt", b"still here");
    let mut a = s.anonymous();
    let mut b = s.anonymous();
    wait_connections(&s, 1, 1);
    wait_connections(&s, 2, 1);
    let first = worker_pid(&s, 1);
    kill(first, libc::SIGKILL);
    // a was on worker 1: its connection goes with it.
    let _ = a.wait_closed(IO_TIMEOUT);
    assert!(
        s.wait_for_log(
            &format!("worker 1 (pid {first}) died: signal 9"),
            1,
            IO_TIMEOUT
        ),
        "{}",
        s.log_text()
    );
    // b, on worker 2, never notices.
    b.expect("NOOP", 200);
    assert_eq!(b.retr(Mode::Pasv, "f.txt"), b"still here");
    // A new worker 1 serves the next client, and a's count was released (--max-clients 2).
    wait_started(&s, 1, 2);
    assert_ne!(worker_pid(&s, 1), first);
    let mut c = s.anonymous();
    assert_eq!(c.retr(Mode::Pasv, "f.txt"), b"still here");
    assert!(
        s.wait_for_log("[w1] [#0] RETR /f.txt", 1, IO_TIMEOUT),
        "{}",
        s.log_text()
    );
    refused_with_421(&mut Client::connect_raw(s.addr()));
    b.expect("NOOP", 200);
}

/// A users file of `users` ("name" or "name:settings"), password "secret", one home.
fn write_users(path: &Path, home: &Path, users: &[&str]) {
    let hash = hash_password("secret");
    let text: String = users
        .iter()
        .map(|user| {
            let (name, settings) = user.split_once(':').unwrap_or((user, ""));
            let settings = if settings.is_empty() {
                String::new()
            } else {
                format!(":{settings}")
            };
            format!("{name}:{hash}:{}:rw{settings}\n", home.display())
        })
        .collect();
    std::fs::write(path, text).unwrap();
}

/// USER and PASS right, refused all the same: 421, then the close.
#[track_caller]
fn login_refused_421(s: &Server, c: &mut Client, user: &str) {
    c.expect(&format!("USER {user}"), 331);
    let r = c.cmd("PASS secret");
    assert_eq!(r.code, 421, "{:?}\n{}", r.lines, s.log_text());
    assert!(c.wait_closed(IO_TIMEOUT).is_ok(), "closed after 421");
}

#[test]
fn per_user_limits_count_the_sessions_of_every_worker() {
    let users = Users::new(&[]);
    let home = users.dir.mkdir("home");
    write_users(
        &users.file,
        &home,
        &["alice", "bob:max_sessions=2", "carol"],
    );
    let file = users.file_arg();
    let s = start(2, &["-U", &file, "--max-sessions-per-user", "1"]);
    // alice on worker 1; her second session goes to worker 2, which alone would admit it.
    let mut first = s.login("alice", "secret");
    let mut second = s.connect();
    wait_connections(&s, 2, 1);
    login_refused_421(&s, &mut second, "alice");
    // Another account has its own count; the users file's max_sessions=2 beats the flag.
    let _carol = s.login("carol", "secret");
    let _bob = [s.login("bob", "secret"), s.login("bob", "secret")];
    let mut third_bob = s.connect();
    login_refused_421(&s, &mut third_bob, "bob");
    for id in 1..=2 {
        let refused = format!("[w{id}] [#");
        // The client reads its 421 before the worker's log line may be written: wait for it.
        let logged = eventually(IO_TIMEOUT, || {
            s.log_count_where(|l| l.contains(&refused) && l.contains("refused from")) >= 1
        });
        assert!(logged, "refusals on worker {id}:\n{}", s.log_text());
    }
    // alice leaves: her next session logs in, whichever worker takes it.
    first.expect("QUIT", 221);
    let _ = first.wait_closed(IO_TIMEOUT);
    let back = eventually(IO_TIMEOUT, || {
        let mut c = s.connect();
        c.expect("USER alice", 331);
        c.cmd("PASS secret").code == 230
    });
    assert!(back, "{}", s.log_text());
    // A killed worker gives its users' sessions back: bob's two were spread over both.
    let victim = worker_pid(&s, 1);
    kill(victim, libc::SIGKILL);
    wait_started(&s, 1, 2);
    let mut again = s.connect();
    again.login("bob", "secret");
}

#[test]
fn sighup_reloads_the_users_in_every_worker_and_in_the_next_one() {
    let users = Users::new(&[]);
    let home = users.dir.mkdir("home");
    write_users(&users.file, &home, &["alice"]);
    let s = start(2, &["-U", &users.file_arg()]);
    // One session on each worker, not logged in yet.
    let mut on_1 = s.connect();
    let mut on_2 = s.connect();
    wait_connections(&s, 1, 1);
    wait_connections(&s, 2, 1);
    write_users(&users.file, &home, &["alice", "bob"]);
    s.signal(libc::SIGHUP);
    for id in 1..=2 {
        let line = format!("[w{id}] SIGHUP: reloaded 2 users");
        assert!(s.wait_for_log(&line, 1, IO_TIMEOUT), "{}", s.log_text());
    }
    on_1.login("bob", "secret");
    on_2.login("bob", "secret");
    // A worker forked after the SIGHUP starts with the reloaded users too.
    let first = worker_pid(&s, 1);
    kill(first, libc::SIGKILL);
    wait_started(&s, 1, 2);
    drop(on_1);
    // The least loaded: the new worker 1.
    let mut next = s.connect();
    next.login("bob", "secret");
    wait_connections(&s, 1, 2);
    assert!(
        s.wait_for_log("bob logged in", 3, IO_TIMEOUT),
        "{}",
        s.log_text()
    );
    on_2.expect("NOOP", 200);
}

#[test]
fn sigterm_tells_every_session_421_and_every_process_exits_0() {
    let dir = TempDir::new("pid");
    let pid_file = dir.join("leanftpd.pid");
    let pid_arg = pid_file.display().to_string();
    let mut s = start(2, &["-a", "--pid-file", &pid_arg]);
    let supervisor = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(supervisor.trim(), s.pid().to_string());
    let mut clients: Vec<Client> = (0..4).map(|_| s.anonymous()).collect();
    let workers = [worker_pid(&s, 1), worker_pid(&s, 2)];
    s.signal(libc::SIGTERM);
    for c in &mut clients {
        let r = c.try_reply().expect("421 before the close");
        assert_eq!(r.code, 421, "{:?}", r.lines);
        assert!(c.wait_closed(IO_TIMEOUT).is_ok());
    }
    let status = s.wait_exit(IO_TIMEOUT).expect("the supervisor exits");
    assert_eq!(status.code(), Some(0), "{}", s.log_text());
    for pid in workers {
        assert!(is_gone(pid), "worker pid {pid} is gone");
    }
    let stopped = s.wait_for_log("] stopping: closing 2 sessions", 2, IO_TIMEOUT);
    assert!(stopped, "{}", s.log_text());
    assert!(!pid_file.exists(), "the pid file is removed");
}

#[test]
fn sigusr1_logs_the_sum_of_every_worker() {
    let s = start(2, &["-a"]);
    let _logged_in: Vec<Client> = (0..3).map(|_| s.anonymous()).collect();
    let _not_yet = s.connect();
    s.signal(libc::SIGUSR1);
    let line = "status: 4 sessions (1 logging in, 3 idle, 0 transferring)";
    assert!(s.wait_for_log(line, 1, IO_TIMEOUT), "{}", s.log_text());
    assert_eq!(
        s.log_count_where(|l| l.contains(line) && l.ends_with("2 workers")),
        1
    );
}

#[test]
fn sigusr1_keeps_the_bytes_of_ended_sessions_after_their_worker_dies() {
    let s = start(2, &["-a", "-w"]);
    s.put("f.txt", b"still here");
    let mut a = s.anonymous();
    wait_connections(&s, 1, 1);
    assert_eq!(a.retr(Mode::Pasv, "f.txt"), b"still here");
    a.stor(Mode::Pasv, "up.txt", b"abc");
    a.expect("QUIT", 221);
    assert!(
        s.wait_for_log("[w1] [#0] closed", 1, IO_TIMEOUT),
        "{}",
        s.log_text()
    );
    let first = worker_pid(&s, 1);
    kill(first, libc::SIGKILL);
    let died = format!("worker 1 (pid {first}) died: signal 9: 0 sessions lost");
    assert!(s.wait_for_log(&died, 1, IO_TIMEOUT), "{}", s.log_text());
    wait_started(&s, 1, 2);
    // b is on a worker that lives (worker 2 or the new worker 1): its bytes are in its answer.
    let mut b = s.anonymous();
    assert_eq!(b.retr(Mode::Pasv, "f.txt"), b"still here");
    s.signal(libc::SIGUSR1);
    let line = "status: 1 sessions (0 logging in, 1 idle, 0 transferring), 0 transfers running, \
                3 bytes in, 20 bytes out";
    assert!(s.wait_for_log(line, 1, IO_TIMEOUT), "{}", s.log_text());
}

#[test]
fn a_stalled_worker_gets_what_waited_for_it_once_it_runs_again() {
    let s = start(2, &["-a", "--max-clients", "2000", "--max-per-ip", "2000"]);
    let stalled = worker_pid(&s, 1);
    kill(stalled, libc::SIGSTOP);
    // Connections go to the least-loaded worker: about half to worker 1, until its channel is
    // full of them (the next go to worker 2).
    let handed_elsewhere = |l: &str| l.contains("worker 1 is not reading its channel");
    let mut waiting = Vec::new();
    while s.log_count_where(handed_elsewhere) == 0 {
        assert!(waiting.len() < 1500, "worker 1's channel never filled");
        for _ in 0..10 {
            waiting.push(std::net::TcpStream::connect(s.addr()).expect("connect"));
        }
    }
    // The status question cannot go in now: it waits in the supervisor.
    s.signal(libc::SIGUSR1);
    let full = "worker 1's channel is full: what it is told waits";
    assert!(s.wait_for_log(full, 1, IO_TIMEOUT), "{}", s.log_text());
    kill(stalled, libc::SIGCONT);
    let status = s.wait_for_line("status: ");
    assert!(status.ends_with(", 2 workers"), "{status}");
    // Every connection is served, worker 1's too, and it takes the next ones again. They stay
    // open meanwhile: worker 1 holds no more sessions than worker 2 (it took every other one
    // until its channel filled), so the next goes to worker 1.
    let mut served: Vec<Client> = waiting.into_iter().map(Client::from_stream).collect();
    for client in served.iter_mut() {
        assert_eq!(client.reply().code, 220);
    }
    let mut more: Vec<Client> = (0..4).map(|_| s.anonymous()).collect();
    assert!(
        s.wait_for_log("worker 1 takes connections again", 1, IO_TIMEOUT),
        "{}",
        s.log_text()
    );
    more[0].expect("NOOP", 200);
    assert_eq!(
        s.log_count_where(|l| l.contains("worker 1 is not reading its channel")),
        1
    );
}

#[test]
fn with_every_worker_stalled_new_connections_wait_and_none_is_refused() {
    let s = start(2, &["-a", "--max-clients", "3000", "--max-per-ip", "3000"]);
    let pids = [worker_pid(&s, 1), worker_pid(&s, 2)];
    for pid in pids {
        kill(pid, libc::SIGSTOP);
    }
    let stalled = |l: &str| l.contains("is not reading its channel");
    let mut waiting = Vec::new();
    while s.log_count_where(stalled) < 2 {
        assert!(waiting.len() < 2000, "the channels never filled");
        for _ in 0..10 {
            waiting.push(std::net::TcpStream::connect(s.addr()).expect("connect"));
        }
    }
    // These find both channels full: they wait (one held, the rest in the listen backlog).
    for _ in 0..20 {
        waiting.push(std::net::TcpStream::connect(s.addr()).expect("connect"));
    }
    for pid in pids {
        kill(pid, libc::SIGCONT);
    }
    let mut served: Vec<Client> = waiting.into_iter().map(Client::from_stream).collect();
    for client in served.iter_mut() {
        assert_eq!(client.reply().code, 220);
    }
    assert_eq!(s.log_count("No worker can take"), 0, "{}", s.log_text());
    assert!(
        s.wait_for_log("takes connections again", 2, IO_TIMEOUT),
        "{}",
        s.log_text()
    );
}

#[test]
fn the_supervisor_holds_no_more_descriptors_after_three_restarts() {
    let s = start(2, &["-a"]);
    let supervisor_fds = s.fd_count();
    let worker_fds = fd_count(worker_pid(&s, 1));
    for round in 2..=4 {
        let pid = worker_pid(&s, 1);
        kill(pid, libc::SIGKILL);
        wait_started(&s, 1, round);
        // The worker may log that it serves before its parent has closed the child's end of
        // the new channel: a moment, then the counts are what they were.
        eventually(IO_TIMEOUT, || s.fd_count() == supervisor_fds);
        assert_eq!(
            s.fd_count(),
            supervisor_fds,
            "supervisor after restart {}",
            round - 1
        );
        // The new worker holds what the first did: no other worker's channel, no listener.
        assert_eq!(
            fd_count(worker_pid(&s, 1)),
            worker_fds,
            "worker after restart {}",
            round - 1
        );
    }
    let mut c = s.anonymous();
    c.expect("NOOP", 200);
}

#[test]
fn workers_stop_when_the_supervisor_is_killed() {
    let mut s = start(2, &["-a"]);
    let mut on_1 = s.anonymous();
    let mut on_2 = s.anonymous();
    wait_connections(&s, 2, 1);
    let workers = [worker_pid(&s, 1), worker_pid(&s, 2)];
    // Stopped, the supervisor reads nothing: worker 1's word that a session ended waits unread
    // in its socket, so that its end is a reset (ECONNRESET) for worker 1, not an EOF.
    s.signal(libc::SIGSTOP);
    on_1.expect("QUIT", 221);
    assert!(
        s.wait_for_log("[w1] [#0] closed", 1, IO_TIMEOUT),
        "{}",
        s.log_text()
    );
    s.signal(libc::SIGKILL);
    s.wait_exit(IO_TIMEOUT).expect("the supervisor is gone");
    let r = on_2.try_reply().expect("421 from worker 2");
    assert_eq!(r.code, 421, "{:?}", r.lines);
    assert!(
        eventually(IO_TIMEOUT, || workers.iter().all(|&pid| is_gone(pid))),
        "both workers stop:\n{}",
        s.log_text()
    );
}

#[test]
fn workers_auto_starts_one_per_cpu_the_process_may_use() {
    // What sched_getaffinity says, as the kernel lists it ("0-1", "0,2-5").
    let allowed = status_field(std::process::id() as i32, "Cpus_allowed_list");
    let cpus: usize = allowed
        .trim()
        .split(',')
        .map(|range| match range.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum();
    let s = Server::start(&["-a", "--workers", "auto"]);
    if cpus == 1 {
        // One CPU: the one process of old, no supervisor.
        assert_eq!(s.log_count("serving (pid"), 0);
    } else {
        assert!(
            s.wait_for_log("] serving (pid ", cpus, START_TIMEOUT),
            "{}",
            s.log_text()
        );
        let started = || s.log_count_where(|l| l.starts_with("INFO") && l.ends_with(") started"));
        eventually(IO_TIMEOUT, || started() >= cpus);
        assert_eq!(started(), cpus, "{}", s.log_text());
    }
    s.anonymous().expect("NOOP", 200);
}

#[test]
fn bad_workers_values_and_combinations_exit_2() {
    for bad in ["0", "-1", "abc", "257", ""] {
        refuses(&["-a", "--workers", bad], &["--workers", "auto"]);
    }
    refuses(
        &["-a", "--inetd", "--workers", "2"],
        &["--inetd", "--workers"],
    );
    for flag in ["--max-rate-total-down", "--max-rate-total-up"] {
        refuses(
            &["-a", "--workers", "2", flag, "1M"],
            &[flag, "--workers 2"],
        );
    }
    // One worker is the one process: every flag applies.
    let s = Server::start(&["-a", "--workers", "1", "--max-rate-total-down", "1M"]);
    assert_eq!(s.log_count("serving (pid"), 0);
    s.anonymous().expect("NOOP", 200);
}
