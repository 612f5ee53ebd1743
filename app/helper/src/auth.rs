//! Who may connect: root, and members of the helper's group.
//!
//! The socket file is mode 0660 and owned by `root:<group>`, so the kernel
//! already refuses everyone else at `connect()`. The peer-credential check
//! (SO_PEERCRED) is a second gate that does not depend on file permissions
//! (a socket directory mounted elsewhere, a mode changed by hand).

use std::path::Path;

/// Credentials of a connected peer, from SO_PEERCRED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Effective uid.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
    /// Process id, if the peer lives in our pid namespace.
    pub pid: Option<i32>,
}

/// The access policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Name of the group whose members may connect.
    pub group_name: String,
    /// Its gid, if the group exists.
    pub group_gid: Option<u32>,
}

impl Policy {
    /// The policy for group `name`, looking its gid up in the group database.
    pub fn for_group(name: &str) -> Self {
        let gid = nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw());
        Self {
            group_name: name.to_owned(),
            group_gid: gid,
        }
    }

    /// `Ok` if `peer` may connect, else the sentence sent back to it.
    pub fn check(&self, peer: &Peer) -> Result<(), String> {
        self.check_with(peer, |pid| supplementary_groups(Path::new("/proc"), pid))
    }

    fn check_with(&self, peer: &Peer, groups_of: impl Fn(i32) -> Vec<u32>) -> Result<(), String> {
        if peer.uid == 0 {
            return Ok(());
        }
        if let Some(gid) = self.group_gid
            && (peer.gid == gid || peer.pid.is_some_and(|pid| groups_of(pid).contains(&gid)))
        {
            return Ok(());
        }
        let group = &self.group_name;
        let how = if self.group_gid.is_some() {
            format!(
                "ask an administrator to run `sudo usermod -aG {group} <your user>`, then log in again"
            )
        } else {
            format!(
                "the group does not exist on this machine; an administrator can create it with \
                 `sudo groupadd {group}` and add you with `sudo usermod -aG {group} <your user>`"
            )
        };
        Err(format!(
            "access denied: uid {} is neither root nor a member of group `{group}`; {how}",
            peer.uid
        ))
    }
}

/// Supplementary groups of `pid`, from the `Groups:` line of its status file.
fn supplementary_groups(proc_root: &Path, pid: i32) -> Vec<u32> {
    let status =
        std::fs::read_to_string(proc_root.join(pid.to_string()).join("status")).unwrap_or_default();
    parse_groups_line(&status)
}

fn parse_groups_line(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Groups:"))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(gid: Option<u32>) -> Policy {
        Policy {
            group_name: "microscope".into(),
            group_gid: gid,
        }
    }

    fn peer(uid: u32, gid: u32) -> Peer {
        Peer {
            uid,
            gid,
            pid: Some(1234),
        }
    }

    #[test]
    fn root_always_passes() {
        assert!(policy(None).check_with(&peer(0, 0), |_| vec![]).is_ok());
    }

    #[test]
    fn group_members_pass_by_primary_or_supplementary_gid() {
        assert!(
            policy(Some(900))
                .check_with(&peer(1000, 900), |_| vec![])
                .is_ok()
        );
        assert!(
            policy(Some(900))
                .check_with(&peer(1000, 1000), |_| vec![27, 900])
                .is_ok()
        );
    }

    #[test]
    fn others_are_refused_with_a_sentence() {
        let err = policy(Some(900))
            .check_with(&peer(65534, 65534), |_| vec![100])
            .unwrap_err();
        assert!(err.contains("uid 65534"), "{err}");
        assert!(err.contains("usermod -aG microscope"), "{err}");
        let err = policy(None)
            .check_with(&peer(1000, 1000), |_| vec![])
            .unwrap_err();
        assert!(err.contains("groupadd microscope"), "{err}");
    }

    #[test]
    fn parses_status_groups() {
        assert_eq!(
            parse_groups_line("Name:\tx\nGroups:\t4 27 900 \nX: 1"),
            vec![4, 27, 900]
        );
        assert_eq!(parse_groups_line("Groups:\n"), Vec::<u32>::new());
        assert_eq!(parse_groups_line(""), Vec::<u32>::new());
    }
}
