use super::*;

fn parse(text: &str) -> Result<Request, FrameError> {
    parse_request(text.as_bytes())
}

#[test]
fn requests_on_the_wire() {
    assert_eq!(parse(r#"{"v":1,"op":"ping"}"#), Ok(Request::new(Op::Ping {})));
    assert_eq!(
        parse(r#"{"v":1,"op":"status","names":["web","db"]}"#),
        Ok(Request::new(Op::Status {
            names: vec!["web".into(), "db".into()],
            batched: false
        }))
    );
    assert_eq!(
        parse(r#"{"v":1,"op":"status"}"#),
        Ok(Request::new(Op::Status {
            names: vec![],
            batched: false
        }))
    );
    assert_eq!(
        parse(r#"{"v":1,"op":"status","batched":true}"#),
        Ok(Request::new(Op::Status {
            names: vec![],
            batched: true
        }))
    );
    assert_eq!(
        parse(r#"{"op":"start","name":"web","v":1}"#),
        Ok(Request::new(Op::Start {
            name: "web".into(),
            no_block: false
        }))
    );
    assert_eq!(
        parse(r#"{"v":1,"op":"wait","names":["a"],"for":"ready","timeout_ms":500}"#),
        Ok(Request::new(Op::Wait {
            names: vec!["a".into()],
            state: WaitFor::State(ServiceState::Ready),
            timeout_ms: Some(500)
        }))
    );
}

#[test]
fn every_request_round_trips() {
    let ops = [
        Op::Ping {},
        Op::Version {},
        Op::Reload {},
        Op::Shutdown {},
        Op::Health {},
        Op::Events {},
        Op::Signal {
            name: "a".into(),
            signal: "HUP".into(),
        },
        Op::Logs {
            name: Some("a".into()),
            lines: Some(3),
            follow: true,
        },
        Op::Restart {
            name: "a".into(),
            no_block: true,
        },
        Op::Stop {
            name: "a".into(),
            no_block: false,
        },
        Op::Exec(Exec {
            argv: vec!["sh".into()],
            tty: true,
            size: Some((24, 80)),
            env: vec!["TERM=xterm".into()],
            ..Exec::default()
        }),
    ];
    for op in ops {
        let request = Request::new(op);
        let line = serde_json::to_vec(&request).unwrap();
        assert_eq!(parse_request(&line), Ok(request));
    }
}

#[test]
fn bad_requests_say_why() {
    let malformed = |text: &str| matches!(parse(text), Err(FrameError::Malformed(_)));
    assert!(malformed("garbage"));
    assert!(malformed(r#"{"op":"ping"}"#), "no version");
    assert!(malformed(r#"{"v":1,"op":"fly"}"#), "unknown op");
    assert!(malformed(r#"{"v":1,"op":"start"}"#), "missing name");
    assert!(malformed(r#"{"v":1,"op":"ping","extra":1}"#), "unknown field");
    assert_eq!(parse(r#"{"v":2,"op":"ping"}"#), Err(FrameError::Version { got: 2 }));
    let reply = FrameError::Version { got: 2 }.reply();
    assert!(matches!(
        reply.body,
        Body::Error {
            code: code::VERSION,
            ..
        }
    ));
    assert!(!reply.ok);
}

#[test]
fn replies_on_the_wire() {
    let line = Reply::error(code::NO_SUCH_UNIT, "no service named x").to_line();
    assert_eq!(
        String::from_utf8(line).unwrap(),
        "{\"ok\":false,\"kind\":\"error\",\"error\":\"no service named x\",\"code\":4}\n"
    );
    let line = Reply::ok(Body::Done { message: None }).to_line();
    assert_eq!(
        String::from_utf8(line.clone()).unwrap(),
        "{\"ok\":true,\"kind\":\"done\"}\n"
    );
    let reply = Reply::ok(Body::Status {
        services: vec![ServiceInfo {
            name: "web".into(),
            state: ServiceState::Ready,
            pid: Some(7),
            since_ms: 5,
            restarts: 1,
            last_exit: Some("exited with code 1".into()),
            status_text: None,
            detail: None,
            next_run_ms: Some(1_796_000_000_000),
            health: Some(crate::supervisor::Health::Healthy),
            oom_kills: 2,
            memory_bytes: Some(4096),
            cpu_usec: Some(1500),
            tasks: Some(3),
        }],
        more: false,
    });
    let line = reply.to_line();
    assert!(!String::from_utf8_lossy(&line).contains("more"));
    assert_eq!(parse_reply(&line[..line.len() - 1]), Ok(reply));
    // A batch that more follow, by the fast path and by the full reader.
    let batch = Reply::ok(Body::Status {
        services: Vec::new(),
        more: true,
    });
    let line = batch.to_line();
    assert_eq!(
        String::from_utf8(line.clone()).unwrap(),
        "{\"ok\":true,\"kind\":\"status\",\"services\":[],\"more\":true}\n"
    );
    assert_eq!(parse_reply(&line[..line.len() - 1]), Ok(batch.clone()));
    let reordered = br#"{"kind":"status","more":true,"ok":true,"services":[]}"#;
    assert_eq!(parse_reply(reordered), Ok(batch));
}

#[test]
fn framer_splits_lines_across_reads() {
    let mut framer = Framer::default();
    framer.feed(b"{\"a\":1}\n{\"b\"");
    assert_eq!(framer.next_frame(), Ok(Some(b"{\"a\":1}".to_vec())));
    assert_eq!(framer.next_frame(), Ok(None));
    framer.feed(b":2}\n\n");
    assert_eq!(framer.next_frame(), Ok(Some(b"{\"b\":2}".to_vec())));
    assert_eq!(framer.next_frame(), Ok(Some(Vec::new())));
    assert_eq!(framer.next_frame(), Ok(None));
    assert_eq!(framer.pending(), 0);
}

/// Found by fuzz/ctl_frames: taking a frame moved every byte after it, so
/// one read of N short requests (a client pipelining pings) cost O(N²)
/// copying in PID 1. Frames are now taken in place; the rest is moved once,
/// at the next feed.
#[test]
fn framer_takes_frames_in_place() {
    let mut framer = Framer::default();
    framer.feed(&b"{}\n".repeat(1000));
    let held = framer.buf.len();
    for _ in 0..1000 {
        assert_eq!(framer.next_frame(), Ok(Some(b"{}".to_vec())));
    }
    assert_eq!(framer.buf.len(), held, "the bytes after a frame were moved");
    assert_eq!((framer.next_frame(), framer.pending()), (Ok(None), 0));
    framer.feed(b"{\"a\":1}\n{");
    assert_eq!(framer.next_frame(), Ok(Some(b"{\"a\":1}".to_vec())));
    assert_eq!((framer.next_frame(), framer.pending()), (Ok(None), 1));
}

#[test]
fn framer_refuses_huge_frames() {
    let mut framer = Framer::default();
    framer.feed(&vec![b'x'; MAX_FRAME - 1]);
    assert_eq!(framer.next_frame(), Ok(None));
    framer.feed(b"x");
    assert_eq!(framer.next_frame(), Err(FrameError::TooLong { limit: MAX_FRAME }));

    let mut framer = Framer::default();
    let mut big = vec![b'x'; MAX_FRAME];
    big.push(b'\n');
    framer.feed(&big);
    assert_eq!(framer.next_frame(), Err(FrameError::TooLong { limit: MAX_FRAME }));
}

#[test]
fn wait_states() {
    use ServiceState as S;
    let w = |word: &str| word.parse::<WaitFor>().unwrap();
    assert!(w("running").met_by(S::Ready));
    assert!(w("running").met_by(S::Running));
    assert!(!w("ready").met_by(S::Running));
    assert!(w("stopped").met_by(S::Failed));
    assert!(!w("stopped").met_by(S::Stopping));
    assert!(w("failed").met_by(S::Failed));
    // every state word, and the groups
    for state in S::ALL {
        assert!(w(&state.to_string()).met_by(state), "{state}");
    }
    assert!(w("exited").met_by(S::Exited));
    assert!(!w("exited").met_by(S::Failed));
    assert!(w("down").met_by(S::Exited) && w("up").met_by(S::Ready) && !w("up").met_by(S::Starting));
    let err = "nope".parse::<WaitFor>().unwrap_err();
    assert!(
        err.contains("starting, running, ready, stopping, exited, failed, invalid, disabled; up, down"),
        "{err}"
    );
}

#[test]
fn states_have_one_spelling() {
    for state in ServiceState::ALL {
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(json, format!("\"{state}\""));
        assert_eq!(state.to_string().parse::<ServiceState>().unwrap(), state);
    }
    let wait: WaitFor = "exited".parse().unwrap();
    assert_eq!(wait, WaitFor::State(ServiceState::Exited));
    assert_eq!(serde_json::to_string(&WaitFor::Group(Group::Up)).unwrap(), "\"up\"");
}

#[test]
fn reply_framer_takes_what_a_request_framer_refuses() {
    let mut line = vec![b'x'; 2 * MAX_FRAME];
    line.push(b'\n');
    let mut requests = Framer::default();
    requests.feed(&line);
    assert_eq!(requests.next_frame(), Err(FrameError::TooLong { limit: MAX_FRAME }));
    let mut replies = Framer::with_limit(MAX_REPLY);
    replies.feed(&line);
    assert_eq!(
        replies.next_frame().map(|l| l.map(|l| l.len())),
        Ok(Some(2 * MAX_FRAME))
    );
}

#[test]
fn a_wait_timeout_past_the_longest_duration_is_refused() {
    let line = format!(
        r#"{{"v":1,"op":"wait","names":["a"],"for":"ready","timeout_ms":{}}}"#,
        u64::MAX
    );
    match parse(&line) {
        Err(FrameError::Malformed(why)) => assert!(why.contains("timeout_ms"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_status_reply_reads_the_same_by_the_short_way() {
    let lines: &[&[u8]] = &[
        br#"{"ok":true,"kind":"status","services":[]}"#,
        br#"{"ok":true,"kind":"status","services":[{"name":"a","state":"ready","pid":2,"since_ms":5,"restarts":0,"tasks":1,"new":"x"}],"extra":1}"#,
        br#"{"ok":true,"kind":"status","services":[],"more":true}"#,
        br#"{"ok":true,"kind":"status","services":[{"name":"a","state":"exited","since_ms":5,"restarts":3,"last_exit":"exited with code 1","health":"unhealthy","oom_kills":1,"memory_bytes":9,"cpu_usec":7,"next_run_ms":1}]}"#,
    ];
    for line in lines {
        let full: Reply = serde_json::from_slice(line).unwrap();
        assert_eq!(super::parse_status_reply(line).as_ref(), Some(&full));
    }
    // Other lines, and status lines in another order, go the long way.
    let others: &[&[u8]] = &[
        br#"{"kind":"status","ok":true,"services":[]}"#,
        br#"{"ok":true,"kind":"status","services":[{"name":"a"}]}"#,
        br#"{"ok":true,"kind":"pong"}"#,
    ];
    for line in others {
        assert_eq!(super::parse_status_reply(line), None);
    }
    assert!(parse_reply(others[0]).is_ok());
    assert!(parse_reply(others[1]).is_err());
}

/// Requests read as serde's derived code read them before `request`
/// replaced it (found by comparing both on some 29,000 requests): the same
/// messages, and the odd forms it took.
#[test]
fn requests_read_as_serde_read_them() {
    let cases = [
        ("\"op\":1", "malformed request: invalid type: integer `1`, expected variant identifier"),
        ("\"op\":null", "malformed request: invalid type: null, expected variant identifier"),
        ("\"names\":[\"a\"]", "malformed request: missing field `op`"),
        ("\"op\":\"fly\"", "malformed request: unknown variant `fly`, expected one of `ping`, `version`, `status`, `start`, `stop`, `restart`, `signal`, `logs`, `reload`, `shutdown`, `wait`, `health`, `events`, `exec`, `kill`"),
        ("\"op\":\"ping\",\"x\":1", "malformed request: unknown field `x`, there are no fields"),
        ("\"op\":\"start\",\"name\":\"a\",\"x\":1", "malformed request: unknown field `x`, expected `name` or `no_block`"),
        ("\"op\":\"start\"", "malformed request: missing field `name`"),
        ("\"op\":\"start\",\"name\":1", "malformed request: invalid type: integer `1`, expected a string"),
        ("\"op\":\"start\",\"name\":\"a\",\"no_block\":null", "malformed request: invalid type: null, expected a boolean"),
        ("\"op\":\"logs\",\"lines\":-1", "malformed request: invalid value: integer `-1`, expected usize"),
        ("\"op\":\"logs\",\"lines\":1.5", "malformed request: invalid type: floating point `1.5`, expected usize"),
        ("\"op\":\"logs\",\"name\":null,\"lines\":null", "Logs { name: None, lines: None, follow: false }"),
        ("\"op\":\"wait\",\"for\":\"up\"", "malformed request: missing field `names`"),
        ("\"op\":\"wait\",\"names\":[\"a\"]", "malformed request: missing field `for`"),
        ("\"op\":\"wait\",\"names\":[\"a\"],\"for\":\"sleeping\"", "malformed request: data did not match any variant of untagged enum WaitFor"),
        ("\"op\":\"wait\",\"names\":[\"a\"],\"for\":{\"running\":null}", "Wait { names: [\"a\"], state: State(Running), timeout_ms: None }"),
        ("\"op\":\"wait\",\"names\":[\"a\"],\"for\":\"up\",\"timeout_ms\":-5", "malformed request: invalid value: integer `-5`, expected u64"),
        ("\"op\":\"exec\"", "malformed request: missing field `argv`"),
        ("\"op\":\"exec\",\"argv\":[\"sh\"],\"size\":[1]", "malformed request: invalid length 1, expected a tuple of size 2"),
        ("\"op\":\"exec\",\"argv\":[\"sh\"],\"size\":[1,2,3]", "malformed request: invalid length 3, expected 2 elements in sequence"),
        ("\"op\":\"exec\",\"argv\":[\"sh\"],\"size\":[70000,1]", "malformed request: invalid value: integer `70000`, expected u16"),
        ("\"op\":\"exec\",\"argv\":[\"sh\"],\"size\":[1,-1]", "malformed request: invalid value: integer `-1`, expected u16"),
        ("\"op\":\"exec\",\"argv\":[\"sh\"],\"size\":\"24x80\"", "malformed request: invalid type: string \"24x80\", expected a tuple of size 2"),
        ("\"op\":\"signal\",\"name\":\"a\"", "malformed request: missing field `signal`"),
        ("\"op\":\"kill\",\"signal\":1e300", "malformed request: invalid type: floating point `1e+300`, expected a string"),
    ];
    for (body, want) in cases {
        let got = match parse(&format!("{{\"v\":1,{body}}}")) {
            Ok(request) => format!("{:?}", request.op),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, want, "{body}");
    }
}

/// Replies read as serde's derived code read them before `reply` replaced
/// it (found by comparing both on some 9,400 lines): the same messages at
/// the same positions, and the odd forms it took.
#[test]
fn replies_read_as_serde_read_them() {
    let cases = [
        ("{\"kind\":\"pong\"}", "missing field `ok` at line 1 column 15"),
        ("{\"ok\":1,\"kind\":\"pong\"}", "invalid type: integer `1`, expected a boolean at line 1 column 7"),
        ("{\"ok\":true,\"ok\":true,\"kind\":\"pong\"}", "duplicate field `ok` at line 1 column 15"),
        ("[true]", "invalid type: sequence, expected struct Reply at line 1 column 0"),
        ("{\"ok\":true}", "missing field `kind` at line 1 column 11"),
        ("{\"ok\":true,\"kind\":\"fly\"}", "unknown variant `fly`, expected one of `error`, `done`, `pong`, `version`, `status`, `health`, `log`, `end`, `event`, `started`, `exited` at line 1 column 24"),
        ("{\"ok\":true,\"kind\":2}", "Reply { ok: true, body: Pong }"),
        ("{\"ok\":true,\"kind\":11}", "invalid value: integer `11`, expected variant index 0 <= i < 11 at line 1 column 21"),
        ("{\"ok\":true,\"kind\":\"pong\",\"kind\":\"end\"}", "duplicate field `kind` at line 1 column 38"),
        ("{\"ok\":false,\"kind\":\"error\",\"code\":\"x\",\"error\":2}", "invalid type: string \"x\", expected i32 at line 1 column 48"),
        ("{\"ok\":false,\"kind\":\"error\",\"error\":\"e\"}", "missing field `code` at line 1 column 39"),
        ("{\"ok\":false,\"kind\":\"error\",\"error\":\"e\",\"code\":2147483648}", "invalid value: integer `2147483648`, expected i32 at line 1 column 57"),
        ("{\"ok\":true,\"kind\":\"version\",\"version\":\"1\",\"protocol\":-1}", "invalid value: integer `-1`, expected u32 at line 1 column 56"),
        ("{\"ok\":true,\"kind\":\"log\",\"line\":\"a\",\"line\":\"b\"}", "duplicate field `line` at line 1 column 46"),
        ("{\"ok\":true,\"kind\":\"event\",\"service\":{\"name\":\"a\",\"state\":{\"ready\":{}},\"since_ms\":1,\"restarts\":0},\"from\":null}", "Reply { ok: true, body: Event { service: ServiceInfo { name: \"a\", state: Ready, pid: None, since_ms: 1, restarts: 0, last_exit: None, status_text: None, detail: None, next_run_ms: None, health: None, oom_kills: 0, memory_bytes: None, cpu_usec: None, tasks: None }, from: None, at_ms: 0, removed: false } }"),
        ("{\"ok\":true,\"kind\":\"event\",\"service\":[\"a\",\"running\",null,1,0],\"from\":{\"a\":1,\"b\":2}}", "invalid value: map, expected map with a single key at line 1 column 82"),
        ("{\"ok\":true,\"kind\":\"status\",\"services\":[[\"a\",\"running\"]]}", "invalid length 3, expected struct ServiceInfo with 14 elements at line 1 column 56"),
        ("{\"ok\":true,\"kind\":\"status\",\"services\":[{\"name\":\"a\",\"state\":\"sleeping\",\"since_ms\":1,\"restarts\":0}]}", "unknown variant `sleeping`, expected one of `starting`, `running`, `ready`, `stopping`, `exited`, `failed`, `invalid`, `disabled` at line 1 column 98"),
        ("{\"ok\":true,\"kind\":\"status\",\"services\":[{\"name\":\"a\",\"state\":\"running\",\"since_ms\":1}]}", "missing field `restarts` at line 1 column 84"),
        (" { \"ok\" : true , \"kind\" : \"done\" , \"message\" : 1 } ", "invalid type: integer `1`, expected a string at line 1 column 50"),
    ];
    for (line, want) in cases {
        let got = match serde_json::from_slice::<Reply>(line.as_bytes()) {
            Ok(reply) => format!("{reply:?}"),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, want, "{line}");
    }
}
