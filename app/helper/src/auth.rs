//! Who may connect: root, and members of the helper's group.
//!
//! The socket file is mode 0660 and owned by `root:<group>`, so the kernel
//! already refuses everyone else at `connect()`. The peer-credential check
//! (SO_PEERCRED) is a second gate that does not depend on file permissions
//! (a socket directory mounted elsewhere, a mode changed by hand). The
//! peer's supplementary groups come from SO_PEERGROUPS: the kernel's record
//! of the connecting process at `connect()` time, not a file in `/proc`
//! that a process which has exited (and whose pid was reused) no longer
//! describes.

use std::os::fd::{AsRawFd, BorrowedFd};

/// Credentials of a connected peer, from SO_PEERCRED and SO_PEERGROUPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Effective uid.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
    /// Process id, if the peer lives in our pid namespace.
    pub pid: Option<i32>,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl Peer {
    /// The helper itself (root), for files it opens on its own behalf.
    pub fn root() -> Self {
        Self {
            uid: 0,
            gid: 0,
            pid: None,
            groups: Vec::new(),
        }
    }
}

/// Most supplementary groups read from SO_PEERGROUPS (Linux's own limit,
/// `NGROUPS_MAX`, is 65 536).
const MAX_PEER_GROUPS: usize = 65_536;

/// The supplementary groups of the process at the other end of the Unix
/// socket `socket` (SO_PEERGROUPS, Linux 4.13+).
pub fn peer_groups(socket: BorrowedFd<'_>) -> std::io::Result<Vec<u32>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = libc::socklen_t::try_from(std::mem::size_of_val(groups.as_slice()))
            .map_err(|_| std::io::Error::other("too many groups"))?;
        // SAFETY: getsockopt writes at most `len` bytes into `groups`, a live
        // buffer of that size, and stores the size it needs in `len`.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let needed = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(needed);
            return Ok(groups);
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE)
            || needed <= groups.len()
            || needed > MAX_PEER_GROUPS
        {
            return Err(err);
        }
        groups.resize(needed, 0);
    }
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
        if peer.uid == 0 {
            return Ok(());
        }
        if let Some(gid) = self.group_gid
            && (peer.gid == gid || peer.groups.contains(&gid))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(gid: Option<u32>) -> Policy {
        Policy {
            group_name: "microscope".into(),
            group_gid: gid,
        }
    }

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> Peer {
        Peer {
            uid,
            gid,
            pid: Some(1234),
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn root_always_passes() {
        assert!(policy(None).check(&peer(0, 0, &[])).is_ok());
    }

    #[test]
    fn group_members_pass_by_primary_or_supplementary_gid() {
        assert!(policy(Some(900)).check(&peer(1000, 900, &[])).is_ok());
        assert!(
            policy(Some(900))
                .check(&peer(1000, 1000, &[27, 900]))
                .is_ok()
        );
    }

    #[test]
    fn others_are_refused_with_a_sentence() {
        let err = policy(Some(900))
            .check(&peer(65534, 65534, &[100]))
            .unwrap_err();
        assert!(err.contains("uid 65534"), "{err}");
        assert!(err.contains("usermod -aG microscope"), "{err}");
        let err = policy(None).check(&peer(1000, 1000, &[])).unwrap_err();
        assert!(err.contains("groupadd microscope"), "{err}");
    }

    #[test]
    fn peer_groups_are_this_processs_groups() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut mine: Vec<u32> = nix::unistd::getgroups()
            .unwrap()
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
        let mut seen = peer_groups(std::os::fd::AsFd::as_fd(&a)).unwrap();
        mine.sort_unstable();
        seen.sort_unstable();
        assert_eq!(seen, mine);
        drop(b);
    }
}
