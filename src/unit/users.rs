//! Users and groups of the environment, from the text of its own
//! `/etc/passwd` and `/etc/group`: no NSS, so the answer is the same for a
//! container rootfs checked from outside and for tend running inside it.

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    /// Primary group.
    pub gid: u32,
    pub home: String,
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Parses `name:password:uid:gid:gecos:home:shell` lines. Comments, NIS
/// `+`/`-` entries and malformed lines are skipped: a host file with one bad
/// line must not hide every user.
pub fn parse_passwd(text: &str) -> Vec<User> {
    entries(text)
        .filter_map(|f| {
            let [name, _, uid, gid, _, home, ..] = f.as_slice() else {
                return None;
            };
            Some(User {
                name: name.to_string(),
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
                home: home.to_string(),
            })
        })
        .collect()
}

/// Parses `name:password:gid:member,member` lines, skipping what is malformed.
pub fn parse_group(text: &str) -> Vec<Group> {
    entries(text)
        .filter_map(|f| {
            let [name, _, gid, rest @ ..] = f.as_slice() else {
                return None;
            };
            let members = rest.first().copied().unwrap_or("");
            Some(Group {
                name: name.to_string(),
                gid: gid.parse().ok()?,
                members: members
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// The `:`-separated fields of each line that can be an entry.
fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', '+', '-']))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.first().is_some_and(|name| !name.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
broken:x:notanumber:1::/:/bin/sh
short:x:5
+nisuser::::::

nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
";

    const GROUP: &str = "\
root:x:0:
adm:x:4:syslog,alice
www-data:x:33:
bad:x:
nogroup:x:65534
";

    #[test]
    fn passwd_entries() {
        let users = parse_passwd(PASSWD);
        let names: Vec<_> = users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["root", "daemon", "www-data", "nobody"]);
        assert_eq!(
            users[2],
            User {
                name: "www-data".into(),
                uid: 33,
                gid: 33,
                home: "/var/www".into()
            }
        );
        assert_eq!(users[3].uid, 65534);
    }

    #[test]
    fn group_entries() {
        let groups = parse_group(GROUP);
        let names: Vec<_> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["root", "adm", "www-data", "nogroup"]);
        assert_eq!(groups[1].members, ["syslog", "alice"]);
        assert!(groups[0].members.is_empty());
        assert_eq!(groups[3].gid, 65534);
    }

    #[test]
    fn empty_and_garbage() {
        assert!(parse_passwd("").is_empty());
        assert!(parse_passwd(":::::::\n\u{0}\nx:y").is_empty());
        assert!(parse_group("::\n").is_empty());
    }
}
