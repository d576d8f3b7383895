//! Users and groups of the environment, from the text of its own
//! `/etc/passwd` and `/etc/group`: no NSS, so the answer is the same for a
//! container rootfs checked from outside and for tend running inside it.
//!
//! [`UserDb`] is the one resolver of users and groups: unit validation,
//! services, `tend ctl exec` and the control socket's group all go through
//! it, so a name means the same thing everywhere.

use std::ffi::OsString;

use crate::sys::spawn::Credentials;

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct User {
    pub name: String,
    pub uid: u32,
    /// Primary group.
    pub gid: u32,
    pub home: String,
    pub shell: String,
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
            let [name, _, uid, gid, _, home, rest @ ..] = f.as_slice() else {
                return None;
            };
            Some(User {
                name: name.to_string(),
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
                home: home.to_string(),
                shell: rest.first().copied().unwrap_or("").to_string(),
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

/// A user or a group as written: a name, or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id<'a> {
    /// Looked up by name; a name of digits with no entry is a number
    /// (`user = "1000"`, `--user 1000`).
    Name(&'a str),
    Number(u64),
}

/// Why a user or a group cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("no {kind} named {name}")]
    Unknown { kind: &'static str, name: String },
    /// Above `u32`, or `(uid_t)-1`, which `setuid` and friends read as
    /// "unchanged".
    #[error("{kind} id {value} is out of range")]
    Range { kind: &'static str, value: u64 },
}

/// A user found by name or number: its uid, and its passwd entry unless it
/// was a number that has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub entry: Option<User>,
}

/// Who a service or an exec'd command runs as, as systemd's `User=` and
/// `Group=` make it. The default changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RunAs {
    /// `None`: tend's own.
    pub uid: Option<u32>,
    /// `group`, else the user's primary group. `None`: tend's own (a
    /// numeric user without a passwd entry keeps it, as Docker does).
    pub gid: Option<u32>,
    /// The groups of `/etc/group` that list the user as a member; the
    /// process gets these after its `gid`.
    pub groups: Vec<u32>,
    /// The user's passwd entry: `USER`, `LOGNAME`, `HOME` and `SHELL`
    /// (boxed: most units have none, and PID 1 keeps thousands of units).
    pub entry: Option<Box<User>>,
}

/// The users and groups of one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserDb {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
}

impl UserDb {
    /// The database from the text of `/etc/passwd` and `/etc/group`.
    pub fn parse(passwd: &str, group: &str) -> UserDb {
        UserDb {
            users: parse_passwd(passwd),
            groups: parse_group(group),
        }
    }

    /// A user by name, else by number; a number needs no entry.
    pub fn user(&self, id: Id) -> Result<Account, IdError> {
        let by_name = match id {
            Id::Name(name) => self.users.iter().find(|u| u.name == name),
            Id::Number(_) => None,
        };
        let uid = match by_name {
            Some(u) => u.uid,
            None => number(id, "user")?,
        };
        let entry = by_name.or_else(|| self.users.iter().find(|u| u.uid == uid));
        Ok(Account {
            uid,
            entry: entry.cloned(),
        })
    }

    /// A group by name, else by number; a number needs no entry.
    pub fn group(&self, id: Id) -> Result<u32, IdError> {
        let by_name = match id {
            Id::Name(name) => self.groups.iter().find(|g| g.name == name),
            Id::Number(_) => None,
        };
        match by_name {
            Some(g) => Ok(g.gid),
            None => number(id, "group"),
        }
    }

    /// Who to run as for `user` and `group` (either may be absent).
    pub fn run_as(&self, user: Option<&Account>, gid: Option<u32>) -> RunAs {
        let entry = user.and_then(|a| a.entry.clone()).map(Box::new);
        let groups = match &entry {
            Some(u) => self.member_of(&u.name),
            None => Vec::new(),
        };
        RunAs {
            uid: user.map(|a| a.uid),
            gid: gid.or(entry.as_ref().map(|u| u.gid)),
            groups,
            entry,
        }
    }

    /// The gids of the groups that list `name` as a member, once each.
    fn member_of(&self, name: &str) -> Vec<u32> {
        let mut gids: Vec<u32> = Vec::new();
        for g in self.groups.iter().filter(|g| g.members.iter().any(|m| m == name)) {
            if !gids.contains(&g.gid) {
                gids.push(g.gid);
            }
        }
        gids
    }

    /// `user` resolved alone, as `tend ctl exec --user` asks.
    pub fn run_as_user(&self, user: &str) -> Result<RunAs, IdError> {
        let account = self.user(Id::Name(user))?;
        Ok(self.run_as(Some(&account), None))
    }
}

/// The id a name of digits or a number stands for.
fn number(id: Id, kind: &'static str) -> Result<u32, IdError> {
    let value = match id {
        Id::Number(n) => n,
        Id::Name(name) => name.parse::<u64>().map_err(|_| IdError::Unknown {
            kind,
            name: name.into(),
        })?,
    };
    match u32::try_from(value) {
        Ok(id) if id != u32::MAX => Ok(id),
        _ => Err(IdError::Range { kind, value }),
    }
}

impl RunAs {
    /// The ids to switch to, tend's own `uid` and `gid` where none is set;
    /// `None` when nothing changes. The supplementary groups are the gid
    /// and the user's memberships, as `initgroups(3)` makes them.
    pub fn credentials(&self, own_uid: u32, own_gid: u32) -> Option<Credentials> {
        if self.uid.is_none() && self.gid.is_none() {
            return None;
        }
        let gid = self.gid.unwrap_or(own_gid);
        let mut groups = vec![gid];
        groups.extend(self.groups.iter().filter(|&&g| g != gid));
        Some(Credentials {
            uid: self.uid.unwrap_or(own_uid),
            gid,
            groups,
        })
    }

    /// `USER`, `LOGNAME`, `HOME` and `SHELL` of the user's passwd entry;
    /// none without one (no user, or a number with no entry).
    pub fn login_env(&self) -> Vec<(OsString, OsString)> {
        let Some(u) = &self.entry else {
            return Vec::new();
        };
        let mut env: Vec<(OsString, OsString)> = vec![
            ("USER".into(), u.name.clone().into()),
            ("LOGNAME".into(), u.name.clone().into()),
            ("HOME".into(), u.home.clone().into()),
        ];
        if !u.shell.is_empty() {
            env.push(("SHELL".into(), u.shell.clone().into()));
        }
        env
    }
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
                home: "/var/www".into(),
                shell: "/usr/sbin/nologin".into(),
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

    const DB_PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000::/home/app:/bin/bash
svc:x:1001:1001::/srv:
";

    const DB_GROUP: &str = "\
root:x:0:
app:x:1000:
adm:x:4:syslog,app
web:x:33:app,svc
again:x:33:app
";

    fn db() -> UserDb {
        UserDb::parse(DB_PASSWD, DB_GROUP)
    }

    #[test]
    fn users_by_name_or_number() {
        let db = db();
        let app = db.user(Id::Name("app")).unwrap();
        assert_eq!((app.uid, app.entry.map(|u| u.home)), (1000, Some("/home/app".into())));
        // A number finds its entry when there is one, and needs none.
        assert_eq!(db.user(Id::Number(1001)).unwrap().entry.unwrap().name, "svc");
        assert_eq!(db.user(Id::Name("1001")).unwrap().entry.unwrap().name, "svc");
        assert_eq!(db.user(Id::Name("4242")).unwrap(), Account { uid: 4242, entry: None });
        assert_eq!(db.user(Id::Name("ap")).unwrap_err().to_string(), "no user named ap");
        assert_eq!(
            db.user(Id::Number(u64::from(u32::MAX))).unwrap_err(),
            IdError::Range {
                kind: "user",
                value: 4294967295
            }
        );
        assert_eq!(db.group(Id::Name("adm")), Ok(4));
        assert_eq!(db.group(Id::Name("77")), Ok(77));
        assert_eq!(db.group(Id::Number(0)), Ok(0));
        assert_eq!(
            db.group(Id::Name("wheel")).unwrap_err().to_string(),
            "no group named wheel"
        );
    }

    #[test]
    fn run_as_like_systemd() {
        let db = db();
        // A user: its primary group, its memberships once each, its login.
        let app = db.run_as_user("app").unwrap();
        assert_eq!(
            (app.uid, app.gid, app.groups.clone()),
            (Some(1000), Some(1000), vec![4, 33])
        );
        let creds = app.credentials(0, 0).unwrap();
        assert_eq!((creds.uid, creds.gid, creds.groups), (1000, 1000, vec![1000, 4, 33]));
        let env: Vec<String> = app
            .login_env()
            .iter()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect();
        assert_eq!(env, ["USER=app", "LOGNAME=app", "HOME=/home/app", "SHELL=/bin/bash"]);
        // `group` replaces the primary group, not the memberships.
        let svc = db.user(Id::Name("svc")).unwrap();
        let run = db.run_as(Some(&svc), Some(33));
        assert_eq!(run.credentials(0, 0).unwrap().groups, vec![33]);
        assert!(!run.login_env().iter().any(|(k, _)| k == "SHELL"));
        // A number without an entry: tend's group, no login.
        let ghost = db.run_as_user("4242").unwrap();
        assert!(ghost.login_env().is_empty());
        let creds = ghost.credentials(7, 8).unwrap();
        assert_eq!((creds.uid, creds.gid, creds.groups), (4242, 8, vec![8]));
        // A group alone: tend's uid, that group only.
        let creds = db.run_as(None, Some(4)).credentials(7, 8).unwrap();
        assert_eq!((creds.uid, creds.gid, creds.groups), (7, 4, vec![4]));
        assert_eq!(RunAs::default().credentials(7, 8), None);
    }
}
