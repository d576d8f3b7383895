//! `tend boot --net veth|bridge|ns:PATH` and `--publish`, for real. Every
//! test runs a bash script under `unshare -n` (and `-m`): that namespace
//! plays the host; where needed a second one, made inside it, plays "the
//! outside" (192.0.2.0/24 between them). Nothing touches the real host
//! network. Scripts print `ok NAME` or `FAIL NAME`; the container's checks
//! print into the same output. Needs root, `ip` and `nft`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(90);

/// Shell helpers: checks, awaiting with a deadline, the state compared
/// before and after, the outside namespace, and the container's address.
const PRELUDE: &str = r#"
set -u
check() { n=$1; shift; if "$@" >/dev/null 2>&1; then echo "ok $n"; else echo "FAIL $n"; fi; }
# Polls a condition every 50 ms for at most 20 s.
await() { n=$1; shift; i=0; until "$@" >/dev/null 2>&1; do i=$((i+1)); if [ $i -gt 400 ]; then echo "FAIL await-$n"; return 1; fi; sleep 0.05; done; }
# IPv4 addresses: IPv6 link-local ones change flags on their own (DAD).
state() { ip -o link | sed 's/^[0-9]*: //'; ip -o -4 addr | sed 's/^[0-9]*: //'; ip route; nft list ruleset; cat /proc/sys/net/ipv4/ip_forward; }
addr_of() { "$T" list | awk -v n="$1" '$1 == n { print $(NF-1) }'; }
other_ns() { test "$(readlink /proc/$1/ns/net)" != "$(readlink /proc/self/ns/net)"; }
has_addr() { test -n "$(addr_of "$1" | grep -v -x -- -)"; }
# "The outside": a namespace behind up0, 192.0.2.2, with a web server
# whose /cgi-bin/ip answers the client's address as it sees it.
outside() {
    unshare -n sleep 1000 & OUT=$!
    await outside-ns other_ns $OUT
    ip link add up0 type veth peer name eth0 netns $OUT
    ip addr add 192.0.2.1/24 dev up0; ip link set up0 up
    mkdir -p "$W/out/cgi-bin"
    printf '#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "$REMOTE_ADDR"\n' > "$W/out/cgi-bin/ip"
    chmod +x "$W/out/cgi-bin/ip"
    nsenter -t $OUT -n sh -c 'ip link set lo up; ip addr add 192.0.2.2/24 dev eth0; ip link set eth0 up'
    nsenter -t $OUT -n busybox httpd -f -p 80 -h "$W/out" & OUTHTTP=$!
    await outside-up nsenter -t $OUT -n busybox wget -q -O- http://192.0.2.2/cgi-bin/ip
}
ip link set lo up
"#;

/// A demo rootfs, a scratch dir and a script run in a new network and
/// mount namespace; returns its output.
fn run_net(tag: &str, body: &str) -> String {
    run_net_as(tag, body, false)
}

/// As [`run_net`]; `rootless`: the scratch dir and rootfs belong to the
/// rootless user, whose name is in `$U` and runtime dir in `$X`.
fn run_net_as(tag: &str, body: &str, rootless: bool) -> String {
    let dir = TempDir::new(tag);
    let rootfs = dir.path("rootfs");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-template/build");
    let mut build = Command::new(&script);
    // The rootless user is made for this test and removed after it.
    let user = rootless.then(|| TestUser::new("net"));
    if user.is_none() {
        // Out of other users' reach, as a rootfs should be (else tend boot
        // warns, and the bad-input checks want one line).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    if let Some(user) = &user {
        std::os::unix::fs::chown(&dir.0, Some(user.uid), Some(user.gid)).unwrap();
        std::fs::create_dir(dir.path("xdg")).unwrap();
        std::os::unix::fs::chown(dir.path("xdg"), Some(user.uid), Some(user.gid)).unwrap();
        build = Command::new("runuser");
        build.args(["-u", &user.name, "--"]).arg(&script);
    }
    let built = output(build.arg(&rootfs));
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let log = dir.path("log");
    let mut cmd = Command::new("unshare");
    cmd.args(["-n", "-m", "--propagation", "private", "--", "bash", "-c"])
        .arg(format!("{PRELUDE}\n{body}"))
        .env("T", tend())
        .env("R", &rootfs)
        .env("W", dir.path(""))
        .env("U", user.as_ref().map_or("", |u| u.name.as_str()))
        .env("X", dir.path("xdg"))
        .env_remove("RUST_BACKTRACE")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null());
    // One file for both, appended in order.
    let file = std::fs::File::create(&log).unwrap();
    cmd.stdout(file.try_clone().unwrap()).stderr(file);
    let mut child = cmd.spawn().unwrap();
    let code = exit_code_within(&mut child, LIMIT);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(code, 0, "script failed:\n{text}");
    text
}

fn assert_ok(out: &str, names: &[&str]) {
    assert!(!out.contains("FAIL"), "failed checks:\n{out}");
    for name in names {
        assert!(out.contains(&format!("ok {name}\n")), "check {name} missing:\n{out}");
    }
}

/// Writes the container's script into the rootfs: an httpd on port 80
/// serving NAME, the checks given, then waiting to be stopped.
const CONTAINER: &str = r#"
container() { # NAME CHECKS...
    cat > "$R/$1.sh" <<INNER
mkdir -p /tmp/www && echo "page of $1" > /tmp/www/index.html && httpd -p 80 -h /tmp/www
check() { n=\$1; shift; if "\$@" >/dev/null 2>&1; then echo "ok \$n"; else echo "FAIL \$n"; fi; }
$2
echo "done $1"
exec sleep 1000
INNER
}
"#;

#[test]
fn veth_reaches_both_ways_nat_and_publish_root() {
    let out = run_net(
        "veth",
        &format!(
            "{CONTAINER}{}",
            r#"
before=$(state)
outside
mkdir -p "$W/host"; echo host-page > "$W/host/index.html"
busybox httpd -f -p 8000 -h "$W/host" & HOSTHTTP=$!
container web '
gw=$(ip route | awk "/default/ { print \$3 }")
check container-reaches-host sh -c "wget -q -O- http://$gw:8000/ | grep -q host-page"
check outside-sees-the-host sh -c "wget -q -O- http://192.0.2.2/cgi-bin/ip | grep -q \"192.0.2.1]\""
check hairpin sh -c "wget -q -O- http://$gw:8080/ | grep -q \"page of web\""
check loopback-up sh -c "wget -q -O- http://127.0.0.1/ | grep -q \"page of web\""
'
"$T" boot "$R" --name net-veth --hostname web --net veth --publish 8080:80 -- sh /web.sh & BOOT=$!
await listed has_addr net-veth
A=$(addr_of net-veth)
check address-in-pool sh -c "echo $A | grep -q '^10\.231\.'"
check hosts-line grep -q "^$A	web$" "$R/etc/hosts"
# The rootfs had no resolv.conf: the host's, without loopback servers.
servers=$(grep '^nameserver' /etc/resolv.conf | grep -v -e ' 127\.' -e ' ::1')
check resolv-conf sh -c "if [ -n '$servers' ]; then grep -q '$servers' '$R/etc/resolv.conf'; else ! test -e '$R/etc/resolv.conf'; fi"
await host-reaches-container sh -c "busybox wget -q -O- http://$A/ | grep -q 'page of web'"
check publish-from-localhost sh -c "busybox wget -q -O- http://127.0.0.1:8080/ | grep -q 'page of web'"
check publish-from-host-address sh -c "busybox wget -q -O- http://192.0.2.1:8080/ | grep -q 'page of web'"
check publish-from-outside sh -c "nsenter -t $OUT -n busybox wget -q -O- http://192.0.2.1:8080/ | grep -q 'page of web'"
check forwarding-on test "$(cat /proc/sys/net/ipv4/ip_forward)" = 1
# The container's own checks run on their own: stop it once they are done.
await container-checks grep -qx "done web" "$W/log"
kill -TERM $BOOT; wait $BOOT
kill $HOSTHTTP $OUTHTTP $OUT; wait
ip link del up0
after=$(state)
check nothing-left test "$before" = "$after"
[ "$before" = "$after" ] || diff <(echo "$before") <(echo "$after")
"#
        ),
    );
    assert_ok(
        &out,
        &[
            "container-reaches-host",
            "outside-sees-the-host",
            "hairpin",
            "loopback-up",
            "address-in-pool",
            "hosts-line",
            "resolv-conf",
            "publish-from-localhost",
            "publish-from-host-address",
            "publish-from-outside",
            "forwarding-on",
            "nothing-left",
        ],
    );
}

#[test]
fn two_machines_on_a_bridge_reach_each_other_root() {
    let out = run_net(
        "bridge",
        &format!(
            "{CONTAINER}{}",
            r#"
before=$(state)
container a ''
"$T" boot "$R" --name net-br-a --net bridge -- sh /a.sh & BOOTA=$!
await listed-a has_addr net-br-a
A=$(addr_of net-br-a)
check bridge-made sh -c "ip -d link show tend0 | grep -q bridge"
check bridge-has-gateway sh -c "ip -o addr show tend0 | grep -q 10.231.0.1/16"
container b "check b-reaches-a sh -c 'wget -q -O- http://$A/ | grep -q \"page of a\"'"
# b in a user namespace: the launcher still sets its network up.
"$T" boot "$R" --name net-br-b --net bridge --userns -- sh /b.sh & BOOTB=$!
await listed-b has_addr net-br-b
B=$(addr_of net-br-b)
check addresses-differ test "$A" != "$B"
await host-reaches-b sh -c "busybox wget -q -O- http://$B/ | grep -q 'page of b'"
await b-checks grep -qx "done b" "$W/log"
kill -TERM $BOOTA; wait $BOOTA
check bridge-stays-with-b ip link show tend0
kill -TERM $BOOTB; wait $BOOTB
# The bridge is gone with its last machine (deleted by the launcher's
# child, which the launcher awaits): nothing left, and at once the same
# name boots on a new bridge of the same name, twice.
check bridge-gone-with-b test "$before" = "$(state)"
"$T" boot "$R" --name net-br-b --net bridge -- true
check same-name-at-once test $? = 0
"$T" boot "$R" --name net-br-b --net bridge -- true
check same-name-again test $? = 0
after=$(state)
check nothing-left test "$before" = "$after"
[ "$before" = "$after" ] || diff <(echo "$before") <(echo "$after")
"#
        ),
    );
    assert_ok(
        &out,
        &[
            "bridge-made",
            "bridge-has-gateway",
            "b-reaches-a",
            "addresses-differ",
            "bridge-stays-with-b",
            "bridge-gone-with-b",
            "same-name-at-once",
            "same-name-again",
            "nothing-left",
        ],
    );
}

#[test]
fn a_killed_launcher_is_cleaned_by_the_next_boot_root() {
    let out = run_net(
        "killed",
        &format!(
            "{CONTAINER}{}",
            r#"
before=$(state)
container k ''
# PID 1 killed: its launcher takes everything down.
"$T" boot "$R" --name net-pid1 --net veth --publish 8083:80 -- sh /k.sh & BOOT1=$!
await listed1 has_addr net-pid1
kill -KILL $("$T" list | awk '$1 == "net-pid1" { print $2 }'); wait $BOOT1
check pid1-killed-nothing-left test "$before" = "$(state)"
"$T" boot "$R" --name net-killed --net bridge --publish 8081:80 -- sh /k.sh & BOOT=$!
await listed has_addr net-killed
await bridge-publish sh -c "busybox wget -q -O- http://127.0.0.1:8081/ | grep -q 'page of k'"
PID1=$("$T" list | awk '$1 == "net-killed" { print $2 }')
kill -KILL $BOOT; wait $BOOT
await pid1-gone test ! -e /proc/$PID1
check left-behind test "$before" != "$(state)"
# A boot in another namespace leaves it alone: only a boot here can clean it.
unshare -n "$T" boot "$R" --name net-elsewhere -- true
check elsewhere-left-it test "$before" != "$(state)"
# The same name at once, any network; its end leaves the namespace as it was.
"$T" boot "$R" --name net-killed -- true
check next-boot-ran test $? = 0
after=$(state)
check nothing-left test "$before" = "$after"
[ "$before" = "$after" ] || diff <(echo "$before") <(echo "$after")
"#
        ),
    );
    assert_ok(
        &out,
        &[
            "pid1-killed-nothing-left",
            "left-behind",
            "next-boot-ran",
            "nothing-left",
        ],
    );
}

#[test]
fn net_ns_joins_an_existing_namespace_root() {
    let out = run_net(
        "netns",
        r#"
ip netns add tend-test-ns
ip -n tend-test-ns link add tv0 type veth peer name tv1
"$T" boot "$R" --name net-ns --net ns:/run/netns/tend-test-ns -- ip link show tv0 > "$W/ns.out" 2>&1
check joined test $? = 0
ip netns del tend-test-ns
"#,
    );
    assert_ok(&out, &["joined"]);
}

#[test]
fn bad_network_input_is_one_line_and_leaves_nothing_root() {
    let out = run_net(
        "bad",
        &format!(
            "{CONTAINER}{}",
            r#"
outside
mkdir -p "$W/host"; echo host-page > "$W/host/index.html"
busybox httpd -f -p 8000 -h "$W/host" & HOSTHTTP=$!
await host-http busybox wget -q -O /dev/null http://127.0.0.1:8000/
before=$(state)
# Fails with exit 1, one line naming the option and the conflict, nothing left.
refused() { n=$1; want=$2; shift 2
    "$T" boot "$R" --name net-bad "$@" -- true > "$W/bad.out" 2>&1; code=$?
    if [ $code = 1 ] && [ "$(wc -l < "$W/bad.out")" = 1 ] && grep -q -- "$want" "$W/bad.out" && [ "$before" = "$(state)" ]
    then echo "ok $n"; else echo "FAIL $n ($code)"; cat "$W/bad.out"; fi
}
refused pool-overlaps "--net-pool 192.0.2.0/25 overlaps the host's route to 192.0.2.0/24 on up0" --net veth --net-pool 192.0.2.0/25
refused port-in-use "--publish 8000:80/tcp: the host's port is in use" --net veth --publish 8000:80
refused not-a-bridge "--net bridge=up0: up0 exists and is not a bridge" --net bridge=up0
refused publish-without-net "--publish 8080:80/tcp: needs --net veth, bridge, pasta or slirp4netns" --publish 8080:80
refused pool-without-net "--net-pool 10.9.0.0/16: needs --net veth or bridge" --net host --net-pool 10.9.0.0/16
# A refused netlink request names its step and the kernel's answer.
ip link add ve-net-bad type veth peer name vb-peer
before=$(state) refused link-exists "cannot link add ve-net-bad type veth peer name host0 netns .* on the host: File exists" --net veth
ip link del ve-net-bad
"$T" boot "$R" --net veth --net-pool 10.0.0.0/31 -- true 2> "$W/bad.out"
check bad-pool test $? = 2 -a -n "$(grep 'bad pool "10.0.0.0/31"' "$W/bad.out")"
container p ''
"$T" boot "$R" --name net-pool1 --net veth --net-pool 10.77.0.0/29 -- sh /p.sh & BOOT=$!
await listed has_addr net-pool1
during=$(state)
before=$during refused pool-exhausted "--net-pool 10.77.0.0/29 has no free address left" --net veth --net-pool 10.77.0.0/29
kill -TERM $BOOT; wait $BOOT
kill $HOSTHTTP $OUTHTTP $OUT; wait
"#
        ),
    );
    assert_ok(
        &out,
        &[
            "pool-overlaps",
            "port-in-use",
            "not-a-bridge",
            "publish-without-net",
            "pool-without-net",
            "bad-pool",
            "pool-exhausted",
            "link-exists",
        ],
    );
}

#[test]
fn rootless_pasta_publishes_and_reaches_out_root() {
    let out = run_net_as(
        "pasta",
        &format!(
            "{CONTAINER}{}",
            r#"
# /dev/net/tun usable by all, as udev makes it on a usual host.
mknod "$W/tun" c 10 200 && chmod 666 "$W/tun" && mount --bind "$W/tun" /dev/net/tun
outside
ip route add default via 192.0.2.2
# pasta maps its gateway's address to the host: the outside is also .3.
nsenter -t $OUT -n ip addr add 192.0.2.3/24 dev eth0
before=$(state)
rl() { runuser -u "$U" -- env XDG_RUNTIME_DIR="$X" "$T" "$@"; }
rl boot "$R" --name net-rl --net veth -- true 2> "$W/veth.err"
check rootless-veth-refused grep -q -- "--net veth needs root" "$W/veth.err"
container rl '
check rootless-reaches-outside sh -c "wget -q -O- http://192.0.2.3/cgi-bin/ip | grep -q \"192.0.2.1]\""
'
rl boot "$R" --name net-rl --net pasta --publish 8082:80 -- sh /rl.sh & BOOT=$!
await published sh -c "busybox wget -q -O- http://127.0.0.1:8082/ | grep -q 'page of rl'"
check publish-from-outside sh -c "nsenter -t $OUT -n busybox wget -q -O- http://192.0.2.1:8082/ | grep -q 'page of rl'"
check pasta-runs pgrep passt
# runuser waits for the launcher, its child: the launcher gets the signal.
kill -TERM $(pgrep -P $BOOT); wait $BOOT
await pasta-stopped sh -c '! pgrep passt'
check pasta-stopped sh -c '! pgrep passt'
after=$(state)
check nothing-left test "$before" = "$after"
[ "$before" = "$after" ] || diff <(echo "$before") <(echo "$after")
kill $OUTHTTP $OUT; wait
"#
        ),
        true,
    );
    assert_ok(
        &out,
        &[
            "rootless-veth-refused",
            "rootless-reaches-outside",
            "publish-from-outside",
            "pasta-runs",
            "pasta-stopped",
            "nothing-left",
        ],
    );
}

#[test]
fn rootless_slirp4netns_publishes_reaches_out_and_ends_with_the_launcher_root() {
    let out = run_net_as(
        "slirp",
        &format!(
            "{CONTAINER}{}",
            r#"
outside
mkdir -p "$W/host"; echo host-page > "$W/host/index.html"
busybox httpd -f -p 8000 -h "$W/host" & HOSTHTTP=$!
await host-http busybox wget -q -O /dev/null http://127.0.0.1:8000/
before=$(state)
rl() { runuser -u "$U" -- env XDG_RUNTIME_DIR="$X" "$T" "$@"; }
# runuser (the job, or its child) waits for the launcher, its child;
# slirp4netns is the launcher's.
launcher() { local r; r=$(pgrep -P $1 -x runuser) || r=$1; pgrep -P $r; }
slirp_of() { pgrep -P "$(launcher $1)" -x slirp4netns; }
running() { test -n "$1" -a -e "/proc/$1" && ! grep -q '^State:.Z' "/proc/$1/status"; }
gone() { ! running $1; }
# Nothing of slirp4netns in the registry once it runs or ended.
no_files() { ! ls "$X/tend/machines" | grep -q slirp; }
# Its absence, and its failure (no usable /dev/net/tun yet): one line each.
mount --bind /dev/null /usr/bin/slirp4netns
rl boot "$R" --name net-sl --net slirp4netns -- true > "$W/miss.out" 2>&1; code=$?
umount /usr/bin/slirp4netns
check missing-one-line test $code = 1 -a "$(wc -l < "$W/miss.out")" = 1
check missing-names-it grep -q -- "--net slirp4netns: slirp4netns (Debian package slirp4netns) is missing" "$W/miss.out"
rl boot "$R" --name net-sl --net slirp4netns -- true > "$W/fail.out" 2>&1; code=$?
check failure-one-line test $code = 1 -a "$(wc -l < "$W/fail.out")" = 1
check failure-names-it grep -q -- "--net slirp4netns: slirp4netns failed: " "$W/fail.out"
check failure-left-nothing no_files
# Shown when a check fails.
cat "$W/miss.out" "$W/fail.out"
# /dev/net/tun usable by all, as udev makes it on a usual host.
mknod "$W/tun" c 10 200 && chmod 666 "$W/tun" && mount --bind "$W/tun" /dev/net/tun
container sl '
check slirp-address sh -c "ip -o -4 addr show tap0 | grep -q 10.0.2.100/24"
check slirp-reaches-host sh -c "wget -q -O- http://192.0.2.1:8000/ | grep -q host-page"
check slirp-outside-sees-the-host sh -c "wget -q -O- http://192.0.2.2/cgi-bin/ip | grep -q \"192.0.2.1]\""
check no-host-loopback sh -c "! wget -q -T 3 -O- http://10.0.2.2:8000/"
'
rl boot "$R" --name net-sl --hostname slhost --net slirp4netns --publish 8086:80 -- sh /sl.sh & BOOT=$!
await published sh -c "busybox wget -q -O- http://127.0.0.1:8086/ | grep -q 'page of sl'"
check publish-from-host-address sh -c "busybox wget -q -O- http://192.0.2.1:8086/ | grep -q 'page of sl'"
check publish-from-outside sh -c "nsenter -t $OUT -n busybox wget -q -O- http://192.0.2.1:8086/ | grep -q 'page of sl'"
check resolv-conf grep -qx "nameserver 10.0.2.3" "$R/etc/resolv.conf"
check hosts-line grep -qx "10.0.2.100	slhost" "$R/etc/hosts"
S=$(slirp_of $BOOT)
check slirp-runs running "$S"
check api-socket-gone no_files
await container-checks grep -qx "done sl" "$W/log"
kill -TERM $(launcher $BOOT); wait $BOOT
check slirp-stopped gone "$S"
# The launcher killed: slirp4netns sees its exit pipe close and ends.
rl boot "$R" --name net-sl --net slirp4netns --publish 8086:80 -- sh /sl.sh & BOOT=$!
await published-again sh -c "busybox wget -q -O- http://127.0.0.1:8086/ | grep -q 'page of sl'"
S=$(slirp_of $BOOT)
kill -KILL $(launcher $BOOT); wait $BOOT
await slirp-ends-with-killed-launcher gone "$S"
check slirp-ends-with-killed-launcher gone "$S"
# The same name and port at once.
rl boot "$R" --name net-sl --net slirp4netns --publish 8086:80 -- true
check boots-again test $? = 0
check no-files-left no_files
after=$(state)
check nothing-left test "$before" = "$after"
[ "$before" = "$after" ] || diff <(echo "$before") <(echo "$after")
kill $HOSTHTTP $OUTHTTP $OUT; wait
"#
        ),
        true,
    );
    assert_ok(
        &out,
        &[
            "missing-one-line",
            "missing-names-it",
            "failure-one-line",
            "failure-names-it",
            "failure-left-nothing",
            "slirp-address",
            "slirp-reaches-host",
            "slirp-outside-sees-the-host",
            "no-host-loopback",
            "publish-from-host-address",
            "publish-from-outside",
            "resolv-conf",
            "hosts-line",
            "slirp-runs",
            "api-socket-gone",
            "slirp-stopped",
            "slirp-ends-with-killed-launcher",
            "boots-again",
            "no-files-left",
            "nothing-left",
        ],
    );
}

#[test]
fn slirp4netns_as_root_with_and_without_a_user_namespace_root() {
    let out = run_net(
        "slirp-root",
        &format!(
            "{CONTAINER}{}",
            r#"
before=$(state)
container sr ''
for how in --userns --privileged; do
    "$T" boot "$R" --name net-sr $how --net slirp4netns --publish 8088:80 -- sh /sr.sh 2>/dev/null & BOOT=$!
    await published$how sh -c "busybox wget -q -O- http://127.0.0.1:8088/ | grep -q 'page of sr'"
    S=$(pgrep -P $BOOT -x slirp4netns)
    kill -TERM $BOOT; wait $BOOT
    check slirp-stopped$how test -n "$S" -a ! -e "/proc/$S"
done
# A port slirp4netns refuses (the same one twice): one line, slirp4netns
# ended, its API socket gone.
"$T" boot "$R" --name net-sr --net slirp4netns --publish 8089:80 --publish 8089:81 -- true > "$W/twice.out" 2>&1
check refused-one-line test $? = 1 -a "$(wc -l < "$W/twice.out")" = 1
check refused-names-it grep -q -- "--net slirp4netns: cannot publish 8089:81/tcp: " "$W/twice.out"
cat "$W/twice.out"
check refused-left-nothing sh -c "! ls /run/tend/machines | grep -q '^net-sr\.'"
# (the brackets keep the pattern from matching this sh itself)
check no-slirp-left sh -c "! pgrep -f '[s]lirp4netns.*/net-sr[.]'"
check nothing-left test "$before" = "$(state)"
"#
        ),
    );
    assert_ok(
        &out,
        &[
            "slirp-stopped--userns",
            "slirp-stopped--privileged",
            "refused-one-line",
            "refused-names-it",
            "refused-left-nothing",
            "no-slirp-left",
            "nothing-left",
        ],
    );
}

#[test]
fn machines_booted_at_once_get_different_addresses_root() {
    let out = run_net(
        "atonce",
        r#"
before=$(state)
for n in 1 2 3; do "$T" boot "$R" --name net-once$n --net veth -- sleep 1000 & eval B$n=\$!; done
for n in 1 2 3; do await listed$n has_addr net-once$n; done
addrs=$(for n in 1 2 3; do addr_of net-once$n; done)
check three-addresses test "$(echo "$addrs" | sort -u | wc -l)" = 3
kill -TERM $B1 $B2 $B3; wait
check nothing-left test "$before" = "$(state)"
"#,
    );
    assert_ok(&out, &["three-addresses", "nothing-left"]);
}

#[test]
fn links_and_rules_are_made_without_ip_or_nft_root() {
    let out = run_net(
        "notools",
        &format!(
            "{CONTAINER}{}",
            r#"
before=$(state)
container nt ''
# The launcher sees `ip` and `nft` that only fail: tend speaks netlink itself.
printf '#!/bin/sh\nexit 1\n' > "$W/stub"; chmod +x "$W/stub"
hide='for t in ip nft; do mount --bind "$W/stub" "$(readlink -f "$(command -v $t)")"; done'
unshare -m --propagation private sh -c "$hide; ! ip link && ! nft list tables && exec \"\$T\" boot \"\$R\" --name net-tools --net veth --publish 8084:80 -- sh /nt.sh" & BOOT=$!
await listed has_addr net-tools
A=$(addr_of net-tools)
await direct sh -c "busybox wget -q -O- http://$A/ | grep -q 'page of nt'"
check direct sh -c "busybox wget -q -O- http://$A/ | grep -q 'page of nt'"
check published sh -c "busybox wget -q -O- http://127.0.0.1:8084/ | grep -q 'page of nt'"
check table-written sh -c 'nft list table inet tend | grep -q "dnat ip to $0:80"' "$A"
kill -TERM $BOOT; wait $BOOT
after=$(state)
check nothing-left test "$before" = "$after"
[ "$before" = "$after" ] || diff <(echo "$before") <(echo "$after")
"#
        ),
    );
    assert_ok(&out, &["direct", "published", "table-written", "nothing-left"]);
}
