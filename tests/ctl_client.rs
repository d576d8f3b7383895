//! `tend ctl` against a control socket the test plays: what the client
//! does with a tend of another version. No root needed.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Output};
use std::thread;

use common::*;

/// `tend ctl status` against a socket whose listener `serve` answers on a
/// thread of its own; what the client did, and what `serve` returned.
fn status_against<T: Send + 'static>(tag: &str, serve: impl FnOnce(UnixListener) -> T + Send + 'static) -> (Output, T) {
    let dir = TempDir::new(tag);
    let socket = dir.path("ctl.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let server = thread::spawn(move || serve(listener));
    let out = output(
        Command::new(tend())
            .arg("ctl")
            .arg("--socket")
            .arg(&socket)
            .arg("status"),
    );
    (out, server.join().unwrap())
}

/// The next connection and the request line it sent.
fn accept_request(listener: &UnixListener) -> (UnixStream, String) {
    let (conn, _) = listener.accept().unwrap();
    let mut line = String::new();
    BufReader::new(conn.try_clone().unwrap()).read_line(&mut line).unwrap();
    (conn, line)
}

/// A tend from before batched `status` replies refuses the field and hangs
/// up (as its request reader refused any unknown field); the client asks
/// again without it and shows the one reply.
#[test]
fn status_asks_a_tend_without_batches_again_without_them() {
    let (out, asked) = status_against("ctl-client", |listener| {
        let answers = [
            "{\"ok\":false,\"kind\":\"error\",\"error\":\"unknown field `batched`, expected `names`\",\"code\":2}\n",
            "{\"ok\":true,\"kind\":\"status\",\"services\":[{\"name\":\"web\",\"state\":\"ready\",\"pid\":7,\"since_ms\":5120,\"restarts\":0}]}\n",
        ];
        let mut asked = Vec::new();
        for answer in answers {
            let (mut conn, line) = accept_request(&listener);
            asked.push(line);
            conn.write_all(answer.as_bytes()).unwrap();
        }
        asked
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(asked[0].contains("\"batched\":true"), "{asked:?}");
    assert!(!asked[1].contains("batched"), "{asked:?}");
    assert!(stdout.starts_with("web  ready     pid 7"), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}

/// A socket that never ends its batches (`--pid` reaches a socket in the
/// container's own tree, which root inside may replace): the client stops
/// at the first empty batch that says more follow, with one line, instead
/// of reading forever.
#[test]
fn endless_empty_batches_end_the_status_with_an_error() {
    let (out, ()) = status_against("ctl-client-endless", |listener| {
        let (mut conn, _) = accept_request(&listener);
        let batch = b"{\"ok\":true,\"kind\":\"status\",\"services\":[],\"more\":true}\n";
        // Until the client hangs up.
        while conn.write_all(batch).is_ok() {}
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("an empty batch"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
